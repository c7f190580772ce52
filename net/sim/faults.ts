/**
 * Random fault schedules ("VOPR-style" swarm testing), generated up front from a seeded stream.
 *
 * A plan is a time-ordered list of fault actions between `startMs` and `quietAtMs`. Faults
 * come in *episodes* (start action + end action), arriving as a Poisson process with mean gap
 * `meanGapMs`, each lasting a uniform time in [minEpisodeMs, maxEpisodeMs] and always ended by
 * `quietAtMs`: every crashed node is restarted, every paused node resumed, every partition and
 * block healed and every link reset by then. After `quietAtMs` the network is clean, so a test
 * can check liveness ("all correct servers agree on one view within T of quiet").
 *
 * Episode kinds (weights pick among them):
 *   crash      a node crashes, and restarts (new incarnation) at the episode's end
 *   pause      a node freezes (GC pause / SIGSTOP) and resumes at the end
 *   isolate    one node is cut off both ways
 *   split      a random minority (1..⌊(n−1)/2⌋ nodes) is cut from the majority
 *   groups     nodes are dealt into 2..4 random components
 *   asymmetric a random subset A can no longer send to the rest B (B → A still works)
 *   lossy      every link gets random loss, duplication, jitter and reordering up to the maxima
 *   slowLink   one directed link gets a large extra latency (a "clogged" path)
 * At most `maxDown` nodes are crashed or paused at once (default: a minority, ⌊(n−1)/2⌋), a node
 * has at most one node fault at a time, and at most one topology fault (isolate, split, groups,
 * asymmetric) and one link fault (lossy, slowLink) are active at once.
 */

import type { LinkParams } from './link.js';
import type { Rng } from './rng.js';
import type { NodeId, Simulator } from './simulator.js';

export type FaultAction =
  | {
      readonly at: number;
      readonly kind: 'crash' | 'restart' | 'pause' | 'resume' | 'isolate';
      readonly node: NodeId;
    }
  | { readonly at: number; readonly kind: 'partition'; readonly groups: readonly (readonly NodeId[])[] }
  | { readonly at: number; readonly kind: 'block'; readonly pairs: readonly (readonly [NodeId, NodeId])[] }
  | { readonly at: number; readonly kind: 'heal' | 'reset-links' }
  | { readonly at: number; readonly kind: 'default-link'; readonly params: Partial<LinkParams> }
  | {
      readonly at: number;
      readonly kind: 'link';
      readonly from: NodeId;
      readonly to: NodeId;
      readonly params: Partial<LinkParams>;
    };

export type FaultKind =
  'crash' | 'pause' | 'isolate' | 'split' | 'groups' | 'asymmetric' | 'lossy' | 'slowLink';

export interface FaultKnobs {
  readonly nodes: number;
  /** No fault starts before this (default 0). */
  readonly startMs?: number;
  /** Everything is healed by this time and nothing happens after it. */
  readonly quietAtMs: number;
  /** Mean gap between episode starts (exponential). */
  readonly meanGapMs: number;
  readonly minEpisodeMs: number;
  readonly maxEpisodeMs: number;
  /** Relative weight of each episode kind; missing or 0 = never. */
  readonly weights: Partial<Record<FaultKind, number>>;
  /** Max nodes crashed or paused at the same time (default ⌊(nodes−1)/2⌋). */
  readonly maxDown?: number;
  /** Maxima for 'lossy' episodes (defaults 0.2, 0.05, 10 ms, 0.1). */
  readonly maxLoss?: number;
  readonly maxDuplicate?: number;
  readonly maxJitterMs?: number;
  readonly maxReorder?: number;
  /** Max extra latency of a 'slowLink' episode (default 200 ms). */
  readonly maxSlowMs?: number;
}

export interface FaultPlan {
  readonly quietAtMs: number;
  /** Sorted by time; equal times keep generation order. */
  readonly actions: readonly FaultAction[];
}

/** Asymmetric cuts block |A|·|B| directed pairs; above this many nodes the plan refuses them. */
const MAX_ASYMMETRIC_NODES = 512;

