/**
 * The leaf edge of one core server (sans-IO): the TLS sessions of the leaves linked to THIS server and the
 * server half of the leaf protocol (gossip-edge/leaf-protocol.ts).
 *
 *   join          → resume (the replicated registry knows the admission: welcome at once), or an
 *                   `admit` command into the core's total order; the welcome follows when the
 *                   batch that admits the leaf is applied here
 *   leaseRenew    → acknowledged at once, in a primary component; renewals are batched into one
 *                   ordered command per interval. Outside it nothing is acknowledged: the
 *                   renewal cannot reach the registry, and the leaf, left without acks, fails
 *                   over to a server that can renew it before the primary lets its lease lapse
 *   dataPublish   → handed to the core (relayed to every server's leaves), unless sealed under an
 *                   epoch retired beyond the grace (`publishAck` says 'retired-epoch')
 *   leave         → a `leave` command
 *   catchUpRequest→ served from this server's signed history: welcomed sessions only, and only
 *                   the leaf's own path (the slot the registry holds for it)
 * Revocation in band: welcomes carry this server's CRLs (unless the join says the leaf holds
 * them) and a newer CRL goes out to every welcomed leaf as `crlUpdate`, with the signer list
 * filtered through it; leaves verify the CRLs themselves (leaf-sdk/leaf-client.ts).
 *   dataPull      → served from the edge relay's data-stream history (gossip leaves only)
 * Each applied batch is signed once by this server. Leaves that announced a UDP endpoint
 * (`gossipHello`, after their welcome) get a `gossipSeed` and are served by the edge relay
 * (gossip-relay.ts): the batch's parts and the relayed data enter the leaves' gossip overlay with
 * a bounded fan-out, and nothing is pushed to them over TLS — except what the relay cannot carry
 * (a part or envelope too large for a datagram, no key to MAC under), which falls back to TLS.
 * Other leaves (no gossip, or a server without a relay) get the part on their path pushed over
 * TLS. Catch-up, welcomes and leases stay on TLS for everyone. Sessions of evicted leaves get
 * `evicted` and are closed.
 *
 * What a leaf can ask cheaply and the server pays for — catch-up, join, gossipHello and
 * gossipReseed — draws on a token bucket per leaf identity (request-limiter.ts): beyond it the
 * request is refused (`error rate-limited`, counted in keyglass_refusals_total), and a leaf that
 * floods through a burst of refusals loses its link. Catch-up replies also draw on one
 * server-wide byte budget (`catchUpBytesPerSec`): thousands of leaves each within their own
 * budget must not add up to a starved main thread either.
 *
 * Own-key refresh (post-compromise recovery, keytree/leaf-key-refresh.ts): after the first
 * welcome on a TLS session, at least every `leafKeyRefreshMs`, and for every exposed leaf while a
 * full refresh runs (machine.ts), this server derives the leaf's next own key from the session's
 * TLS exporter, tells the leaf the counter (`leafKeyRefresh`, before ordering) and orders the key
 * in a `refreshLeafKeys` command — at most MAX_REFRESHES_PER_COMMAND per batch tick.
 *
 * Mutations need a primary component: a non-primary server still resumes known admissions and
 * serves catch-up, but answers a fresh join with `not-primary` (the leaf fails over).
 *
 * Sans-IO: the edge owns no socket, clock or timer. Its host hands it the links to write frames
 * to (`LeafLinks`: send, disconnect, the remote address), the clock of the current event, a
 * edge relay machine (gossip-edge/gossip-relay.ts; the host wires its datagrams to a UDP socket,
 * server/edge-relay-socket.ts) and a way to set its two timers (`EdgeTimer`), which the host fires back through `onTimer`.
 */
import { encodeWelcome, refreshedLeafKey } from '../keytree/index.js';
import {
  DEFAULT_RETIRED_GRACE_MS,
  decodeDataEnvelope,
  decodeLeafFrame,
  encodeLeafFrame,
  MAX_LEAF_FRAME_BYTES,
  type EvictionReason,
  type LeafFrameBody,
  type LeafFrameType,
  type PublishResult,
  type SignerKey,
} from '../gossip-edge/index.js';
import { formatUdpAddress, parseUdpAddress, type LinkTransport } from '../net/index.js';
import type { CipherSuite } from '../crypto/index.js';
import { DecodeError } from '../wire/index.js';
import { MAX_REFRESHES_PER_COMMAND, type LeafCommand } from './commands.js';
import { RekeyHistory, signBatch } from './history.js';
import type { BatchOutput, LeafStateMachine } from './machine.js';
import { MAX_RELAYED_ENVELOPE_BYTES } from './core-messages.js';
import type { EdgeMetrics, PlaneLog, RelayCounters } from './observe.js';
import type { EdgeRelayMachine, GossipTarget } from '../gossip-edge/index.js';
import {
  DEFAULT_CATCH_UP_BYTES_PER_SEC,
  RequestLimiter,
  TokenBucket,
  type RequestLimits,
} from '../gossip-edge/index.js';

