/**
 * The deterministic simulation kernel: a virtual clock, one event queue, a simulated
 * network and a set of nodes, all driven by one seeded PRNG tree. See index.ts for the
 * model and the guarantees; this file is the mechanism.
 *
 * Hot-path layout. Every pending event (message delivery, timer, scripted call) lives in a
 * *slot* of a pool of parallel typed arrays (kind, node, from, epoch, generation, x) plus one
 * plain array for the payload reference. The heap orders slot numbers by (time, seq). Sending
 * a message therefore allocates nothing: it takes a free slot, writes six numbers and a
 * reference, and pushes three numbers onto the heap.
 *
 * Crash without scanning. Each node has an *epoch* that increments on crash and on restart;
 * events stamp the epoch current when they were created, and a mismatch at fire time means
 * "addressed to an incarnation that no longer exists": the event is discarded in O(1).
 */

import { EventHeap } from './event-heap.js';
import { compileLink, DEFAULT_LINK } from './link.js';
import type { CompiledLink, LinkParams } from './link.js';
import { expFromU32, Rng, xoshiroNext } from './rng.js';
import { DropCause, Tracer, TraceKind } from './trace.js';

/** Dense node id, 0..nodeCount−1, in the order nodes were added. */
export type NodeId = number;
/** Opaque handle of a pending timer or scheduled call; cancelling a fired handle is a no-op. */
export type TimerHandle = number;
/** A timer callback; `arg` is the int32 tag given to setTimer (lets one function serve many timers). */
export type TimerFn = (arg: number) => void;

/** What a node's host gives the simulator: the node's reaction to the network. */
export interface NodeHandlers<M> {
  /** A message from `from` arrived. Treat `msg` as immutable: it is shared with the sender. */
  onMessage(from: NodeId, msg: M): void;
  /** This incarnation ended (crash, or restart which crashes first). Sends from here are dropped. */
  onStop?(): void;
}

/** Builds one incarnation of a node; called at addNode and again on every restart. */
export type NodeFactory<M> = (env: NodeEnv<M>) => NodeHandlers<M>;

/** What the simulator gives a node: its identity, clock, randomness, network and timers. */
export interface NodeEnv<M> {
  readonly id: NodeId;
  /** 0 at addNode, +1 at every restart. */
  readonly incarnation: number;
  /** False once this incarnation has crashed; its sends and timers are then ignored. */
  readonly alive: boolean;
  /** This incarnation's own random stream: fork of the run seed by (id, incarnation). */
  readonly rng: Rng;
  /** Current virtual time, ms. */
  now(): number;
  /** Sends `msg` to `to` through the simulated network; false only if this incarnation is dead. */
  send(to: NodeId, msg: M): boolean;
  /** Calls `fn(arg)` after `delayMs` (≥ 0) of virtual time, unless cancelled or crashed first. `arg` is an int32 (default 0). */
  setTimer(delayMs: number, fn: TimerFn, arg?: number): TimerHandle;
  /** Cancels one of this node's pending timers; true if it was pending. */
  cancelTimer(handle: TimerHandle): boolean;
  /** Adds a free-text line to the run's trace (and its hash). */
  trace(text: string): void;
}

export interface SimOptions<M> {
  /** Root seed; everything random in the run derives from it. Non-negative safe integer. */
  readonly seed: number;
  /** Default link parameters (over DEFAULT_LINK). */
  readonly link?: Partial<LinkParams>;
  /** Trace lines kept for printing (the hash always covers every event). Default 2000; 0 = hash only. */
  readonly traceRing?: number;
  /** Livelock guard: a single run()/runUntil() call throws EventLimitError past this. Default 5e7. */
  readonly maxEventsPerRun?: number;
  /** Digest of a message for the trace. Default: FNV-1a of Uint8Array bytes, a number itself, else 0. */
  readonly digest?: (msg: M) => number;
}

/** Why run()/runUntil() returned. */
export type RunStop = 'idle' | 'time' | 'stopped' | 'predicate';

export interface RunResult {
  readonly stop: RunStop;
  /** Events processed by this call. */
  readonly events: number;
  readonly now: number;
}

export interface RunOptions {
  /** Process events with time ≤ until, then set the clock to `until`. */
  readonly until?: number;
  /** Checked after every event; stop when it returns true. */
  readonly stopWhen?: () => boolean;
  /** Overrides the simulator's maxEventsPerRun for this call. */
  readonly maxEvents?: number;
}

