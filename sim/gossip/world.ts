/**
 * A gossip tier on the deterministic simulator: n leaves (node ids = leaf slots 0..n−1) and one
 * simulated core server (node id n) that seeds views, injects data and rekey parts through its
 * edge relay, and answers catch-up pulls. Messages are structured envelopes (or, with
 * `wire: true`, encoded frames under the real HMAC) passed through net/sim with its faults.
 *
 * Shipped code on both ends: the core routes each signed epoch with the server's routing
 * (`routeEpochParts`, the EdgeRelay's, with the relay's default fan-out and datagram size) and
 * hands data entries to `entryFanout` leaves as the relay does, in relay pushes (sender
 * CORE_RELAY_PEER, MAC'd under the epoch the receivers are in, chunked as the relay chunks).
 * Rekey parts are real keytree parts of a signed epoch (synthetic-epoch.ts, or a real tree's),
 * data items real signed stream entries; each leaf admits items with the leaf SDK's checks
 * (`admitGossipItem`) and holds envelopes of an epoch it lacks as the UDP link does
 * (`EarlyEnvelopes`). Signatures are real Ed25519, but verified once per distinct (key,
 * message, signature) per world, not once per leaf: every leaf checks the same bytes and would
 * get the same answer (a forged or altered copy differs and is verified on its own); what this
 * does not model is a leaf's CPU for the check.
 *
 * Rounds: leaves tick on a shared round clock — `TICK_SLOTS` events per round, each ticking the
 * up leaves whose phase falls in that slot — rather than one kernel timer per leaf: at 10^6
 * leaves a timer each doubled the event heap and cost a third of all events. Phases are drawn
 * per slot at construction, so rounds stay desynchronised across leaves. A paused leaf skips
 * its ticks (a stopped process does not tick).
 *
 * The core keeps a bounded history (`CORE_HISTORY` data items of its stream, rekey splits of
 * the last `CORE_EPOCHS` epochs) and answers a leaf's catch-up pull with what it lacks.
 *
 * MAC modelling: without `wire`, tags are ModelAuthenticator tokens (a holder of the epoch key
 * passes, anyone else fails) and no bytes are hashed; the real MAC path runs with `wire`.
 *
 * Two kinds of leaf. The light path (default; the 10^6 benchmark): a bare GossipNode on the
 * world's shared store, fed by this file as the link would feed it. With `links` (implied by
 * `adversaries`), every honest leaf runs the shipped GossipLinkMachine — the leaf SDK's UDP link
 * minus its socket: datagram decoding and MACs, address claims and challenges, early envelopes,
 * its own round timer — over encoded datagrams under the real MAC, each leaf at a simulated
 * address (`simAddress`); and the core's relay is the shipped EdgeRelayMachine (routing, its
 * data stream and history, pulls under its byte budget, seeds). It costs a GossipStore, an
 * address book and a MAC key set per leaf and real HMACs, which is why the 10^6 rows keep the
 * light path. Rekey parts that come over "TLS" (the fallback, catch-up) go to the leaf
 * directly, as LeafSession takes them, not through the link.
 *
 * Adversaries (`adversaries` K, insiders.ts): K leaves hold the MAC and epoch keys but run a
 * scripted attacker instead of a link. The checkers (`attackReport`) say whether any honest leaf
 * delivered an item that is not the genuine one (it would store it and re-join on a bad part),
 * kept an insider in its views after it sent an invalid item, or reached an honest peer at an
 * insider's address; delivery figures exclude the insiders.
 */
import { constantTimeEqual, type CipherSuite } from '../../crypto/index.js';
import { formatUdpAddress, parseUdpAddress } from '../../net/index.js';
import {
  CORE_ORIGIN,
  CORE_RELAY_PEER,
  DATA_ENVELOPE_VERSION,
  DEFAULT_GOSSIP_DATAGRAM_BYTES,
  EarlyEnvelopes,
  LIMITS,
  admitGossipItem,
  decodeEnvelope,
  encodeDataEnvelope,
  encodeEnvelope,
  entryFanout,
  epochPartItem,
  EdgeRelayMachine,
  GossipCounters,
  GossipLinkMachine,
  GossipNode,
  GossipStore,
  gossipConfig,
  isRekeyId,
  MacAuthenticator,
  ModelAuthenticator,
  pick,
  pushChunks,
  pushFits,
  itemBytes,
  PROBE_NONCE_BYTES,
  rekeyEpochOf,
  rekeyPartOf,
  routeEpochParts,
  signedStreamItem,
  subtreeOf,
  type Authenticator,
  type CorePull,
  type DataPullReply,
  type GossipTarget,
  type Envelope,
  type GossipConfig,
  type GossipHost,
  type GossipLinkEffect,
  type Item,
  type ItemAdmissionHost,
  type RandomSource,
  type SignedEpochParts,
  type StreamSigner,
} from '../../gossip-edge/index.js';
import { decodeHeader, signedBytes } from '../../keytree/index.js';
import { Simulator, type NodeEnv, type Rng, type TimerHandle } from '../../net/sim/index.js';
import { DEFAULT_RELAY_FANOUT } from '../../server/index.js';
import { DecodeError } from '../../wire/index.js';
import { syntheticEpoch, type SimSigner } from './synthetic-epoch.js';
import { Insider, type InsiderStats } from './insiders.js';

type CoreMsg =
  | { readonly core: 'item'; readonly item: Item; readonly relay: boolean }
  | { readonly core: 'pull'; readonly req: CorePull; readonly origin?: number }
  | {
      readonly core: 'reply';
      readonly items: readonly Item[];
      readonly coreNext: number;
      /** With `links`: the relay's answer to the data pull (the rekey parts are in `items`). */
      readonly stream?: DataPullReply;
    }
  | { readonly core: 'reseed' };
export type SimMsg = Envelope | Uint8Array | CoreMsg;