const TOPOLOGY: ReadonlySet<FaultKind> = new Set(['isolate', 'split', 'groups', 'asymmetric']);
const LINK: ReadonlySet<FaultKind> = new Set(['lossy', 'slowLink']);

/** Generates a fault plan. Same rng state + same knobs → same plan. */
export function planFaults(rng: Rng, knobs: FaultKnobs): FaultPlan {
  const n = knobs.nodes;
  const start = knobs.startMs ?? 0;
  const quiet = knobs.quietAtMs;
  if (!(Number.isInteger(n) && n >= 1)) throw new RangeError(`fault plan needs nodes ≥ 1, got ${n}`);
  if (!(quiet >= start)) throw new RangeError('fault plan needs quietAtMs ≥ startMs');
  if (!(knobs.meanGapMs > 0)) throw new RangeError('fault plan needs meanGapMs > 0');
  if (!(knobs.maxEpisodeMs >= knobs.minEpisodeMs && knobs.minEpisodeMs >= 0)) {
    throw new RangeError('fault plan needs 0 ≤ minEpisodeMs ≤ maxEpisodeMs');
  }
  const kinds = (Object.entries(knobs.weights) as [FaultKind, number][]).filter(([, w]) => w > 0);
  const needsTwo = kinds.some(([k]) => k !== 'crash' && k !== 'pause' && k !== 'lossy');
  if (needsTwo && n < 2) throw new RangeError('network topology faults need at least 2 nodes');
  if ((knobs.weights.asymmetric ?? 0) > 0 && n > MAX_ASYMMETRIC_NODES) {
    throw new RangeError(`asymmetric faults are limited to ${MAX_ASYMMETRIC_NODES} nodes`);
  }
  const totalWeight = kinds.reduce((a, [, w]) => a + w, 0);
  const maxDown = knobs.maxDown ?? Math.floor((n - 1) / 2);

  const actions: FaultAction[] = [];
  const nodeBusyUntil = new Float64Array(n);
  let downEnds: number[] = [];
  let topologyBusyUntil = -Infinity;
  let linkBusyUntil = -Infinity;

  let t = start;
  while (totalWeight > 0) {
    t += rng.exp(knobs.meanGapMs);
    if (t >= quiet) break;
    const end = Math.min(quiet, t + rng.uniform(knobs.minEpisodeMs, knobs.maxEpisodeMs));
    const kind = pickWeighted(rng, kinds, totalWeight);
    if (kind === 'crash' || kind === 'pause') {
      downEnds = downEnds.filter((e) => e > t);
      if (downEnds.length >= maxDown) continue;
      const free: NodeId[] = [];
      for (let i = 0; i < n; i++) if (nodeBusyUntil[i]! <= t) free.push(i);
      if (free.length === 0) continue;
      const node = rng.pick(free);
      nodeBusyUntil[node] = end;
      downEnds.push(end);
      actions.push({ at: t, kind, node });
      actions.push({ at: end, kind: kind === 'crash' ? 'restart' : 'resume', node });
    } else if (TOPOLOGY.has(kind)) {
      if (topologyBusyUntil > t) continue;
      topologyBusyUntil = end;
      actions.push(topologyFault(rng, kind, n, t));
      actions.push({ at: end, kind: 'heal' });
    } else if (LINK.has(kind)) {
      if (linkBusyUntil > t) continue;
      linkBusyUntil = end;
      actions.push(linkFault(rng, kind, n, t, knobs));
      actions.push({ at: end, kind: 'reset-links' });
    }
  }
  // Stable sort: equal times keep generation order, so the plan is a pure function of the rng.
  const order = actions.map((a, i) => [a, i] as const);
  order.sort((x, y) => x[0].at - y[0].at || x[1] - y[1]);
  return { quietAtMs: quiet, actions: order.map(([a]) => a) };
}

function pickWeighted(rng: Rng, kinds: readonly [FaultKind, number][], total: number): FaultKind {
  let r = rng.next() * total;
  for (const [k, w] of kinds) {
    r -= w;
    if (r < 0) return k;
  }
  return kinds[kinds.length - 1]![0];
}