/** What a verified leaf certificate contributes to its admission. */
export interface LeafCert {
  readonly name: string;
  readonly serial: string;
  readonly fingerprint: Uint8Array;
}

/** Where the edge writes leaf frames: the host's leaf port (a LinkTransport does). */
export type LeafLinks = Pick<LinkTransport, 'send' | 'disconnect' | 'remoteAddress'>;

/**
 * The edge's timers, set through `LeafEdgeDeps.setTimer` and fired back with `onTimer`:
 *   rewelcome  the next chunk of welcomes owed after a state transfer or a settle (delay 0: the
 *              next turn, so the core stack keeps heartbeating between chunks)
 *   crlPush    the next chunk of crlUpdates (0, or CRL_PUSH_RETRY_MS when every link was busy)
 */
export type EdgeTimer = 'rewelcome' | 'crlPush';

interface Session {
  readonly peer: string;
  readonly cert: LeafCert;
  awaitingWelcome: boolean;
  /** The leaf's slot as of the last epoch pushed to it (routes its next part; its gossip id). */
  slot: number;
  /** The UDP endpoint it announced: served by the relay instead of TLS pushes. */
  gossip: { host: string; port: number; endpoint: string } | undefined;
  /** When it last pulled the data stream (pulls are rate-limited per link). */
  lastPullAt: number;
  /** The lowest CRL number the leaf holds (its join, then what we sent it); undefined: none. */
  crlNumber: bigint | undefined;
  /** Own-key refreshes ordered on this session (the counter of the last one). */
  refreshCounter: number;
  /** When the last one was ordered (local ms). */
  lastRefreshAt: number;
}

/** The CRLs a server hands its leaves in band (bounded, see MAX_IN_BAND_CRL_BYTES). */
export interface InBandCrls {
  readonly ders: readonly Uint8Array[];
  /** The lowest CRL number among them; undefined when one has none (always sent then). */
  readonly lowest: bigint | undefined;
}

/** A join's `crlNumber` (decimal), or undefined when absent or not a plain number. */
function parseCrlNumber(s: string | undefined): bigint | undefined {
  return s !== undefined && /^[0-9]{1,48}$/.test(s) ? BigInt(s) : undefined;
}

/** Why a refresh was ordered (metric label). */
export type RefreshCause = 'session' | 'periodic' | 'full';

export interface LeafEdgeDeps {
  readonly transport: LeafLinks;
  readonly machine: LeafStateMachine;
  readonly suite: CipherSuite;
  /** This server's rekey-signing key. */
  readonly signingSeed: Uint8Array;
  readonly signingPublic: Uint8Array;
  readonly leaseMs: number;
  /** The longest a linked leaf keeps one own key (ms). */
  readonly leafKeyRefreshMs: number;
  /** The TLS exporter (LEAF_KEY_EXPORTER_LABEL, 32 bytes) of the up link to `peer`. */
  exporter(peer: string): Uint8Array | undefined;
  /** Every core server's signing key known here that our CRL does not revoke (listed in welcomes). */
  signers(): SignerKey[];
  /** The CRLs in force here, as sent in band (none without a CRL or when too large). */
  crls(): InBandCrls;
  /** Submit a command to the core's total order; false if refused (backpressure). */
  order(cmd: LeafCommand): boolean;
  /** Relay a sealed envelope through the core to every leaf. */
  publish(originPeer: string, envelope: Uint8Array): boolean;
  readonly metrics: EdgeMetrics;
  readonly log: PlaneLog;
  /** Budget per leaf for the requests that cost the server (default DEFAULT_LEAF_REQUEST_LIMITS). */
  readonly requestLimits?: RequestLimits;
  /** Catch-up reply bytes per second over all leaves (default DEFAULT_CATCH_UP_BYTES_PER_SEC). */
  readonly catchUpBytesPerSec?: number;
  /** The time of the event being handled (ms since the Unix epoch): the host's, or a virtual clock. */
  readonly now: () => number;
  /** Fire `onTimer(timer)` after `delayMs` (0: once the current event is done); one pending per timer. */
  setTimer(timer: EdgeTimer, delayMs: number): void;
}

/** Requests that draw on a leaf's budget: each costs the server far more than the frame. */
const COSTLY: ReadonlySet<LeafFrameType> = new Set(['catchUpRequest', 'join', 'gossipHello', 'gossipReseed']);
/**
 * How long after this server moved past an epoch it still relays data sealed under it: the
 * leaves' default grace (late publishes of a batch boundary), then refused as 'retired-epoch'.
 */
export const RETIRED_PUBLISH_GRACE_MS = DEFAULT_RETIRED_GRACE_MS;
/** Retired epochs whose retirement time is kept (beyond, a publish under them is refused). */
const RETIRED_TRACKED = 64;
/** Welcomes sent per event-loop turn after a state transfer. */
const REWELCOME_CHUNK = 256;
/** crlUpdates sent per event-loop turn after a CRL load, and the wait when every link was busy. */
const CRL_PUSH_CHUNK = 256;
const CRL_PUSH_RETRY_MS = 50;
/** A link's data pulls are answered at most this often (a leaf pulls once per few gossip rounds). */
export const MIN_PULL_INTERVAL_MS = 200;
/** Sessions are checked for due refreshes at most this often. */
const REFRESH_SCAN_MS = 1000;
/** During a full refresh, an exposed leaf whose refresh did not land is retried after this. */
const FULL_REFRESH_RETRY_MS = 3000;

