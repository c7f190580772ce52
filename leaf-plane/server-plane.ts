/**
 * ServerPlane — what one core server does with the ordered stream and with its leaves, as a
 * sans-IO machine: the GroupApp logic of `keyglass server`. The host (server/key-server.ts) owns
 * the GroupMember stack, the sockets, the timers, the files and prom-client; it hands each stack
 * upcall (view, deliver, key, block, unblock, getState, setState), each leaf frame and each timer
 * it was asked for to this machine with the time `now`, and carries out what comes back through
 * `PlaneHost` (multicast a core message, set a timer, time a piece of work) and through the leaf
 * links (`LeafLinks`: send a frame, disconnect a peer). The store it commits to and the primary
 * record it keeps versions in are objects it is given (LeafStore and PrimaryRecord in the
 * server; an in-memory store in a simulation).
 *
 * Replication: every leaf-state command (admit, leave, revoke, renewLeases, cutBatch) goes
 * through the stack's ordered multicast, the commands of one event packed into one message
 * (CommandOutbox); each server applies the ordered commands of PRIMARY views to its own
 * replica, making those one stack event delivered durable together before applying them
 * (`commit` timer at the end of the event: one write, one fsync — group commit). The view's
 * coordinator (its oldest member) orders a `cutBatch` every batch tick while changes are pending
 * (and once a second to expire lapsed leases). Every server signs the batches it applies with its
 * own Ed25519 key and pushes them to its own leaves (LeafEdge). Data envelopes go through the
 * FIFO channel to every server and out to its leaves.
 *
 * Key material: each core key commit hands this server `leafTreeSecret(coreKey, generation)` at
 * the same point of the total order on every member; in a primary view it is ordered into the
 * replica there as a `setKeySecret` command, durable with the commands delivered around it.
 *
 * Uniform release: a batch reaches leaves only once a strict majority of the primary view it was
 * applied in reported it durable (`durable` FIFO acks; see `release`). After a start from the
 * store or a state transfer, nothing the replica holds reaches a leaf (welcomes wait, the relay
 * keeps its key) until a majority of a primary view holds that epoch.
 *
 * Lease grace: the coordinator of a primary view renews every registered lease once (ordered,
 * for GRACE_LEASES leases) when it has just become coordinator or the view lost a member, so
 * leaves whose server died are not evicted for silence the failure caused. Revocations reach the tree: on every primary view (and after a state transfer or a CRL
 * load in one) each server orders a `revoke` for every registered leaf its CRL revokes; a revoked
 * core server's full refresh is ordered in the first primary view without it.
 */
import type { CipherSuite } from '../crypto/index.js';
import { DecodeError } from '../wire/index.js';
import {
  compareVersion,
  nameOf,
  versionText,
  type CoreKeyInfo,
  type Delivery,
  type MemberKey,
  type StateVersion,
  type View,
} from '../core-group/index.js';
import type { RevocationRegistry } from '../auth/index.js';
import {
  MAX_IN_BAND_CRL_BYTES,
  MAX_IN_BAND_CRLS,
  type RequestLimits,
  type SignerKey,
} from '../gossip-edge/index.js';
import { decodeCommand, type LeafCommand } from './commands.js';
import { leafTreeSecret, type ApplyResult, type BatchOutput, type LeafStateMachine } from './machine.js';
import { decodeCoreMessage, encodeCoreMessage } from './core-messages.js';
import { CommandOutbox } from './command-outbox.js';
import { LeafEdge, type EdgeTimer, type InBandCrls, type LeafCert, type LeafLinks } from './edge.js';
import type { PlaneLog, PlaneMetrics } from './observe.js';
import { auditBatch } from './audit.js';