export interface WorldOptions {
  readonly n: number;
  readonly seed: number;
  readonly loss?: number;
  readonly roundMs?: number;
  readonly latencyMs?: number;
  readonly jitterMs?: number;
  readonly config?: Partial<GossipConfig>;
  /** Encode every message and MAC it with HMAC-SHA256. */
  readonly wire?: boolean;
  /** Signs and verifies epochs and data entries (and MACs with `wire`). */
  readonly suite: CipherSuite;
  /** Plaintext bytes of a data envelope. */
  readonly dataBytes?: number;
  /** The relay's fan-out (default: the server's, DEFAULT_RELAY_FANOUT) and datagram bound. */
  readonly relayFanout?: number;
  readonly maxDatagramBytes?: number;
  /** Called when a leaf first gets a rekey part (a real-crypto run applies it to its LeafKeys). */
  readonly applyRekey?: (leaf: number, item: Item) => void;
  /** The relay's randomness (default: the world's); a test hands EdgeRelay the same seed. */
  readonly relayRng?: RandomSource;
  /** Sees every relay push as it is sent: the leaf and the push's items. */
  readonly onRelayPush?: (leaf: number, items: readonly Item[]) => void;
  /** Honest leaves run the shipped GossipLinkMachine over encoded datagrams (see the header). */
  readonly links?: boolean;
  /** Insiders among the leaves (implies `links`): see insiders.ts. */
  readonly adversaries?: number;
  /** Honest leaves each insider attacks per round (default 8). */
  readonly victimsPerRound?: number;
}

/** A leaf running the shipped link machine, and how its effects are run. */
interface LinkLeaf {
  readonly machine: GossipLinkMachine;
  run(effects: readonly GossipLinkEffect[]): void;
}

/** What the adversary checkers saw (all zero is a pass; see `attackReport`). */
export interface AttackReport {
  readonly insiders: number;
  /** Items delivered to an honest leaf that are not the genuine item of their id (would be stored). */
  readonly bogusDelivered: number;
  /** Of those, rekey parts on the leaf's own path (it would fail to apply them and re-join). */
  readonly bogusOnPath: number;
  /** Datagrams from an insider whose invalid items an honest leaf refused without dropping the insider. */
  readonly invalidNotDistrusted: number;
  /** Invalid items honest leaves refused from insiders, and distrust events that followed. */
  readonly invalidRefused: number;
  readonly distrusts: number;
  /** Honest leaves that hold an insider in their active view at the end. */
  readonly insiderInActiveViews: number;
  /**
   * Claimed peers an honest leaf held at their genuine address (seed or their own traffic) that
   * it reached elsewhere afterwards: (leaf, peer) pairs summed over the per-round checks.
   */
  readonly hijacked: number;
  /** Not a checker: at the last round, honest view entries reached elsewhere (addresses held only from hints, or none). */
  readonly misdirected: number;
  readonly insiderStats: InsiderStats;
}

/** The simulated UDP address of leaf `id` (10.x.y.z, one per leaf). */
export function simAddress(id: number): string {
  return formatUdpAddress(
    `10.${(id >>> 16) & 255}.${(id >>> 8) & 255}.${id & 255}`,
    4000 + Math.floor(id / 2 ** 24),
  );
}

/** The leaf at a simulated address (undefined: not one). */
export function simAddressId(address: string): number | undefined {
  const a = parseUdpAddress(address);
  const octets = a?.host.split('.').map(Number);
  if (a === undefined || octets?.length !== 4 || octets[0] !== 10) return undefined;
  return (a.port - 4000) * 2 ** 24 + octets[1]! * 65536 + octets[2]! * 256 + octets[3]!;
}

/** One tracked dissemination: a data item or one epoch's rekey (every leaf's own part). */
export interface Track {
  readonly label: string;
  readonly publishedAt: number;
  /** Virtual time each leaf delivered it, NaN if not (yet). */
  readonly deliveredAt: Float64Array;
  readonly bytesPerLeaf?: Float64Array;
}

export interface Delivery {
  readonly label: string;
  readonly eligible: number;
  readonly delivered: number;
  /** Rounds after publication until 99 %, 99.9 %, 99.99 %, 100 % of eligible leaves had it (Infinity: never). */
  readonly r99: number;
  readonly r999: number;
  readonly r9999: number;
  readonly r100: number;
  /** Cumulative fraction delivered by round r (index r). */
  readonly curve: readonly number[];
}

const MAX_CURVE_ROUNDS = 200;
/** Round-clock events per round (leaf phases are spread over them). */
const TICK_SLOTS = 20;
/** Data items of its own stream the simulated core keeps for catch-up pulls. */
export const CORE_HISTORY = 256;
/** Rekey epochs whose split the simulated core keeps for catch-up pulls. */
export const CORE_EPOCHS = 16;
/** Items in one catch-up reply (the rest come with the next pull). */
const MAX_REPLY_ITEMS = 64;
const GROUP = new TextEncoder().encode('gossip-sim');

export class GossipWorld {
  readonly sim: Simulator<SimMsg>;
  readonly config: GossipConfig;
  readonly store: GossipStore;
  readonly counters = new GossipCounters();
  readonly nodes: (GossipNode | undefined)[];
  /** With `links`: each honest leaf's link machine (its node is inside it). */
  readonly links: (LinkLeaf | undefined)[];
  /** 1 for the insiders (adversaries), which are leaves but not honest ones. */
  readonly adversary: Uint8Array;
  readonly insiders: Insider[] = [];
  readonly linked: boolean;
  readonly core: number;
  readonly roundMs: number;
  readonly height: number;
  readonly joinedAt: Float64Array;
  readonly evicted: Uint8Array;
  readonly tracks: Track[] = [];
  coreEpoch = 0;
  corePullsServed = 0;
  reseedsServed = 0;
  decodeErrors = 0;
  /** Parts that could not go by datagram and went to their leaves directly (the TLS push). */
  partsFallback = 0;
  /** Real Ed25519 verifications run (see the header: once per distinct signed bytes). */
  signatureChecks = 0;
  readonly signer: SimSigner;
  private readonly streamSigner: StreamSigner;
  private readonly relayFanout: number;
  private readonly maxDatagramBytes: number;
  private readonly verified = new Map<string, { key: Uint8Array; message: Uint8Array; ok: boolean }>();
  /** The admission host, pointed at the leaf being asked (single-threaded; never re-entered). */
  private readonly admission: ItemAdmissionHost;
  private admittingEpoch = 0;
  /** Per leaf, envelopes of an epoch it does not hold yet (created when first needed). */
  private readonly early = new Map<number, EarlyEnvelopes<number, Uint8Array>>();
  private readonly rng: Rng;
  private readonly relayRng: RandomSource;
  private readonly auth: Authenticator;
  private readonly macAuth: MacAuthenticator | undefined;
  private readonly dataPayload: Uint8Array;
  private readonly epochs = new Map<number, { signed: SignedEpochParts; items: Map<number, Item> }>();
  private readonly rekeyTrack = new Map<number, Track>();
  private readonly dataTrack = new Map<number, Track>();
  private readonly pendingRekeys = new Map<number, Set<number>>();
  private dataSeq = 0;
  /** Next seq of the core's own stream (dense, CORE_ORIGIN) and its bounded history. */
  private coreSeq = 0;
  private readonly coreHistory: Item[] = [];
  private readonly tickSlots: Int32Array[];
  private coreEnv!: NodeEnv<SimMsg>;
  /** With `links`: the core's relay is the shipped machine (routing, data stream, pulls, seeds, MACs). */
  private readonly relay: EdgeRelayMachine | undefined;
  private relayTargets: { readonly at: number; readonly targets: GossipTarget[] } | undefined;
  /** With `links`: the payload of every data item published (what a genuine delivery carries). */
  private readonly dataPayloads = new Map<number, Uint8Array>();
  private bogusDelivered = 0;
  private bogusOnPath = 0;
  private invalidNotDistrusted = 0;
  private invalidRefused = 0;
  private distrusts = 0;
  private hijacked = 0;
  /** At the last round's check: (honest leaf, honest peer in its views) pairs reached at another address. */
  private misdirectedNow = 0;

