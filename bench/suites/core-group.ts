/**
 * `core-group` suite: the virtual-synchrony stack in-process over the deterministic simulator.
 *
 * View change latency after a crash, a join and a leave, for n = 3, 8, 16, 32, 64 (--quick: up
 * to 16): virtual ms (simulated 1 ms links; a crash includes the failure detector's timeout, a
 * join the wait for the next HELLO) and real CPU ms the whole group spent in-process from the
 * event to the last install (background heartbeats and STATUS of all n members included).
 * Medians of three runs with different seeds.
 * Ordered multicast throughput for n = 3 and 16 with 64 B and 1 KiB payloads: every member
 * keeps its send queue full; messages/s = ordered messages delivered at every member per
 * second of real CPU time (one process simulating all n members and the network).
 */
import { cpuUsage } from 'node:process';
import { GroupMember, memberKey } from '../../core-group/index.js';
import type { Delivery, GroupApp, View } from '../../core-group/index.js';
import { Simulator } from '../../net/sim/index.js';
import type { NodeEnv } from '../../net/sim/index.js';
import type { BenchContext, BenchResult, BenchSuite } from '../harness.js';
import type { Chart } from '../svg.js';

const STRIDE = 1 << 20;

/** The benchmark's application: an opaque 32-byte state and a delivery counter. */
class BenchApp {
  delivered = 0;
  private state = new Uint8Array(32);
  deliver(d: Delivery): void {
    if (d.channel === 'ordered') this.delivered++;
  }
  getState(): Uint8Array {
    return this.state;
  }
  setState(s: Uint8Array): void {
    this.state = s.slice();
  }
}

interface Cluster {
  readonly sim: Simulator<Uint8Array>;
  readonly members: (GroupMember | undefined)[];
  readonly views: (View | undefined)[];
  readonly apps: (BenchApp | undefined)[];
}

function cluster(total: number, seed: number, onTick?: (m: GroupMember, app: BenchApp) => void): Cluster {
  const sim = new Simulator<Uint8Array>({
    seed,
    link: { latencyMs: 1, jitterMs: 0.2 },
    traceRing: 0,
    maxEventsPerRun: 2e8,
  });
  const names = Array.from({ length: total }, (_, i) => `s${i}`);
  const founders = names.map((n) => memberKey(n, STRIDE));
  const members: (GroupMember | undefined)[] = new Array(total).fill(undefined);
  const views: (View | undefined)[] = new Array(total).fill(undefined);
  const apps: (BenchApp | undefined)[] = new Array(total).fill(undefined);
  const factory = (env: NodeEnv<Uint8Array>) => {
    const app = new BenchApp();
    const upcalls: GroupApp = {
      view: (v) => void (views[env.id] = v),
      deliver: (d) => app.deliver(d),
      unicast: () => {},
      block: () => {},
      unblock: () => {},
      getState: () => app.getState(),
      setState: (s) => app.setState(s),
    };
    const m = new GroupMember(
      { name: names[env.id]!, incarnation: (env.incarnation + 1) * STRIDE, founders, peers: names },
      { now: () => env.now(), send: (to, bytes) => void env.send(Number(to.slice(1)), bytes) },
      upcalls,
    );
    members[env.id] = m;
    apps[env.id] = app;
    m.start();
    const tick = (): void => {
      m.tick();
      onTick?.(m, app);
      env.setTimer(m.tickMs, tick);
    };
    env.setTimer(env.rng.int(m.tickMs), tick);
    return { onMessage: (_f: number, msg: Uint8Array) => m.receive(msg) };
  };
  for (let i = 0; i < total; i++) sim.addNode(factory);
  return { sim, members, views, apps };
}

/** All `ids` share one view whose members are exactly them (and nobody is blocked). */
function agreed(c: Cluster, ids: readonly number[]): boolean {
  const v = c.views[ids[0]!];
  if (!v || v.members.length !== ids.length) return false;
  const keys = new Set(ids.map((i) => c.members[i]!.self));
  if (v.members.some((k) => !keys.has(k))) return false;
  return ids.every((i) => {
    const w = c.views[i];
    return (
      w !== undefined && w.id.epoch === v.id.epoch && w.id.coord === v.id.coord && !c.members[i]!.blocked
    );
  });
}