export class LeafEdge {
  readonly history = new RekeyHistory();
  private readonly sessions = new Map<string, Session>();
  private readonly certs = new Map<string, LeafCert>();
  private readonly renewals = new Set<string>();
  private relay: EdgeRelayMachine | undefined;
  /** This server's gossip leaves sorted by slot; rebuilt lazily after a change. */
  private targetCache: GossipTarget[] | undefined;
  /** Sessions waiting for a welcome — after a state transfer, or until `settled` — oldest first. */
  private readonly rewelcomes: Session[] = [];
  private rewelcomeScheduled = false;
  /**
   * False while this server's replica may hold state that a view change can still orphan: applied
   * here but not yet known durable at a majority of a primary view (key-server.ts, uniform
   * release). The history committed instead can reuse those epoch numbers with other keys and
   * other members, so nothing of such state reaches a leaf: welcomes wait in `rewelcomes` and the
   * relay keeps its key. Pushes are not affected: the host hands a batch to `distribute` only once
   * it is durable at a majority.
   */
  private settled = false;
  private readonly limiter: RequestLimiter;
  /** Catch-up reply bytes over all leaves: many leaves each within their budget still add up. */
  private readonly catchUpBudget: TokenBucket;
  /** When this server released the epoch after each of the last RETIRED_TRACKED epochs to its leaves. */
  private readonly retiredAt = new Map<number, number>();
  /**
   * The newest epoch our leaves were given: the last batch released here, or the replica's epoch
   * when everything it holds is released (settled). Undefined after a state transfer until then.
   * Not the replica's epoch: a batch applied here waits for a majority, its key unknown to leaves.
   */
  private leafEpoch: number | undefined;
  /**
   * Links closed for flooding, until their down: what they sent before the close still arrives
   * (thousands of frames may be in flight) and is dropped unread, not answered frame by frame.
   */
  private readonly dropping = new Set<string>();
  private readonly now: () => number;
  /** Welcomed sessions a crlUpdate is owed to (pushCrl), and the pending chunk. */
  private readonly crlOwed = new Set<Session>();
  private crlPushPending = false;
  /** Sessions due an own-key refresh, by peer, in order (bounded by the sessions). */
  private readonly refreshDue = new Map<string, RefreshCause>();
  private lastRefreshScan = -Infinity;

  constructor(private readonly d: LeafEdgeDeps) {
    this.limiter = new RequestLimiter(d.requestLimits);
    this.now = d.now;
    const rate = d.catchUpBytesPerSec ?? DEFAULT_CATCH_UP_BYTES_PER_SEC;
    if (!(rate >= MAX_LEAF_FRAME_BYTES)) throw new RangeError('catchUpBytesPerSec must hold a largest reply');
    this.catchUpBudget = new TokenBucket(rate, rate, this.now());
  }

  /**
   * The host bound an edge relay (its UDP socket, signing with this server's key): leaves that
   * announce an endpoint are served by gossip from now on.
   */
  attachRelay(relay: EdgeRelayMachine): void {
    if (this.relay !== undefined) throw new Error('relay already attached');
    this.relay = relay;
    this.installRelayKey();
  }

  /** Detaches the relay (the host closes it); owed crlUpdates are dropped (the server is stopping). */
  detachRelay(): EdgeRelayMachine | undefined {
    this.crlOwed.clear();
    const r = this.relay;
    this.relay = undefined;
    return r;
  }

  /** A timer the edge set (`setTimer`) fired. */
  onTimer(timer: EdgeTimer): void {
    if (timer === 'rewelcome') return this.rewelcomeChunk();
    this.crlPushPending = false;
    this.crlPushChunk();
  }

  /** The relay's counters and how many leaves it serves (undefined without a relay). */
  relayCounters(): RelayCounters | undefined {
    const r = this.relay;
    return r === undefined ? undefined : { ...r.stats, leaves: this.targets().length };
  }

  private installRelayKey(): void {
    const key = this.d.machine.groupKey();
    if (this.relay !== undefined && key !== undefined) this.relay.installKey(this.d.machine.epoch, key);
  }

  /** This server's welcomed gossip leaves sorted by slot (their gossip ids); cached. */
  private targets(): GossipTarget[] {
    if (this.targetCache !== undefined) return this.targetCache;
    const out: GossipTarget[] = [];
    for (const s of this.sessions.values())
      if (s.gossip !== undefined && !s.awaitingWelcome && s.slot >= 0) out.push({ id: s.slot, ...s.gossip });
    out.sort((a, b) => a.id - b.id);
    this.targetCache = out;
    return out;
  }

  get sessionCount(): number {
    return this.sessions.size;
  }