  constructor(readonly opts: WorldOptions) {
    const n = opts.n;
    this.roundMs = opts.roundMs ?? 100;
    this.height = Math.max(1, Math.ceil(Math.log(n) / Math.log(opts.config?.arity ?? 4) - 1e-9));
    this.config = gossipConfig({ levels: this.height, ...opts.config });
    this.store = new GossipStore(this.config, n);
    this.nodes = new Array<GossipNode | undefined>(n).fill(undefined);
    const k = opts.adversaries ?? 0;
    if (!(Number.isInteger(k) && k >= 0 && k < n)) throw new RangeError('adversaries 0..n-1');
    this.linked = opts.links === true || k > 0;
    this.links = this.linked ? new Array<LinkLeaf | undefined>(n).fill(undefined) : [];
    this.adversary = new Uint8Array(k > 0 ? n : 0);
    this.joinedAt = new Float64Array(n);
    this.evicted = new Uint8Array(n);
    this.core = n;
    this.dataPayload = new Uint8Array(opts.dataBytes ?? 256);
    this.relayFanout = opts.relayFanout ?? DEFAULT_RELAY_FANOUT;
    this.maxDatagramBytes = opts.maxDatagramBytes ?? DEFAULT_GOSSIP_DATAGRAM_BYTES;
    const suite = opts.suite;
    const seedBytes = new Uint8Array(8);
    new DataView(seedBytes.buffer).setFloat64(0, opts.seed);
    const signingSeed = suite.sha256(seedBytes);
    this.signer = { seed: signingSeed, publicKey: suite.ed25519PublicKey(signingSeed) };
    this.streamSigner = {
      publicKey: this.signer.publicKey,
      sign: (m) => suite.ed25519Sign(signingSeed, m),
    };
    this.admission = {
      suite,
      heldEpoch: () => this.admittingEpoch,
      isSigner: (key) => constantTimeEqual(key, this.signer.publicKey),
      verify: (key, message, sig) => this.verify(key, message, sig),
      verifiedHeader: (push) => {
        const header = decodeHeader(push.header);
        return this.verify(push.signer, signedBytes(header), push.signature) ? header : undefined;
      },
    };
    this.sim = new Simulator<SimMsg>({
      seed: opts.seed,
      traceRing: 0,
      link: { latencyMs: opts.latencyMs ?? 5, jitterMs: opts.jitterMs ?? 10, loss: opts.loss ?? 0 },
    });
    this.rng = this.sim.forkRng('world');
    this.relayRng = opts.relayRng ?? this.rng;
    if (opts.wire || this.linked) {
      this.macAuth = new MacAuthenticator(opts.suite, this.config.epochWindow + 2);
      this.auth = this.macAuth;
    } else {
      const model = new ModelAuthenticator(opts.seed ^ 0x5eed);
      this.auth = model as unknown as Authenticator;
    }
    if (this.linked)
      this.relay = new EdgeRelayMachine(
        suite,
        {
          host: '10.255.255.254',
          port: 4000,
          fanout: this.relayFanout,
          maxDatagramBytes: this.maxDatagramBytes,
          rng: this.relayRng,
          history: { randomInt: (k) => this.relayRng.int(k) },
          seedShape: this.config,
        },
        this.streamSigner,
        {
          datagram: (to, bytes) => {
            const leaf = simAddressId(to);
            return leaf !== undefined && leaf < n && this.coreEnv.send(leaf, bytes);
          },
          flushAtTurnEnd: () => void this.sim.after(0, () => this.relay!.flushData()),
        },
      );
    this.installEpoch(0);
    for (let placed = 0; placed < k;) {
      const i = this.rng.int(n);
      if (this.adversary[i] === 1) continue;
      this.adversary[i] = 1;
      placed++;
    }
    this.tickSlots = this.linked ? [] : this.phaseSlots(n);
    this.sim.addNodes(n, (env) =>
      this.adversary[env.id] === 1 ? this.insider(env) : this.linked ? this.linkLeaf(env) : this.leaf(env),
    );
    this.sim.addNode((env) => {
      this.coreEnv = env;
      return { onMessage: (from, msg) => this.onCore(from, msg as CoreMsg) };
    });
    this.seedAll();
    if (!this.linked)
      for (let s = 0; s < TICK_SLOTS; s++)
        this.sim.after((s * this.roundMs) / TICK_SLOTS, () => this.tickSlot(s));
    if (this.insiders.length > 0) this.sim.after(this.roundMs, () => this.checkRound());
  }

  /** Leaves grouped by the slot of the round their tick falls in (a random phase each). */
  private phaseSlots(n: number): Int32Array[] {
    const phase = new Uint8Array(n);
    const count = new Int32Array(TICK_SLOTS);
    for (let i = 0; i < n; i++) count[(phase[i] = this.rng.int(TICK_SLOTS))]!++;
    const slots = Array.from(count, (c) => new Int32Array(c));
    count.fill(0);
    for (let i = 0; i < n; i++) slots[phase[i]!]![count[phase[i]!]!++] = i;
    return slots;
  }