/** The coordinator cuts at least this often, so lapsed leases expire without other activity. */
export const LEASE_SWEEP_MS = 1000;
/** Commands waiting for the total order (about one per linked leaf at most, plus cuts and renewals). */
export const MAX_OUTBOX_COMMANDS = 8192;
/** Renewals per ordered command: 512 × (64-byte name + varints) stays under a stack payload. */
const GRACE_RENEWALS_PER_COMMAND = 512;
/**
 * Leases a grace renewal grants, from the view change. A leaf notices a silent server only when
 * its renewals go unanswered (two thirds of a lease plus one renewal period: up to a lease), then
 * dials another server, is welcomed and renews there; one lease from the view change left a few
 * hundred ms for all that, and a third of a crashed server's leaves lapsed (`keyglass demo --sim`).
 */
const GRACE_LEASES = 2;

/**
 * The plane's timers:
 *   commit   group commit of the commands delivered in the current stack event: fire at the end
 *            of that event, before any other event (the server uses a microtask)
 *   flush    the command outbox: fire once the current event is done (the server: setImmediate)
 *   and the edge's (EdgeTimer).
 */
export type PlaneTimer = EdgeTimer | 'commit' | 'flush';

/** How the plane's effects reach the world: the host implements it. */
export interface PlaneHost {
  /** One core message on the stack's ordered or FIFO channel; false = refused (send queue full). */
  multicast(channel: 'ordered' | 'fifo', payload: Uint8Array): boolean;
  /** Fire `onTimer(timer, now)` after `delay` ms, or at the end of the current event. */
  setTimer(timer: PlaneTimer, delay: number | 'end-of-event'): void;
  /**
   * Runs `work` and reports how long it took ('commit': the store's write and fsync; 'fanOut':
   * handing one batch to this server's leaves). The plane has no clock finer than its events.
   */
  timed<T>(what: 'commit' | 'fanOut', work: () => T): T;
}

/** The durable store the plane commits through (leaf-plane/store.ts LeafStore, or a simulated one). */
export interface PlaneStore {
  /** Commands made durable so far (the replica's position in its own log). */
  readonly index: number;
  /** Makes `commands` durable (one write), then applies them to the machine. */
  commit(commands: readonly LeafCommand[]): ApplyResult[];
  /** Writes the machine's whole state as the new base (after a state transfer). */
  compact(): void;
  /** Makes every command committed so far durable (some commits defer their fsync). */
  sync(): void;
}

/** The durable record of the last primary view and the committed state's version (server/primary-record.ts). */
export interface PlaneRecord {
  stateVersion(storeIndex: number): StateVersion;
  gap(storeIndex: number): void;
  primaryInstalled(step: number, storeIndex: number): void;
  stateInstalled(version: StateVersion, storeIndex: number): void;
}

export interface ServerPlaneOptions {
  /** This server's name (its certificate CN). */
  readonly name: string;
  readonly suite: CipherSuite;
  readonly machine: LeafStateMachine;
  readonly store: PlaneStore;
  readonly record: PlaneRecord;
  /** The CRLs in force here (read only: the host loads them). */
  readonly revocation: Pick<RevocationRegistry, 'installed' | 'isRevokedSerial'>;
  /** This server's rekey-signing key and its certificate serial (announced to the other servers). */
  readonly signingSeed: Uint8Array;
  readonly signingPublic: Uint8Array;
  readonly serial: string;
  readonly leaseMs: number;
  readonly leafKeyRefreshMs: number;
  /** How long a full refresh after a core server's revocation may take (leaf-state `revokeCore`). */
  readonly fullRefreshWindowMs: number;
  readonly requestLimits?: RequestLimits;
  readonly catchUpBytesPerSec?: number;
  /** The TLS exporter of the up leaf link to `peer` (own-key refreshes). */
  exporter(peer: string): Uint8Array | undefined;
  /** The certificate serial the core server `name` last presented on our mesh link, if any. */
  meshSerialOf(name: string): string | undefined;
  readonly links: LeafLinks;
  readonly host: PlaneHost;
  readonly metrics: PlaneMetrics;
  readonly log: PlaneLog;
}