  /** Called from the transport's identify callback once a leaf certificate was accepted. */
  rememberCert(peer: string, cert: LeafCert): void {
    this.certs.set(peer, cert);
  }

  onPeerDown(peer: string): void {
    this.dropping.delete(peer);
    const s = this.sessions.get(peer);
    if (s !== undefined) this.crlOwed.delete(s);
    if (s?.gossip !== undefined) this.targetCache = undefined;
    this.sessions.delete(peer);
    this.certs.delete(peer);
    this.refreshDue.delete(peer);
    this.d.metrics.leafSessions.set(this.sessions.size);
  }

  onMessage(peer: string, data: Uint8Array): void {
    if (this.dropping.has(peer)) return;
    let frame;
    try {
      frame = decodeLeafFrame(data);
    } catch (e) {
      if (!(e instanceof DecodeError)) throw e;
      this.d.metrics.decodeFailures.inc({ channel: 'leaf' });
      this.send(peer, 'error', { code: 'malformed', detail: e.message.slice(0, 200) });
      this.d.transport.disconnect(peer, 'malformed frame');
      return;
    }
    const cert = this.certs.get(peer);
    if (cert === undefined) return this.d.transport.disconnect(peer, 'no verified certificate');
    if (COSTLY.has(frame.type) && !this.withinBudget(peer, cert, frame.type)) return;
    switch (frame.type) {
      case 'join':
        return this.onJoin(
          peer,
          cert,
          frame.body.resume?.admittedEpoch,
          parseCrlNumber(frame.body.crlNumber),
        );
      case 'leaseRenew':
        this.renewals.add(cert.name); // bounded: names of verified links (the leaf port's MAX_LEAF_LINKS)
        if (!this.d.machine.isPrimary) return; // see the header: the leaf fails over
        this.send(peer, 'leaseAck', {
          seq: frame.body.seq,
          leaseMs: this.d.leaseMs,
          stream: this.sessions.get(peer)?.gossip !== undefined ? this.relay?.stream : undefined,
        });
        return;
      case 'dataPublish': {
        // Answered in order, refusals included: the leaf's publish window depends on it, and a
        // refusal is backpressure, not a reason for the leaf to leave this server.
        const result: PublishResult =
          this.sessions.get(peer)?.awaitingWelcome !== false
            ? 'not-admitted'
            : frame.body.envelope.length > MAX_RELAYED_ENVELOPE_BYTES
              ? 'too-large'
              : this.retired(frame.body.envelope)
                ? 'retired-epoch'
                : this.d.publish(peer, frame.body.envelope)
                  ? 'accepted'
                  : 'overloaded';
        this.d.metrics.publishes.inc({ result });
        this.send(peer, 'publishAck', { result });
        return;
      }
      case 'leave': {
        const named = frame.body.admittedEpoch;
        const entry = this.d.machine.entry(cert.name);
        if (named !== undefined && entry?.admittedEpoch !== named) {
          this.d.log.info('stale leave ignored: not the current admission', {
            leaf: cert.name,
            named,
            current: entry?.admittedEpoch ?? -1,
          });
          return;
        }
        this.order(peer, { kind: 'leave', value: { name: cert.name } });
        return;
      }
      case 'catchUpRequest':
        return this.onCatchUp(peer, cert, frame.body.fromEpoch, frame.body.slot);
      case 'gossipHello':
        return this.onGossipHello(peer, frame.body.host, frame.body.port);
      case 'dataPull': {
        // Only gossip leaves miss relayed data (the others get it on this link). A reply may
        // carry ~384 KiB: a link pulls at most once per MIN_PULL_INTERVAL_MS (a leaf pulls once
        // per few gossip rounds), so a leaf cannot turn its link into an amplifier.
        const s = this.sessions.get(peer);
        const now = this.now();
        if (s?.gossip === undefined || this.relay === undefined || now - s.lastPullAt < MIN_PULL_INTERVAL_MS)
          return;
        s.lastPullAt = now;
        this.send(peer, 'dataPullReply', this.relay.pull(frame.body.origin, frame.body.fromSeq, now));
        return;
      }
      case 'gossipReseed': {
        const s = this.sessions.get(peer);
        if (s?.gossip !== undefined && this.relay !== undefined)
          this.send(peer, 'gossipSeed', this.relay.seedFor(s.slot, this.targets()));
        return;
      }
      default:
        this.send(peer, 'error', { code: 'unexpected', detail: `a leaf sent ${frame.type}` });
    }
  }

  /**
   * Sealed under an epoch this server retired longer than RETIRED_PUBLISH_GRACE_MS ago (or one
   * older than it tracks)? A lagging or minority-side leaf must not reach the group under a key
   * a member evicted since may hold. The epoch our leaves hold and newer ones pass (another
   * server may have released it first); an envelope that does not decode is relayed as before
   * (receivers drop it).
   */
  private retired(envelope: Uint8Array): boolean {
    let epoch: number;
    try {
      epoch = decodeDataEnvelope(envelope).header.epoch;
    } catch (e) {
      if (!(e instanceof DecodeError)) throw e;
      return false;
    }
    if (epoch >= (this.leafEpoch ?? this.d.machine.epoch)) return false;
    const at = this.retiredAt.get(epoch);
    return at === undefined || this.now() - at > RETIRED_PUBLISH_GRACE_MS;
  }

