/**
 * GossipLinkMachine — one leaf's end of the UDP gossip tier as a sans-IO machine: datagram
 * decoding and authentication, the address book and its challenge rules, the round clock, early
 * envelopes and the key epochs the node may MAC under, around the leaf's GossipNode. It owns no
 * socket, timer or clock: every call returns the effects its host runs (datagrams to send with
 * their address, the round timer to set, early envelopes to replay once the call has returned).
 * What the node delivers, and the verdicts it needs at once (item admission), go to the
 * `GossipLinkHandler` the leaf above passes in. Hosts: leaf-sdk/gossip-socket.ts (UDP, real
 * timers, for LeafClient); a simulation or a test hosts it over virtual time.
 *
 * Datagrams, each one frame:
 *   0x0601 gossip envelope (codec.ts)   — handed to the node; when its MAC verifies, the source
 *                                          address is noted for the sender id ('direct'; see below)
 *   0x0602 address hints (addr-hints.ts) — sent next to every shuffle / shuffle reply, naming the
 *                                          endpoints of the peers it lists ('hint')
 *   0x0603 address probe (addr-probe.ts) — a challenge to an address, or the answer echoing it
 *
 * Addresses from traffic: the MAC proves only the group key, which every member holds, so a
 * verified datagram naming sender P from a new address is a claim. It is taken where we know
 * nothing better of P; where a seed or earlier traffic put P elsewhere, the address we hold is
 * challenged and P's traffic moves only if that address stays silent and the new one answers
 * (address-book.ts AddressClaims): a member cannot pull a live peer's traffic to itself, and a
 * peer behind a NAT that rebinds is reached again within CLAIM_PERIODS timer periods.
 * Bounds: a datagram is at most `maxDatagramBytes` (default 8 KiB: one rekey part or a typical
 * data envelope with headers). A send that would not fit is refused and counted (`oversize`);
 * the core relay never injects such an item into the overlay (it falls back to TLS), so this
 * only guards against a misconfigured peer. The host caps sends in flight (counted as
 * `sendQueueFull`; the anti-entropy repairs the loss). The address book is bounded (LRU).
 *
 * Early datagrams (early.ts): an envelope of an epoch the leaf does not hold yet is kept and
 * handed to the node again once the leaf installs that epoch's key. The node still sees it at
 * once (it notes the newer epoch, its trigger for a catch-up should the key never come).
 *
 * Slot moves: a leaf's PeerId is its key-tree slot; when a compaction moves it, `moveTo` builds a
 * node for the new slot carrying over its views (retained items are dropped: a duplicate that
 * arrives later is refused by the data replay window and the rekey epoch check).
 *
 * Re-entrancy: the handler may call back in while the node delivers (a delivered part installs a
 * key). Effects are queued in call order and every call returns all those queued so far, so a
 * nested call's host sends the outer call's earlier datagrams first; the order on the wire is
 * the order they were formed.
 */
import { DecodeError, peekFrameHeader } from '../wire/index.js';
import { formatUdpAddress, parseUdpAddress } from '../net/index.js';
import { UniformInts, randomBytes, type CipherSuite } from '../crypto/index.js';
import { AddressBook, AddressClaims, DEFAULT_ADDRESS_BOOK_SIZE, type ProbeOut } from './address-book.js';
import {
  MAX_PROBE_FRAME_BYTES,
  PROBE_FRAME_TYPE,
  PROBE_NONCE_BYTES,
  encodeAddrProbe,
  openAddrProbe,
} from './addr-probe.js';
import {
  ADDR_FRAME_TYPE,
  MAX_ADDR_FRAME_BYTES,
  encodeAddrHints,
  openAddrHints,
  type PeerEndpoint,
} from './addr-hints.js';
import { MacAuthenticator } from './auth.js';
import {
  GOSSIP_FRAME_TYPE,
  MAX_GOSSIP_FRAME_BYTES,
  decodeEnvelope,
  encodeEnvelope,
  envelopeCore,
  frameOf,
} from './codec.js';
import { gossipConfig, type GossipConfig } from './config.js';
import { GossipCounters } from './counters.js';
import { CORE_RELAY_PEER, MAX_ORIGIN, MAX_STREAM_SEQ, type PeerId } from './ids.js';
import { streamItem } from './gossip-items.js';
import type { DataPullReply, DataStream, GossipSeed } from './leaf-protocol.js';
import type { Envelope, Item } from './messages.js';
import { GossipNode, type AdmitVerdict, type CorePull, type GossipHost } from './node.js';
import type { RandomSource } from './random.js';
import { GossipStore } from './store.js';
import { EarlyEnvelopes } from './early.js';

