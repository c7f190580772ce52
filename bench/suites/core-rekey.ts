/**
 * `core-rekey` suite: the distributed core-tree rekey in one process with real crypto and zero
 * network delay. Each row times one view change from "view installed" (every member's
 * `start`) to "every member holds the new key" (the last `installed`), so it is the total CPU
 * the whole group spends, run on one core. Rounds, logical messages (a multicast counts once)
 * and bytes come from the driver's FIFO total order. Pairwise keys are established beforehand,
 * as the background offer exchange would have done.
 */
import { loadSuite, type CipherSuite } from '../../crypto/index.js';
import { CoreCluster, type RekeyStats } from '../../sim/core-tree-driver.js';
import type { BenchContext, BenchResult, BenchSuite } from '../harness.js';
import type { Chart } from '../svg.js';

const SIZES = [3, 8, 16, 32, 64];
const CASES = ['leave', 'join', 'leader-crash', 'merge', 'refresh', 'refresh-full'] as const;
type Case = (typeof CASES)[number];

/** Ids sort by creation, so the leader (smallest id) is the oldest member. */
function namer(): () => string {
  let next = 0;
  return () => `m${String(next++).padStart(6, '0')}`;
}

function formGroup(c: CoreCluster, size: number, name: () => string): string[] {
  const members = Array.from({ length: size }, name);
  for (const m of members) c.addNode(m);
  c.viewChange(members);
  return members;
}

interface Sample {
  readonly ms: number;
  readonly stats: RekeyStats;
}

function timed(c: CoreCluster, members: string[], fullRefresh = false): Sample {
  const t0 = performance.now();
  const stats = c.viewChange(members, { fullRefresh });
  const ms = performance.now() - t0;
  if (!stats.installed) throw new Error('bench: rekey did not complete');
  return { ms, stats };
}

/** One sample of `kind` at size n; the cluster is restored to n members afterwards (untimed). */
function sample(
  suite: CipherSuite,
  kind: Case,
  n: number,
  state: { c: CoreCluster; view: string[]; name: () => string },
): Sample {
  const { c, name } = state;
  const pickOther = (): string =>
    state.view[1 + Math.floor(Math.random() * (state.view.length - 1))] as string;
  switch (kind) {
    case 'leave':
    case 'leader-crash': {
      const gone = kind === 'leave' ? pickOther() : (state.view[0] as string);
      const after = state.view.filter((m) => m !== gone);
      const s = timed(c, after);
      const back = name();
      c.addNode(back);
      state.view = [...after, back];
      c.viewChange(state.view);
      return s;
    }
    case 'join': {
      const gone = pickOther();
      state.view = state.view.filter((m) => m !== gone);
      c.viewChange(state.view);
      const j = name();
      c.addNode(j);
      state.view = [...state.view, j];
      return timed(c, state.view);
    }
    case 'merge': {
      const fresh = new CoreCluster(suite);
      fresh.recordSecrets = false;
      const a = formGroup(fresh, Math.ceil(n / 2), name);
      const b = formGroup(fresh, Math.floor(n / 2), name);
      return timed(fresh, [...a, ...b]);
    }
    case 'refresh':
    case 'refresh-full':
      return timed(c, state.view, kind === 'refresh-full');
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

async function run(ctx: BenchContext): Promise<BenchResult[]> {
  const suite = await loadSuite();
  const reps = ctx.quick ? 7 : ctx.full ? 61 : 21;
  const results: BenchResult[] = [];
  ctx.log(
    `  ${'case'.padEnd(14)} ${'n'.padStart(3)}  ${'median ms'.padStart(9)}  ${'p90 ms'.padStart(7)}  rounds  msgs   bytes  bundle B`,
  );
  for (const kind of CASES) {
    for (const n of SIZES) {
      const c = new CoreCluster(suite);
      c.recordSecrets = false;
      const name = namer();
      const state = { c, view: formGroup(c, n, name), name };
      for (let i = 0; i < 3; i++) sample(suite, kind, n, state); // warm-up
      const samples = Array.from({ length: reps }, () => sample(suite, kind, n, state));
      const times = samples.map((s) => s.ms).sort((a, b) => a - b);
      const last = (samples[samples.length - 1] as Sample).stats;
      const metrics = {
        msMedian: Number(median(times).toFixed(3)),
        msP90: Number((times[Math.floor(0.9 * (times.length - 1))] as number).toFixed(3)),
        rounds: median(samples.map((s) => s.stats.rounds)),
        messages: median(samples.map((s) => s.stats.messages)),
        bytes: median(samples.map((s) => s.stats.bytes)),
        bundleBytes: median(samples.map((s) => s.stats.bundleBytes)),
      };
      results.push({ case: kind, params: { members: n }, metrics });
      ctx.log(
        `  ${kind.padEnd(14)} ${String(n).padStart(3)}  ${metrics.msMedian.toFixed(2).padStart(9)}  ${metrics.msP90.toFixed(2).padStart(7)}  ${String(metrics.rounds).padStart(6)}  ${String(metrics.messages).padStart(4)}  ${String(metrics.bytes).padStart(6)}  ${String(last.bundleBytes).padStart(8)}`,
      );
    }
  }
  return results;
}

function charts(results: readonly BenchResult[]): Chart[] {
  const series = CASES.map((kind) => ({
    name: kind,
    points: results
      .filter((r) => r.case === kind)
      .map((r) => ({ x: Number(r.params.members), y: r.metrics.msMedian ?? 0 })),
  }));
  return [
    {
      kind: 'line',
      title: 'Core rekey: view installed → all members hold the new key (in-process, zero delay)',
      xLabel: 'core members',
      yLabel: 'ms (total CPU, one core)',
      series,
    },
  ];
}

const suite: BenchSuite = {
  name: 'core-rekey',
  description: 'distributed core-tree rekey (Rodeh) in-process: CPU time, rounds, messages, bytes',
  run,
  charts,
};
export default suite;
