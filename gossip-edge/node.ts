/**
 * A sans-IO gossip node: bimodal multicast (Birman et al., TOCS 1999) over HyParView-style
 * peer sampling, with authenticated control traffic and subtree-scoped rekey parts.
 *
 * Events in: `receive(env)`, `tick()` (one gossip round; the host calls it every roundMs),
 * `publish(item)` (this node originates an item), `inject(item, relay)` (an item from the core:
 * the edge relay's push, or the answer to a catch-up pull), `setEpoch(e)` (the host applied a
 * rekey). Effects out, through the host: `send(to, envelope)`, `deliver(item)`, `pullFromCore`.
 *
 * Protocol per item: (1) eager push — on first receipt, forward to `fanout` peers chosen from
 * the active view (whole-group items) or from the peers known inside the item's subtree scope
 * (rekey parts), hop-limited; (2) anti-entropy — every round send a digest of the retained ids
 * that concern the target to one peer (alternating active view / subtree contacts); the target
 * answers with its own digest (push-pull) and each side pulls what it lacks. Items are retained
 * for `retentionRounds`; ids are remembered in a seen ring after that (duplicate suppression).
 * Work per event is bounded by the config (views, retention, `maxItemsPerReply`), and every
 * send draws on a per-round budget of MESSAGES (`maxSendsPerRound`, default fan-out + 2): two
 * stay reserved for the digest exchange. A message may carry several items
 * (`maxItemsPerPush`, `maxPushBytes`): items received together and bound for the same scope go
 * to the same peers in one message, pull answers go in one message, and an eager push over
 * budget waits in a bounded queue (`deferredPushes`) where later items for the same peer join
 * it — so a burst of items costs rounds of latency, not loss, and the throughput of the tier
 * is items per message × messages per round. A full queue drops its oldest message.
 *
 * Epochs: a node accepts traffic MAC'd under its current epoch, or under one of the previous
 * `epochWindow` epochs for `epochGraceRounds` rounds after it retired that epoch. Replies to a
 * digest or pull go out under the epoch the asker used, so a peer a few rekeys behind can
 * catch up from retained history; one that stays behind `catchupRounds` pulls from the core.
 *
 * Catch-up from the core (gossip alone leaves stragglers: a leaf whose neighbours all died, or
 * that missed an item every peer has since stopped retaining). The core's data stream has dense
 * seqs under one origin (CORE_ORIGIN in the simulation; on the real network each core server's
 * relay numbers what it injects under its own origin, named in the seed: `setCoreStream`), so
 * a leaf tracks a cursor — the next seq it lacks — and the newest seq it heard of (from items,
 * peers' digests or the core's replies). A gap that persists for
 * `catchupRounds`, a newer epoch it cannot get, or `isolationRounds` of silence makes it pull
 * from its core server (`pullFromCore`, at most once per `catchupRounds`); silence or an empty
 * active view also asks for a fresh seed (`reseed`) instead of waiting for the passive view to
 * run dry. The core answers with its bounded history (`onCoreReply`).
 */
import type { Authenticator } from './auth.js';
import type { GossipConfig } from './config.js';
import type { DropReason, GossipCounters } from './counters.js';
import { FifoDelivery } from './fifo.js';
import { farAhead, itemLabelsAgree } from './gossip-items.js';
import {
  CORE_RELAY_PEER,
  dataId,
  isRekeyId,
  originOf,
  rekeyEpochOf,
  seqOf,
  type ItemId,
  type PeerId,
} from './ids.js';
import {
  emptyPushBytes,
  itemBytes,
  pushChunkEnd,
  wireBytes,
  WHOLE_GROUP_END,
  type Envelope,
  type GossipBody,
  type Item,
} from './messages.js';
import { PeerSampling } from './peer-sampling.js';
import type { RandomSource } from './random.js';
import {
  FLAG_JOINED,
  H_BEHIND_SINCE,
  H_CORE_HEARD,
  H_CORE_NEXT,
  H_CORE_ORIGIN,
  H_EAGER_SENT,
  H_EMPTY_SINCE,
  H_EPOCH,
  H_FLAGS,
  H_GAP_SINCE,
  H_LAST_HEARD,
  H_LAST_PULL,
  H_LAST_RESEED,
  H_NEWEST_EPOCH,
  H_PROBE,
  H_RETAINED_N,
  H_ROUND,
  H_SEEN_HEAD,
  H_SENT,
  type GossipStore,
} from './store.js';