export class ServerPlane {
  readonly edge: LeafEdge;
  readonly machine: LeafStateMachine;
  /** The time of the event being handled (the edge reads it). */
  private now: number;
  private readonly outbox: CommandOutbox;
  private flushOutbox: (() => void) | undefined;
  /** Rekey-signing keys of core servers by name, with their certificate serials. */
  private readonly signers = new Map<string, { publicKey: Uint8Array; serial: string }>();
  /** What welcomes and crlUpdates carry (crlInstalled). */
  private inBandCrls: InBandCrls = { ders: [], lowest: undefined };
  /**
   * Revoked core servers (name → serial) whose full refresh is not ordered yet: it is ordered in
   * the first primary view without them, whose core key — and so every refresh ordered in it —
   * they never hold.
   */
  private readonly coreRevocations = new Map<string, string>();
  private currentView: View | undefined;
  private self: MemberKey | undefined;
  /**
   * Between the stack's block and unblock (and before the first unblock), as its flow control:
   * no cut is ordered (with the core key on, a view's traffic waits for its first key).
   */
  private blocked = true;
  /** The committed state's version when the current flush froze this server (setState's check). */
  private versionAtBlock: StateVersion | undefined;
  private wasCoordinator = false;
  private lastCutAt = -Infinity;
  /** Ordered commands delivered in the current stack event, not yet durable (see enqueueDelivered). */
  private delivered: LeafCommand[] = [];
  /** Batches applied and durable here, not yet known durable at a majority of the primary view (see release). */
  private readonly unreleased: { batch: BatchOutput; committedAt: number }[] = [];
  /** The leaf epoch each member of the current view reported durable in it (`durable` messages). */
  private readonly durableAt = new Map<MemberKey, number>();
  /**
   * The flush of the current view delivered this replica a command after a gap in the view's
   * total order (Delivery.afterGap): what it applies from there is a branch, and the others'
   * acks of an epoch number say nothing of it (they applied the skipped message; their batch of
   * that epoch is another one). It neither acks nor releases until the next view installs a state.
   */
  private branched = false;
  /**
   * The replica's state up to this epoch is not known committed: after a start from the store
   * (its last batches may never have reached a majority) and after a state transfer (the sender's
   * may not have). Undefined once a majority of a primary view held it.
   */
  private uncommittedUpTo: number | undefined;
  private lastReleased: { readonly epoch: number; readonly appliedAtMs: number } | undefined;

  constructor(
    private readonly o: ServerPlaneOptions,
    now: number,
  ) {
    this.now = now;
    this.machine = o.machine;
    this.uncommittedUpTo = o.machine.epoch;
    this.signers.set(o.name, { publicKey: o.signingPublic, serial: o.serial });
    this.edge = new LeafEdge({
      transport: o.links,
      machine: o.machine,
      suite: o.suite,
      signingSeed: o.signingSeed,
      signingPublic: o.signingPublic,
      leaseMs: o.leaseMs,
      leafKeyRefreshMs: o.leafKeyRefreshMs,
      exporter: (peer) => o.exporter(peer),
      signers: () => this.signerList(),
      crls: () => this.inBandCrls,
      order: (cmd) => this.order(cmd),
      publish: (peer, envelope) =>
        o.host.multicast('fifo', encodeCoreMessage({ kind: 'data', value: { origin: peer, envelope } })),
      metrics: o.metrics,
      log: o.log,
      ...(o.requestLimits !== undefined ? { requestLimits: o.requestLimits } : {}),
      ...(o.catchUpBytesPerSec !== undefined ? { catchUpBytesPerSec: o.catchUpBytesPerSec } : {}),
      now: () => this.now,
      setTimer: (timer, delayMs) => o.host.setTimer(timer, delayMs),
    });
    this.outbox = new CommandOutbox(MAX_OUTBOX_COMMANDS, {
      multicast: (payload) => o.host.multicast('ordered', payload),
      schedule: (flush) => {
        this.flushOutbox = flush;
        o.host.setTimer('flush', 0);
      },
    });
  }

  private at(now: number): void {
    // Event times come from the host's wall clock: never let the plane's own time run backwards.
    if (now > this.now) this.now = now;
  }

  // ── events from the host ─────────────────────────────────────────────────────────────────

