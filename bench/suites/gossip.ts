/**
 * `gossip` suite: the simulated gossip tier at n = 10^3…10^6 leaves under 0 / 5 / 20 % loss and
 * 0 / 20 % crashed leaves — rounds to 99 / 99.9 / 99.99 / 100 % delivery of data and rekeys
 * against the target round ⌈log2 n⌉ + 5, per-node messages and bytes per round, pulls from the
 * core, wall and CPU time. --quick stops at 10^4, default at 10^5, --full adds the six 10^6
 * cells (loss-free 5–6.5 CPU-minutes and ~5 GB resident each; lossy ones took 7–16 on the
 * old routing, more now: well over an hour on one core).
 * The simulated core routes with the server's `routeEpochParts` and its leaves admit items with
 * the leaf SDK's checks (sim/gossip/world.ts), so the figures are those of the shipped code.
 * Bimodality (Birman et al.): a source publishes and crashes at once, so only its first pushes
 * carry the message; over many runs the delivered fraction, once retention has run out, should
 * be almost all or almost none.
 */
import type { BenchContext, BenchResult, BenchSuite } from '../harness.js';
import type { Chart } from '../svg.js';
import { loadSuite } from '../../crypto/index.js';
import { bimodality, runScenario } from '../../sim/gossip/scenario.js';

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
  const suite = await loadSuite();
  for (const n of sizes) {
    for (const loss of [0, 0.05, 0.2]) {
      for (const crashed of [0, 0.2]) {
        const { report: r } = runScenario({
          n,
          seed: 1,
          loss,
          crashed,
          messages: 1,
          rekeys: 1,
          batch: Math.max(1, n / 1000),
          suite,
        });
        const d = r.data[0]!;
        const k = r.rekeys[0]!;
        const targetRound = Math.ceil(Math.log2(n)) + 5;
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
            targetRound,
            dataMetTarget: Number.isFinite(d.r9999) && d.r9999 <= targetRound ? 1 : 0,
            rekeyMetTarget: Number.isFinite(k.r9999) && k.r9999 <= targetRound ? 1 : 0,
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
  const bimodalN = 1_000;
  for (const loss of [0.05, 0.2, 0.5]) {
    const runs = ctx.quick ? 20 : 100;
    // Long enough for retention to run out: by then an item has reached almost all or died.
    const deadlineRounds = 3 * (Math.ceil(Math.log2(bimodalN)) + 5);
    const b = bimodality({ n: bimodalN, runs, loss, seed: 1, deadlineRounds, suite });
    ctx.log(
      `  bimodality n=${bimodalN} loss=${loss} by round ${deadlineRounds}: ${b.almostAll} almost all (≥ 99 %), ${b.almostNone} almost none (≤ 1 %), ${b.between} between, of ${b.runs}`,
    );
    results.push({
      case: 'gossip.bimodality',
      params: { n: bimodalN, loss, runs, deadlineRounds },
      metrics: {
        almostAllPct: (100 * b.almostAll) / b.runs,
        almostNonePct: (100 * b.almostNone) / b.runs,
        betweenPct: (100 * b.between) / b.runs,
      },
    });
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
      series: results
        .filter((r) => r.case === 'gossip.delivery')
        .map((r) => ({
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