/**
 * A host's word on an item. `true`: valid. `false`: invalid — no honest node sends it (a bad
 * signature, labels that are not its content): refused, and its sender dropped from our views.
 * `'later'`: not checkable yet (an epoch whose key we lack): refused for now. `'foreign'`: signed
 * by a key we do not know, perhaps a core server newer than our welcome: refused, nobody blamed.
 */
export type AdmitVerdict = boolean | 'later' | 'foreign';

export interface GossipHost<P> {
  send(to: PeerId, env: Envelope<P>): void;
  /** First receipt of an item in scope (data in FIFO order if configured). */
  deliver(item: Item<P>): void;
  /** Validates an item before it is stored or relayed (rekey signature and binding, AEAD); default: accept. */
  admit?(item: Item<P>): AdmitVerdict;
  /**
   * Did the message being handled come from where we reach `peer`? The MAC only proves the group
   * key, and every member holds it, so a sender id alone may be another member's claim: a host
   * that knows addresses says whether blaming `peer` for the message is fair (default: yes).
   */
  fromKnownAddress?(peer: PeerId): boolean;
  /** Peers did not help: ask the core server for what we lack (answer: `onCoreReply`). */
  pullFromCore(req: CorePull): void;
  /** The node is cut off (silent, or no active peer): it needs a fresh seed from its core server. */
  reseed(): void;
}

/** A catch-up request to the core: rekey parts from `fromEpoch`, core-stream data from `fromSeq`. */
export interface CorePull {
  readonly fromEpoch: number;
  /** −1: we do not know where the core stream stands (send only what is recent). */
  readonly fromSeq: number;
  readonly why: 'behind' | 'gap' | 'cut-off';
}

/** Core-stream seqs checked per call when advancing the cursor (bounds the work per tick). */
const MAX_CURSOR_STEPS = 64;

const NO_IDS: readonly ItemId[] = Object.freeze([]);
/** Shared shuffle buffer (single-threaded and never re-entered: sends only queue). */
let scratchBuf: number[] = [];
function scratch(n: number): number[] {
  if (scratchBuf.length < n) scratchBuf = new Array<number>(n).fill(0);
  return scratchBuf;
}
/** Sends kept back from eager push for the round's digest exchange. */
const RESERVED_SENDS = 2;

/** An eager push that found the round's budget spent; later items for `to` join it. */
interface DeferredPush<P> {
  readonly to: PeerId;
  hop: number;
  readonly epoch: number;
  readonly items: Item<P>[];
  /** Encoded size of the push so far. */
  bytes: number;
}

export class GossipNode<P = Uint8Array> {
  readonly views: PeerSampling;
  private readonly c: GossipConfig;
  private readonly ints: Int32Array;
  private readonly ids: Float64Array;
  private readonly b: number;
  private readonly idBase: number;
  private readonly itemBase: number;
  private readonly fifo: FifoDelivery<P> | undefined;
  /** Oldest first; at most config.deferredPushes long (allocated on first use). */
  private deferred: DeferredPush<P>[] | undefined;

  constructor(
    private readonly store: GossipStore<P>,
    index: number,
    readonly self: PeerId,
    private readonly auth: Authenticator<P>,
    private readonly rng: RandomSource,
    private readonly host: GossipHost<P>,
    private readonly counters: GossipCounters,
    epoch = 0,
  ) {
    if (!(Number.isInteger(index) && index >= 0 && index < store.capacity))
      throw new RangeError(`bad store index ${index}`);
    this.c = store.config;
    this.ints = store.ints;
    this.ids = store.ids;
    this.b = index * store.intStride;
    this.idBase = index * store.idStride;
    this.itemBase = index * this.c.retainedItems;
    store.reset(index, self);
    this.ints[this.b + H_EPOCH] = epoch;
    this.ints[this.b + H_NEWEST_EPOCH] = epoch;
    this.views = new PeerSampling(store as GossipStore<unknown>, index, rng, (to, body) =>
      this.send(to, body),
    );
    this.fifo = this.c.fifo
      ? new FifoDelivery<P>(this.c.fifoHold, this.c.retentionRounds, (item) => this.deliverUp(item))
      : undefined;
  }

  get round(): number {
    return this.ints[this.b + H_ROUND]!;
  }

  get epoch(): number {
    return this.ints[this.b + H_EPOCH]!;
  }

  get retainedCount(): number {
    return this.ints[this.b + H_RETAINED_N]!;
  }