function randomSubset(rng: Rng, n: number, size: number): NodeId[] {
  const ids = Array.from({ length: n }, (_, i) => i);
  rng.shuffle(ids);
  return ids.slice(0, size).sort((a, b) => a - b);
}

function topologyFault(rng: Rng, kind: FaultKind, n: number, at: number): FaultAction {
  switch (kind) {
    case 'isolate':
      return { at, kind: 'isolate', node: rng.int(n) };
    case 'split': {
      const size = 1 + rng.int(Math.max(1, Math.floor((n - 1) / 2)));
      return { at, kind: 'partition', groups: [randomSubset(rng, n, size)] };
    }
    case 'groups': {
      const k = 2 + rng.int(Math.min(3, n - 1)); // 2..4 components, never more than n
      const groups: NodeId[][] = Array.from({ length: k }, () => []);
      const ids = rng.shuffle(Array.from({ length: n }, (_, i) => i));
      ids.forEach((id, i) => groups[i < k ? i : rng.int(k)]!.push(id)); // every group non-empty
      return { at, kind: 'partition', groups: groups.map((g) => g.sort((a, b) => a - b)) };
    }
    default: {
      const inA = new Uint8Array(n);
      for (const id of randomSubset(rng, n, 1 + rng.int(Math.max(1, Math.floor(n / 2))))) inA[id] = 1;
      const pairs: [NodeId, NodeId][] = [];
      for (let a = 0; a < n; a++) {
        if (inA[a] === 1) for (let b = 0; b < n; b++) if (inA[b] === 0) pairs.push([a, b]);
      }
      return { at, kind: 'block', pairs };
    }
  }
}

function linkFault(rng: Rng, kind: FaultKind, n: number, at: number, knobs: FaultKnobs): FaultAction {
  if (kind === 'lossy') {
    return {
      at,
      kind: 'default-link',
      params: {
        loss: rng.uniform(0, knobs.maxLoss ?? 0.2),
        duplicate: rng.uniform(0, knobs.maxDuplicate ?? 0.05),
        jitterMs: rng.uniform(0, knobs.maxJitterMs ?? 10),
        jitter: rng.bool() ? 'uniform' : 'exponential',
        reorder: rng.uniform(0, knobs.maxReorder ?? 0.1),
      },
    };
  }
  const from = rng.int(n);
  const to = (from + 1 + rng.int(n - 1)) % n;
  return {
    at,
    kind: 'link',
    from,
    to,
    params: { latencyMs: rng.uniform(10, Math.max(10, knobs.maxSlowMs ?? 200)) },
  };
}

/** Performs one action now. */
export function applyFault<M>(sim: Simulator<M>, a: FaultAction): void {
  switch (a.kind) {
    case 'crash':
      sim.crash(a.node);
      return;
    case 'restart':
      sim.restart(a.node);
      return;
    case 'pause':
      sim.pause(a.node);
      return;
    case 'resume':
      sim.resume(a.node);
      return;
    case 'isolate':
      sim.isolate(a.node);
      return;
    case 'partition':
      sim.partition(a.groups);
      return;
    case 'block':
      for (const [from, to] of a.pairs) sim.block(from, to);
      return;
    case 'heal':
      sim.heal();
      return;
    case 'default-link':
      sim.setDefaultLink(a.params);
      return;
    case 'link':
      sim.setLink(a.from, a.to, a.params);
      return;
    case 'reset-links':
      sim.resetLinks();
      return;
  }
}

/** Schedules every action of `plan` on `sim` (actions in the past are refused by sim.schedule). */
export function applyFaultPlan<M>(sim: Simulator<M>, plan: FaultPlan): void {
  for (const a of plan.actions) sim.schedule(a.at, () => applyFault(sim, a));
}

/** One line per action, for printing a failing seed's schedule. */
export function describeFaultPlan(plan: FaultPlan): string {
  return plan.actions
    .map((a) => {
      const { at, kind, ...rest } = a;
      return `${at.toFixed(3).padStart(12)} ${kind} ${JSON.stringify(rest)}`;
    })
    .join('\n');
}