  /** A timer this plane (or its edge) asked for fired. */
  onTimer(timer: PlaneTimer, now: number): void {
    this.at(now);
    switch (timer) {
      case 'commit':
        return this.commitDelivered();
      case 'flush': {
        const flush = this.flushOutbox;
        this.flushOutbox = undefined;
        return flush?.();
      }
      default:
        return this.edge.onTimer(timer);
    }
  }

  /** A leaf link's certificate was verified (the leaf port's identify, or its TLS thread). */
  leafCertificate(peer: string, cert: LeafCert): void {
    this.edge.rememberCert(peer, cert);
  }

  leafMessage(peer: string, data: Uint8Array, now: number): void {
    this.at(now);
    this.edge.onMessage(peer, data);
  }

  leafDown(peer: string, now: number): void {
    this.at(now);
    this.edge.onPeerDown(peer);
  }

  /** The stack's tick: the messages it refused earlier go out now. */
  stackTick(now: number): void {
    this.at(now);
    this.outbox.flush();
  }

  /**
   * Every batch interval: order the renewals and own-key refreshes collected (primary), and the
   * view's coordinator cuts a batch when changes wait (or to sweep lapsed leases).
   */
  batchTick(now: number): void {
    this.at(now);
    if (this.machine.isPrimary) {
      const renew = this.edge.takeRenewals(now);
      if (renew !== undefined) this.order(renew);
      const refresh = this.edge.takeRefreshes(now);
      if (refresh !== undefined) this.order(refresh);
    }
    if (!this.isCoordinator || this.blocked) return;
    if (this.machine.pendingChanges > 0 || now - this.lastCutAt >= LEASE_SWEEP_MS) {
      this.lastCutAt = now;
      this.order({ kind: 'cutBatch', value: { epoch: this.machine.epoch + 1, now } });
    }
  }

  // ── GroupApp upcalls, with the time ──────────────────────────────────────────────────────

  view(view: View, self: MemberKey, now: number): void {
    this.at(now);
    this.commitDelivered(); // the old view's commands, applied as the primary they were delivered in
    this.versionAtBlock = undefined;
    const lostMember = this.currentView?.members.some((m) => !view.members.includes(m)) ?? false;
    this.currentView = view;
    this.self = self;
    this.durableAt.clear(); // acks count in the view they were sent in
    // The new view installs one state at every member (flush, state transfer): a branch either
    // lost (setState replaced it) or is the state every member now holds.
    this.branched = false;
    // Before any command of the view is applied (see PrimaryRecord).
    if (view.primary) {
      // The record names a store position: that position must be durable first, or a machine
      // crash that loses deferred admissions leaves a record ahead of its store, and the server
      // refuses to start (found by the system simulation, seeds 145, 329, 462, 597).
      this.o.store.sync();
      this.o.record.primaryInstalled(view.lastPrimary.step, this.o.store.index);
    }
    this.machine.setPrimary(view.primary);
    this.orderCoreRevocations();
    const coordinator = this.isCoordinator;
    if (coordinator && (!this.wasCoordinator || lostMember)) this.graceRenewal();
    this.wasCoordinator = coordinator;
    // Members that left keep their signing keys known; every member announces its own again.
    const own = this.signers.get(this.o.name)!;
    this.o.host.multicast(
      'fifo',
      encodeCoreMessage({
        kind: 'signer',
        value: { name: this.o.name, publicKey: own.publicKey, serial: own.serial },
      }),
    );
    this.orderCrlRevocations('primary view');
    // Every member of a primary view holds the same state once it is installed (flush, state
    // transfer): each says so, and what waited for a majority is released on those acks.
    this.ackDurable();
  }