  /**
   * Has work for its rounds: items retained (to advertise) or pushes waiting, or it is behind a
   * newer epoch or missing core-stream items (its digests are how it catches up). A host may run
   * the rounds of a node that is not busy less often.
   */
  get busy(): boolean {
    const ints = this.ints;
    const b = this.b;
    if (ints[b + H_RETAINED_N]! > 0 || this.deferredCount > 0 || ints[b + H_BEHIND_SINCE]! >= 0) return true;
    const next = ints[b + H_CORE_NEXT]!;
    return next >= 0 && next < ints[b + H_CORE_HEARD]!;
  }

  /** Next core-stream seq this node lacks (−1: not known yet). */
  get coreCursor(): number {
    return this.ints[this.b + H_CORE_NEXT]!;
  }

  /** Origin of the core stream this node tracks. */
  get coreOrigin(): number {
    return this.ints[this.b + H_CORE_ORIGIN]!;
  }

  /**
   * The core stream to track and where it stands (a seed: at join, on a reseed, or from another
   * server after a failover). A new origin starts over at `next` (seqs of different streams do
   * not compare, and what was sent before we joined is not ours to pull); the same origin only
   * tells how far the stream has come, so a gap below it is still pulled.
   */
  setCoreStream(origin: number, next: number): void {
    const b = this.b;
    if (origin !== this.ints[b + H_CORE_ORIGIN] || this.ints[b + H_CORE_NEXT]! < 0) {
      this.ints[b + H_CORE_ORIGIN] = origin;
      this.ints[b + H_CORE_NEXT] = next;
      this.ints[b + H_CORE_HEARD] = next;
      this.ints[b + H_GAP_SINCE] = -1;
    } else if (next > this.ints[b + H_CORE_HEARD]!) this.ints[b + H_CORE_HEARD] = next;
    this.advanceCursor();
  }

  /** The core told us (seed at join, or a catch-up reply) that its stream is at `next`. */
  setCoreCursor(next: number): void {
    const b = this.b;
    if (next > this.ints[b + H_CORE_NEXT]!) this.ints[b + H_CORE_NEXT] = next;
    if (next > this.ints[b + H_CORE_HEARD]!) this.ints[b + H_CORE_HEARD] = next;
    this.advanceCursor();
  }

  /**
   * The core's answer to a pull: items (kept and delivered, not forwarded: every leaf that
   * lacks them pulls for itself) and where its stream stands. Seqs below `coreNext` that are
   * still missing fell out of the core's history too: the cursor skips them.
   */
  onCoreReply(items: readonly Item<P>[], coreNext: number, head = coreNext): void {
    this.ints[this.b + H_LAST_HEARD] = this.round;
    for (const item of items) this.accept(item);
    this.setCoreCursor(coreNext);
    // A reply capped short of the stream's head: the rest is a gap still to pull.
    const o = this.b + H_CORE_HEARD;
    if (head > this.ints[o]!) this.ints[o] = head;
  }

  /** The core's seed at join: views and subtree contacts (levels 1..). */
  seed(
    active: readonly PeerId[],
    passive: readonly PeerId[],
    contacts: readonly (readonly PeerId[])[],
  ): void {
    this.ints[this.b + H_FLAGS]! |= FLAG_JOINED;
    this.views.seed(active, passive, contacts);
  }

  /** The host applied a rekey to `epoch`: older epochs start their grace period now. */
  setEpoch(epoch: number): void {
    const cur = this.epoch;
    if (epoch <= cur) return;
    const w = this.c.epochWindow;
    const o = this.b + this.store.oRetired;
    const shift = epoch - cur;
    for (let j = w - 1; j >= 0; j--) this.ints[o + j] = j < shift ? this.round : this.ints[o + j - shift]!;
    this.ints[this.b + H_EPOCH] = epoch;
    if (this.ints[this.b + H_NEWEST_EPOCH]! <= epoch) {
      this.ints[this.b + H_NEWEST_EPOCH] = epoch;
      this.ints[this.b + H_BEHIND_SINCE] = -1;
    }
    // Rekey parts of epochs we now hold are history: keep them (peers may still catch up).
  }

  // ─── events ─────────────────────────────────────────────────────────────────────────────

