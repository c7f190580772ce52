/**
 * net/sim — deterministic simulation kernel (the FoundationDB / TigerBeetle VOPR idea).
 *
 * The whole system runs in one process on a virtual clock, with every random choice drawn
 * from one seeded PRNG tree. Same seed + same code ⇒ the same run, event for event, which
 * `traceHash()` proves cheaply and `traceText()` shows when a check fails.
 *
 * ## Model
 *
 * - **Time** is a number of virtual milliseconds (`sim.now`). Nothing happens between events;
 *   events at equal times run in the order they were created.
 * - **Nodes** have dense ids 0..n−1 (`addNode` order). A node is a *factory*
 *   `(env: NodeEnv<M>) => NodeHandlers<M>`: the simulator calls it at `addNode` and again at
 *   every `restart`, so a restart builds fresh state (a new *incarnation*). The node acts only
 *   through its `env` — `send`, `setTimer`/`cancelTimer`, `now()`, `rng`, `trace` — and reacts
 *   through `onMessage(from, msg)` (and `onStop()` when its incarnation ends).
 * - **Messages** are of type `M` (default `Uint8Array`). They are passed by reference, never
 *   copied or serialized, so a gossip simulation can send small structured objects; treat
 *   them as immutable. `SimTransport` adapts a node to net/transport.ts `Transport<number>`
 *   for byte-level protocol hosts.
 * - **Network**: each directed link has LinkParams — delay = latency + jitter (uniform or
 *   exponential tail), loss, duplication, reordering; no bandwidth model. `setDefaultLink`,
 *   `setLink(from, to, …)`, `resetLinks`. A message is delivered only if its link is open
 *   (same partition component, not blocked) both when it is sent and when it arrives.
 * - **Faults**: `partition(groups)` (components; nodes in no group form one more),
 *   `isolate(id)`, `block(from, to)` (asymmetric, one direction), `unblock`, `heal()`;
 *   `crash(id)` (its pending timers and every message in flight TO it are lost; messages it
 *   already sent still arrive), `restart(id)`
 *   (new incarnation, fresh state via the factory; messages sent to the old incarnation are
 *   lost too), `pause(id)` / `resume(id)` (while paused nothing fires at the node; due timers
 *   and arriving messages wait and run at resume, in their original order).
 *   `planFaults` generates a random, seeded fault schedule that ends in a quiet period.
 * - **Randomness**: `Rng` (xoshiro128**). A node's `env.rng` is a fork of the seed by
 *   (node id, incarnation); network decisions for messages *sent by* node i use a separate
 *   per-sender stream; harness code uses `sim.forkRng(label)`. Forks depend on the seed and
 *   label only, so adding a node or drawing more numbers in one place changes no other stream.
 * - **Running**: `run()`, `runUntil(t)`, `runFor(ms)`, `step()`, `stop()`, `stopWhen`
 *   predicates; `schedule(at, fn)` / `after(ms, fn)` for scripted actions and checks. Every
 *   run call has an event budget (`maxEventsPerRun`) and throws `EventLimitError` past it.
 *
 * ## Cost
 *
 * A message costs one slot of a typed-array pool and one heap entry: no closure or object
 * per message. Timers take a function and an int32 `arg`, so one bound function can serve
 * all of a node's timers without allocating. Crash and restart are O(1) (stale events are
 * recognised by an epoch stamp when they come due). Tracing keeps a ring of the last K events
 * as numbers and formats text only on demand; with `traceRing: 0` only the hash is updated.
 *
 * ## Example
 *
 *   const sim = new Simulator<Uint8Array>({ seed: 42, link: { latencyMs: 5, jitterMs: 2 } });
 *   for (let i = 0; i < 3; i++) {
 *     sim.addNode((env) => {
 *       const tick = (): void => {
 *         env.send((env.id + 1) % 3, Uint8Array.of(env.id));
 *         env.setTimer(100, tick);
 *       };
 *       env.setTimer(env.rng.int(100), tick);
 *       return { onMessage: (from, msg) => env.trace(`got ${msg[0]} from ${from}`) };
 *     });
 *   }
 *   const plan = planFaults(sim.forkRng('faults'), {
 *     nodes: 3, quietAtMs: 5_000, meanGapMs: 200, minEpisodeMs: 50, maxEpisodeMs: 500,
 *     weights: { crash: 1, pause: 1, split: 1, asymmetric: 1, lossy: 1 },
 *   });
 *   applyFaultPlan(sim, plan);
 *   sim.runUntil(10_000);                   // faults stop at 5 s: check liveness after that
 *   if (!ok) console.log(describeFaultPlan(plan), sim.traceText());
 *   console.log(sim.traceHash(), sim.stats());
 */

export { Rng, fmix32 } from './rng.js';
export { DEFAULT_LINK } from './link.js';
export type { JitterShape, LinkParams } from './link.js';
export { DropCause, TraceKind } from './trace.js';
export { EventLimitError, Simulator } from './simulator.js';
export type {
  NodeEnv,
  NodeFactory,
  NodeHandlers,
  NodeId,
  RunOptions,
  RunResult,
  RunStop,
  SimOptions,
  SimStats,
  TimerFn,
  TimerHandle,
} from './simulator.js';
export { SIM_MAX_MESSAGE_BYTES, SimTransport } from './transport.js';
export { applyFault, applyFaultPlan, describeFaultPlan, planFaults } from './faults.js';
export type { FaultAction, FaultKind, FaultKnobs, FaultPlan } from './faults.js';