  deliver(d: Delivery, now: number): void {
    this.at(now);
    let msg;
    try {
      msg = decodeCoreMessage(d.payload);
    } catch (e) {
      if (!(e instanceof DecodeError)) throw e;
      this.o.metrics.decodeFailures.inc({ channel: 'core' });
      return;
    }
    switch (msg.kind) {
      case 'commands':
        if (d.channel !== 'ordered' || !this.machine.isPrimary) return; // a non-primary component changes nothing
        // Durable before any command after the gap (PrimaryRecord: the version's prefix stops there).
        if (d.afterGap === true) {
          this.o.record.gap(this.o.store.index + this.delivered.length);
          this.branched = true;
        }
        for (const bytes of msg.value.commands) {
          let cmd;
          try {
            cmd = decodeCommand(bytes);
          } catch (e) {
            if (!(e instanceof DecodeError)) throw e;
            this.o.metrics.decodeFailures.inc({ channel: 'core' });
            continue; // every replica skips the same command
          }
          this.enqueueDelivered(cmd);
        }
        return;
      case 'data':
        return this.edge.deliverData(
          d.sender === this.self ? msg.value.origin : undefined,
          msg.value.envelope,
        );
      case 'signer': {
        const name = nameOf(d.sender);
        if (name !== msg.value.name) return;
        // The serial its certificate showed on our mesh link wins over the announced one.
        const seen = this.o.meshSerialOf(name);
        if (seen !== undefined && seen !== msg.value.serial)
          this.o.log.warn('signer serial differs from its mesh certificate', { server: name });
        this.signers.set(name, { publicKey: msg.value.publicKey, serial: seen ?? msg.value.serial });
        return;
      }
      case 'durable': {
        const v = this.currentView;
        // An ack sent while blocked travels in the next view, about the state of the old one: dropped.
        if (v === undefined || d.sender === this.self || msg.value.view !== viewText(v)) return;
        this.durableAt.set(d.sender, msg.value.epoch);
        return this.release();
      }
    }
  }

  /**
   * A core key committed, at the same point of the total order on every member of the view: the
   * replicas of a primary view take its leaf-tree secret there, in order with the commands
   * delivered around it (and durable with them). A non-primary component changes nothing; it
   * receives the primary's state when it merges back. The core key is wiped here.
   */
  key(info: CoreKeyInfo, now: number): void {
    this.at(now);
    if (!this.machine.isPrimary) {
      info.coreKey.fill(0);
      return;
    }
    // Generations restart at 1 in a cluster restarted from its stores (generation bump); the
    // replicas agree on their secret generation here, so counting on from it stays deterministic.
    const generation = Math.max(info.epoch, this.pendingSecretGeneration() + 1);
    const secret = leafTreeSecret(this.o.suite, info.coreKey, info.epoch);
    info.coreKey.fill(0);
    this.enqueueDelivered({ kind: 'setKeySecret', value: { generation, secret } });
  }

  block(now: number): void {
    this.at(now);
    this.commitDelivered();
    this.blocked = true;
    this.versionAtBlock ??= this.stateVersion();
  }

  unblock(now: number): void {
    this.at(now);
    this.blocked = false;
  }

  getState(now: number): Uint8Array {
    this.at(now);
    this.commitDelivered();
    return this.machine.snapshot();
  }

  stateVersion(): StateVersion {
    return this.o.record.stateVersion(this.o.store.index);
  }

  setState(state: Uint8Array, version: StateVersion, now: number): void {
    this.at(now);
    // The stack keeps the newest state of every merge (gms.ts), as the members reported it when
    // they froze for the flush: an older one would undo changes.
    const own = this.versionAtBlock ?? this.stateVersion();
    if (compareVersion(version, own) < 0)
      this.o.log.error('state transfer from an older state version', {
        own: versionText(own),
        received: versionText(version),
      });
    this.setLeafState(state);
    this.o.record.stateInstalled(version, this.o.store.index);
  }

  // ── CRLs ─────────────────────────────────────────────────────────────────────────────────

  /**
   * The host (re)loaded the CRLs into the registry: recompute what goes to leaves in band.
   * Returns whether it changed (then `pushCrl` owes it to every welcomed leaf).
   */
  crlInstalled(): boolean {
    const before = this.inBandCrls;
    const installed = this.o.revocation.installed();
    const ders = installed.map((c) => c.der);
    if (ders.length > MAX_IN_BAND_CRLS || ders.some((d) => d.length > MAX_IN_BAND_CRL_BYTES)) {
      this.o.log.warn('CRL too large to send to leaves in band; leaves need it as a file', {
        crls: ders.length,
        bytes: ders.reduce((n, d) => n + d.length, 0),
      });
      this.inBandCrls = { ders: [], lowest: undefined };
    } else {
      let lowest: bigint | undefined = installed[0]?.crlNumber;
      for (const c of installed)
        lowest = c.crlNumber === undefined || lowest === undefined ? undefined : min(lowest, c.crlNumber);
      this.inBandCrls = { ders, lowest };
    }
    return !sameCrls(before, this.inBandCrls);
  }