  /** One gossip round. Bounded work: O(retained + views). */
  tick(): void {
    const ints = this.ints;
    const b = this.b;
    this.counters.recordRound(ints[b + H_SENT]!);
    ints[b + H_SENT] = 0;
    ints[b + H_EAGER_SENT] = 0;
    const round = ++ints[b + H_ROUND]!;
    const probe = ints[b + H_PROBE]!;
    if (probe >= 0) this.views.missed(probe);
    ints[b + H_PROBE] = -1;
    this.ageRetention(round);
    this.fifo?.tick(round);
    this.sendDeferred();
    this.catchUp(round);
    this.views.tick(round);
    const target = (round & 1) === 1 ? this.views.randomContact() : -1;
    const to = target >= 0 ? target : this.views.randomActive();
    const asks = round % this.c.probeEveryRounds === 0;
    const digest = {
      kind: 'digest' as const,
      reply: false,
      probe: asks,
      epoch: this.epoch,
      ids: this.idsFor(to, NO_IDS),
    };
    if (to >= 0 && this.send(to, digest) && asks) ints[b + H_PROBE] = to;
  }

  /** Decides, once per round, whether to pull from the core and whether to ask for a new seed. */
  private catchUp(round: number): void {
    const ints = this.ints;
    const b = this.b;
    const c = this.c;
    if (this.views.activeCount > 0) ints[b + H_EMPTY_SINCE] = -1;
    else if (ints[b + H_EMPTY_SINCE]! < 0) ints[b + H_EMPTY_SINCE] = round;
    const silent = round - ints[b + H_LAST_HEARD]! >= c.isolationRounds;
    const empty = ints[b + H_EMPTY_SINCE]! >= 0 && round - ints[b + H_EMPTY_SINCE]! >= c.isolationRounds;
    this.advanceCursor();
    const next = ints[b + H_CORE_NEXT]!;
    const gap = next >= 0 && next < ints[b + H_CORE_HEARD]!;
    if (!gap) ints[b + H_GAP_SINCE] = -1;
    else if (ints[b + H_GAP_SINCE]! < 0) ints[b + H_GAP_SINCE] = round;
    const behind = ints[b + H_BEHIND_SINCE]!;
    let why: CorePull['why'] | undefined;
    if ((silent || empty) && round - ints[b + H_LAST_RESEED]! >= c.isolationRounds) {
      // Cut off: a fresh seed, and a pull in the same breath — once the seed reconnects us we
      // are no longer silent, yet what we missed may be gone from every peer's retention.
      ints[b + H_LAST_RESEED] = round;
      this.counters.reseeds++;
      this.host.reseed();
      why = 'cut-off';
    } else if (round - ints[b + H_LAST_PULL]! < c.catchupRounds) return;
    else if (behind >= 0 && round - behind >= c.catchupRounds) why = 'behind';
    else if (gap && round - ints[b + H_GAP_SINCE]! >= c.catchupRounds) why = 'gap';
    if (why === undefined) return;
    ints[b + H_LAST_PULL] = round;
    this.counters.pullsFromCore++;
    this.host.pullFromCore({ fromEpoch: this.epoch + 1, fromSeq: next, why });
  }

  /** Moves the core-stream cursor past seqs we have (bounded steps per call). */
  private advanceCursor(): void {
    const o = this.b + H_CORE_NEXT;
    let next = this.ints[o]!;
    if (next < 0) return;
    const heard = this.ints[this.b + H_CORE_HEARD]!;
    const origin = this.ints[this.b + H_CORE_ORIGIN]!;
    for (let k = 0; k < MAX_CURSOR_STEPS && next < heard && this.seen(dataId(origin, next)); k++) next++;
    this.ints[o] = next;
  }

  /** A core-stream id was seen or advertised: the stream is at least that far. */
  private noteCoreId(id: ItemId): boolean {
    if (isRekeyId(id) || originOf(id) !== this.ints[this.b + H_CORE_ORIGIN]) return false;
    const o = this.b + H_CORE_HEARD;
    const s = seqOf(id);
    if (s >= this.ints[o]!) this.ints[o] = s + 1;
    return true;
  }

  receive(env: Envelope<P>): void {
    this.counters.received++;
    const why = this.refusal(env);
    if (why !== undefined) {
      this.counters.dropped[why]++;
      if (why === 'unknown-epoch' && env.epoch > this.epoch) this.noteNewerEpoch(env.epoch);
      return;
    }
    const from = env.sender;
    this.ints[this.b + H_LAST_HEARD] = this.round;
    this.views.heard(from);
    if (this.ints[this.b + H_PROBE] === from) this.ints[this.b + H_PROBE] = -1;
    this.views.noteSender(from);
    const body = env.body;
    switch (body.kind) {
      case 'push':
        return this.onPush(body.items, body.hop, from);
      case 'digest':
        return this.onDigest(from, env.epoch, body, body.ids);
      case 'pull':
        return this.onPull(from, env.epoch, body.ids);
      case 'neighbor':
        return this.views.onNeighbor(from, body.high);
      case 'neighborReply':
        return this.views.onNeighborReply(from, body.accept);
      case 'disconnect':
        return this.views.onDisconnect(from);
      case 'shuffle':
        return this.views.onShuffle(from, body.peers);
      case 'shuffleReply':
        return this.views.onShuffleReply(body.peers);
    }
  }

