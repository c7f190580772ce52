/**
 * The scale workload shared by the scale test and the perf script: `nodes` nodes each start
 * one token with `hops` hops to go; every receipt forwards the token to a random node with one
 * hop less. Total messages = nodes · hops. Messages are plain numbers (the hop count), the
 * way the gossip simulation passes small structured messages without serializing.
 */
import { Simulator } from '../../net/sim/index.js';
import type { LinkParams, SimStats } from '../../net/sim/index.js';

export interface Workload {
  readonly nodes: number;
  readonly hops: number;
  readonly seed: number;
  readonly link?: Partial<LinkParams>;
  readonly traceRing?: number;
}

export interface WorkloadResult {
  readonly stats: SimStats;
  readonly hash: string;
  readonly now: number;
  readonly received: number;
  readonly wallMs: number;
}

export function runWorkload(w: Workload): WorkloadResult {
  const started = performance.now();
  const sim = new Simulator<number>({
    seed: w.seed,
    link: w.link ?? { latencyMs: 5, jitterMs: 10, jitter: 'exponential' },
    traceRing: w.traceRing ?? 0,
  });
  let received = 0;
  const n = w.nodes;
  for (let i = 0; i < n; i++) {
    sim.addNode((env) => {
      const start = (hops: number): void => void env.send(env.rng.int(n), hops);
      env.setTimer(env.rng.uniform(0, 1), start, w.hops - 1);
      return {
        onMessage(_from: number, hops: number): void {
          received++;
          if (hops > 0) env.send(env.rng.int(n), hops - 1);
        },
      };
    });
  }
  sim.run();
  return {
    stats: sim.stats(),
    hash: sim.traceHash(),
    now: sim.now,
    received,
    wallMs: performance.now() - started,
  };
}