export interface SimStats {
  /** Messages handed to the network (duplicates not counted). */
  sent: number;
  delivered: number;
  /** Extra copies created by link duplication. */
  duplicated: number;
  dropped: { loss: number; partition: number; blocked: number; crashed: number; senderDown: number };
  timersSet: number;
  timersFired: number;
  timersCancelled: number;
  /** Events popped from the queue, over the whole run (cancelled timers included). */
  events: number;
}

/** Thrown when one run call exceeds its event budget: almost always a livelock. */
export class EventLimitError extends Error {
  override readonly name = 'EventLimitError';
  constructor(
    readonly limit: number,
    readonly now: number,
  ) {
    super(`simulation exceeded ${limit} events in one run (virtual time ${now} ms): livelock?`);
  }
}

/** Node states. */
const UP = 0;
const PAUSED = 1;
const DOWN = 2;

/** Node record fields (Int32 words): 32 bytes per node. */
const ND = 8;
const N_STATUS = 0;
const N_EPOCH = 1;
const N_COMPONENT = 2;
const N_INCARNATION = 3;
const N_RNG = 4; // 4 words: xoshiro state of the node's network (send-fate) stream

/**
 * env.rng streams (8 words each: state, key) live in fixed chunks that are never reallocated,
 * so an `Rng.view` stays valid while the node table grows, and a million nodes need no
 * million typed arrays.
 */
const RNG_CHUNK_BITS = 12;
const RNG_CHUNK_NODES = 1 << RNG_CHUNK_BITS;

/** Event slot record fields (Int32 words). */
const EV = 8;
const E_KIND = 0;
const E_NODE = 1; // receiver, or timer owner, or −1
const E_FROM = 2;
const E_EPOCH = 3; // epoch of E_NODE when the event was created
const E_GEN = 4; // bumped on every free: makes stale handles harmless
const E_X = 5; // message digest, or timer arg

/** Event slot kinds. 0 = free. */
const K_FREE = 0;
const K_DELIVER = 1; // message in flight; network checks pending
const K_ADMITTED = 2; // message arrived while the receiver was paused; network checks done
const K_TIMER = 3;
const K_CALL = 4; // scripted callback (node = −1)
const K_CANCELLED = 5;

/** Slots are addressed by 24 bits in handles: at most 16.7 M pending events (a hard bound). */
const MAX_SLOTS = 16777216;
const GEN_MASK = 0x1fffffff; // 29 bits of generation: handle = gen·2^24 + slot < 2^53
/** Node ids fit 26 bits so a directed link packs into one number key (from·2^26 + to). */
const MAX_NODES = 67108864;
const TWO_32 = 4294967296;

const DEFAULT_TRACE_RING = 2000;
const DEFAULT_MAX_EVENTS = 50_000_000;
const MAX_DESCRIPTION = 240;

function fnv1a(bytes: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i]!, 0x01000193);
  return h >>> 0;
}

function defaultDigest(msg: unknown): number {
  if (msg instanceof Uint8Array) return fnv1a(msg);
  if (typeof msg === 'number') return msg >>> 0;
  return 0;
}

function describeIds(ids: readonly number[]): string {
  const s = `[${ids.join(',')}]`;
  return s.length <= MAX_DESCRIPTION ? s : `${s.slice(0, MAX_DESCRIPTION)}…(${ids.length})`;
}

/** One incarnation's view of the simulator. */
class Env<M> implements NodeEnv<M> {
  private cachedRng: Rng | undefined;

  constructor(
    private readonly sim: Simulator<M>,
    readonly id: NodeId,
    readonly incarnation: number,
    /** Epoch of the node when this incarnation began. */
    readonly epoch: number,
  ) {}

  get alive(): boolean {
    return this.sim._epochOf(this.id) === this.epoch;
  }

  get rng(): Rng {
    return (this.cachedRng ??= this.sim._nodeRng(this.id));
  }

  /** The incarnation ended and its stream's memory is about to be reused: keep a private copy. */
  detachRng(): void {
    this.cachedRng?.detach();
  }

  now(): number {
    return this.sim.now;
  }

  send(to: NodeId, msg: M): boolean {
    return this.sim._envSend(this, to, msg);
  }

  setTimer(delayMs: number, fn: TimerFn, arg = 0): TimerHandle {
    return this.sim._envTimer(this, delayMs, fn, arg);
  }

  cancelTimer(handle: TimerHandle): boolean {
    return this.sim._cancel(handle, this.id);
  }

  trace(text: string): void {
    if (this.alive) this.sim._note(this.id, text);
  }
}