export const DEFAULT_GOSSIP_DATAGRAM_BYTES = 8192;
export const DEFAULT_GOSSIP_ROUND_MS = 100;
export const DEFAULT_IDLE_ROUND_EVERY = 5;

/** What the machine decides with (the host's own settings are in GossipLinkOptions). */
export interface GossipLinkMachineOptions {
  /** Largest datagram sent or accepted (default 8192). */
  readonly maxDatagramBytes?: number;
  /** Gossip round period (default 100 ms). */
  readonly roundMs?: number;
  /**
   * While the node is idle — it retains no item, has no push waiting and is neither behind a
   * newer epoch nor missing items it heard of (GossipNode.busy) — only every this many periods
   * is a round (default 5: 500 ms rounds). An idle leaf's rounds are digests, probes and view
   * upkeep (~1.3 ms of CPU a second each here at 100 ms); the first item it receives, or a
   * peer's newer epoch, makes it busy again, and it stays busy while it retains items.
   */
  readonly idleRoundEvery?: number;
  /** Protocol tunables (arity is taken from the key tree). */
  readonly config?: Partial<GossipConfig>;
  readonly addressBookSize?: number;
  /**
   * Peer choices and probe nonces. Default: the CSPRNG (an observer must not predict them); a
   * seeded source only in simulations and tests that replay a run.
   */
  readonly rng?: RandomSource;
  /** PROBE_NONCE_BYTES fresh bytes per challenge. */
  readonly nonce?: () => Uint8Array;
  /** The node's counters (default: its own); a simulation shares one set across its leaves. */
  readonly counters?: GossipCounters;
}

export interface GossipLinkOptions extends GossipLinkMachineOptions {
  /** Literal IP the host binds its UDP socket to (default 127.0.0.1). */
  readonly host?: string;
  /** UDP port (default 0: ephemeral). */
  readonly port?: number;
}

/** What the leaf above the link decides. */
export interface GossipLinkHandler {
  /** See node.ts AdmitVerdict. */
  admit(item: Item): AdmitVerdict;
  deliver(item: Item): void;
  pullFromCore(req: CorePull): void;
  reseed(): void;
}

/** What the host runs for the machine. */
export type GossipLinkEffect =
  /** Send `bytes` (one frame, at most maxDatagramBytes) to the UDP address `to`. */
  | { readonly type: 'datagram'; readonly to: string; readonly bytes: Uint8Array }
  /** Call `tick()` after `afterMs` (one round timer: a new one replaces the old). */
  | { readonly type: 'setTimer'; readonly afterMs: number }
  /** Call `replayEarly()` once the current call has returned (not re-entrantly: see the header). */
  | { readonly type: 'replayEarly' };

export interface GossipLinkStats {
  /** Gossip rounds run (fewer than timer periods while idle). */
  rounds: number;
  datagramsIn: number;
  malformed: number;
  noAddress: number;
  oversize: number;
  /** Counted by the host: datagrams its socket could not take. */
  sendQueueFull: number;
  hintsSent: number;
  hintsAccepted: number;
  hintsRefused: number;
  moves: number;
  /** Envelopes kept for a key not yet held, and those later replayed once it was. */
  heldEarly: number;
  replayedEarly: number;
  /** Address probes: challenges sent, challenges answered, answers taken, probes refused (bad MAC, old epoch). */
  probesSent: number;
  probesAnswered: number;
  probeAnswersIn: number;
  probesRefused: number;
}

/** A core stream position from the server must fit the node's cursor. */
function checkStream(origin: number, seq: number): void {
  if (origin > MAX_ORIGIN || seq > MAX_STREAM_SEQ + 1)
    throw new DecodeError('bad-value', `data stream ${origin}:${seq} out of range`);
}

/** Peer choices of a live node come from the CSPRNG: an observer must not predict them. */
const osRandom: RandomSource = new UniformInts();
const osNonce = (): Uint8Array => randomBytes(PROBE_NONCE_BYTES);

/** An envelope's encoded core (epoch ‖ sender ‖ body) and what it was encoded from. */
interface TaggedCore {
  readonly body: Envelope['body'];
  readonly epoch: number;
  readonly sender: number;
  readonly core: Uint8Array;
}