  /** This node originates `item`: deliver locally, retain, eager-push. */
  publish(item: Item<P>): void {
    if (this.seen(item.id)) throw new RangeError(`item ${item.id} already known`);
    this.retain(item);
    this.deliverItem(item);
    this.forward([item], 1, -1);
  }

  /**
   * An item straight from the core. `relay` = the edge relay's first push (forward it like a
   * push); otherwise the answer to our catch-up pull (keep and deliver, no forwarding).
   */
  inject(item: Item<P>, relay: boolean): void {
    this.onPush([item], relay ? 1 : 0, -1);
  }

  // ─── handlers ───────────────────────────────────────────────────────────────────────────

  private refusal(env: Envelope<P>): DropReason | undefined {
    const cur = this.epoch;
    const e = env.epoch;
    if (e > cur) return 'unknown-epoch';
    if (e < cur) {
      const age = cur - e;
      if (age > this.c.epochWindow) return 'stale-epoch';
      const retired = this.ints[this.b + this.store.oRetired + age - 1]!;
      if (this.round - retired > this.c.epochGraceRounds) return 'stale-epoch';
    }
    if (!this.auth.holds(e)) return 'unknown-epoch';
    if (!this.auth.verify(env)) return 'bad-mac';
    return undefined;
  }

  private noteNewerEpoch(epoch: number): void {
    const b = this.b;
    if (epoch > this.ints[b + H_NEWEST_EPOCH]!) this.ints[b + H_NEWEST_EPOCH] = epoch;
    if (this.ints[b + H_BEHIND_SINCE]! < 0) this.ints[b + H_BEHIND_SINCE] = this.round;
  }

  /** Items of one push: keep and deliver the new ones, then forward those together (hop > 0). */
  private onPush(items: readonly Item<P>[], hop: number, from: PeerId): void {
    let fresh: Item<P>[] | undefined;
    let invalid = false;
    for (const item of items) {
      const ok = this.accept(item);
      if (ok === true) (fresh ??= []).push(item);
      else if (ok === 'invalid') invalid = true;
    }
    if (fresh !== undefined && hop > 0 && hop < this.c.maxHops) this.forward(fresh, hop + 1, from);
    // The core relay's id is in no view: nothing to drop (and no member is blamed for it).
    if (invalid && from >= 0 && from !== CORE_RELAY_PEER) this.distrust(from);
  }

  /**
   * First receipt of an admissible item: retain and deliver it (true); false if seen or refused;
   * 'invalid' if no honest node would have sent it (relabelled, far ahead, refused by the host).
   */
  private accept(item: Item<P>): boolean | 'invalid' {
    if (this.seen(item.id)) {
      this.counters.duplicates++;
      return false;
    }
    const why = this.itemRefusal(item);
    if (why !== undefined) {
      this.counters.dropped[why]++;
      return why === 'mislabelled' || why === 'far-future' || why === 'rejected' ? 'invalid' : false;
    }
    this.retain(item);
    this.deliverItem(item);
    if (this.noteCoreId(item.id)) this.advanceCursor();
    return true;
  }

  /**
   * Why an item is not taken, cheapest checks first. Only labels that agree are trusted (a rekey
   * id's epoch is the item's; the host then binds both to the signed content), and nothing far
   * ahead of our epoch is stored or relayed.
   */
  private itemRefusal(item: Item<P>): DropReason | undefined {
    if (!itemLabelsAgree(item)) return 'mislabelled';
    if (this.self < item.scopeStart || this.self >= item.scopeEnd) return 'out-of-scope';
    if (isRekeyId(item.id) ? item.epoch <= this.epoch : item.epoch + this.c.epochWindow < this.epoch)
      return 'stale-item';
    if (farAhead(item.epoch, this.epoch)) return 'far-future';
    if (this.host.admit === undefined) return undefined;
    const verdict = this.host.admit(item);
    if (verdict === true) return undefined;
    return verdict === 'later' ? 'later' : verdict === 'foreign' ? 'foreign' : 'rejected';
  }