export class Simulator<M = Uint8Array> {
  private clock = 0;
  private readonly root: Rng;
  private readonly nodeRoot: Rng;
  private readonly netRoot: Rng;
  private readonly userRoot: Rng;
  private readonly tracer: Tracer;
  private readonly heap = new EventHeap();
  private readonly digestOf: (msg: M) => number;
  private readonly maxEventsPerRun: number;

  // Event slot pool: slot s owns ev[s·EV .. s·EV+EV) (fields E_*) and payload[s].
  private ev = new Int32Array(0);
  private ePayload: unknown[] = [];
  private freeSlots = new Int32Array(0);
  private freeTop = 0;
  private slotCount = 0;

  // Per-node state: node i owns nd[i·ND .. i·ND+ND) (fields N_*). The same buffer viewed as
  // uint32 holds, at N_RNG, node i's network stream: it decides the fate (loss, delay,
  // duplication) of messages node i SENDS, so that fate depends only on i's own sends.
  private n = 0;
  private nd = new Int32Array(0);
  private nu = new Uint32Array(0);
  private readonly rngChunks: Uint32Array[] = [];
  private readonly scratchKey = new Uint32Array(4);
  private readonly factories: NodeFactory<M>[] = [];
  private readonly handlers: (NodeHandlers<M> | null)[] = [];
  private readonly envs: Env<M>[] = [];
  /** Events that came due while a node was paused, in due order; released on resume. */
  private readonly deferred = new Map<NodeId, number[]>();

  // Network.
  private readonly baseLink: CompiledLink;
  private defaultLink: CompiledLink;
  private readonly linkOverrides = new Map<number, CompiledLink>();
  private readonly blocks = new Set<number>();
  private componentLabels = 0;
  /** Component of nodes in no partition group (0 when healed); nodes added later join it. */
  private restComponent = 0;
  /** False while every node is in component 0: lets the hot path skip two node-table reads. */
  private partitioned = false;

  // Statistics.
  private sent = 0;
  private delivered = 0;
  private duplicated = 0;
  private readonly dropCounts = new Float64Array(6); // indexed by DropCause
  private timersSet = 0;
  private timersFired = 0;
  private timersCancelled = 0;
  private eventsProcessed = 0;

  private stopRequested = false;

  constructor(options: SimOptions<M>) {
    this.root = Rng.seeded(options.seed);
    this.nodeRoot = this.root.fork('node');
    this.netRoot = this.root.fork('net');
    this.userRoot = this.root.fork('user');
    this.tracer = new Tracer(options.traceRing ?? DEFAULT_TRACE_RING);
    this.digestOf = options.digest ?? (defaultDigest as (msg: M) => number);
    this.maxEventsPerRun = options.maxEventsPerRun ?? DEFAULT_MAX_EVENTS;
    this.baseLink = compileLink(DEFAULT_LINK, options.link);
    this.defaultLink = this.baseLink;
    this.growSlots(1024);
    this.growNodes(16);
  }

  // ─── time ────────────────────────────────────────────────────────────────────────────────

  /** Current virtual time, ms. */
  get now(): number {
    return this.clock;
  }

  /** Number of events waiting (including lazily cancelled timers). */
  get pendingEvents(): number {
    return this.heap.size;
  }

  /** Processes exactly one event; false if the queue was empty. */
  step(): boolean {
    if (this.heap.size === 0) return false;
    this.fireNext();
    return true;
  }

  /** Runs until the queue is empty, `until` is reached, `stopWhen` holds, or stop() is called. */
  run(options: RunOptions = {}): RunResult {
    const until = options.until ?? Infinity;
    if (until < this.clock) throw new RangeError(`run until ${until} is in the past (now ${this.clock})`);
    const limit = options.maxEvents ?? this.maxEventsPerRun;
    const stopWhen = options.stopWhen;
    const heap = this.heap;
    this.stopRequested = false;
    let events = 0;
    let stop: RunStop;
    for (;;) {
      if (heap.size === 0) {
        stop = 'idle';
        break;
      }
      if (heap.peekTime() > until) {
        stop = 'time';
        break;
      }
      if (events >= limit) throw new EventLimitError(limit, this.clock);
      this.fireNext();
      events++;
      if (this.stopRequested) {
        stop = 'stopped';
        break;
      }
      if (stopWhen !== undefined && stopWhen()) {
        stop = 'predicate';
        break;
      }
    }
    if (until !== Infinity && (stop === 'idle' || stop === 'time')) {
      this.clock = until;
      stop = 'time';
    }
    return { stop, events, now: this.clock };
  }

  /** Processes every event with time ≤ t, then sets the clock to t. */
  runUntil(t: number, stopWhen?: () => boolean): RunResult {
    return this.run(stopWhen === undefined ? { until: t } : { until: t, stopWhen });
  }

