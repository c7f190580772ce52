/**
 * One simulated core key server: a `GroupMember` (virtual synchrony) carrying a replica of the
 * `LeafStateMachine` as its replicated state, the signed `RekeyHistory`, and the leaf sessions
 * attached to it. It is the same division of labour a real `keyglass server` has, hosted on the
 * simulator instead of TLS sockets:
 *
 *  - a leaf's `join`, `leave` and the operator's `revoke` become leaf commands multicast on the
 *    ordered channel; every replica applies them in the same order (primary views only);
 *  - the view's coordinator (members[0]) multicasts `cutBatch` every batch interval while
 *    changes are pending; every replica cuts the identical epoch, signs its header with its own
 *    Ed25519 key and pushes each attached leaf the part it needs (RekeyHistory.pushFor);
 *  - published data is relayed through the group (fifo channel) and each server hands it to its
 *    attached leaves;
 *  - a joiner gets the replicated state (snapshot) with the view that admits it.
 *
 * Not simulated: TLS and certificates. A leaf's identity is the simulated node it sends from
 * (what a verified TLS certificate gives a real server).
 */
import type { CipherSuite } from '../../crypto/index.js';
import {
  GroupMember,
  type Delivery,
  type GroupApp,
  type MemberKey,
  type View,
} from '../../core-group/index.js';
import {
  LeafStateMachine,
  RekeyHistory,
  decodeCommand,
  encodeCommand,
  type BatchOutput,
  type LeafCommand,
} from '../../leaf-plane/index.js';
import {
  decodeLeafFrame,
  encodeLeafFrame,
  type LeafFrame,
  type LeafFrameBody,
  type LeafFrameType,
  type LeafErrorCode,
  type SignerKey,
} from '../../gossip-edge/index.js';
import { encodeWelcome } from '../../keytree/index.js';
import type { NodeEnv } from '../../net/index.js';
import { DecodeError } from '../../wire/index.js';
import type { DemoRecorder } from './recorder.js';

/** First byte of a group payload. */
const TAG_COMMAND = 1;
const TAG_DATA = 2;
/** Bound on commands and relays a server queues while its group refuses sends (a flush). */
const MAX_OUTBOX = 8192;
/** A cut not delivered after this long is issued again (a duplicate cut is a no-op). */
const CUT_RETRY_MS = 1_000;

export interface ServerConfig {
  readonly suite: CipherSuite;
  readonly recorder: DemoRecorder;
  /** Server transport names, index = simulator node id. */
  readonly names: readonly string[];
  readonly founders: readonly MemberKey[];
  readonly incarnationStride: number;
  readonly group: Uint8Array;
  readonly treeSecret: Uint8Array;
  readonly signingSeed: Uint8Array;
  readonly signers: readonly SignerKey[];
  readonly batchMs: number;
  readonly leaseMs: number;
  /** Transport identity of a leaf node (the simulator's stand-in for its TLS certificate). */
  readonly leafName: (node: number) => string;
  readonly isServer: (node: number) => boolean;
  /** Tap for the eavesdropper: every batch and every relayed envelope (called by every replica). */
  readonly onBatch: (b: BatchOutput) => void;
  readonly onData: (envelope: Uint8Array) => void;
}

interface Session {
  readonly node: number;
  /** The leaf's slot as of the newest epoch pushed to it. */
  slot: number;
}

export class ServerNode implements GroupApp {
  readonly member: GroupMember;
  readonly machine: LeafStateMachine;
  private readonly history = new RekeyHistory();
  private readonly signerPublic: Uint8Array;
  /** Admitted leaves this server pushes rekeys and data to. */
  private readonly sessions = new Map<string, Session>();
  /** Leaves whose admission this server ordered and whose welcome it owes. */
  private readonly joining = new Map<string, number>();
  private readonly outbox: { channel: 'ordered' | 'fifo'; payload: Uint8Array }[] = [];
  private installed: View | undefined;
  private cutIssued = { epoch: -1, at: -Infinity };