  /** The new in-band CRLs go out to every welcomed leaf (in chunks); how many are owed. */
  pushCrl(now: number): number {
    this.at(now);
    return this.edge.pushCrl();
  }

  /**
   * Certificates newly revoked by a CRL load: those leaves' links close at once, their revokes
   * are ordered (a primary view), and each revoked core server's full refresh of the leaf tree
   * waits for the first primary view without it. Returns the names of the leaves disconnected.
   */
  revoked(
    serials: ReadonlySet<string>,
    coreServers: readonly { name: string; serial: string }[],
    now: number,
  ): string[] {
    this.at(now);
    const closed = this.edge.closeRevoked(serials);
    for (const { name, serial } of coreServers) this.coreRevocations.set(name, serial);
    this.orderCoreRevocations();
    if (this.machine.isPrimary)
      for (const serial of serials)
        this.order({ kind: 'revoke', value: { target: { kind: 'serial', value: serial }, immediate: true } });
    return closed;
  }

  // ── what the host reports ────────────────────────────────────────────────────────────────

  /** This member coordinates a primary view (it cuts batches and renews leases after a failure). */
  get isCoordinator(): boolean {
    const v = this.currentView;
    return v !== undefined && v.primary && v.members[0] === this.self;
  }

  /** The last batch released to leaves here: its epoch and when (ms since the Unix epoch). */
  get lastBatch(): { readonly epoch: number; readonly appliedAtMs: number } | undefined {
    return this.lastReleased;
  }

  get signerNames(): string[] {
    return [...this.signers.keys()].sort();
  }

  /** Commands waiting for the total order. */
  get queuedCommands(): number {
    return this.outbox.queued;
  }

  /** Drops what waits for the order (the host is stopping). */
  stop(): void {
    this.outbox.clear();
    this.flushOutbox = undefined;
  }

  // ── ordering and commit ──────────────────────────────────────────────────────────────────

  /** Submits a command to the core's total order (packed with its event's others); false = full. */
  private order(cmd: LeafCommand): boolean {
    return this.outbox.submit(cmd);
  }

  /** The secret generation the replica will hold once the commands delivered so far are applied. */
  private pendingSecretGeneration(): number {
    let g = this.machine.secretGeneration;
    for (const c of this.delivered) if (c.kind === 'setKeySecret') g = Math.max(g, c.value.generation);
    return g;
  }

  /**
   * Group commit: the ordered commands one stack event delivers (an ORDER record releases up to a
   * tick's worth of them) are made durable together — one write, one fsync — at the end of that
   * event, instead of one fsync each. No one observes the replica in between: the stack's other
   * upcalls commit first (`commitDelivered` at their start), and the host runs timers, leaf
   * messages and admin requests as later events. A welcome or rekey push leaves only after the
   * batch that carries it is durable.
   */
  private enqueueDelivered(cmd: LeafCommand): void {
    if (this.delivered.length === 0) this.o.host.setTimer('commit', 'end-of-event');
    this.delivered.push(cmd);
  }

  private commitDelivered(): void {
    if (this.delivered.length === 0) return;
    const cmds = this.delivered;
    this.delivered = [];
    const results = this.o.host.timed('commit', () => this.o.store.commit(cmds));
    this.o.metrics.commitCommands.observe(cmds.length);
    results.forEach((result, i) => {
      if (result.refused !== undefined)
        this.o.log.info('command refused', {
          kind: cmds[i]!.kind,
          leaf: result.refused.name,
          reason: result.refused.reason,
        });
      if (result.batch !== undefined) {
        this.unreleased.push({ batch: result.batch, committedAt: this.now });
        this.edge.hold();
      }
    });
    this.o.metrics.leavesExposed.set(this.machine.exposedLeaves);
    if (this.unreleased.length > 0) this.ackDurable();
  }