  /** runUntil(now + ms). */
  runFor(ms: number, stopWhen?: () => boolean): RunResult {
    return this.runUntil(this.clock + ms, stopWhen);
  }

  /** Makes the current run()/runUntil() return after the event being processed. */
  stop(): void {
    this.stopRequested = true;
  }

  /** Calls `fn` at absolute virtual time `at` (≥ now). For scripted faults and checks. */
  schedule(at: number, fn: () => void): TimerHandle {
    if (!(at >= this.clock)) throw new RangeError(`schedule at ${at} is in the past (now ${this.clock})`);
    const s = this.allocSlot(K_CALL, -1, -1, 0, 0, fn);
    this.heap.push(at, s);
    return this.handleOf(s);
  }

  /** schedule(now + ms, fn). */
  after(ms: number, fn: () => void): TimerHandle {
    return this.schedule(this.clock + ms, fn);
  }

  /** Cancels a scheduled call (or any node's timer); true if it was pending. */
  cancel(handle: TimerHandle): boolean {
    return this._cancel(handle, -1);
  }

  // ─── nodes ───────────────────────────────────────────────────────────────────────────────

  get nodeCount(): number {
    return this.n;
  }

  /** Adds a node (incarnation 0) built by `factory`; returns its id (the next dense id). */
  addNode(factory: NodeFactory<M>): NodeId {
    if (this.n >= MAX_NODES) throw new RangeError(`at most ${MAX_NODES} nodes`);
    if (this.n * ND === this.nd.length) this.growNodes(this.n * 2);
    const id = this.n++;
    this.nd[id * ND + N_COMPONENT] = this.restComponent;
    this.netRoot.forkInto(id, this.scratchKey, 0, this.nu, id * ND + N_RNG);
    this.seedNodeRng(id, 0);
    this.factories.push(factory);
    this.handlers.push(null);
    const env = new Env(this, id, 0, 0);
    this.envs.push(env);
    this.tracer.record(TraceKind.start, this.clock, id, -1, 0, 0);
    this.handlers[id] = factory(env);
    return id;
  }

  /** Adds `count` nodes with the same factory; returns the first id. */
  addNodes(count: number, factory: NodeFactory<M>): NodeId {
    const first = this.n;
    for (let i = 0; i < count; i++) this.addNode(factory);
    return first;
  }

  /** The current incarnation's handlers (null while crashed): lets a harness inspect node state. */
  handlersOf(id: NodeId): NodeHandlers<M> | null {
    this.checkId(id);
    return this.handlers[id]!;
  }

  /** The current incarnation's environment (the harness may inject through it). */
  envOf(id: NodeId): NodeEnv<M> {
    this.checkId(id);
    return this.envs[id]!;
  }

  incarnationOf(id: NodeId): number {
    this.checkId(id);
    return this.nd[id * ND + N_INCARNATION]!;
  }

  isUp(id: NodeId): boolean {
    this.checkId(id);
    return this.nd[id * ND + N_STATUS] === UP;
  }

  isPaused(id: NodeId): boolean {
    this.checkId(id);
    return this.nd[id * ND + N_STATUS] === PAUSED;
  }

  isCrashed(id: NodeId): boolean {
    this.checkId(id);
    return this.nd[id * ND + N_STATUS] === DOWN;
  }

  /**
   * Crashes a node: its incarnation ends, its pending timers and every message in flight to
   * it are lost (also events deferred by a pause). No-op (false) if it is already down.
   */
  crash(id: NodeId): boolean {
    this.checkId(id);
    if (this.nd[id * ND + N_STATUS] === DOWN) return false;
    this.nd[id * ND + N_STATUS] = DOWN;
    this.nd[id * ND + N_EPOCH]!++;
    const held = this.deferred.get(id);
    if (held !== undefined) {
      for (const s of held) this.discard(s);
      this.deferred.delete(id);
    }
    this.tracer.record(TraceKind.crash, this.clock, id, -1, this.nd[id * ND + N_INCARNATION]!, 0);
    const h = this.handlers[id]!;
    this.handlers[id] = null;
    h.onStop?.();
    return true;
  }