  private tickSlot(s: number): void {
    for (const id of this.tickSlots[s]!) {
      const node = this.nodes[id];
      if (node !== undefined && this.sim.isUp(id)) node.tick();
    }
    this.sim.after(this.roundMs, () => this.tickSlot(s));
  }

  // ─── leaves ─────────────────────────────────────────────────────────────────────────────

  private leaf(env: NodeEnv<SimMsg>): { onMessage(from: number, msg: SimMsg): void; onStop(): void } {
    const id = env.id;
    const wire = this.opts.wire === true;
    const host: GossipHost<Uint8Array> = {
      send: (to, e) => void env.send(to, wire ? encodeEnvelope(e) : e),
      deliver: (item) => this.onDeliver(id, item),
      admit: (item) => {
        this.admittingEpoch = node.epoch;
        return admitGossipItem(item, this.admission);
      },
      pullFromCore: (req) => void env.send(this.core, { core: 'pull', req }),
      reseed: () => void env.send(this.core, { core: 'reseed' }),
    };
    const node = new GossipNode(this.store, id, id, this.auth, env.rng, host, this.counters, this.coreEpoch);
    this.nodes[id] = node;
    this.joinedAt[id] = this.sim.now;
    if (env.incarnation > 0) this.seedOne(id, false, true);
    const receive = (e: Envelope): void => {
      // As the UDP link does: an envelope of an epoch we lack yet is held for when we have it.
      if (e.epoch > node.epoch) {
        let early = this.early.get(id);
        if (early === undefined) this.early.set(id, (early = new EarlyEnvelopes<number, Uint8Array>()));
        early.hold(e, 0, node.epoch);
      }
      node.receive(e);
    };
    return {
      onMessage: (_from, msg) => {
        if (msg instanceof Uint8Array) {
          let e: Envelope;
          try {
            e = decodeEnvelope(msg);
          } catch (err) {
            if (!(err instanceof DecodeError)) throw err;
            this.decodeErrors++;
            return;
          }
          receive(e);
        } else if ('core' in msg) {
          if (msg.core === 'item') node.inject(msg.item, msg.relay);
          else if (msg.core === 'reply') node.onCoreReply(msg.items, msg.coreNext);
        } else receive(msg);
      },
      onStop: () => {
        if (this.nodes[id] === node) this.nodes[id] = undefined;
        this.early.delete(id);
      },
    };
  }

  private onDeliver(leaf: number, item: Item): void {
    const now = this.sim.now;
    if (this.linked && !this.genuine(item)) {
      // The checker: an item the leaf would store that is not what its id names.
      this.bogusDelivered++;
      if (isRekeyId(item.id) && leaf >= item.scopeStart && leaf < item.scopeEnd) this.bogusOnPath++;
      return;
    }
    if (!isRekeyId(item.id)) {
      const t = this.dataTrack.get(item.id);
      if (t !== undefined && Number.isNaN(t.deliveredAt[leaf]!)) t.deliveredAt[leaf] = now;
      return;
    }
    const epoch = rekeyEpochOf(item.id);
    const t = this.rekeyTrack.get(epoch);
    if (t !== undefined && Number.isNaN(t.deliveredAt[leaf]!)) {
      t.deliveredAt[leaf] = now;
      t.bytesPerLeaf![leaf] = item.bytes;
    }
    this.opts.applyRekey?.(leaf, item);
    if (this.linked) return this.advanceLink(leaf, epoch);
    // The leaf applies rekeys in epoch order (as keytree's LeafKeys does).
    const node = this.nodes[leaf];
    if (node === undefined) return;
    let pending = this.pendingRekeys.get(leaf);
    if (pending === undefined) this.pendingRekeys.set(leaf, (pending = new Set()));
    pending.add(epoch);
    const before = node.epoch;
    while (pending.delete(node.epoch + 1)) node.setEpoch(node.epoch + 1);
    if (pending.size === 0) this.pendingRekeys.delete(leaf);
    const early = this.early.get(leaf);
    if (early !== undefined && node.epoch !== before) {
      // Not re-entrantly (we are inside the node's delivery): as the link queues a microtask.
      this.sim.after(0, () => {
        if (this.nodes[leaf] !== node) return;
        for (const { env } of early.ready(node.epoch)) node.receive(env);
        if (early.size === 0) this.early.delete(leaf);
      });
    }
  }

  /** A linked leaf got a part of `epoch`: it installs epochs in order, as the session hands keys to its link. */
  private advanceLink(leaf: number, epoch: number): void {
    const l = this.links[leaf];
    if (l === undefined) return;
    let pending = this.pendingRekeys.get(leaf);
    if (pending === undefined) this.pendingRekeys.set(leaf, (pending = new Set()));
    pending.add(epoch);
    for (let next = l.machine.epoch! + 1; pending.delete(next); next++)
      l.run(l.machine.installKey(next, this.groupKeyOf(next)));
    if (pending.size === 0) this.pendingRekeys.delete(leaf);
  }

  /** Is `item` the genuine item of its id (the relay's part, the core's data entry)? */
  private genuine(item: Item): boolean {
    let real: Item | Uint8Array | undefined;
    if (isRekeyId(item.id)) {
      const e = this.epochs.get(rekeyEpochOf(item.id));
      if (e === undefined) return false;
      const part = rekeyPartOf(item.id);
      if (part >= e.signed.split.count) return false;
      real = e.items.get(part);
      if (real === undefined) e.items.set(part, (real = epochPartItem(e.signed, part, this.config.arity)));
      if (real.epoch !== item.epoch || real.scopeStart !== item.scopeStart || real.scopeEnd !== item.scopeEnd)
        return false;
      real = real.payload;
    } else real = this.dataPayloads.get(item.id);
    return real !== undefined && item.payload instanceof Uint8Array && constantTimeEqual(real, item.payload);
  }