  /**
   * `peer` sent an invalid item: out of every view of ours (the push's valid items are still
   * taken and relayed). Only if the message came from where we reach `peer` — else the sender id may be another
   * member's claim, and blaming it would let anyone cut us off from honest peers.
   */
  private distrust(peer: PeerId): void {
    if (this.host.fromKnownAddress !== undefined && !this.host.fromKnownAddress(peer)) return;
    this.counters.peersDistrusted++;
    this.views.forget(peer);
  }

  private onDigest(
    from: PeerId,
    envEpoch: number,
    d: { readonly reply: boolean; readonly probe: boolean; readonly epoch: number },
    ids: readonly ItemId[],
  ): void {
    if (d.epoch > this.epoch) this.noteNewerEpoch(d.epoch);
    if (!d.reply) {
      // Push-pull: answer with what we retain for the asker that it did not list.
      const news = this.idsFor(from, ids);
      if (d.probe || news.length > 0 || this.epoch > d.epoch)
        this.send(
          from,
          { kind: 'digest', reply: true, probe: false, epoch: this.epoch, ids: news },
          envEpoch,
        );
    }
    let missing: ItemId[] | undefined;
    for (const id of ids) {
      if (this.seen(id)) continue;
      // Not worth a pull: parts of epochs we hold, or of epochs too far ahead to be taken.
      if (isRekeyId(id) && (rekeyEpochOf(id) <= this.epoch || farAhead(rekeyEpochOf(id), this.epoch)))
        continue;
      this.noteCoreId(id);
      (missing ??= []).push(id);
      if (missing.length >= this.c.maxItemsPerReply) break;
    }
    if (missing !== undefined) this.send(from, { kind: 'pull', ids: missing }, envEpoch);
  }

  private onPull(from: PeerId, envEpoch: number, ids: readonly ItemId[]): void {
    let answer: Item<P>[] | undefined;
    for (const id of ids) {
      if ((answer?.length ?? 0) >= this.c.maxItemsPerReply) break;
      const k = this.retainedIndex(id);
      if (k < 0) continue;
      const item = this.store.items[this.itemBase + k]!;
      if (from < item.scopeStart || from >= item.scopeEnd) continue;
      (answer ??= []).push(item);
    }
    if (answer !== undefined) this.push(from, answer, 0, envEpoch);
  }

  /**
   * Eager push of items first received together: each run of items with the same scope and MAC
   * epoch goes to the same `fanout` random peers (from the active view for whole-group items,
   * from the peers known inside the scope for rekey parts), in one message per peer.
   */
  private forward(items: readonly Item<P>[], hop: number, except: PeerId): void {
    let k = 0;
    while (k < items.length) {
      const head = items[k]!;
      const epoch = this.macEpochFor(head);
      let end = k + 1;
      while (
        end < items.length &&
        items[end]!.scopeStart === head.scopeStart &&
        items[end]!.scopeEnd === head.scopeEnd &&
        this.macEpochFor(items[end]!) === epoch
      )
        end++;
      const run = k === 0 && end === items.length ? items : items.slice(k, end);
      if (this.eagerRoom())
        for (const p of this.targets(head.scopeStart, head.scopeEnd, except)) this.push(p, run, hop, epoch);
      else this.deferRun(run, hop, epoch, except);
      k = end;
    }
  }

  /**
   * Over budget: the run joins waiting messages to peers inside its scope first (so a burst
   * rides in the next rounds' few messages instead of one message per item and peer), and
   * only the rest of its fan-out gets new waiting messages.
   */
  private deferRun(run: readonly Item<P>[], hop: number, epoch: number, except: PeerId): void {
    const head = run[0]!;
    const fanout = this.c.fanout;
    const used: PeerId[] = [];
    let add = 0;
    for (const item of run) add += itemBytes(item);
    for (const d of this.deferred ?? []) {
      if (used.length >= fanout) break;
      if (d.epoch !== epoch || d.to === except || d.to < head.scopeStart || d.to >= head.scopeEnd) continue;
      if (used.includes(d.to) || !this.joins(d, run.length, add)) continue;
      d.items.push(...run);
      d.bytes += add;
      if (hop < d.hop) d.hop = hop;
      this.counters.deferred += run.length;
      used.push(d.to);
    }
    for (const p of this.targets(head.scopeStart, head.scopeEnd, except)) {
      if (used.length >= fanout) break;
      if (used.includes(p)) continue;
      this.push(p, run, hop, epoch); // over budget: waits, in chunks that respect the limits
      used.push(p);
    }
  }