  /** Tells the view which leaf epoch this replica holds durably in it (the batches it applied are fsynced). */
  private ackDurable(): void {
    const v = this.currentView;
    if (v === undefined || !v.primary || this.branched) return;
    this.o.host.multicast(
      'fifo',
      encodeCoreMessage({ kind: 'durable', value: { view: viewText(v), epoch: this.machine.epoch } }),
    );
    this.release();
  }

  /**
   * Uniform release. Virtual synchrony delivers a message to the members that stay together, not
   * to every member: a server can apply a batch that the rest of its primary view never receives
   * (it is cut off, or crashes, first). That batch is orphaned — the next primary view goes on
   * without it and cuts other batches under the same epoch numbers, with other members — so
   * sending its keys, welcomes or pushes to leaves could hand a leaf that the committed history
   * evicted a key it must not hold. So a batch reaches leaves only once a strict majority of the
   * primary view it was applied in reported it durable: every later primary view holds a
   * majority of this one (gms.ts) and takes the most advanced state among its members, so the
   * batch is never undone. The cost is one FIFO round among the servers per batch.
   */
  private release(): void {
    const v = this.currentView;
    // After a gap, an ack of epoch n is of the others' batch n, not of this replica's (seed 8193).
    if (v === undefined || !v.primary || this.branched) return;
    // The epoch a majority of the view holds: the majority-th highest ack, this replica included.
    const acks = v.members.map((m) => (m === this.self ? this.machine.epoch : (this.durableAt.get(m) ?? -1)));
    acks.sort((a, b) => b - a);
    const committed = acks[Math.floor(v.members.length / 2)]!;
    if (this.uncommittedUpTo !== undefined && committed >= this.uncommittedUpTo)
      this.uncommittedUpTo = undefined;
    while (this.unreleased.length > 0 && this.unreleased[0]!.batch.epoch <= committed) {
      const { batch, committedAt } = this.unreleased.shift()!;
      if (this.unreleased.length === 0 && this.uncommittedUpTo === undefined) this.edge.settle();
      this.distribute(batch, committedAt);
    }
    if (this.unreleased.length === 0 && this.uncommittedUpTo === undefined) this.edge.settle();
  }

  private distribute(batch: BatchOutput, committedAt: number): void {
    this.o.host.timed('fanOut', () => this.edge.distribute(batch));
    this.lastReleased = { epoch: batch.epoch, appliedAtMs: this.now };
    const m = this.o.metrics;
    m.batchRekeySeconds.observe((this.now - committedAt) / 1000);
    m.batchSize.observe(batch.admitted.length + batch.evicted.length);
    m.rekeyBytes.inc(batch.rekey.encoded.length);
    for (const e of batch.evicted) m.evictions.inc({ reason: e.reason });
    // The audit trail: a line per admission and removal, wherever the leaf is linked ('leaf
    // evicted' names only this server's sessions), once the batch can no longer be undone.
    auditBatch(this.o.log, this.o.name, batch);
    m.leafEpoch.set(batch.epoch);
    m.leafMembers.set(this.machine.members);
    this.o.log.debug('batch applied', {
      epoch: batch.epoch,
      joins: batch.admitted.length,
      departures: batch.evicted.length,
    });
  }