  /** A leaf running the shipped link machine: its effects on the simulated network and clock. */
  private linkLeaf(env: NodeEnv<SimMsg>): { onMessage(from: number, msg: SimMsg): void; onStop(): void } {
    const id = env.id;
    let timer: TimerHandle | undefined;
    const run = (effects: readonly GossipLinkEffect[]): void => {
      for (const e of effects) {
        if (e.type === 'datagram') {
          const to = simAddressId(e.to);
          if (to !== undefined && to < this.opts.n) env.send(to, e.bytes);
        } else if (e.type === 'setTimer') {
          if (timer !== undefined) env.cancelTimer(timer);
          timer = env.setTimer(e.afterMs, () => {
            timer = undefined;
            run(machine.tick());
          });
        } else env.setTimer(0, () => run(machine.replayEarly()));
      }
    };
    const machine = new GossipLinkMachine(
      this.opts.suite,
      {
        admit: (item) => {
          this.admittingEpoch = machine.epoch!;
          return admitGossipItem(item, this.admission);
        },
        deliver: (item) => this.onDeliver(id, item),
        pullFromCore: (req) =>
          void env.send(this.core, { core: 'pull', req, origin: machine.coreStream?.origin ?? 0 }),
        reseed: () => void env.send(this.core, { core: 'reseed' }),
      },
      {
        rng: env.rng,
        nonce: () => Uint8Array.from({ length: PROBE_NONCE_BYTES }, () => env.rng.int(256)),
        maxDatagramBytes: this.maxDatagramBytes,
        roundMs: this.roundMs,
        idleRoundEvery: 1, // a round every period, as the light path's leaves
        config: this.config,
        counters: this.counters,
      },
    );
    const leaf: LinkLeaf = { machine, run };
    this.links[id] = leaf;
    this.joinedAt[id] = this.sim.now;
    run(machine.start(id, this.coreEpoch, this.config.arity));
    run(machine.installKey(this.coreEpoch, this.groupKeyOf(this.coreEpoch))); // the welcome's key
    if (env.incarnation > 0) this.seedOne(id, true, true);
    const address = (from: number): string => simAddress(from);
    return {
      onMessage: (from, msg) => {
        if (msg instanceof Uint8Array) {
          if (this.adversary.length === 0 || this.adversary[from] !== 1)
            return run(machine.handleDatagram(address(from), msg));
          // From an insider: did an invalid item it sent cost it its place in our views?
          const c = machine.counters;
          const invalid = (): number =>
            c.dropped['rejected'] + c.dropped['mislabelled'] + c.dropped['far-future'];
          const [invalid0, distrusted0] = [invalid(), c.peersDistrusted];
          run(machine.handleDatagram(address(from), msg));
          const refused = invalid() - invalid0;
          const distrusted = c.peersDistrusted - distrusted0;
          this.invalidRefused += refused;
          this.distrusts += distrusted;
          if (refused > 0 && distrusted === 0) this.invalidNotDistrusted++;
          return;
        }
        if (!('core' in msg)) return; // structured envelopes are the light path's
        if (msg.core === 'item')
          this.onDeliver(id, msg.item); // a TLS push goes to the session
        else if (msg.core === 'reply') {
          // Catch-up parts go to the session; the relay's data-pull reply to the link.
          for (const item of msg.items) this.onDeliver(id, item);
          if (msg.stream !== undefined) run(machine.onDataPull(msg.stream));
        }
      },
      onStop: () => {
        if (this.links[id] === leaf) this.links[id] = undefined;
        if (timer !== undefined) env.cancelTimer(timer);
      },
    };
  }

  /** An insider: a leaf with the keys, running insiders.ts instead of a link. */
  private insider(env: NodeEnv<SimMsg>): { onMessage(from: number, msg: SimMsg): void; onStop(): void } {
    const insider = new Insider(env, {
      suite: this.opts.suite,
      roundMs: this.roundMs,
      victimsPerRound: this.opts.victimsPerRound ?? 8,
      coreEpoch: () => this.coreEpoch,
      groupKeyOf: (e) => this.groupKeyOf(e),
      partFor: (e, slot) => this.partItem(e, slot),
      nextCoreSeq: () => this.coreSeq,
      honestUp: (rng) => this.randomHonest(rng),
      viewsOf: (leaf) => this.viewsOf(leaf).filter((p) => this.adversary[p] !== 1),
      holdsGenuine: (victim, peer) => {
        const book = this.links[victim]?.machine.book;
        const source = book?.sourceOf(peer);
        return (source === 'seed' || source === 'direct') && book!.peek(peer) === simAddress(peer);
      },
    });
    this.insiders.push(insider);
    this.joinedAt[env.id] = this.sim.now;
    return { onMessage: (from, msg) => insider.onMessage(from, msg), onStop: () => insider.stop() };
  }

  /** A random honest leaf that is up (undefined after a few misses). */
  private randomHonest(rng: Rng): number | undefined {
    for (let tries = 0; tries < 16; tries++) {
      const i = rng.int(this.opts.n);
      if (this.adversary[i] !== 1 && this.links[i] !== undefined && this.sim.isUp(i)) return i;
    }
    return undefined;
  }

  /** Every peer in any view of leaf `leaf` (active, passive, contacts). */
  viewsOf(leaf: number): number[] {
    const v = this.linked ? this.links[leaf]?.machine.views : this.nodes[leaf]?.views;
    if (v === undefined) return [];
    const out = [...v.active(), ...v.passive()];
    for (let l = 1; l <= this.config.levels; l++) out.push(...v.contacts(l));
    return out;
  }

  /**
   * Every round. The checker: a peer an insider claimed while we held it at its genuine address
   * from a seed or its own traffic is still reached there (or forgotten), never at the insider's.
   * Reported, not checked: honest peers in honest views reached elsewhere — an address known
   * only from a member's hint, or not at all, is taken from traffic by design (address-book.ts).
   */
  private checkRound(): void {
    this.misdirectedNow = 0;
    for (let i = 0; i < this.opts.n; i++) {
      const l = this.links[i];
      if (l === undefined || !this.sim.isUp(i)) continue;
      for (const ins of this.insiders)
        for (const p of ins.contestedAt(i)) {
          // An evicted or crashed peer is silent: its address may be claimed as a NAT rebind is.
          if (this.evicted[p] === 1 || !this.sim.isUp(p)) continue;
          const at = l.machine.book.peek(p);
          if (at !== undefined && at !== simAddress(p)) {
            this.hijacked++;
          }
        }
      for (const p of this.viewsOf(i)) {
        const at = l.machine.book.peek(p);
        if (this.adversary[p] !== 1 && at !== undefined && at !== simAddress(p)) this.misdirectedNow++;
      }
    }
    this.sim.after(this.roundMs, () => this.checkRound());
  }

