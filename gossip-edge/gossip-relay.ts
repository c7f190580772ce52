/**
 * EdgeRelayMachine — the edge relay a core server runs, the core's entry into the leaves' UDP
 * gossip overlay, as a sans-IO machine: it decides what to send to whom and hands each datagram
 * to its host's `RelayOutput` (server/edge-relay-socket.ts binds the UDP socket; a test or a
 * simulation collects them). It owns no socket, timer or clock: a pull is told `now`, and the
 * end of a turn (when this turn's data envelopes become one entry) is the host's to signal.
 *
 * Per signed epoch it hands every rekey part to `fanout` + log2(m) of THIS server's m gossip
 * leaves inside the part's scope (`routeEpochParts`, relay.ts: the routing the simulation runs
 * too); those leaves relay it inside the subtree. Per
 * data envelope the core relays, it hands the envelope to `fanout` + log2(m) random gossip leaves,
 * who spread it among this server's leaves (their seeds come from this server's leaves, so each
 * server's leaves gossip among themselves). Each server does this for its own leaves, so every part
 * with a live leaf has an entry point; copies from several servers carry the same item id and are
 * suppressed as duplicates. The per-batch work is O(parts · (log n + fanout)) datagrams instead
 * of one TLS push per leaf.
 *
 * The relay only sends: it does not join the overlay (a core server in every leaf's view would
 * be the hotspot gossip exists to avoid). Its envelopes carry the sender id CORE_RELAY_PEER and a
 * MAC under the epoch the receivers are in (E − 1 for parts of E; the envelope's epoch for data),
 * from the group keys it is given after each batch. What cannot go by gossip — a datagram that
 * would exceed `maxDatagramBytes`, an epoch whose previous key the relay lacks (right after a
 * state transfer), a data sender id outside the gossip id range — is returned to the caller,
 * which pushes it over TLS.
 *
 * Seeds: a new gossip leaf gets random active and passive peers and, per subtree level, a few
 * contacts inside its subtree — all from this server's own gossip leaves, with their endpoints —
 * and where this server's data stream stands.
 *
 * Data stream: the envelopes the relay injects in one turn form one signed entry, which gets the
 * next seq of this server's stream (data-history.ts) and stays in its bounded history; a leaf that sees a gap its peers do not
 * fill pulls it (`pull`, answered over the leaf's TLS link). An envelope that goes over TLS
 * instead takes no seq: every gossip leaf got it on its link.
 */
import { UniformInts, type CipherSuite } from '../crypto/index.js';
import { DecodeError } from '../wire/index.js';
import { DataHistory, type DataHistoryOptions } from './data-history.js';
import { TokenBucket } from './request-limiter.js';
import { entryFanout, pick, routeEpochParts, type SignedEpochParts } from './relay.js';
import {
  CORE_RELAY_PEER,
  DEFAULT_GOSSIP_CONFIG,
  LIMITS,
  MAX_ENTRY_ENVELOPES,
  MAX_ORIGIN,
  MAX_STREAM_SEQ,
  MAX_PULL_ITEMS,
  MAX_PULL_REPLY_BYTES,
  MacAuthenticator,
  signedStreamItem,
  streamEntryBytes,
  dataId,
  decodeDataEnvelope,
  itemBytes,
  lowerBound,
  pushChunks,
  pushFits,
  type DataPullReply,
  type DataStream,
  type GossipConfig,
  type GossipSeed,
  type Item,
  type PeerEndpoint,
  type RandomSource,
  type StreamSigner,
} from './index.js';

export interface RelayOptions {
  /** Literal IP the host's UDP socket binds to (not read by the machine). */
  readonly host: string;
  readonly port: number;
  /** Leaves each part / data item is handed to. */
  readonly fanout: number;
  readonly maxDatagramBytes: number;
  /** Bounds of the data stream's history (defaults: 4096 entries, 16 MiB). */
  readonly history?: DataHistoryOptions;
  /** Bytes of pulled entries this server sends per second over all its leaves (default 4 MiB). */
  readonly pullBytesPerSec?: number;
  /** Sizes of the seeds (the leaves' view sizes). */
  readonly seedShape?: Pick<
    GossipConfig,
    'activeSize' | 'passiveSize' | 'levels' | 'contactsPerLevel' | 'arity'
  >;
  /**
   * Which leaves get which item and seed. Default: the CSPRNG (an observer must not predict
   * it); a seeded source only in tests that compare this routing with the simulation's.
   */
  readonly rng?: RandomSource;
}