  /** Starts a new incarnation (crashing the current one first if it is up or paused). */
  restart(id: NodeId): void {
    this.checkId(id);
    if (this.nd[id * ND + N_STATUS] !== DOWN) this.crash(id);
    const inc = ++this.nd[id * ND + N_INCARNATION]!;
    const ep = ++this.nd[id * ND + N_EPOCH]!;
    this.envs[id]!.detachRng();
    this.seedNodeRng(id, inc);
    this.nd[id * ND + N_STATUS] = UP;
    const env = new Env(this, id, inc, ep);
    this.envs[id] = env;
    this.tracer.record(TraceKind.restart, this.clock, id, -1, inc, 0);
    this.handlers[id] = this.factories[id]!(env);
  }

  /** Freezes a node (GC pause, SIGSTOP): its timers and arriving messages wait until resume. */
  pause(id: NodeId): boolean {
    this.checkId(id);
    if (this.nd[id * ND + N_STATUS] !== UP) return false;
    this.nd[id * ND + N_STATUS] = PAUSED;
    this.tracer.record(TraceKind.pause, this.clock, id, -1, 0, 0);
    return true;
  }

  /** Unfreezes a node; everything that came due meanwhile fires now, in its original order. */
  resume(id: NodeId): boolean {
    this.checkId(id);
    if (this.nd[id * ND + N_STATUS] !== PAUSED) return false;
    this.nd[id * ND + N_STATUS] = UP;
    const held = this.deferred.get(id);
    this.deferred.delete(id);
    if (held !== undefined) for (const s of held) this.heap.push(this.clock, s);
    this.tracer.record(TraceKind.resume, this.clock, id, -1, held?.length ?? 0, 0);
    return true;
  }

  // ─── network faults ──────────────────────────────────────────────────────────────────────

  /**
   * Splits the network: each group becomes one component; nodes in no group form one more
   * component together (nodes added later join that one). Messages cross only within a
   * component. Replaces any earlier partition; asymmetric blocks are kept.
   */
  partition(groups: readonly (readonly NodeId[])[]): void {
    const rest = (this.restComponent = ++this.componentLabels);
    this.partitioned = true;
    for (let i = 0; i < this.n; i++) this.nd[i * ND + N_COMPONENT] = rest;
    const seen = new Set<NodeId>();
    for (const g of groups) {
      const label = ++this.componentLabels;
      for (const id of g) {
        this.checkId(id);
        if (seen.has(id)) throw new RangeError(`node ${id} is in two partition groups`);
        seen.add(id);
        this.nd[id * ND + N_COMPONENT] = label;
      }
    }
    this.fault(`partition ${groups.map(describeIds).join(' ')}`);
  }

  /** Cuts one node off from everyone (in both directions); other components are kept. */
  isolate(id: NodeId): void {
    this.checkId(id);
    this.nd[id * ND + N_COMPONENT] = ++this.componentLabels;
    this.partitioned = true;
    this.fault(`isolate n${id}`);
  }

  /** Blocks the directed link from → to only (to → from still works). */
  block(from: NodeId, to: NodeId): void {
    this.checkId(from);
    this.checkId(to);
    this.blocks.add(from * MAX_NODES + to);
    this.fault(`block ${from}->${to}`);
  }

  unblock(from: NodeId, to: NodeId): void {
    this.checkId(from);
    this.checkId(to);
    this.blocks.delete(from * MAX_NODES + to);
    this.fault(`unblock ${from}->${to}`);
  }

  /** Removes every partition and every block (link parameters are kept: see resetLinks). */
  heal(): void {
    this.restComponent = 0;
    this.partitioned = false;
    for (let i = 0; i < this.n; i++) this.nd[i * ND + N_COMPONENT] = 0;
    this.blocks.clear();
    this.fault('heal');
  }

  /** True if a message from → to would currently pass partitions and blocks (loss aside). */
  connected(from: NodeId, to: NodeId): boolean {
    this.checkId(from);
    this.checkId(to);
    return (
      this.nd[from * ND + N_COMPONENT] === this.nd[to * ND + N_COMPONENT] &&
      !this.blocks.has(from * MAX_NODES + to)
    );
  }

  /** Sets the parameters of every link without an override (patch over the current default). */
  setDefaultLink(patch: Partial<LinkParams>): void {
    this.defaultLink = compileLink(this.defaultLink.params, patch);
    this.fault(`default link ${JSON.stringify(patch)}`);
  }

  /** Overrides the directed link from → to (patch over the current default); null removes it. */
  setLink(from: NodeId, to: NodeId, patch: Partial<LinkParams> | null): void {
    this.checkId(from);
    this.checkId(to);
    const key = from * MAX_NODES + to;
    if (patch === null) this.linkOverrides.delete(key);
    else this.linkOverrides.set(key, compileLink(this.defaultLink.params, patch));
    this.fault(`link ${from}->${to} ${JSON.stringify(patch)}`);
  }