  /** The adversary checkers' figures (zeros but the stats: the defences held). */
  attackReport(): AttackReport {
    let insiderInActiveViews = 0;
    for (let i = 0; i < this.opts.n; i++) {
      const v = this.links[i]?.machine.views;
      if (v !== undefined && this.sim.isUp(i) && v.active().some((p) => this.adversary[p] === 1))
        insiderInActiveViews++;
    }
    const insiderStats: InsiderStats = { relabelled: 0, future: 0, invalid: 0, claims: 0, answers: 0 };
    for (const ins of this.insiders)
      for (const k of Object.keys(insiderStats) as (keyof InsiderStats)[]) insiderStats[k] += ins.stats[k];
    return {
      insiders: this.insiders.length,
      bogusDelivered: this.bogusDelivered,
      bogusOnPath: this.bogusOnPath,
      invalidNotDistrusted: this.invalidNotDistrusted,
      invalidRefused: this.invalidRefused,
      distrusts: this.distrusts,
      insiderInActiveViews,
      hijacked: this.hijacked,
      misdirected: this.misdirectedNow,
      insiderStats,
    };
  }

  /** Real Ed25519, once per distinct (key, message, signature): see the header. */
  private verify(key: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
    const id = Buffer.from(signature).toString('base64');
    const known = this.verified.get(id);
    if (known !== undefined && constantTimeEqual(known.key, key) && constantTimeEqual(known.message, message))
      return known.ok;
    this.signatureChecks++;
    const ok = this.opts.suite.ed25519Verify(key, message, signature);
    if (known === undefined) this.verified.set(id, { key: key.slice(), message: message.slice(), ok });
    return ok;
  }

  // ─── the simulated core ─────────────────────────────────────────────────────────────────

  private onCore(from: number, msg: CoreMsg): void {
    if (from >= this.opts.n || this.evicted[from]) return;
    if (msg.core === 'reseed') {
      this.reseedsServed++;
      this.seedOne(from, false, false); // stands for the seed reply over TLS
      return;
    }
    if (msg.core !== 'pull') return;
    const items: Item[] = [];
    const req = msg.req;
    for (let e = Math.max(1, req.fromEpoch, this.coreEpoch - CORE_EPOCHS + 1); e <= this.coreEpoch; e++) {
      const item = this.partItem(e, from);
      if (item !== undefined) items.push(item);
    }
    if (this.relay !== undefined) {
      // The relay answers the data pull from its history, within its byte budget.
      const stream = this.relay.pull(msg.origin ?? 0, Math.max(0, req.fromSeq), this.sim.now);
      this.corePullsServed++;
      this.coreEnv.send(from, { core: 'reply', items, coreNext: stream.next, stream });
      return;
    }
    // The core stream from the leaf's cursor (or only the newest item if it has none), as far
    // as the bounded history reaches; seqs older than the history are gone for good.
    const oldest = this.coreSeq - this.coreHistory.length;
    let seq = Math.max(oldest, req.fromSeq < 0 ? this.coreSeq - 1 : req.fromSeq);
    for (; seq < this.coreSeq && items.length < MAX_REPLY_ITEMS; seq++)
      items.push(this.coreHistory[seq - oldest]!);
    this.corePullsServed++;
    this.coreEnv.send(from, { core: 'reply', items, coreNext: seq });
  }

  /** The item of the part leaf `slot` (its slot before `epoch`) needs of `epoch`, as the relay forms it. */
  private partItem(epoch: number, slot: number): Item | undefined {
    const e = this.epochs.get(epoch);
    const part = e?.signed.split.partIdFor(slot);
    if (e === undefined || part === undefined) return undefined;
    let item = e.items.get(part);
    if (item === undefined) {
      item = epochPartItem(e.signed, part, this.config.arity);
      e.items.set(part, item);
    }
    return item;
  }