/** Where the machine's effects go: its host's socket and event loop. */
export interface RelayOutput {
  /** Send one frame (at most maxDatagramBytes) to the UDP address `to`; false if the socket's queue is full. */
  datagram(to: string, bytes: Uint8Array): boolean;
  /**
   * Call `flushData()` once this turn's work is done (the host's next event-loop turn; before
   * any other call that could inject again belongs to a new turn). Asked once per pending entry.
   */
  flushAtTurnEnd(): void;
}

/** One gossip leaf of this server: its current slot (its gossip id) and UDP endpoint. */
export interface GossipTarget extends PeerEndpoint {
  readonly endpoint: string;
}

export interface RelayStats {
  epochs: number;
  partsRouted: number;
  /** Parts no gossip leaf of this server is under (another server's leaves are). */
  partsWithoutTarget: number;
  /** Parts / data that went over TLS instead (too large, or no key to MAC under). */
  partsFallback: number;
  /** Envelopes handed to the overlay, and the stream entries they went in. */
  dataInjected: number;
  dataEntries: number;
  dataFallback: number;
  /** Pulls of the data stream answered, the entries they carried, and replies the budget cut short. */
  dataPulls: number;
  dataPulled: number;
  dataPullsThrottled: number;
  datagrams: number;
  sendQueueFull: number;
  /** Pushes not sent because the MAC key they were formed under was retired first (the leaves pull them). */
  sendKeyRetired: number;
  seeds: number;
}

/** Which leaves the relay seeds and hands items to comes from the CSPRNG: an observer must not predict it. */
const uniform = new UniformInts();

/**
 * Older epochs the relay may MAC under when it lacks the one its receivers are in: batches
 * committed together reach the relay with only the last one's key; receivers still accept the
 * epoch before their current one for a grace period (node.ts), and a leaf behind holds it.
 */
const MAC_LOOKBACK = 2;

/** The id of a data item that takes the most bytes to encode (for sizing before the seq is known). */
const LARGEST_DATA_ID = dataId(MAX_ORIGIN, MAX_STREAM_SEQ);

/** Default server-wide budget for data-pull replies (`RelayOptions.pullBytesPerSec`). */
export const DEFAULT_PULL_BYTES_PER_SEC = 4 * 1024 * 1024;

export class EdgeRelayMachine {
  readonly stats: RelayStats = {
    epochs: 0,
    partsRouted: 0,
    partsWithoutTarget: 0,
    partsFallback: 0,
    dataInjected: 0,
    dataEntries: 0,
    dataFallback: 0,
    dataPulls: 0,
    dataPulled: 0,
    dataPullsThrottled: 0,
    datagrams: 0,
    sendQueueFull: 0,
    sendKeyRetired: 0,
    seeds: 0,
  };
  private readonly auth: MacAuthenticator;
  private epoch = -1;
  private readonly history: DataHistory;
  private readonly pullBudget: TokenBucket;
  /** This turn's envelopes, not yet an entry (injectData). */
  private pendingData:
    | { epoch: number; macEpoch: number; targets: readonly GossipTarget[]; envelopes: Uint8Array[] }
    | undefined;
  private closed = false;
  private readonly rng: RandomSource;

  /**
   * `signer` (this server's rekey-signing key) signs each data stream entry for its position.
   * Throws RangeError on options out of range.
   */
  constructor(
    suite: CipherSuite,
    private readonly opts: RelayOptions,
    private readonly signer: StreamSigner,
    private readonly output: RelayOutput,
  ) {
    if (!(Number.isInteger(opts.fanout) && opts.fanout >= 1 && opts.fanout <= 32))
      throw new RangeError('relay fanout 1..32');
    if (!(
      Number.isInteger(opts.maxDatagramBytes) &&
      opts.maxDatagramBytes >= 512 &&
      opts.maxDatagramBytes <= 65507
    ))
      throw new RangeError('relay maxDatagramBytes 512..65507');
    this.auth = new MacAuthenticator(suite);
    this.rng = opts.rng ?? uniform;
    this.history = new DataHistory(opts.history);
    const rate = opts.pullBytesPerSec ?? DEFAULT_PULL_BYTES_PER_SEC;
    if (!(rate > 0)) throw new RangeError('relay pullBytesPerSec must be > 0');
    this.pullBudget = new TokenBucket(rate, rate, 0);
  }