  constructor(
    private readonly cfg: ServerConfig,
    private readonly env: NodeEnv<Uint8Array>,
  ) {
    const name = cfg.names[env.id]!;
    this.machine = new LeafStateMachine({
      suite: cfg.suite,
      group: cfg.group,
      secret: cfg.treeSecret,
      leaseMs: cfg.leaseMs,
    });
    this.signerPublic = cfg.suite.ed25519PublicKey(cfg.signingSeed);
    const idOf = new Map(cfg.names.map((n, i) => [n, i]));
    this.member = new GroupMember(
      {
        name,
        incarnation: (env.incarnation + 1) * cfg.incarnationStride,
        founders: cfg.founders,
        peers: cfg.names,
      },
      { now: () => env.now(), send: (to, bytes) => this.sendRaw(idOf.get(to)!, bytes, true) },
      this,
    );
    this.member.start();
    env.setTimer(env.rng.int(this.member.tickMs), this.tick);
    env.setTimer(cfg.batchMs, this.batchTimer);
  }

  get name(): string {
    return this.cfg.names[this.env.id]!;
  }

  get currentView(): View | undefined {
    return this.installed;
  }

  get isCoordinator(): boolean {
    const v = this.installed;
    return v !== undefined && v.primary && v.members[0] === this.member.self && !this.member.blocked;
  }

  onMessage(from: number, bytes: Uint8Array): void {
    if (this.cfg.isServer(from)) this.member.receive(bytes);
    else this.fromLeaf(from, bytes);
  }

  /** Operator action: revoke a leaf by name with an immediate batch. */
  revoke(name: string): void {
    this.cfg.recorder.cutIssued(this.machine.epoch + 1, this.env.now());
    this.enqueueCommand({
      kind: 'revoke',
      value: { target: { kind: 'name', value: name }, immediate: true },
    });
  }

  // ── timers ─────────────────────────────────────────────────────────────────────────────────

  private readonly tick = (): void => {
    this.member.tick();
    this.drain();
    this.env.setTimer(this.member.tickMs, this.tick);
  };

  /** The coordinator orders a cut every batch interval while changes are pending. */
  private readonly batchTimer = (): void => {
    this.env.setTimer(this.cfg.batchMs, this.batchTimer);
    if (!this.isCoordinator || this.machine.pendingChanges === 0) return;
    const next = this.machine.epoch + 1;
    const now = this.env.now();
    if (this.cutIssued.epoch === next && now - this.cutIssued.at < CUT_RETRY_MS) return;
    this.cutIssued = { epoch: next, at: now };
    this.cfg.recorder.cutIssued(next, now);
    this.enqueueCommand({ kind: 'cutBatch', value: { epoch: next, now: this.replicatedNow() } });
  };

  // ── GroupApp upcalls ───────────────────────────────────────────────────────────────────────

  view(view: View): void {
    this.installed = view;
    this.machine.setPrimary(view.primary);
    this.cfg.recorder.view({
      t: this.env.now(),
      server: this.name,
      id: `${view.id.epoch}@${view.id.coord}`,
      members: view.members.length,
      primary: view.primary,
    });
  }

  deliver(d: Delivery): void {
    const tag = d.payload[0];
    const body = d.payload.subarray(1);
    if (tag === TAG_DATA) return this.relayData(body);
    if (tag !== TAG_COMMAND || d.channel !== 'ordered')
      throw new Error(`unexpected group payload tag ${tag}`);
    // Only a primary view may change the leaf registry or tree (DESIGN §Core group, property 4);
    // a command ordered elsewhere is dropped and its leaf retries.
    if (!this.installed?.primary) return;
    const cmd = decodeCommand(body);
    const t0 = performance.now();
    const res = this.machine.apply(cmd);
    if (res.batch !== undefined) this.emit(res.batch, t0);
  }

  unicast(): void {}
  block(): void {}
  unblock(): void {}