/** Runs until `ids` agree; returns [virtual ms, CPU ms]. Throws if it takes over 60 s of virtual time. */
function until(c: Cluster, ids: readonly number[]): [number, number] {
  const t0 = c.sim.now;
  const cpu0 = cpuUsage();
  let done = false;
  const poll = (): void => {
    if (agreed(c, ids)) {
      done = true;
      c.sim.stop();
    } else c.sim.after(1, poll);
  };
  c.sim.after(0, poll);
  c.sim.runUntil(t0 + 60_000);
  if (!done) throw new Error(`core-group bench: no agreement among ${ids.length} within 60 s`);
  const cpu = cpuUsage(cpu0);
  return [c.sim.now - t0, (cpu.user + cpu.system) / 1000];
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

/** Each view change case is run this many times (different seeds); medians are reported. */
const TRIALS = 3;

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function viewChange(
  n: number,
  kind: 'crash' | 'join' | 'leave',
  trial: number,
): { virtualMs: number; cpuMs: number } {
  const total = kind === 'join' ? n + 1 : n;
  const c = cluster(total, 1000 + 100 * trial + n);
  if (kind === 'join') c.sim.crash(n); // the joiner boots later
  until(c, range(n));
  c.sim.runFor(500); // settle: stability, timeouts learn the links
  let ids: number[];
  if (kind === 'crash') {
    c.sim.crash(n - 1);
    ids = range(n - 1);
  } else if (kind === 'leave') {
    c.members[n - 1]!.leave();
    ids = range(n - 1);
  } else {
    c.sim.restart(n);
    ids = range(n + 1);
  }
  const [virtualMs, cpuMs] = until(c, ids);
  return { virtualMs, cpuMs };
}

function throughput(
  n: number,
  bytes: number,
  virtualMs: number,
): { msgsPerSec: number; virtualMsgsPerSec: number } {
  const payload = new Uint8Array(bytes).fill(7);
  const c = cluster(n, 2000 + n, (m) => {
    // Keep the send queue topped up: the window and the flush decide the pace.
    while (m.multicast('ordered', payload));
  });
  until(c, range(n));
  c.apps.forEach((a) => a && (a.delivered = 0));
  const cpu0 = cpuUsage();
  c.sim.runFor(virtualMs);
  const cpu = cpuUsage(cpu0);
  const cpuSec = (cpu.user + cpu.system) / 1e6;
  const delivered = Math.min(...c.apps.map((a) => a!.delivered));
  return { msgsPerSec: delivered / cpuSec, virtualMsgsPerSec: delivered / (virtualMs / 1000) };
}

const suite: BenchSuite = {
  name: 'core-group',
  description:
    'virtual-synchrony stack: view change latency (crash, join, leave) and ordered multicast throughput',
  async run(ctx: BenchContext): Promise<BenchResult[]> {
    const results: BenchResult[] = [];
    const sizes = ctx.quick ? [3, 8, 16] : [3, 8, 16, 32, 64];
    for (const kind of ['crash', 'join', 'leave'] as const) {
      for (const n of sizes) {
        const trials = Array.from({ length: TRIALS }, (_, i) => viewChange(n, kind, i));
        const r = {
          virtualMs: median(trials.map((x) => x.virtualMs)),
          cpuMs: median(trials.map((x) => x.cpuMs)),
        };
        ctx.log(
          `view change after ${kind}, n=${n}: ${r.virtualMs.toFixed(1)} virtual ms, ${r.cpuMs.toFixed(1)} CPU ms`,
        );
        results.push({
          case: `view-change.${kind}`,
          params: { n },
          metrics: { virtual_ms: r.virtualMs, cpu_ms: r.cpuMs },
        });
      }
    }
    const virtualMs = ctx.quick ? 300 : ctx.full ? 5_000 : 1_500;
    for (const n of [3, 16]) {
      for (const bytes of [64, 1024]) {
        const r = throughput(n, bytes, virtualMs);
        ctx.log(
          `ordered throughput n=${n} ${bytes} B: ${Math.round(r.msgsPerSec)} msg/s (CPU), ${Math.round(r.virtualMsgsPerSec)} msg/s virtual`,
        );
        results.push({
          case: 'ordered-throughput',
          params: { n, bytes },
          metrics: { msgs_per_sec: r.msgsPerSec, virtual_msgs_per_sec: r.virtualMsgsPerSec },
        });
      }
    }
    return results;
  },
  charts(results: readonly BenchResult[]): Chart[] {
    const line = (metric: string, title: string, yLabel: string): Chart => ({
      kind: 'line',
      title,
      xLabel: 'members (n)',
      yLabel,
      logX: true,
      series: (['crash', 'join', 'leave'] as const).map((k) => ({
        name: k,
        points: results
          .filter((r) => r.case === `view-change.${k}`)
          .map((r) => ({ x: r.params.n as number, y: r.metrics[metric]! })),
      })),
    });
    return [
      line('virtual_ms', 'View change latency (virtual time, 1 ms links)', 'virtual ms'),
      line('cpu_ms', 'View change cost (real CPU, whole group in-process)', 'CPU ms'),
      {
        kind: 'bar',
        title: 'Ordered multicast throughput (in-process, all members sending)',
        unit: 'msg/s',
        groups: results
          .filter((r) => r.case === 'ordered-throughput')
          .map((r) => ({
            label: `n=${r.params.n}, ${r.params.bytes} B`,
            bars: [{ series: 'CPU-bound rate', value: r.metrics.msgs_per_sec! }],
          })),
      },
    ];
  },
};

export default suite;