  /** The group key of `epoch` (after each batch, at start and after a state transfer). */
  installKey(epoch: number, groupKey: Uint8Array): void {
    this.auth.install(epoch, groupKey);
    if (epoch > this.epoch) this.epoch = epoch;
  }

  /**
   * Routes every part of a signed epoch; `targets` are this server's gossip leaves sorted by
   * their slot BEFORE the epoch (their gossip ids). Returns the ids of parts that must go over
   * TLS instead (to this server's gossip leaves under them).
   */
  routeEpoch(signed: SignedEpochParts, targets: readonly GossipTarget[]): number[] {
    const macEpoch = this.heldEpoch(signed.epoch - 1);
    const route = routeEpochParts(
      signed,
      targets.map((t) => t.id),
      this.opts.fanout,
      this.rng,
      (item) => macEpoch !== undefined && this.fits(macEpoch, item),
    );
    this.stats.epochs++;
    this.stats.partsRouted += route.routed;
    this.stats.partsWithoutTarget += route.withoutTarget;
    this.stats.partsFallback += route.fallback.length;
    if (macEpoch !== undefined)
      for (const [i, items] of route.outbox) this.send(targets[i]!, items, macEpoch);
    return route.fallback;
  }

  /**
   * Hands a sealed envelope to the gossip leaves (false: it cannot go by datagram and must go
   * over TLS instead). The envelopes of one sealing epoch injected in one event-loop turn become
   * one entry of this server's stream (MAX_ENTRY_ENVELOPES, one datagram at most): numbered,
   * signed once, kept in the history and handed to `fanout` + log2(m) random targets when the
   * turn ends (`flushData`, which the host calls when asked by `flushAtTurnEnd`).
   */
  injectData(envelope: Uint8Array, targets: readonly GossipTarget[]): boolean {
    if (targets.length === 0) return true;
    let epoch: number;
    try {
      epoch = decodeDataEnvelope(envelope).header.epoch;
    } catch (e) {
      if (!(e instanceof DecodeError)) throw e;
      this.stats.dataFallback++;
      return false;
    }
    const macEpoch = this.heldEpoch(epoch) ?? this.epoch;
    if (!this.fitsData(macEpoch, epoch, [envelope.length])) {
      this.stats.dataFallback++;
      return false;
    }
    const p = this.pendingData;
    if (
      p !== undefined &&
      (p.epoch !== epoch ||
        p.macEpoch !== macEpoch ||
        p.targets !== targets ||
        p.envelopes.length >= MAX_ENTRY_ENVELOPES ||
        !this.fitsData(macEpoch, epoch, [...p.envelopes.map((e) => e.length), envelope.length]))
    )
      this.flushData();
    if (this.pendingData === undefined) {
      this.pendingData = { epoch, macEpoch, targets, envelopes: [] };
      this.output.flushAtTurnEnd();
    }
    this.pendingData.envelopes.push(envelope);
    this.stats.dataInjected++;
    return true;
  }

  /** Numbers, signs, keeps and sends the entry of this turn's envelopes (see injectData). */
  flushData(): void {
    const p = this.pendingData;
    if (p === undefined) return;
    this.pendingData = undefined;
    if (this.closed) return;
    const { origin, next } = this.history.stream;
    const item = signedStreamItem(this.signer, origin, next, p.envelopes, p.epoch);
    this.history.append(item.payload);
    for (const i of pick(this.rng, 0, p.targets.length, entryFanout(this.opts.fanout, p.targets.length)))
      this.send(p.targets[i]!, [item], p.macEpoch);
    this.stats.dataEntries++;
  }

  /** Can an entry of envelopes of these lengths (sealed in `epoch`) travel in one datagram under `macEpoch`? */
  private fitsData(macEpoch: number, epoch: number, lengths: readonly number[]): boolean {
    const bytes = streamEntryBytes(lengths);
    const largest = { id: LARGEST_DATA_ID, epoch, scopeStart: 0, scopeEnd: 0, bytes, payload: undefined };
    return this.fitsBytes(macEpoch, itemBytes(largest));
  }

  /** This server's data stream (what a seed tells a leaf). */
  get stream(): DataStream {
    return this.history.stream;
  }