export class GossipLinkMachine {
  readonly counters: GossipCounters;
  readonly stats: GossipLinkStats = {
    rounds: 0,
    datagramsIn: 0,
    malformed: 0,
    noAddress: 0,
    oversize: 0,
    sendQueueFull: 0,
    hintsSent: 0,
    hintsAccepted: 0,
    hintsRefused: 0,
    moves: 0,
    heldEarly: 0,
    replayedEarly: 0,
    probesSent: 0,
    probesAnswered: 0,
    probeAnswersIn: 0,
    probesRefused: 0,
  };
  readonly book: AddressBook;
  /** Claims that a peer moved (stats: started, refused, rebinds…). */
  readonly claims: AddressClaims;
  readonly maxDatagramBytes: number;
  readonly roundMs: number;
  private readonly idleRoundEvery: number;
  /** Timer periods since the first seed (the clock of address claims; idle or not). */
  private periods = 0;
  private readonly auth: MacAuthenticator;
  private readonly rng: RandomSource;
  private node: GossipNode | undefined;
  private config: GossipConfig | undefined;
  /** The round timer was asked for (after the first seed) and is re-armed by every tick. */
  private ticking = false;
  /** Source address of the datagram being handled (learned if its MAC verifies). */
  private source: string | undefined;
  /** The datagram being handled and its decoded envelope (its MAC is checked over these bytes). */
  private received: { readonly env: Envelope; readonly frame: Uint8Array } | undefined;
  /** The core bytes of the envelope last tagged, kept for its frame (the node sends right after). */
  private tagged: TaggedCore | undefined;
  private closed = false;
  /** Timer periods skipped since the last round while idle. */
  private idlePeriods = 0;
  private readonly early = new EarlyEnvelopes<string>();
  /** Effects formed and not yet handed to the host. */
  private out: GossipLinkEffect[] = [];

  /** Throws RangeError on options out of range. */
  constructor(
    suite: CipherSuite,
    private readonly handler: GossipLinkHandler,
    private readonly opts: GossipLinkMachineOptions = {},
  ) {
    const max = opts.maxDatagramBytes ?? DEFAULT_GOSSIP_DATAGRAM_BYTES;
    if (!(Number.isInteger(max) && max >= 512 && max <= MAX_GOSSIP_FRAME_BYTES))
      throw new RangeError(`gossip maxDatagramBytes ${max} outside 512..${MAX_GOSSIP_FRAME_BYTES}`);
    const roundMs = opts.roundMs ?? DEFAULT_GOSSIP_ROUND_MS;
    if (!(Number.isInteger(roundMs) && roundMs >= 5)) throw new RangeError('gossip roundMs ≥ 5');
    const idleEvery = opts.idleRoundEvery ?? DEFAULT_IDLE_ROUND_EVERY;
    if (!(Number.isInteger(idleEvery) && idleEvery >= 1 && idleEvery <= 100))
      throw new RangeError('gossip idleRoundEvery 1..100');
    this.counters = opts.counters ?? new GossipCounters(false);
    this.maxDatagramBytes = max;
    this.roundMs = roundMs;
    this.idleRoundEvery = idleEvery;
    this.rng = opts.rng ?? osRandom;
    this.book = new AddressBook(opts.addressBookSize ?? DEFAULT_ADDRESS_BOOK_SIZE);
    const nonce = opts.nonce;
    this.claims = new AddressClaims(
      this.book,
      nonce === undefined
        ? osNonce
        : () => {
            const bytes = nonce();
            if (bytes.length !== PROBE_NONCE_BYTES)
              throw new RangeError(`a probe nonce is ${PROBE_NONCE_BYTES} bytes`);
            return bytes;
          },
    );
    this.auth = new MacAuthenticator(suite);
  }

  /** Our PeerId (slot), or undefined before `start`. */
  get self(): PeerId | undefined {
    return this.node?.self;
  }

  get started(): boolean {
    return this.node !== undefined;
  }

  /** The node's views (diagnostics: a simulation's overlay figures, a test's checks); undefined before `start`. */
  get views(): GossipNode['views'] | undefined {
    return this.node?.views;
  }

  /** The epoch the node is in (undefined before `start`). */
  get epoch(): number | undefined {
    return this.node?.epoch;
  }