  /** Restores the default link given at construction and removes every per-link override. */
  resetLinks(): void {
    this.defaultLink = this.baseLink;
    this.linkOverrides.clear();
    this.fault('reset links');
  }

  /** The effective parameters of from → to. */
  linkParams(from: NodeId, to: NodeId): LinkParams {
    return (this.linkOverrides.get(from * MAX_NODES + to) ?? this.defaultLink).params;
  }

  // ─── messages ────────────────────────────────────────────────────────────────────────────

  /**
   * Puts a message on the wire as if `from` sent it, whatever `from`'s state (the harness is
   * omnipotent: this is how an adversary injects or replays). Nodes use env.send instead.
   */
  send(from: NodeId, to: NodeId, msg: M): void {
    this.checkId(from);
    this.checkId(to);
    this.transmit(from, to, msg);
  }

  // ─── randomness, trace, stats ────────────────────────────────────────────────────────────

  /** A harness stream, independent of every node and network stream. */
  forkRng(label: string | number): Rng {
    return this.userRoot.fork(label);
  }

  /** Adds a harness line to the trace. */
  note(text: string): void {
    this._note(-1, text);
  }

  /** 16 hex digits fingerprinting every event so far: equal for equal runs. */
  traceHash(): string {
    return this.tracer.hash();
  }

  /** The last trace lines (ring size set by options.traceRing), for printing on failure. */
  traceText(): string {
    return this.tracer.text();
  }

  stats(): SimStats {
    const d = this.dropCounts;
    return {
      sent: this.sent,
      delivered: this.delivered,
      duplicated: this.duplicated,
      dropped: {
        loss: d[DropCause.loss]!,
        partition: d[DropCause.partition]!,
        blocked: d[DropCause.blocked]!,
        crashed: d[DropCause.crashed]!,
        senderDown: d[DropCause.senderDown]!,
      },
      timersSet: this.timersSet,
      timersFired: this.timersFired,
      timersCancelled: this.timersCancelled,
      events: this.eventsProcessed,
    };
  }

  // ─── internal hooks for Env (not part of the API) ────────────────────────────────────────

  /** @internal */
  _epochOf(id: NodeId): number {
    return this.nd[id * ND + N_EPOCH]!;
  }

  /** @internal The current incarnation's env.rng, living in an rng chunk. */
  _nodeRng(id: NodeId): Rng {
    return Rng.view(this.rngChunks[id >> RNG_CHUNK_BITS]!, (id & (RNG_CHUNK_NODES - 1)) * 8);
  }

  /** Seeds the env.rng of (id, incarnation) in its rng chunk. */
  private seedNodeRng(id: NodeId, incarnation: number): void {
    const c = id >> RNG_CHUNK_BITS;
    while (this.rngChunks.length <= c) this.rngChunks.push(new Uint32Array(RNG_CHUNK_NODES * 8));
    const chunk = this.rngChunks[c]!;
    const o = (id & (RNG_CHUNK_NODES - 1)) * 8;
    // Label = incarnation·2^26 + id: unique per (id, incarnation), and id alone for incarnation 0.
    this.nodeRoot.forkInto(incarnation * MAX_NODES + id, chunk, o + 4, chunk, o);
  }

  /** @internal */
  _envSend(env: Env<M>, to: NodeId, msg: M): boolean {
    if (!(to >= 0 && to < this.n && Number.isInteger(to))) throw new RangeError(`no node ${to}`);
    if (this.nd[env.id * ND + N_EPOCH] !== env.epoch) {
      this.sent++;
      this.drop(env.id, to, this.digestOf(msg), DropCause.senderDown);
      return false;
    }
    this.transmit(env.id, to, msg);
    return true;
  }

  /** @internal */
  _envTimer(env: Env<M>, delayMs: number, fn: TimerFn, arg: number): TimerHandle {
    if (!(delayMs >= 0 && delayMs < Infinity))
      throw new RangeError(`timer delay must be finite and ≥ 0, got ${delayMs}`);
    if ((arg | 0) !== arg) throw new RangeError(`timer arg must be an int32, got ${arg}`);
    const ep = env.epoch;
    // A dead incarnation's timer is created already stale: it never fires, and its handle is valid.
    const s = this.allocSlot(K_TIMER, env.id, -1, ep, arg, fn);
    this.timersSet++;
    this.heap.push(this.clock + delayMs, s);
    return this.handleOf(s);
  }