  getState(): Uint8Array {
    return this.machine.snapshot();
  }

  setState(state: Uint8Array): void {
    this.machine.restore(state);
    // The signed history is not replicated: a restored replica starts it afresh, and a leaf that
    // needs an older epoch from it is told to re-join, which is always correct. Its sessions go
    // on from the registry it received; a session the registry does not hold re-joins now.
    this.history.clear();
    for (const [name, s] of this.sessions) {
      const entry = this.machine.entry(name);
      if (entry !== undefined && entry.slot >= 0) {
        s.slot = entry.slot;
        continue;
      }
      this.sessions.delete(name);
      this.toLeaf(s.node, 'catchUpReply', { pushes: [], rejoin: true });
    }
    this.cfg.recorder.stateTransfers++;
  }

  // ── batches ────────────────────────────────────────────────────────────────────────────────

  /** A cut on this replica: sign, record, welcome the joiners it admitted, push everyone else's part. */
  private emit(batch: BatchOutput, t0: number): void {
    const rec = this.cfg.recorder;
    const signature = this.cfg.suite.ed25519Sign(this.cfg.signingSeed, batch.toSign);
    this.history.record(batch, this.signerPublic, signature);
    rec.batchProduced({
      epoch: batch.epoch,
      t: this.env.now(),
      members: this.machine.members,
      joins: batch.admitted.length,
      departures: batch.evicted.length,
      rekeyBytes: batch.rekey.encoded.length,
    });
    for (const d of batch.evicted) {
      const s = this.sessions.get(d.name);
      if (s === undefined) continue;
      this.sessions.delete(d.name);
      this.toLeaf(s.node, 'evicted', { reason: d.reason, epoch: batch.epoch });
    }
    for (const s of this.sessions.values()) {
      const p = this.history.pushFor(batch.epoch, s.slot);
      if (p === undefined) {
        rec.pushErrors++;
        continue;
      }
      s.slot = p.slotAfter;
      rec.pushSent(batch.epoch, this.toLeaf(s.node, 'rekeyPush', p.push));
    }
    for (const a of batch.admitted) {
      const node = this.joining.get(a.name);
      if (node === undefined) continue;
      this.joining.delete(a.name);
      this.sessions.set(a.name, { node, slot: a.slot });
      this.toLeaf(node, 'welcome', {
        welcome: encodeWelcome(a.welcome),
        epoch: batch.epoch,
        admittedEpoch: a.admittedEpoch,
        memberId: a.memberId,
        leaseMs: this.cfg.leaseMs,
        signers: [...this.cfg.signers],
        crls: [],
      });
    }
    rec.serverCpuMs.push(performance.now() - t0);
    this.cfg.onBatch(batch);
  }

  private relayData(envelope: Uint8Array): void {
    this.cfg.onData(envelope);
    for (const s of this.sessions.values()) this.toLeaf(s.node, 'dataDeliver', { envelope });
  }

  // ── leaf sessions ──────────────────────────────────────────────────────────────────────────

  private fromLeaf(from: number, bytes: Uint8Array): void {
    let f: LeafFrame;
    try {
      f = decodeLeafFrame(bytes);
    } catch (e) {
      if (e instanceof DecodeError) return this.toLeafError(from, 'malformed', 'frame did not decode');
      throw e;
    }
    const name = this.cfg.leafName(from);
    switch (f.type) {
      case 'join':
        this.joining.set(name, from);
        this.sessions.delete(name);
        this.enqueueCommand({
          kind: 'admit',
          value: {
            name,
            serial: `serial-${name}`,
            fingerprint: this.cfg.suite.sha256(new TextEncoder().encode(name)),
            now: this.replicatedNow(),
          },
        });
        return;
      case 'leaseRenew':
        this.toLeaf(from, 'leaseAck', { seq: f.body.seq, leaseMs: this.cfg.leaseMs, stream: undefined });
        return;
      case 'dataPublish':
        if (!this.sessions.has(name))
          return this.toLeafError(from, 'not-admitted', 'publish without a session');
        this.enqueue('fifo', tagged(TAG_DATA, f.body.envelope));
        return;
      case 'leave':
        return this.leave(from, name);
      case 'catchUpRequest':
        return this.catchUp(from, name, f.body.fromEpoch, f.body.slot);
      default:
        return this.toLeafError(from, 'unexpected', `${f.type} frame`);
    }
  }

