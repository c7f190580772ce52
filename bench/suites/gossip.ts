/**
 * `gossip` suite: the simulated gossip tier at n = 10^3…10^6 leaves under 0 / 5 / 20 % loss and
 * 0 / 30 % crashed leaves — rounds to 99 / 99.9 / 99.99 / 100 % delivery of data and rekeys,
 * per-node messages and bytes per round, pulls from the core, wall and CPU time. --quick stops
 * at 10^4, default at 10^5, --full adds one 10^6 cell (5 % loss, none crashed).
 */
import type { BenchContext, BenchResult, BenchSuite } from '../harness.js';
import type { Chart } from '../svg.js';
import { runScenario } from '../../test/sim/gossip/scenario.js';

function finite(r: number): number {
  return Number.isFinite(r) ? r : -1;
}

async function run(ctx: BenchContext): Promise<BenchResult[]> {
  const sizes = ctx.quick
    ? [1_000, 10_000]
    : ctx.full
      ? [1_000, 10_000, 100_000, 1_000_000]
      : [1_000, 10_000, 100_000];
  const results: BenchResult[] = [];
  for (const n of sizes) {
    for (const loss of [0, 0.05, 0.2]) {
      for (const crashed of [0, 0.3]) {
        if (n >= 1_000_000 && !(loss === 0.05 && crashed === 0)) continue; // one 10^6 cell: minutes each
        const { report: r } = runScenario({
          n,
          seed: 1,
          loss,
          crashed,
          messages: 1,
          rekeys: 1,
          batch: Math.max(1, n / 1000),
        });
        const d = r.data[0]!;
        const k = r.rekeys[0]!;
        const curve = d.curve.map((f, i) => `${i}:${f.toFixed(5)}`).join(' ');
        ctx.log(
          `  n=${n} loss=${loss} crashed=${crashed}: data 99/99.9/99.99/100% r${d.r99}/${d.r999}/${d.r9999}/${d.r100}, rekey 100% r${k.r100}, ${r.meanSendsPerNodeRound.toFixed(2)} msgs/node/round, ${r.corePulls} core pulls, wall ${(r.wallMs / 1000).toFixed(1)} s, cpu ${(r.cpuMs / 1000).toFixed(1)} s`,
        );
        results.push({
          case: 'gossip.delivery',
          params: { n, loss, crashed, curve },
          metrics: {
            dataR99: finite(d.r99),
            dataR999: finite(d.r999),
            dataR9999: finite(d.r9999),
            dataR100: finite(d.r100),
            dataDeliveredPct: (100 * d.delivered) / Math.max(1, d.eligible),
            rekeyR999: finite(k.r999),
            rekeyR9999: finite(k.r9999),
            rekeyR100: finite(k.r100),
            rekeyDeliveredPct: (100 * k.delivered) / Math.max(1, k.eligible),
            msgsPerNodeRound: r.meanSendsPerNodeRound,
            maxMsgsPerNodeRound: r.maxSendsPerNodeRound,
            bytesPerNodeRound: r.bytesPerNodeRound,
            rekeyBytesPerLeaf: r.meanRekeyBytesPerLeaf,
            corePulls: r.corePulls,
            reseeds: r.reseeds,
            wallMs: r.wallMs,
            cpuMs: r.cpuMs,
          },
        });
      }
    }
  }
  return results;
}

function charts(results: readonly BenchResult[]): Chart[] {
  return [
    {
      kind: 'line',
      title: 'Data delivery vs round (fraction of live leaves)',
      xLabel: 'round after publication',
      yLabel: 'fraction delivered',
      series: results.map((r) => ({
        name: `n=${r.params.n} loss=${r.params.loss} crashed=${r.params.crashed}`,
        points: String(r.params.curve)
          .split(' ')
          .map((p) => {
            const [x, y] = p.split(':');
            return { x: Number(x), y: Number(y) };
          }),
      })),
    },
  ];
}

const suite: BenchSuite = {
  name: 'gossip',
  description: 'simulated gossip tier: rounds to 99/99.9/100 % delivery, per-node load, n = 10^3…10^6',
  run,
  charts,
};
export default suite;