  /** Takes a token for a costly request; false (refused, maybe disconnected) when there is none. */
  private withinBudget(peer: string, cert: LeafCert, type: LeafFrameType): boolean {
    const verdict = this.limiter.take(cert.name, this.now());
    if (verdict === 'ok') return true;
    this.d.metrics.refusals.inc({ port: 'leaf', reason: 'rate-limited' });
    this.send(peer, 'error', {
      code: 'rate-limited',
      detail: `${type}: more than ${this.limiter.limits.perSec}/s (burst ${this.limiter.limits.burst})`,
    });
    if (verdict === 'abusive') {
      this.d.log.warn('leaf link closed: it kept asking through a burst of refusals', {
        leaf: cert.name,
        request: type,
      });
      this.dropping.add(peer); // bounded: peers with a link (≤ MAX_LEAF_LINKS), until their down
      this.d.transport.disconnect(peer, 'request flood');
    }
    return false;
  }

  /**
   * The epochs a welcomed leaf missed, for its own path only: the request's slot must lead (through
   * the history's compaction moves) to the slot the registry holds for this leaf now. Anything
   * else answers `rejoin` (an honest leaf that lost track of its slot recovers by a welcome) and
   * gives away no part of another leaf's path.
   */
  private onCatchUp(peer: string, cert: LeafCert, fromEpoch: number, slot: number): void {
    const s = this.sessions.get(peer);
    if (s === undefined) {
      this.d.metrics.refusals.inc({ port: 'leaf', reason: 'catch-up-unwelcomed' });
      this.send(peer, 'error', { code: 'not-admitted', detail: 'catch-up before a welcome on this link' });
      return;
    }
    if (s.awaitingWelcome) return; // its welcome is coming (a re-welcome after a state transfer)
    const entry = this.d.machine.entry(cert.name);
    if (entry === undefined || entry.slot < 0 || entry.serial !== cert.serial) return; // its eviction is coming
    const at = this.history.slotNow(fromEpoch, slot); // undefined: not covered, catchUp says rejoin
    if (at !== undefined && at !== entry.slot) {
      this.d.metrics.refusals.inc({ port: 'leaf', reason: 'catch-up-foreign' });
      this.send(peer, 'catchUpReply', { pushes: [], rejoin: true });
      return;
    }
    // The server-wide budget: spent by what is sent, refused while in debt (a leaf retries).
    const now = this.now();
    if (this.catchUpBudget.tokens(now) < 0) {
      this.d.metrics.refusals.inc({ port: 'leaf', reason: 'catch-up-budget' });
      this.send(peer, 'error', {
        code: 'rate-limited',
        detail: 'catchUpRequest: server-wide catch-up budget spent',
      });
      return;
    }
    const reply = encodeLeafFrame('catchUpReply', this.history.catchUp(fromEpoch, slot));
    this.catchUpBudget.spend(reply.length, now);
    this.d.transport.send(peer, reply);
  }

  /** A welcomed leaf's UDP endpoint: serve it by gossip from now on (ignored without a relay). */
  private onGossipHello(peer: string, host: string, port: number): void {
    const s = this.sessions.get(peer);
    if (this.relay === undefined || s === undefined || s.awaitingWelcome) return;
    const addr = port >= 1 && port <= 0xffff ? parseUdpAddress(formatUdpAddress(host, port)) : undefined;
    if (addr === undefined) {
      this.send(peer, 'error', { code: 'malformed', detail: 'gossip endpoint is not a literal IP and port' });
      return;
    }
    // The relay and the seeds would send datagrams there: a leaf may name only its own address
    // (the one its TLS link comes from), not point the group's traffic at a third party. Such a
    // leaf is not cut off: it stays on TLS pushes (no error, which would make it fail over).
    const remote = this.d.transport.remoteAddress(peer);
    if (addr.host !== remote) {
      this.d.metrics.refusals.inc({ port: 'leaf', reason: 'gossip-endpoint' });
      this.d.log.warn('gossip endpoint refused: not the address of its TLS link; leaf stays on TLS', {
        leaf: s.cert.name,
        endpoint: formatUdpAddress(addr.host, addr.port),
        remote: remote ?? '?',
      });
      return;
    }
    const known = s.gossip !== undefined;
    s.gossip = { host: addr.host, port: addr.port, endpoint: formatUdpAddress(addr.host, addr.port) };
    // A first hello joins the sorted list in place: rebuilding it per hello made every admission
    // cost O(n log n) on a server holding n gossip leaves.
    if (known) this.targetCache = undefined;
    else if (this.targetCache !== undefined) insertById(this.targetCache, { id: s.slot, ...s.gossip });
    this.send(peer, 'gossipSeed', this.relay.seedFor(s.slot, this.targets()));
  }