  /** Creates the node for `slot` at `epoch` (after the welcome); rounds start with the first seed. */
  start(slot: PeerId, epoch: number, arity: number): GossipLinkEffect[] {
    if (this.closed) return [];
    // Several items share a datagram up to what one may carry.
    this.config ??= gossipConfig({ maxPushBytes: this.maxDatagramBytes, ...this.opts.config, arity });
    this.node = this.makeNode(slot, epoch);
    return this.effects();
  }

  /** The leaf installed epoch `epoch`: MAC under its key from now on. */
  installKey(epoch: number, groupKey: Uint8Array): GossipLinkEffect[] {
    this.auth.install(epoch, groupKey);
    this.node?.setEpoch(epoch);
    // Not re-entrantly: a key is usually installed from inside the node's own delivery.
    if (this.early.size > 0) this.out.push({ type: 'replayEarly' });
    return this.effects();
  }

  /** Hands held envelopes of epochs we now hold to the node; drops those we moved past. */
  replayEarly(): GossipLinkEffect[] {
    const node = this.node;
    if (node === undefined || this.closed) return this.effects();
    for (const { env, from } of this.early.ready(node.epoch)) {
      this.stats.replayedEarly++;
      this.handle(node, env, from);
    }
    return this.effects();
  }

  /** A seed from the core server: learn the endpoints, add the peers, start the rounds. */
  seed(seed: GossipSeed): GossipLinkEffect[] {
    const node = this.node;
    if (node === undefined || this.closed) return [];
    const ids = (list: readonly PeerEndpoint[]): PeerId[] => {
      const out: PeerId[] = [];
      for (const p of list) {
        if (p.id === node.self) continue;
        this.book.learn(p.id, formatUdpAddress(p.host, p.port), 'seed');
        out.push(p.id);
      }
      return out;
    };
    node.seed(ids(seed.active), ids(seed.passive), seed.contacts.map(ids));
    this.noteCoreStream(seed.stream);
    if (!this.ticking) {
      this.ticking = true;
      this.out.push({ type: 'setTimer', afterMs: this.roundMs });
    }
    return this.effects();
  }

  /** The core data stream the node tracks and the next seq it lacks (undefined before a seed). */
  get coreStream(): { origin: number; next: number } | undefined {
    const node = this.node;
    return node === undefined || node.coreCursor < 0
      ? undefined
      : { origin: node.coreOrigin, next: node.coreCursor };
  }

  /**
   * Where our server's data stream stands (a seed, a lease ack): a gap below it is pulled.
   * Throws DecodeError on a position out of range.
   */
  noteCoreStream(stream: DataStream): GossipLinkEffect[] {
    const node = this.node;
    if (node === undefined || this.closed) return [];
    checkStream(stream.origin, stream.next);
    node.setCoreStream(stream.origin, stream.next);
    return this.effects();
  }

  /**
   * The server's answer to our data pull: its items are delivered like gossip's (through the
   * leaf's admit), not forwarded. Another origin: the server we now talk to has another
   * stream, which we track from here on. Throws DecodeError on seqs out of range.
   */
  onDataPull(reply: DataPullReply): GossipLinkEffect[] {
    const node = this.node;
    if (node === undefined || this.closed) return [];
    checkStream(reply.origin, reply.next);
    checkStream(reply.origin, reply.head);
    if (reply.origin !== node.coreOrigin) {
      node.setCoreStream(reply.origin, reply.next);
      return this.effects();
    }
    const items: Item[] = [];
    for (const { seq, entry } of reply.items) {
      checkStream(reply.origin, seq);
      items.push(streamItem(entry, reply.origin, seq));
    }
    node.onCoreReply(items, reply.next, reply.head);
    return this.effects();
  }

  /** The round timer fired: address claims age, and a round runs (idle: every `idleRoundEvery`-th period). */
  tick(): GossipLinkEffect[] {
    const node = this.node;
    if (node === undefined || this.closed) {
      this.ticking = false;
      return this.effects();
    }
    this.out.push({ type: 'setTimer', afterMs: this.roundMs });
    this.sendProbes(node, this.claims.tick(++this.periods));
    if (!node.busy && ++this.idlePeriods < this.idleRoundEvery) return this.effects();
    this.idlePeriods = 0;
    this.stats.rounds++;
    node.tick();
    return this.effects();
  }