  /** May `n` more items of `bytes` join waiting message `d`? */
  private joins(d: DeferredPush<P>, n: number, bytes: number): boolean {
    return d.items.length + n <= this.c.maxItemsPerPush && d.bytes + bytes <= this.c.maxPushBytes;
  }

  /**
   * A rekey part goes to peers that do not have it yet, i.e. still in the epoch before it:
   * MAC it under that epoch (while we hold it), or they could not verify it.
   */
  private macEpochFor(item: Item<P>): number {
    return isRekeyId(item.id) ? Math.min(this.epoch, item.epoch - 1) : this.epoch;
  }

  /** Up to `fanout` distinct random peers for a scope, never `except`. */
  private targets(scopeStart: number, scopeEnd: number, except: PeerId): PeerId[] {
    const fanout = this.c.fanout;
    const out: PeerId[] = [];
    if (scopeStart === 0 && scopeEnd === WHOLE_GROUP_END) {
      const n = this.views.activeCount;
      // Partial Fisher–Yates over the active view: `fanout` distinct random peers.
      const order = scratch(n);
      for (let k = 0; k < n; k++) order[k] = this.views.activeAt(k);
      for (let k = 0; k < n && out.length < fanout; k++) {
        const j = k + this.rng.int(n - k);
        const p = order[j]!;
        order[j] = order[k]!;
        if (p !== except) out.push(p);
      }
      return out;
    }
    const candidates: PeerId[] = [];
    this.views.forEachInScope(scopeStart, scopeEnd, (p) => {
      if (p !== except) candidates.push(p);
    });
    while (out.length < fanout && candidates.length > 0) {
      const j = this.rng.int(candidates.length);
      out.push(candidates[j]!);
      candidates[j] = candidates[candidates.length - 1]!;
      candidates.pop();
    }
    return out;
  }

  // ─── sending ────────────────────────────────────────────────────────────────────────────

  /** Eager pushes waiting for budget (tests and diagnostics). */
  get deferredCount(): number {
    return this.deferred?.length ?? 0;
  }

  /** Sends the oldest deferred pushes the new round's eager budget allows. */
  private sendDeferred(): void {
    const q = this.deferred;
    if (q === undefined || q.length === 0) return;
    let k = 0;
    while (k < q.length && this.eagerRoom()) {
      const d = q[k++]!;
      this.send(d.to, { kind: 'push', hop: d.hop, items: d.items }, d.epoch);
    }
    q.splice(0, k);
  }

  /**
   * May an eager push go out now? The round's total stays within maxSendsPerRound, and eager
   * pushes alone within maxSendsPerRound − RESERVED_SENDS, so the digest exchange always has
   * room — whether it happens before or after the pushes in the round.
   */
  private eagerRoom(): boolean {
    const b = this.b;
    const max = this.c.maxSendsPerRound;
    return this.ints[b + H_SENT]! < max && this.ints[b + H_EAGER_SENT]! < max - RESERVED_SENDS;
  }

  /**
   * Pushes `items` to `to` under `epoch` in as few messages as maxItemsPerPush and maxPushBytes
   * allow. Eager (hop > 0) messages over budget wait (see `defer`); an answer over budget is
   * dropped (the asker pulls again).
   */
  private push(to: PeerId, items: readonly Item<P>[], hop: number, epoch: number): void {
    let k = 0;
    while (k < items.length) {
      const end = pushChunkEnd(items, k, epoch, this.c.maxItemsPerPush, this.c.maxPushBytes);
      const chunk = k === 0 && end === items.length ? items : items.slice(k, end);
      if (hop > 0 && !this.eagerRoom()) this.defer(to, chunk, hop, epoch);
      else this.send(to, { kind: 'push', hop, items: chunk }, epoch);
      k = end;
    }
  }

  /** Queues an eager push for a later round, joining a waiting message to `to` if it has room. */
  private defer(to: PeerId, items: readonly Item<P>[], hop: number, epoch: number): void {
    const c = this.c;
    if (c.deferredPushes === 0) {
      this.counters.dropped['rate-limited']++;
      return;
    }
    this.counters.deferred += items.length;
    const q = (this.deferred ??= []);
    let add = 0;
    for (const item of items) add += itemBytes(item);
    for (const d of q) {
      if (d.to !== to || d.epoch !== epoch || !this.joins(d, items.length, add)) continue;
      d.items.push(...items);
      d.bytes += add;
      if (hop < d.hop) d.hop = hop;
      return;
    }
    if (q.length >= c.deferredPushes) {
      q.shift();
      this.counters.dropped['rate-limited']++;
    }
    q.push({ to, hop, epoch, items: [...items], bytes: emptyPushBytes(epoch) + add });
  }