  private onJoin(
    peer: string,
    cert: LeafCert,
    resumeEpoch: number | undefined,
    crlNumber: bigint | undefined,
  ): void {
    if (this.sessions.get(peer)?.gossip !== undefined) this.targetCache = undefined;
    const session: Session = {
      peer,
      cert,
      awaitingWelcome: true,
      slot: -1,
      gossip: undefined,
      lastPullAt: -Infinity,
      crlNumber,
      refreshCounter: 0,
      lastRefreshAt: -Infinity,
    };
    this.sessions.set(peer, session);
    this.d.metrics.leafSessions.set(this.sessions.size);
    const entry = this.d.machine.entry(cert.name);
    if (
      resumeEpoch !== undefined &&
      entry !== undefined &&
      entry.admittedEpoch === resumeEpoch &&
      entry.serial === cert.serial
    ) {
      this.welcomeWhenSettled(session); // the replicated registry knows this admission: resume
      return;
    }
    if (!this.d.machine.isPrimary) {
      this.send(peer, 'error', {
        code: 'not-primary',
        detail: 'this core server is not in the primary component',
      });
      return;
    }
    // Its admission is already ordered and waits for the next batch (a leaf that timed out
    // waiting for the welcome, or came back on a new link): that batch welcomes this session.
    // Nobody holds its member id yet, so nothing is lost by keeping it; a second admit would
    // replace the first — under load, a retry storm of admissions replacing each other.
    if (entry !== undefined && entry.slot < 0 && entry.serial === cert.serial) return;
    this.order(peer, {
      kind: 'admit',
      value: { name: cert.name, serial: cert.serial, fingerprint: cert.fingerprint, now: this.now() },
    });
  }

  private order(peer: string, cmd: LeafCommand): void {
    if (!this.d.order(cmd)) this.send(peer, 'error', { code: 'overloaded', detail: 'core send queue full' });
  }

  /** Renewals collected since the last call, as one command (undefined when none). */
  takeRenewals(now: number): LeafCommand | undefined {
    if (this.renewals.size === 0) return undefined;
    const renewals = [...this.renewals].map((name) => ({ name, until: now + this.d.leaseMs }));
    this.renewals.clear();
    return { kind: 'renewLeases', value: { renewals } };
  }

  /**
   * Own-key refreshes due now, as one command (undefined when none): each leaf is told its
   * counter first. Call from the batch tick of a primary server.
   */
  takeRefreshes(now: number): LeafCommand | undefined {
    if (now - this.lastRefreshScan >= REFRESH_SCAN_MS) {
      this.lastRefreshScan = now;
      const full = this.d.machine.fullRefresh !== undefined;
      for (const s of this.sessions.values()) {
        if (s.awaitingWelcome || this.refreshDue.has(s.peer)) continue;
        const exposed = full && this.d.machine.entry(s.cert.name)?.exposed === true;
        if (exposed && now - s.lastRefreshAt >= FULL_REFRESH_RETRY_MS) this.refreshDue.set(s.peer, 'full');
        else if (now - s.lastRefreshAt >= this.d.leafKeyRefreshMs) this.refreshDue.set(s.peer, 'periodic');
      }
    }
    if (this.refreshDue.size === 0) return undefined;
    const refreshes = [];
    for (const [peer, cause] of this.refreshDue) {
      if (refreshes.length >= MAX_REFRESHES_PER_COMMAND) break;
      this.refreshDue.delete(peer);
      const s = this.sessions.get(peer);
      const entry = s === undefined ? undefined : this.d.machine.entry(s.cert.name);
      if (s === undefined || s.awaitingWelcome || entry === undefined || entry.slot < 0) continue;
      if (entry.serial !== s.cert.serial) continue;
      const exporter = this.d.exporter(peer);
      if (exporter === undefined) continue; // the link is going down
      const counter = ++s.refreshCounter;
      const key = refreshedLeafKey(this.d.suite, exporter, {
        group: this.d.machine.opts.group,
        admittedEpoch: entry.admittedEpoch,
        counter,
      });
      exporter.fill(0);
      s.lastRefreshAt = now;
      // Before the order: the leaf holds the key when the batch that installs it arrives.
      this.send(peer, 'leafKeyRefresh', { admittedEpoch: entry.admittedEpoch, counter });
      refreshes.push({ name: s.cert.name, admittedEpoch: entry.admittedEpoch, key });
      this.d.metrics.leafKeyRefreshes.inc({ cause });
    }
    return refreshes.length === 0 ? undefined : { kind: 'refreshLeafKeys', value: { refreshes } };
  }

  /** Welcome now, or once everything the replica holds is committed (see `settled`). */
  private welcomeWhenSettled(s: Session): void {
    if (this.settled) return this.welcome(s);
    s.awaitingWelcome = true;
    this.rewelcomes.push(s);
  }

  /** The replica holds state that may not survive a view change (see `settled`). */
  hold(): void {
    this.settled = false;
  }

  /** Everything the replica holds is committed: the relay takes the current key, waiting sessions are welcomed. */
  settle(): void {
    this.leafEpoch = this.d.machine.epoch;
    if (this.settled) return;
    this.settled = true;
    this.installRelayKey();
    this.scheduleRewelcomes();
  }