  /** @internal Cancels `handle` if pending and (owner ≥ 0) owned by that node. */
  _cancel(handle: TimerHandle, owner: NodeId): boolean {
    if (!Number.isSafeInteger(handle) || handle < 0) return false;
    const s = handle % MAX_SLOTS;
    const gen = Math.floor(handle / MAX_SLOTS);
    if (s >= this.slotCount || this.ev[s * EV + E_GEN] !== gen) return false;
    const kind = this.ev[s * EV + E_KIND];
    if (kind !== K_TIMER && kind !== K_CALL) return false;
    if (owner >= 0 && this.ev[s * EV + E_NODE] !== owner) return false;
    this.ev[s * EV + E_KIND] = K_CANCELLED;
    this.ePayload[s] = undefined;
    this.timersCancelled++;
    return true;
  }

  /** @internal */
  _note(id: NodeId, text: string): void {
    this.tracer.recordText(TraceKind.note, this.clock, id, text);
  }

  // ─── mechanism ───────────────────────────────────────────────────────────────────────────

  private checkId(id: NodeId): void {
    if (!(id >= 0 && id < this.n && Number.isInteger(id))) throw new RangeError(`no node ${id}`);
  }

  private fault(text: string): void {
    this.tracer.recordText(TraceKind.fault, this.clock, -1, text);
  }

  private drop(from: NodeId, to: NodeId, digest: number, cause: DropCause): void {
    this.dropCounts[cause]!++;
    this.tracer.record(TraceKind.drop, this.clock, from, to, digest, cause);
  }

  /** The network: decide the fate of one message from → to and schedule its arrival(s). */
  private transmit(from: NodeId, to: NodeId, msg: M): void {
    const digest = this.digestOf(msg);
    this.sent++;
    this.tracer.record(TraceKind.send, this.clock, from, to, digest, 0);
    if (this.partitioned && this.nd[from * ND + N_COMPONENT] !== this.nd[to * ND + N_COMPONENT])
      return this.drop(from, to, digest, DropCause.partition);
    const key = from * MAX_NODES + to;
    if (this.blocks.size > 0 && this.blocks.has(key)) return this.drop(from, to, digest, DropCause.blocked);
    const link =
      this.linkOverrides.size > 0 ? (this.linkOverrides.get(key) ?? this.defaultLink) : this.defaultLink;
    const rs = this.nu;
    const ro = from * ND + N_RNG;
    if (xoshiroNext(rs, ro) < link.lossBelow) return this.drop(from, to, digest, DropCause.loss);
    const ep = this.nd[to * ND + N_EPOCH]!;
    this.heap.push(
      this.clock + this.delay(link, rs, ro),
      this.allocSlot(K_DELIVER, to, from, ep, digest, msg),
    );
    if (link.dupBelow > 0 && xoshiroNext(rs, ro) < link.dupBelow) {
      this.duplicated++;
      this.tracer.record(TraceKind.duplicate, this.clock, from, to, digest, 0);
      this.heap.push(
        this.clock + this.delay(link, rs, ro),
        this.allocSlot(K_DELIVER, to, from, ep, digest, msg),
      );
    }
  }

  private delay(link: CompiledLink, rs: Uint32Array, ro: number): number {
    let d = link.latencyMs;
    if (link.jitterMs > 0) {
      const u = xoshiroNext(rs, ro);
      d += link.exponential ? expFromU32(u, link.jitterMs) : (link.jitterMs * u) / TWO_32;
    }
    if (link.reorderBelow > 0 && xoshiroNext(rs, ro) < link.reorderBelow) {
      d += (link.reorderDelayMs * xoshiroNext(rs, ro)) / TWO_32;
    }
    return d;
  }