  /** Sends under `epoch` (default: ours) if the round's budget allows; false if not sent. */
  private send(to: PeerId, body: GossipBody<P>, epoch = this.epoch): boolean {
    const b = this.b;
    const used = this.ints[b + H_SENT]!;
    const eager = body.kind === 'push' && body.hop > 0;
    if (eager ? !this.eagerRoom() : used >= this.c.maxSendsPerRound) {
      this.counters.dropped['rate-limited']++;
      return false;
    }
    const unsigned = { epoch, sender: this.self, body };
    const tag = this.auth.tag(unsigned);
    if (tag === undefined) return false; // an epoch we no longer hold: nothing we can say
    const env: Envelope<P> = { epoch, sender: this.self, body, tag };
    this.ints[b + H_SENT] = used + 1;
    if (eager) this.ints[b + H_EAGER_SENT]!++;
    this.counters.sent[body.kind]++;
    if (this.counters.countBytes) this.counters.bytesSent += wireBytes(env);
    this.host.send(to, env);
    return true;
  }

  // ─── retention and duplicate suppression ────────────────────────────────────────────────

  private deliverItem(item: Item<P>): void {
    if (this.fifo !== undefined && !isRekeyId(item.id)) this.fifo.offer(item, this.round);
    else this.deliverUp(item);
  }

  private deliverUp(item: Item<P>): void {
    this.counters.delivered++;
    this.host.deliver(item);
  }

  /** Known id: retained now, or in the ring of recently evicted ids. */
  seen(id: ItemId): boolean {
    const ids = this.ids;
    const end = this.idBase + this.store.idStride;
    for (let k = this.idBase; k < end; k++) if (ids[k] === id) return true;
    return false;
  }

  private retainedIndex(id: ItemId): number {
    const n = this.retainedCount;
    for (let k = 0; k < n; k++) if (this.ids[this.idBase + k] === id) return k;
    return -1;
  }

  private retain(item: Item<P>): void {
    const n = this.retainedCount;
    let k = n;
    if (n >= this.c.retainedItems) {
      // Full: evict the oldest (lowest round) to make room.
      const o = this.b + this.store.oRetRound;
      k = 0;
      for (let j = 1; j < n; j++) if (this.ints[o + j]! < this.ints[o + k]!) k = j;
      this.evict(k);
      k = this.retainedCount;
    }
    this.ids[this.idBase + k] = item.id;
    this.ints[this.b + this.store.oRetRound + k] = this.round;
    this.store.items[this.itemBase + k] = item;
    this.ints[this.b + H_RETAINED_N] = k + 1;
  }

  private ageRetention(round: number): void {
    const o = this.b + this.store.oRetRound;
    for (let k = this.retainedCount - 1; k >= 0; k--) {
      if (round - this.ints[o + k]! > this.c.retentionRounds) this.evict(k);
    }
  }

  /** Moves retained entry k's id to the seen ring and compacts the retained array. */
  private evict(k: number): void {
    const ids = this.ids;
    const ints = this.ints;
    const n = this.retainedCount;
    const C = this.c.retainedItems;
    const head = ints[this.b + H_SEEN_HEAD]!;
    ids[this.idBase + C + head] = ids[this.idBase + k]!;
    ints[this.b + H_SEEN_HEAD] = (head + 1) % this.c.seenIds;
    const last = n - 1;
    ids[this.idBase + k] = ids[this.idBase + last]!;
    ints[this.b + this.store.oRetRound + k] = ints[this.b + this.store.oRetRound + last]!;
    this.store.items[this.itemBase + k] = this.store.items[this.itemBase + last];
    ids[this.idBase + last] = -1;
    this.store.items[this.itemBase + last] = undefined;
    ints[this.b + H_RETAINED_N] = last;
  }

  /** Retained ids whose scope includes `peer` and that are not in `except` (what a digest to `peer` advertises). */
  private idsFor(peer: PeerId, except: readonly ItemId[]): readonly ItemId[] {
    const n = this.retainedCount;
    if (n === 0) return NO_IDS;
    let out: ItemId[] | undefined;
    for (let k = 0; k < n; k++) {
      const item = this.store.items[this.itemBase + k]!;
      if (peer >= item.scopeStart && peer < item.scopeEnd && !except.includes(item.id))
        (out ??= []).push(item.id);
    }
    return out ?? NO_IDS;
  }
}