  private registered(): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.opts.n; i++) if (!this.evicted[i]) out.push(i);
    return out;
  }

  /** The group key of `epoch` (what a welcome or a rekey gives a member), derived from the run's seed. */
  private groupKeyOf(epoch: number): Uint8Array {
    const key = new Uint8Array(32);
    new DataView(key.buffer).setUint32(0, this.opts.seed >>> 0);
    new DataView(key.buffer).setUint32(4, epoch);
    return this.opts.suite.sha256(key);
  }

  private installEpoch(epoch: number): void {
    if (this.macAuth !== undefined) this.macAuth.install(epoch, this.groupKeyOf(epoch));
    else (this.auth as unknown as ModelAuthenticator).install(epoch);
    this.relay?.installKey(epoch, this.groupKeyOf(epoch));
  }

  /** The relay's targets: the live gossip leaves by slot, with their endpoints (kept for a round). */
  private gossipTargets(): GossipTarget[] {
    const now = this.sim.now;
    if (this.relayTargets !== undefined && now - this.relayTargets.at < this.roundMs)
      return this.relayTargets.targets;
    const targets = this.liveLeaves().map((id): GossipTarget => {
      const endpoint = simAddress(id);
      const a = parseUdpAddress(endpoint)!;
      return { id, host: a.host, port: a.port, endpoint };
    });
    this.relayTargets = { at: now, targets };
    return targets;
  }

  /**
   * The relay's first push of `items` to leaf `to`, MAC'd under `macEpoch` and cut into the
   * datagrams the relay would send (EdgeRelay.send).
   */
  private relayPush(to: number, items: readonly Item[], macEpoch: number): void {
    for (const chunk of pushChunks(items, macEpoch, LIMITS.maxPushItems, this.maxDatagramBytes)) {
      const unsigned = {
        epoch: macEpoch,
        sender: CORE_RELAY_PEER,
        body: { kind: 'push' as const, hop: 1, items: chunk },
      };
      const tag = this.auth.tag(unsigned);
      if (tag === undefined) throw new Error(`the simulated core lacks the key of epoch ${macEpoch}`);
      const env: Envelope = { ...unsigned, tag };
      this.opts.onRelayPush?.(to, chunk);
      this.coreEnv.send(to, this.macAuth !== undefined ? encodeEnvelope(env) : env);
    }
  }

  /** A data entry of `envelopes` plaintext-sized envelopes, signed for (origin, seq) as a relay signs it. */
  private dataItem(origin: number, seq: number, epoch: number, sender: number): Item {
    const envelope = encodeDataEnvelope({
      header: { version: DATA_ENVELOPE_VERSION, flags: 0, epoch, sender, seq },
      nonce: new Uint8Array(24),
      ciphertext: this.dataPayload,
      signature: undefined,
    });
    return signedStreamItem(this.streamSigner, origin, seq, [envelope], epoch);
  }

  /** The core's data source publishes one item through its edge relay. */
  publishData(label = `data#${this.coreSeq}`): Track {
    if (this.relay !== undefined) return this.relayData(label);
    const item = this.dataItem(CORE_ORIGIN, this.coreSeq++, this.coreEpoch, 1);
    this.coreHistory.push(item);
    if (this.coreHistory.length > CORE_HISTORY) this.coreHistory.shift();
    const track = this.newTrack(label);
    this.dataTrack.set(item.id, track);
    // As EdgeRelay.flushData: fan-out + log2 m of the relay's targets (its live gossip leaves).
    const targets = this.liveLeaves();
    for (const i of pick(this.relayRng, 0, targets.length, entryFanout(this.relayFanout, targets.length)))
      this.relayPush(targets[i]!, [item], this.coreEpoch);
    return track;
  }

  /** publishData through the shipped relay: one envelope, one entry of its stream, flushed at once. */
  private relayData(label: string): Track {
    const relay = this.relay!;
    const envelope = encodeDataEnvelope({
      header: {
        version: DATA_ENVELOPE_VERSION,
        flags: 0,
        epoch: this.coreEpoch,
        sender: 1,
        seq: this.coreSeq++,
      },
      nonce: new Uint8Array(24),
      ciphertext: this.dataPayload,
      signature: undefined,
    });
    const { origin, next } = relay.stream;
    if (!relay.injectData(envelope, this.gossipTargets()))
      throw new Error('the relay refused a data envelope');
    relay.flushData();
    // The genuine entry (Ed25519 signs deterministically: the bytes the relay sent), for the checker.
    const item = signedStreamItem(this.streamSigner, origin, next, [envelope], this.coreEpoch);
    this.dataPayloads.set(item.id, item.payload);
    const track = this.newTrack(label);
    this.dataTrack.set(item.id, track);
    return track;
  }

  /** A leaf originates a data item (origin = leaf + 1; signed with the core's key, standing for a server's stream). */
  leafPublish(leaf: number, label = `leaf${leaf}#${this.dataSeq}`): Track {
    const node = this.nodes[leaf];
    // A linked leaf publishes over its TLS link to its server, not into the overlay.
    if (this.linked) throw new Error('leafPublish is the light path’s (links: publish through the core)');
    if (node === undefined) throw new Error(`leaf ${leaf} is down`);
    const item = this.dataItem(1 + (leaf % 1_000_000), this.dataSeq++, node.epoch, leaf);
    const track = this.newTrack(label);
    this.dataTrack.set(item.id, track);
    node.publish(item);
    return track;
  }

  /** A batch rekey evicting `departed` leaves: a signed synthetic epoch (synthetic-epoch.ts). */
  rekey(departed: readonly number[], label?: string): Track {
    const signed = syntheticEpoch(this.opts.suite, this.signer, {
      group: GROUP,
      epoch: this.coreEpoch + 1,
      arity: this.config.arity,
      height: this.height,
      n: this.opts.n,
      departed,
      gone: (slot) => this.evicted[slot] === 1,
    });
    return this.rekeyWith(signed, departed, label);
  }

  /**
   * A batch rekey evicting `departed` leaves: the signed epoch `signed` (its epoch must be the
   * next one) routed by the relay's routing to the live leaves, sorted by their slot before it.
   */
  rekeyWith(signed: SignedEpochParts, departed: readonly number[], label?: string): Track {
    const epoch = ++this.coreEpoch;
    if (signed.epoch !== epoch) throw new RangeError(`epoch ${signed.epoch} routed as ${epoch}`);
    if (decodeHeader(signed.header).arity !== this.config.arity) throw new RangeError('arity differs');
    for (const d of departed) {
      this.evicted[d] = 1;
      this.sim.crash(d);
    }
    this.epochs.set(epoch, { signed, items: new Map() });
    this.epochs.delete(epoch - CORE_EPOCHS);
    this.installEpoch(epoch);
    const track = this.newTrack(
      label ?? `rekey e${epoch} (${departed.length} out, ${signed.split.count} parts)`,
      true,
    );
    this.rekeyTrack.set(epoch, track);
    const targets = this.liveLeaves();
    let fallback: readonly number[];
    if (this.relay !== undefined) {
      this.relayTargets = undefined; // the departed are gone
      fallback = this.relay.routeEpoch(signed, this.gossipTargets());
    } else {
      const macEpoch = epoch - 1; // the epoch the receivers are in (the relay holds its key)
      const route = routeEpochParts(signed, targets, this.relayFanout, this.relayRng, (item) =>
        pushFits(macEpoch, itemBytes(item), this.maxDatagramBytes),
      );
      for (const [i, items] of route.outbox) this.relayPush(targets[i]!, items, macEpoch);
      fallback = route.fallback;
    }
    for (const insider of this.insiders) insider.onRekey(epoch);
    // What cannot go by datagram, the server pushes over TLS to each leaf under the part.
    for (const part of fallback) {
      const { start, end } = signed.split.range(part);
      const item = this.partItem(epoch, start)!;
      this.partsFallback++;
      for (const leaf of targets)
        if (leaf >= item.scopeStart && leaf < item.scopeEnd && start < end)
          this.coreEnv.send(leaf, { core: 'item', item, relay: false });
    }
    return track;
  }

  private newTrack(label: string, rekey = false): Track {
    const deliveredAt = new Float64Array(this.opts.n).fill(NaN);
    const t: Track = rekey
      ? { label, publishedAt: this.sim.now, deliveredAt, bytesPerLeaf: new Float64Array(this.opts.n) }
      : { label, publishedAt: this.sim.now, deliveredAt };
    this.tracks.push(t);
    return t;
  }

  // ─── seeding (the core's join-time view seed) ───────────────────────────────────────────

  private seedAll(): void {
    for (let i = 0; i < this.opts.n; i++) this.seedOne(i, true, true);
  }

  /**
   * A seed from the core: at join (`join`: it also says where the core stream stands), or for a
   * cut-off leaf. `quiet`: the light path's views are set without neighbour requests.
   */
  private seedOne(i: number, quiet: boolean, join: boolean): void {
    const link = this.links[i];
    // A linked leaf is seeded by the shipped relay, from its live gossip leaves.
    if (link !== undefined) return link.run(link.machine.seed(this.relay!.seedFor(i, this.gossipTargets())));
    const node = this.nodes[i];
    if (node === undefined) return;
    const n = this.opts.n;
    const c = this.config;
    const pick = (k: number, lo: number, hi: number): number[] => {
      const out: number[] = [];
      const span = hi - lo;
      for (let tries = 0; out.length < k && tries < 4 * k && span > 1; tries++) {
        const p = lo + this.rng.int(span);
        if (p !== i && !this.evicted[p] && !out.includes(p)) out.push(p);
      }
      return out;
    };
    const contacts: number[][] = [];
    for (let l = 1; l <= c.levels; l++) {
      const span = c.arity ** l;
      const lo = subtreeOf(i, c.arity, l) * span;
      contacts.push(pick(c.contactsPerLevel, lo, Math.min(n, lo + span)));
    }
    const active = pick(c.activeSize, 0, n);
    const passive = pick(c.passiveSize, 0, n);
    if (quiet) node!.views.seedQuiet(active, passive, contacts);
    else node!.seed(active, passive, contacts);
    if (join) node!.setCoreCursor(this.coreSeq);
  }

  // ─── running and measuring ──────────────────────────────────────────────────────────────

  runRounds(rounds: number): void {
    for (let r = 0; r < rounds; r++) this.sim.runFor(this.roundMs);
  }

  /** Runs until every eligible leaf delivered `track`s, or `maxRounds` passed. */
  runUntilDelivered(tracks: readonly Track[], maxRounds: number, onRound?: (round: number) => void): number {
    for (let r = 0; r < maxRounds; r++) {
      this.sim.runFor(this.roundMs);
      onRound?.(r + 1);
      if (tracks.every((t) => this.complete(t))) return r + 1;
    }
    return maxRounds;
  }

  /** Every eligible leaf delivered `t`. */
  complete(t: Track): boolean {
    for (let i = 0; i < this.opts.n; i++)
      if (Number.isNaN(t.deliveredAt[i]!) && this.eligible(i, t)) return false;
    return true;
  }

  /** Eligible = up now, not evicted, joined before the track was published. */
  eligible(leaf: number, t: Track): boolean {
    if (this.adversary.length > 0 && this.adversary[leaf] === 1) return false;
    return this.sim.isUp(leaf) && !this.evicted[leaf] && this.joinedAt[leaf]! <= t.publishedAt;
  }

  delivery(t: Track): Delivery {
    const perRound = new Float64Array(MAX_CURVE_ROUNDS + 1);
    let eligible = 0;
    let delivered = 0;
    for (let i = 0; i < this.opts.n; i++) {
      if (!this.eligible(i, t)) continue;
      eligible++;
      const at = t.deliveredAt[i]!;
      if (Number.isNaN(at)) continue;
      delivered++;
      perRound[Math.min(MAX_CURVE_ROUNDS, Math.ceil((at - t.publishedAt) / this.roundMs))]!++;
    }
    const curve: number[] = [];
    let acc = 0;
    let last = 0;
    for (let r = 0; r <= MAX_CURVE_ROUNDS; r++) {
      acc += perRound[r]!;
      curve.push(eligible === 0 ? 1 : acc / eligible);
      if (perRound[r]! > 0) last = r;
    }
    const first = (q: number): number => {
      const need = Math.ceil(q * eligible - 1e-9);
      let a = 0;
      for (let r = 0; r <= MAX_CURVE_ROUNDS; r++) if ((a += perRound[r]!) >= need) return r;
      return Infinity;
    };
    return {
      label: t.label,
      eligible,
      delivered,
      r99: first(0.99),
      r999: first(0.999),
      r9999: first(0.9999),
      r100: delivered === eligible ? first(1) : Infinity,
      curve: curve.slice(0, last + 1),
    };
  }

  /** Overlay health over live leaves: in-degree spread of active views and reachability. */
  overlay(): { live: number; meanIn: number; sdIn: number; maxIn: number; reachable: number } {
    const n = this.opts.n;
    const indeg = new Int32Array(n);
    // Honest leaves' views (an insider runs no node).
    const active = (i: number): number[] | undefined =>
      (this.linked ? this.links[i]?.machine.views : this.nodes[i]?.views)?.active();
    let live = 0;
    for (let i = 0; i < n; i++) {
      const a = active(i);
      if (a === undefined || !this.sim.isUp(i)) continue;
      live++;
      for (const p of a) indeg[p]!++;
    }
    let sum = 0;
    let sq = 0;
    let max = 0;
    let start = -1;
    for (let i = 0; i < n; i++) {
      if (active(i) === undefined || !this.sim.isUp(i)) continue;
      if (start < 0) start = i;
      sum += indeg[i]!;
      sq += indeg[i]! * indeg[i]!;
      max = Math.max(max, indeg[i]!);
    }
    const mean = live === 0 ? 0 : sum / live;
    const seen = new Uint8Array(n);
    let reach = 0;
    if (start >= 0) {
      const queue = [start];
      seen[start] = 1;
      while (queue.length > 0) {
        const v = queue.pop()!;
        reach++;
        for (const p of active(v)!) {
          if (!seen[p] && active(p) !== undefined && this.sim.isUp(p)) {
            seen[p] = 1;
            queue.push(p);
          }
        }
      }
    }
    return {
      live,
      meanIn: mean,
      sdIn: Math.sqrt(Math.max(0, sq / Math.max(1, live) - mean * mean)),
      maxIn: max,
      reachable: live === 0 ? 1 : reach / live,
    };
  }

  /** Crashes a random `fraction` of leaves (not evicted ones). Returns their ids. */
  crashRandom(fraction: number, rng: Rng = this.rng): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.opts.n; i++) {
      if (this.sim.isUp(i) && rng.uniform(0, 1) < fraction) {
        this.sim.crash(i);
        out.push(i);
      }
    }
    return out;
  }

  liveLeaves(): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.opts.n; i++) if (this.sim.isUp(i) && !this.evicted[i]) out.push(i);
    return out;
  }
}
