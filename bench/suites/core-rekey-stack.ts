/**
 * `core-rekey-stack` suite: the core rekey through the real stack (GroupMember with keys on:
 * lineage round, core-tree rounds over nakack/unicast/total order, secured frames) over the
 * simulator with 1 ms links. Each row: one view change, from the first member's view install
 * to the last member's key commit, in virtual ms (the latency a client of the core sees:
 * application traffic is held for exactly this long), plus the wall-clock CPU of the whole
 * group for that interval on one core. Cases as in `core-rekey`: a member leaves, the
 * coordinator (the rekey leader) crashes, a member joins (a restarted process rejoins).
 */
import { loadSuite, type CipherSuite } from '../../crypto/index.js';
import { GroupMember, memberKey } from '../../core-group/index.js';
import { Simulator } from '../../net/sim/index.js';
import type { BenchContext, BenchResult, BenchSuite } from '../harness.js';
import type { Chart } from '../svg.js';

const SIZES = [3, 8, 16, 32];
const CASES = ['leave', 'leader-crash', 'join'] as const;
type Case = (typeof CASES)[number];

interface Group {
  readonly sim: Simulator<Uint8Array>;
  readonly members: (GroupMember | undefined)[];
  /** Per node: virtual time of its last view install and of its last key commit. */
  readonly viewAt: number[];
  readonly keyAt: number[];
}

function form(suite: CipherSuite, n: number, seed: number): Group {
  const sim = new Simulator<Uint8Array>({ seed, link: { latencyMs: 1 }, traceRing: 0 });
  const names = Array.from({ length: n }, (_, i) => `b${i}`);
  const seeds = names.map(() => suite.randomBytes(32));
  const pub = new Map(names.map((x, i) => [x, suite.ed25519PublicKey(seeds[i]!)]));
  const founders = names.map((x) => memberKey(x, 1));
  const g: Group = { sim, members: [], viewAt: [], keyAt: [] };
  for (let i = 0; i < n; i++) {
    sim.addNode((env) => {
      const m = new GroupMember(
        {
          name: names[i]!,
          incarnation: 1 + env.incarnation,
          founders,
          peers: names,
          keys: {
            suite,
            identitySeed: seeds[i]!,
            verifyKeyOf: (x) => pub.get(x),
            random: () => env.rng.next(),
          },
        },
        { now: () => env.now(), send: (to, b) => void env.send(Number(to.slice(1)), b) },
        {
          view: () => void (g.viewAt[i] = env.now()),
          key: () => void (g.keyAt[i] = env.now()),
          deliver: () => {},
          unicast: () => {},
          block: () => {},
          unblock: () => {},
          getState: () => new Uint8Array(0),
          setState: () => {},
        },
      );
      g.members[i] = m;
      m.start();
      const tick = (): void => {
        m.tick();
        env.setTimer(m.tickMs, tick);
      };
      env.setTimer(0, tick);
      return { onMessage: (_f, b) => m.receive(b) };
    });
  }
  return g;
}

/** Runs until the nodes in `alive` share one keyed view of that size; returns the virtual time. */
function settle(g: Group, alive: number[], limitMs: number): void {
  const deadline = g.sim.now + limitMs;
  const done = (): boolean => {
    const v = g.members[alive[0]!]!.view.id;
    return alive.every((i) => {
      const m = g.members[i]!;
      return m.view.members.length === alive.length && m.view.id.epoch === v.epoch && !m.blocked;
    });
  };
  while (!done()) {
    if (g.sim.now >= deadline) throw new Error('bench: the group did not settle');
    g.sim.runUntil(g.sim.now + 5);
  }
}

interface Sample {
  readonly virtualMs: number;
  readonly wallMs: number;
}

function sample(suite: CipherSuite, kind: Case, n: number, seed: number): Sample {
  const g = form(suite, n, seed);
  const all = Array.from({ length: n }, (_, i) => i);
  settle(g, all, 20_000);
  let alive = all;
  if (kind === 'join') {
    g.sim.crash(n - 1);
    alive = all.slice(0, -1);
    settle(g, alive, 20_000);
    g.sim.restart(n - 1);
    alive = all;
  } else {
    const gone = kind === 'leader-crash' ? 0 : n - 1;
    g.sim.crash(gone);
    alive = all.filter((i) => i !== gone);
  }
  const wall0 = performance.now();
  settle(g, alive, 20_000);
  const wallMs = performance.now() - wall0;
  const firstView = Math.min(...alive.map((i) => g.viewAt[i]!));
  const lastKey = Math.max(...alive.map((i) => g.keyAt[i]!));
  return { virtualMs: lastKey - firstView, wallMs };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

async function run(ctx: BenchContext): Promise<BenchResult[]> {
  const suite = await loadSuite();
  const reps = ctx.quick ? 3 : ctx.full ? 21 : 7;
  const results: BenchResult[] = [];
  ctx.log(`  ${'case'.padEnd(14)} ${'n'.padStart(3)}  view→key virtual ms (median)  wall ms (median)`);
  for (const kind of CASES) {
    for (const n of SIZES) {
      const samples = Array.from({ length: reps }, (_, i) => sample(suite, kind, n, 1 + i));
      const metrics = {
        virtualMsMedian: Number(median(samples.map((s) => s.virtualMs)).toFixed(2)),
        wallMsMedian: Number(median(samples.map((s) => s.wallMs)).toFixed(2)),
      };
      results.push({ case: kind, params: { members: n, linkMs: 1 }, metrics });
      ctx.log(
        `  ${kind.padEnd(14)} ${String(n).padStart(3)}  ${metrics.virtualMsMedian.toFixed(1).padStart(28)}  ${metrics.wallMsMedian.toFixed(1).padStart(16)}`,
      );
    }
  }
  return results;
}

function charts(results: readonly BenchResult[]): Chart[] {
  return [
    {
      kind: 'line',
      title: 'Core rekey through the stack (1 ms links): view install → every member keyed',
      xLabel: 'core members',
      yLabel: 'virtual ms',
      series: CASES.map((kind) => ({
        name: kind,
        points: results
          .filter((r) => r.case === kind)
          .map((r) => ({ x: Number(r.params.members), y: r.metrics.virtualMsMedian ?? 0 })),
      })),
    },
  ];
}

const suite: BenchSuite = {
  name: 'core-rekey-stack',
  description: 'core rekey through the real stack over 1 ms simulated links: latency and CPU per view change',
  run,
  charts,
};
export default suite;