  private setLeafState(state: Uint8Array): void {
    this.commitDelivered();
    // A member merging back often already holds exactly this state (no batch since it left).
    // Then nothing is replaced: restoring, compacting the store and re-welcoming every linked
    // leaf would block this server's event loop for seconds at 10^4 leaves — past the failure
    // detector's bound, so it was excluded again and got the same state again, in a loop.
    if (equalBytes(state, this.machine.snapshot())) {
      this.o.log.info('state transfer: already at this state', { epoch: this.machine.epoch });
      return;
    }
    this.machine.restore(state);
    this.o.store.compact(); // the transferred state (and its secret) is now this replica's durable state
    // What waited for a majority is replaced, and the sender's newest batches may not have one yet.
    this.unreleased.length = 0;
    this.uncommittedUpTo = this.machine.epoch;
    this.edge.hold();
    this.edge.onStateReplaced();
    this.orderCrlRevocations('state transfer');
    this.o.metrics.leafEpoch.set(this.machine.epoch);
    this.o.metrics.leafMembers.set(this.machine.members);
    this.o.log.info('state transferred', { epoch: this.machine.epoch, leaves: this.machine.members });
  }

  /** Renews every registered lease once (see Lease grace above), in bounded commands. */
  private graceRenewal(): void {
    const until = this.now + GRACE_LEASES * this.o.leaseMs;
    const names = [...this.machine.parts().entries.keys()];
    for (let i = 0; i < names.length; i += GRACE_RENEWALS_PER_COMMAND) {
      const renewals = names.slice(i, i + GRACE_RENEWALS_PER_COMMAND).map((name) => ({ name, until }));
      this.order({ kind: 'renewLeases', value: { renewals } });
    }
  }

  /**
   * Every registered leaf whose certificate our CRL revokes: order its revoke (a primary view
   * only; idempotent — a serial whose leaf is gone is a no-op at every replica, so several
   * servers ordering the same one do no harm). It runs on every view change, on the thread that
   * heartbeats the core: it walks the smaller of the CRLs and the registry, one map lookup each.
   */
  private orderCrlRevocations(why: string): void {
    if (!this.machine.isPrimary) return;
    const crls = this.o.revocation.installed();
    const entries = this.machine.parts().entries;
    let ordered = 0;
    const revoke = (serial: string): void => {
      this.order({ kind: 'revoke', value: { target: { kind: 'serial', value: serial }, immediate: true } });
      ordered++;
    };
    if (crls.reduce((n, c) => n + c.revoked.size, 0) <= entries.size) {
      for (const c of crls)
        for (const serial of c.revoked.keys()) if (this.machine.hasSerial(serial)) revoke(serial);
    } else {
      for (const e of entries.values()) if (this.o.revocation.isRevokedSerial(e.serial)) revoke(e.serial);
    }
    if (ordered > 0) this.o.log.info('revocations ordered for registered leaves', { why, ordered });
  }

  /**
   * Post-compromise recovery: a revoked core server knew every leaf's own key. Once a primary
   * view excludes it, order the full refresh (leaf-state machine `revokeCore`): commands of this
   * view travel under a core key it never had, so the refreshes ordered in it are unknown to it.
   */
  private orderCoreRevocations(): void {
    const v = this.currentView;
    if (this.coreRevocations.size === 0 || v === undefined || !v.primary || !this.machine.isPrimary) return;
    const members = new Set(v.members.map((m) => nameOf(m)));
    for (const [name, serial] of this.coreRevocations) {
      if (members.has(name)) continue; // still in the view: wait for its exclusion
      this.coreRevocations.delete(name);
      const windowMs = this.o.fullRefreshWindowMs;
      this.order({ kind: 'revokeCore', value: { serial, now: this.now, windowMs } });
      this.o.log.warn('core server revoked: full refresh of the leaf tree ordered', {
        server: name,
        windowMs,
      });
    }
  }

  /** The signers to list to leaves: none whose certificate our CRL revokes. */
  private signerList(): SignerKey[] {
    const out: SignerKey[] = [];
    for (const [name, { publicKey, serial }] of this.signers)
      if (!this.o.revocation.isRevokedSerial(serial)) out.push({ name, publicKey, serial });
    return out;
  }
}

function min(a: bigint, b: bigint): bigint {
  return a < b ? a : b;
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function sameCrls(a: InBandCrls, b: InBandCrls): boolean {
  return a.ders.length === b.ders.length && a.ders.every((d, i) => equalBytes(d, b.ders[i]!));
}

function viewText(v: View): string {
  return `${v.id.epoch}@${v.id.coord}`;
}