  get isSettled(): boolean {
    return this.settled;
  }

  private welcome(s: Session): void {
    const entry = this.d.machine.entry(s.cert.name)!;
    const welcome = this.d.machine.welcomeFor(s.cert.name)!;
    s.awaitingWelcome = false;
    s.slot = entry.slot;
    // A new session: its leaf's own key is refreshed with this session's secret (re-link).
    if (s.refreshCounter === 0 && !this.refreshDue.has(s.peer)) this.refreshDue.set(s.peer, 'session');
    this.send(s.peer, 'welcome', {
      welcome: encodeWelcome(welcome),
      epoch: this.d.machine.epoch,
      admittedEpoch: entry.admittedEpoch,
      memberId: entry.memberId,
      leaseMs: this.d.leaseMs,
      signers: this.d.signers(),
      crls: this.crlsFor(s),
    });
  }

  /** Our CRLs unless the leaf already holds CRLs at least as new (then nothing: a resume is cheap). */
  private crlsFor(s: Session): Uint8Array[] {
    const crls = this.d.crls();
    if (!this.owesCrls(s, crls)) return [];
    s.crlNumber = crls.lowest;
    return [...crls.ders];
  }

  private owesCrls(s: Session, crls: InBandCrls): boolean {
    if (crls.ders.length === 0) return false;
    return crls.lowest === undefined || s.crlNumber === undefined || s.crlNumber < crls.lowest;
  }

  /**
   * A newer CRL was loaded: every welcomed leaf is owed a `crlUpdate` with it and the signer list
   * filtered through it (a revoked server's key leaves the leaves' lists). Sent in chunks, one
   * per event-loop turn (the core stack heartbeats on this thread); a link whose queue is full
   * keeps its debt and is tried again a little later. Returns how many leaves are owed.
   */
  pushCrl(): number {
    for (const s of this.sessions.values()) if (!s.awaitingWelcome) this.crlOwed.add(s);
    this.scheduleCrlPush(0);
    return this.crlOwed.size;
  }

  private scheduleCrlPush(delayMs: number): void {
    if (this.crlPushPending || this.crlOwed.size === 0) return;
    this.crlPushPending = true;
    this.d.setTimer('crlPush', delayMs);
  }

  private crlPushChunk(): void {
    const crls = this.d.crls();
    const signers = this.d.signers();
    // Encoded once for every leaf: with our CRLs, or (a leaf that holds them) the signers alone.
    let full: Uint8Array | undefined;
    const bare = encodeLeafFrame('crlUpdate', { crls: [], signers });
    let tried = 0;
    let busy = 0;
    for (const s of [...this.crlOwed]) {
      if (tried >= CRL_PUSH_CHUNK) break;
      if (this.sessions.get(s.peer) !== s) {
        this.crlOwed.delete(s); // gone: a new link gets our CRLs in its welcome
        continue;
      }
      tried++;
      const owes = this.owesCrls(s, crls);
      if (owes) full ??= encodeLeafFrame('crlUpdate', { crls: [...crls.ders], signers });
      if (!this.d.transport.send(s.peer, owes ? full! : bare)) {
        busy++;
        continue;
      }
      if (owes) s.crlNumber = crls.lowest;
      this.crlOwed.delete(s);
    }
    // Links that were busy wait a little (their queues drain); the rest go on next turn.
    this.scheduleCrlPush(busy > 0 && busy === tried ? CRL_PUSH_RETRY_MS : 0);
  }

  /** A batch was applied by the replicated machine: sign it, push it to our leaves, welcome, evict. */
  distribute(batch: BatchOutput): void {
    this.leafEpoch = batch.epoch;
    this.retiredAt.set(batch.epoch - 1, this.now());
    this.retiredAt.delete(batch.epoch - 1 - RETIRED_TRACKED);
    const signature = signBatch(this.d.suite, this.d.signingSeed, batch);
    this.history.record(batch, this.d.signingPublic, signature);
    // Gossip first, addressed by the slots the leaves held before this batch (their gossip ids).
    const split = batch.rekey.split;
    const fallback = new Set(
      this.relay?.routeEpoch(
        { epoch: batch.epoch, header: batch.headerBytes, signer: this.d.signingPublic, signature, split },
        this.targets(),
      ) ?? [],
    );
    const evicted = new Map<string, EvictionReason>(batch.evicted.map((x) => [x.name, x.reason]));
    const admitted = new Set(batch.admitted.map((a) => a.name));
    for (const s of [...this.sessions.values()]) {
      const reason = evicted.get(s.cert.name);
      const entry = this.d.machine.entry(s.cert.name);
      // A 'replaced' admission whose name is admitted again (a reconnect) is not an eviction of this session.
      const replacedByThis = reason === 'replaced' && entry !== undefined && entry.serial === s.cert.serial;
      if (reason !== undefined && !replacedByThis && !(s.awaitingWelcome && admitted.has(s.cert.name))) {
        this.evict(s, reason, batch.epoch);
        continue;
      }
      if (entry === undefined || entry.slot < 0) continue;
      if (s.awaitingWelcome) {
        if (admitted.has(s.cert.name)) {
          this.d.metrics.joins.inc();
          this.welcomeWhenSettled(s);
        }
        continue;
      }
      const viaGossip =
        s.gossip !== undefined && (fallback.size === 0 || !fallback.has(split.partIdFor(s.slot) ?? -1));
      if (!viaGossip) {
        const p = this.history.pushFor(batch.epoch, s.slot);
        if (p !== undefined) this.send(s.peer, 'rekeyPush', p.push);
      }
      s.slot = entry.slot;
    }
    this.targetCache = undefined;
    if (this.settled) this.installRelayKey();
  }