  /** Pops and handles the earliest event. */
  private fireNext(): void {
    const heap = this.heap;
    const t = heap.peekTime();
    const s = heap.pop();
    // Invariant: the queue never holds an event in the past.
    if (t < this.clock) throw new Error(`simulator invariant: event at ${t} < now ${this.clock}`);
    this.clock = t;
    this.eventsProcessed++;
    const ev = this.ev;
    const nd = this.nd;
    const e = s * EV;
    const kind = ev[e + E_KIND]!;
    const node = ev[e + E_NODE]!;
    const nb = node * ND;
    switch (kind) {
      case K_DELIVER:
      case K_ADMITTED: {
        const from = ev[e + E_FROM]!;
        const digest = ev[e + E_X]!;
        if (nd[nb + N_EPOCH] !== ev[e + E_EPOCH] || nd[nb + N_STATUS] === DOWN) {
          this.freeSlot(s);
          return this.drop(from, node, digest, DropCause.crashed);
        }
        if (kind === K_DELIVER) {
          // A link must be open both when the message leaves and when it arrives.
          if (this.partitioned && nd[from * ND + N_COMPONENT] !== nd[nb + N_COMPONENT]) {
            this.freeSlot(s);
            return this.drop(from, node, digest, DropCause.partition);
          }
          if (this.blocks.size > 0 && this.blocks.has(from * MAX_NODES + node)) {
            this.freeSlot(s);
            return this.drop(from, node, digest, DropCause.blocked);
          }
        }
        if (nd[nb + N_STATUS] === PAUSED) {
          ev[e + E_KIND] = K_ADMITTED;
          return this.defer(node, s);
        }
        const msg = this.ePayload[s] as M;
        this.freeSlot(s);
        this.delivered++;
        this.tracer.record(TraceKind.deliver, t, node, from, digest, 0);
        this.handlers[node]!.onMessage(from, msg);
        return;
      }
      case K_TIMER: {
        if (nd[nb + N_EPOCH] !== ev[e + E_EPOCH]) return this.freeSlot(s); // its incarnation is gone
        if (nd[nb + N_STATUS] === PAUSED) return this.defer(node, s);
        const fn = this.ePayload[s] as TimerFn;
        const arg = ev[e + E_X]!;
        this.freeSlot(s);
        this.timersFired++;
        this.tracer.record(TraceKind.timer, t, node, -1, arg, 0);
        fn(arg);
        return;
      }
      case K_CALL: {
        const fn = this.ePayload[s] as () => void;
        this.freeSlot(s);
        this.tracer.record(TraceKind.call, t, -1, -1, 0, 0);
        fn();
        return;
      }
      case K_CANCELLED:
        return this.freeSlot(s);
      default:
        throw new Error(`simulator invariant: slot ${s} of kind ${kind} in the queue`);
    }
  }

  private defer(node: NodeId, s: number): void {
    let held = this.deferred.get(node);
    if (held === undefined) this.deferred.set(node, (held = []));
    held.push(s);
  }

  /** Frees a slot that will never fire (deferred events of a crashing node). */
  private discard(s: number): void {
    const kind = this.ev[s * EV + E_KIND];
    if (kind === K_DELIVER || kind === K_ADMITTED) {
      this.drop(
        this.ev[s * EV + E_FROM]!,
        this.ev[s * EV + E_NODE]!,
        this.ev[s * EV + E_X]!,
        DropCause.crashed,
      );
    }
    this.freeSlot(s);
  }

  private handleOf(s: number): TimerHandle {
    return this.ev[s * EV + E_GEN]! * MAX_SLOTS + s;
  }

  private allocSlot(
    kind: number,
    node: number,
    from: number,
    epoch: number,
    x: number,
    payload: unknown,
  ): number {
    if (this.freeTop === 0) this.growSlots(this.slotCount * 2);
    const s = this.freeSlots[--this.freeTop]!;
    this.ev[s * EV + E_KIND] = kind;
    this.ev[s * EV + E_NODE] = node;
    this.ev[s * EV + E_FROM] = from;
    this.ev[s * EV + E_EPOCH] = epoch;
    this.ev[s * EV + E_X] = x;
    this.ePayload[s] = payload;
    return s;
  }

  private freeSlot(s: number): void {
    this.ev[s * EV + E_KIND] = K_FREE;
    this.ePayload[s] = undefined;
    this.ev[s * EV + E_GEN] = (this.ev[s * EV + E_GEN]! + 1) & GEN_MASK;
    this.freeSlots[this.freeTop++] = s;
  }

  private growSlots(cap: number): void {
    const old = this.slotCount;
    if (old >= MAX_SLOTS) throw new RangeError(`more than ${MAX_SLOTS} pending simulator events`);
    cap = Math.min(Math.max(cap, 1024), MAX_SLOTS);
    const ev = new Int32Array(cap * EV);
    ev.set(this.ev);
    this.ev = ev;
    for (let i = old; i < cap; i++) this.ePayload.push(undefined);
    const free = new Int32Array(cap);
    free.set(this.freeSlots.subarray(0, this.freeTop));
    // Push new slots so that the lowest numbers are handed out first (stable, readable handles).
    let top = this.freeTop;
    for (let i = cap - 1; i >= old; i--) free[top++] = i;
    this.freeSlots = free;
    this.freeTop = top;
    this.slotCount = cap;
  }

  private growNodes(cap: number): void {
    const buf = new ArrayBuffer(cap * ND * 4);
    const nd = new Int32Array(buf);
    nd.set(this.nd);
    this.nd = nd;
    this.nu = new Uint32Array(buf);
  }
}