  /** The session stays until the batch that removes the leaf, which confirms with `evicted`. */
  private leave(node: number, name: string): void {
    const entry = this.machine.entry(name);
    if (entry === undefined) {
      // Already removed (the confirmation was lost with a crashed server): confirm again.
      this.toLeaf(node, 'evicted', { reason: 'left', epoch: this.machine.epoch });
      return;
    }
    if (entry.slot >= 0 && !this.sessions.has(name)) this.sessions.set(name, { node, slot: entry.slot });
    this.enqueueCommand({ kind: 'leave', value: { name } });
  }

  /** A leaf failing over to this server (or that missed pushes) asks for the epochs it lacks. */
  private catchUp(node: number, name: string, fromEpoch: number, slot: number): void {
    this.cfg.recorder.catchUps++;
    const entry = this.machine.entry(name);
    if (entry === undefined || entry.slot < 0) {
      this.toLeaf(node, 'catchUpReply', { pushes: [], rejoin: true });
      return;
    }
    // Its own path only (as a real server): the walk from its slot must end at its slot now.
    const at = this.history.slotNow(fromEpoch, slot);
    const reply =
      at !== undefined && at !== entry.slot
        ? { pushes: [], rejoin: true }
        : this.history.catchUp(fromEpoch, slot);
    this.toLeaf(node, 'catchUpReply', reply);
    // Serve the leaf from now on once the reply brings it to the newest epoch.
    const reaches = fromEpoch + reply.pushes.length - 1 >= this.machine.epoch;
    if (!reply.rejoin && reaches) this.sessions.set(name, { node, slot: entry.slot });
  }

  /** The time carried in commands: whole ms (virtual time has fractions; the codec wants integers). */
  private replicatedNow(): number {
    return Math.floor(this.env.now());
  }

  private toLeaf<K extends LeafFrameType>(node: number, type: K, body: LeafFrameBody<K>): number {
    const bytes = encodeLeafFrame(type, body);
    this.sendRaw(node, bytes, false);
    return bytes.length;
  }

  private toLeafError(node: number, code: LeafErrorCode, detail: string): void {
    this.toLeaf(node, 'error', { code, detail });
  }

  private sendRaw(node: number, bytes: Uint8Array, core: boolean): void {
    const rec = this.cfg.recorder;
    if (core) {
      rec.coreBytes += bytes.length;
      rec.coreMessages++;
    } else {
      rec.leafBytes += bytes.length;
      rec.leafMessages++;
    }
    this.env.send(node, bytes);
  }

  // ── group sends ────────────────────────────────────────────────────────────────────────────

  private enqueueCommand(cmd: LeafCommand): void {
    this.enqueue('ordered', tagged(TAG_COMMAND, encodeCommand(cmd)));
  }

  private enqueue(channel: 'ordered' | 'fifo', payload: Uint8Array): void {
    if (this.outbox.length >= MAX_OUTBOX) return; // shed: the leaf retries, the coordinator re-cuts
    this.outbox.push({ channel, payload });
    this.drain();
  }

  /** Hands queued sends to the group until it pushes back (a full send queue during a flush). */
  private drain(): void {
    while (this.outbox.length > 0) {
      const m = this.outbox[0]!;
      if (!this.member.multicast(m.channel, m.payload)) return;
      this.outbox.shift();
    }
  }
}

function tagged(tag: number, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(body.length + 1);
  out[0] = tag;
  out.set(body, 1);
  return out;
}