  /**
   * A leaf's pull of the data stream, answered from the history within the server-wide budget
   * (`pullBytesPerSec`, a token bucket holding at most one second's worth): a burst that gossip
   * could not carry makes many leaves pull at once, and that must not become an implosion of
   * TLS traffic at the core. A reply the budget cuts short (even to no items) says where to
   * resume; the leaf pulls again a few rounds later.
   */
  pull(origin: number, fromSeq: number, now: number): DataPullReply {
    const cap = Math.min(MAX_PULL_REPLY_BYTES, this.pullBudget.tokens(now));
    const reply = this.history.pull(origin, fromSeq, cap);
    for (const i of reply.items) this.pullBudget.spend(i.entry.length, now);
    this.stats.dataPulls++;
    this.stats.dataPulled += reply.items.length;
    // Short of the head, under the item cap, with less than a full reply's bytes: the budget cut it.
    if (reply.next < reply.head && reply.items.length < MAX_PULL_ITEMS && cap < MAX_PULL_REPLY_BYTES)
      this.stats.dataPullsThrottled++;
    return reply;
  }

  /** The newest epoch ≤ `epoch` (at most MAC_LOOKBACK older) whose key the relay holds. */
  private heldEpoch(epoch: number): number | undefined {
    for (let e = epoch; e >= 0 && e >= epoch - MAC_LOOKBACK; e--) if (this.auth.holds(e)) return e;
    return undefined;
  }

  /** Can `item` travel in a datagram (MAC'd under `macEpoch`, whose key we hold)? */
  private fits(macEpoch: number, item: Item): boolean {
    return this.fitsBytes(macEpoch, itemBytes(item));
  }

  /** Can an item of `itemSize` encoded bytes travel in a datagram under `macEpoch`? */
  private fitsBytes(macEpoch: number, itemSize: number): boolean {
    return this.auth.holds(macEpoch) && pushFits(macEpoch, itemSize, this.opts.maxDatagramBytes);
  }

  /** Eager pushes (hop 1) of `items` to `t` under `macEpoch`, as many items per datagram as fit. */
  private send(t: GossipTarget, items: readonly Item[], macEpoch: number): void {
    for (const chunk of pushChunks(items, macEpoch, LIMITS.maxPushItems, this.opts.maxDatagramBytes)) {
      const frame = this.auth.seal({
        epoch: macEpoch,
        sender: CORE_RELAY_PEER,
        body: { kind: 'push', hop: 1, items: chunk },
      });
      // `fits` saw the key when the item was formed, but a data entry waits for the end of its
      // turn and keys installed meanwhile (several batches, a state transfer's jump) can retire
      // it: the entry is in the history, and the leaves pull what gossip did not bring.
      if (frame === undefined) {
        this.stats.sendKeyRetired++;
        return;
      }
      if (this.output.datagram(t.endpoint, frame)) this.stats.datagrams++;
      else this.stats.sendQueueFull++;
    }
  }

  /** A seed for the leaf at `slot` from `targets` (sorted by slot; may include the leaf itself). */
  seedFor(slot: number, targets: readonly GossipTarget[]): GossipSeed {
    const shape = this.opts.seedShape ?? DEFAULT_GOSSIP_CONFIG;
    this.stats.seeds++;
    const slots = targets.map((t) => t.id);
    const self = lowerBound(slots, slot);
    const skip = slots[self] === slot ? self : -1;
    const entry = (i: number): PeerEndpoint => ({
      id: targets[i]!.id,
      host: targets[i]!.host,
      port: targets[i]!.port,
    });
    const active = pick(this.rng, 0, targets.length, shape.activeSize, skip).map(entry);
    const passive = pick(this.rng, 0, targets.length, shape.passiveSize, skip).map(entry);
    const contacts: PeerEndpoint[][] = [];
    for (let l = 1, span = shape.arity; l <= shape.levels; l++, span *= shape.arity) {
      const base = slot - (slot % span);
      const lo = lowerBound(slots, base);
      const hi = lowerBound(slots, base + span);
      contacts.push(pick(this.rng, lo, hi, shape.contactsPerLevel, skip).map(entry));
      if (hi - lo >= targets.length) break; // this level already spans every leaf we know
    }
    return { active, passive, contacts, stream: this.history.stream };
  }

  /** The host stops: a pending entry is not flushed (its socket is closing). */
  close(): void {
    this.closed = true;
  }
}