  private evict(s: Session, reason: EvictionReason, epoch: number): void {
    this.send(s.peer, 'evicted', { reason, epoch });
    this.sessions.delete(s.peer);
    this.targetCache = undefined;
    this.d.transport.disconnect(s.peer, `evicted: ${reason}`);
    this.d.log.info('leaf evicted', { leaf: s.cert.name, reason, epoch });
  }

  /**
   * A sealed envelope relayed by the core: into the gossip overlay through our gossip leaves,
   * and over TLS to every other welcomed leaf but its publisher.
   */
  deliverData(originPeer: string | undefined, envelope: Uint8Array): void {
    const targets = this.targets();
    const viaGossip =
      this.relay !== undefined && targets.length > 0 && this.relay.injectData(envelope, targets);
    if (viaGossip && targets.length === this.sessions.size) return; // nobody left for TLS
    for (const s of this.sessions.values()) {
      if (s.peer === originPeer || s.awaitingWelcome || (viaGossip && s.gossip !== undefined)) continue;
      if (this.send(s.peer, 'dataDeliver', { envelope })) this.d.metrics.dataRelayed.inc();
    }
  }

  /** Newly revoked serials (CRL reload): close those leaves' links at once. */
  closeRevoked(serials: ReadonlySet<string>): string[] {
    const closed: string[] = [];
    for (const [peer, cert] of [...this.certs]) {
      if (!serials.has(cert.serial)) continue;
      const s = this.sessions.get(peer);
      if (s !== undefined) this.send(peer, 'evicted', { reason: 'revoked', epoch: this.d.machine.epoch });
      this.sessions.delete(peer);
      this.targetCache = undefined;
      this.d.transport.disconnect(peer, 'certificate revoked');
      closed.push(cert.name);
    }
    return closed;
  }

  /** The replicated state was replaced (state transfer): history no longer matches; leaves catch up or rejoin. */
  onStateReplaced(): void {
    this.history.clear();
    this.retiredAt.clear(); // epochs jumped: data under any epoch before the new one is refused
    this.leafEpoch = undefined;
    this.targetCache = undefined;
    if (this.settled) this.installRelayKey();
    // Our welcomed leaves hold keys of the replaced state, and no push can bridge the gap (the
    // history is gone): each is welcomed again at the new epoch, or dropped if the new registry
    // does not know its admission (it reconnects and joins afresh). Until its welcome a session
    // waits like a joiner (no pushes, no data). The welcomes go out in chunks, one per event-loop
    // turn: thousands in one turn kept the core stack from heartbeating for seconds.
    for (const s of this.sessions.values()) {
      if (s.awaitingWelcome) continue;
      s.awaitingWelcome = true;
      this.rewelcomes.push(s);
    }
    this.scheduleRewelcomes();
  }

  private scheduleRewelcomes(): void {
    if (this.rewelcomes.length > 0 && this.settled && !this.rewelcomeScheduled) {
      this.rewelcomeScheduled = true;
      this.d.setTimer('rewelcome', 0);
    }
  }

  private rewelcomeChunk(): void {
    this.rewelcomeScheduled = false;
    if (!this.settled) return; // settle() schedules them again
    for (const s of this.rewelcomes.splice(0, REWELCOME_CHUNK)) {
      if (this.sessions.get(s.peer) !== s || !s.awaitingWelcome) continue; // gone, or welcomed since
      const entry = this.d.machine.entry(s.cert.name);
      if (entry !== undefined && entry.slot >= 0 && entry.serial === s.cert.serial) {
        this.welcome(s);
        continue;
      }
      this.sessions.delete(s.peer);
      this.d.transport.disconnect(s.peer, 'admission unknown in the committed registry');
    }
    this.d.metrics.leafSessions.set(this.sessions.size);
    this.scheduleRewelcomes();
  }

  private send<K extends LeafFrameType>(peer: string, type: K, body: LeafFrameBody<K>): boolean {
    return this.d.transport.send(peer, encodeLeafFrame(type, body));
  }
}

/** Inserts `t` into `xs` (sorted by id) after any entries with the same id. */
function insertById(xs: GossipTarget[], t: GossipTarget): void {
  let lo = 0;
  let hi = xs.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (xs[mid]!.id <= t.id) lo = mid + 1;
    else hi = mid;
  }
  xs.splice(lo, 0, t);
}