  /** A compaction moved us to `slot`: a node under the new id, keeping our views. */
  moveTo(slot: PeerId, epoch: number): GossipLinkEffect[] {
    const old = this.node;
    if (old === undefined || old.self === slot || this.closed) return [];
    this.stats.moves++;
    const v = old.views;
    const contacts = Array.from({ length: this.config!.levels }, (_, l) => v.contacts(l + 1));
    const keep = (ps: readonly PeerId[]): PeerId[] => ps.filter((p) => p !== slot);
    const node = this.makeNode(slot, epoch);
    this.node = node;
    node.seed(keep(v.active()), keep(v.passive()), contacts.map(keep));
    if (old.coreCursor >= 0) node.setCoreStream(old.coreOrigin, old.coreCursor);
    return this.effects();
  }

  /** The host stops: nothing more is sent or handled (its timer is the host's to clear). */
  close(): void {
    this.closed = true;
    this.node = undefined;
    this.out = [];
  }

  /** A datagram `bytes` from the UDP address `from` (untrusted: malformed ones are counted, never thrown). */
  handleDatagram(from: string, data: Uint8Array): GossipLinkEffect[] {
    const node = this.node;
    if (node === undefined || this.closed) return [];
    this.stats.datagramsIn++;
    try {
      if (data.length > this.maxDatagramBytes)
        throw new DecodeError('too-large', 'datagram over maxDatagramBytes');
      const type = peekFrameHeader(data, MAX_GOSSIP_FRAME_BYTES).type;
      if (type === GOSSIP_FRAME_TYPE) {
        const env = decodeEnvelope(data);
        if (this.early.hold(env, from, node.epoch)) this.stats.heldEarly++;
        this.received = { env, frame: data };
        try {
          this.handle(node, env, from);
        } finally {
          this.received = undefined;
        }
      } else if (type === ADDR_FRAME_TYPE && data.length <= MAX_ADDR_FRAME_BYTES) {
        this.onHints(node, data);
      } else if (type === PROBE_FRAME_TYPE && data.length <= MAX_PROBE_FRAME_BYTES) {
        this.onProbe(node, data, from);
      } else this.stats.malformed++;
    } catch (e) {
      if (!(e instanceof DecodeError)) throw e;
      this.stats.malformed++;
    }
    return this.effects();
  }

  /** Everything queued so far, in the order formed (see the header on re-entrancy). */
  private effects(): GossipLinkEffect[] {
    const out = this.out;
    this.out = [];
    return out;
  }

  // ── node host ────────────────────────────────────────────────────────────────────────────

  private makeNode(slot: PeerId, epoch: number): GossipNode {
    const c = this.config!;
    const auth = this.auth;
    // Learns the datagram's source for the sender id only when the MAC verifies. Each envelope
    // is encoded once: the core bytes its tag is made over are kept for the frame (`send`), and
    // a received one is checked over the bytes that came in (`handleDatagram`), not re-encoded.
    const learning = {
      holds: (e: number) => auth.holds(e),
      tag: (env: Omit<Envelope, 'tag'>) => {
        const core = envelopeCore(env);
        const tag = auth.tagCore(env.epoch, core);
        this.tagged =
          tag === undefined ? undefined : { body: env.body, epoch: env.epoch, sender: env.sender, core };
        return tag;
      },
      verify: (env: Envelope) => {
        const raw = this.received;
        const ok =
          raw !== undefined && raw.env === env && typeof env.tag !== 'number'
            ? auth.verifyFrame(env.epoch, raw.frame, env.tag)
            : auth.verify(env);
        if (ok && this.source !== undefined && env.sender !== CORE_RELAY_PEER && this.node !== undefined)
          this.sendProbes(this.node, this.claims.observe(env.sender, this.source, this.periods));
        return ok;
      },
    };
    const host: GossipHost<Uint8Array> = {
      send: (to, env) => this.send(to, env),
      deliver: (item) => this.handler.deliver(item),
      admit: (item) => this.handler.admit(item),
      pullFromCore: (req) => this.handler.pullFromCore(req),
      reseed: () => this.handler.reseed(),
      // Blame a sender id only for a datagram from where we reach that peer (see node.ts distrust).
      fromKnownAddress: (peer) => this.source !== undefined && this.book.peek(peer) === this.source,
    };
    return new GossipNode(new GossipStore(c, 1), 0, slot, learning, this.rng, host, this.counters, epoch);
  }

  private send(to: PeerId, env: Envelope): void {
    const endpoint = this.book.get(to);
    if (endpoint === undefined) {
      this.stats.noAddress++;
      return;
    }
    const t = this.tagged;
    this.tagged = undefined;
    const frame =
      t !== undefined &&
      t.body === env.body &&
      t.epoch === env.epoch &&
      t.sender === env.sender &&
      typeof env.tag !== 'number'
        ? frameOf(t.core, env.tag)
        : encodeEnvelope(env);
    this.datagram(endpoint, frame);
    const body = env.body;
    if (body.kind !== 'shuffle' && body.kind !== 'shuffleReply') return;
    const entries: PeerEndpoint[] = [];
    for (const id of body.peers) {
      const at = this.book.peek(id);
      const parsed = at === undefined ? undefined : parseUdpAddress(at);
      if (parsed !== undefined) entries.push({ id, host: parsed.host, port: parsed.port });
    }
    if (entries.length === 0) return;
    const hints = encodeAddrHints(this.auth, { epoch: env.epoch, sender: env.sender, entries });
    if (hints !== undefined && this.datagram(endpoint, hints)) this.stats.hintsSent++;
  }

  /** Queues a datagram; false (counted) if it would not fit one. */
  private datagram(to: string, bytes: Uint8Array): boolean {
    if (bytes.length > this.maxDatagramBytes) {
      this.stats.oversize++;
      return false;
    }
    this.out.push({ type: 'datagram', to, bytes });
    return true;
  }

  private handle(node: GossipNode, env: Envelope, from: string): void {
    this.source = from;
    try {
      node.receive(env);
    } finally {
      this.source = undefined;
    }
  }

  /**
   * Challenges (whoever answers echoes the nonce from the address probed), under the epoch
   * before ours while we hold it — a peer one rekey behind or ahead reads it, so a claim made
   * right after a rekey does not win because the held address could not read the challenge —
   * and again under the oldest epoch our node still takes traffic under (epochWindow back), so
   * a peer that fell several rekeys behind (back-to-back batches) can answer too: else an
   * insider holding the newer keys wins the claim against a live, lagging peer (the gossip
   * simulation's insiders found this). At most two probes per address, same nonce.
   */
  private sendProbes(node: GossipNode, probes: readonly ProbeOut[]): void {
    if (probes.length === 0) return;
    const epochs = this.probeEpochs(node.epoch);
    for (const p of probes)
      for (const epoch of epochs) {
        const frame = encodeAddrProbe(this.auth, {
          answer: false,
          epoch,
          sender: node.self,
          nonce: p.nonce,
        });
        if (frame !== undefined && this.datagram(p.to, frame)) this.stats.probesSent++;
      }
  }

  /** The epochs a challenge goes out under (see sendProbes): one or two, newest first. */
  private probeEpochs(epoch: number): number[] {
    const previous = epoch > 0 && this.auth.holds(epoch - 1) ? epoch - 1 : epoch;
    for (let e = Math.max(0, epoch - this.config!.epochWindow); e < previous; e++)
      if (this.auth.holds(e)) return [previous, e];
    return [previous];
  }

  /**
   * A challenge is answered from here, under the epoch it came in (one answer of the same size
   * per challenge: no amplification, and only a key holder can ask). An answer goes to the claims.
   */
  private onProbe(node: GossipNode, data: Uint8Array, from: string): void {
    const p = openAddrProbe(this.auth, data);
    if (p === undefined || p.epoch + this.config!.epochWindow < node.epoch) {
      this.stats.probesRefused++;
      return;
    }
    if (p.answer) {
      this.stats.probeAnswersIn++;
      return this.claims.answered(p.sender, from, p.nonce);
    }
    const answer = encodeAddrProbe(this.auth, {
      answer: true,
      epoch: p.epoch,
      sender: node.self,
      nonce: p.nonce,
    });
    if (answer !== undefined && this.datagram(from, answer)) this.stats.probesAnswered++;
  }

  private onHints(node: GossipNode, data: Uint8Array): void {
    const h = openAddrHints(this.auth, data);
    // Only current-ish epochs: an evicted leaf still holding an old key cannot plant addresses.
    const window = this.config!.epochWindow;
    if (h === undefined || h.epoch + window < node.epoch) {
      this.stats.hintsRefused++;
      return;
    }
    this.stats.hintsAccepted++;
    for (const e of h.entries) {
      if (e.id !== node.self && e.id !== CORE_RELAY_PEER)
        this.book.learn(e.id, formatUdpAddress(e.host, e.port), 'hint');
    }
  }
}
