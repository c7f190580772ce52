/**
 * Test double of the server side of the leaf protocol: N core servers over real mutual TLS on
 * 127.0.0.1, each holding its own replica of the REAL leaf state machine (real keytree, derived
 * key source from one shared secret), fed the same commands in the same order by an in-process
 * "total order" (`TestCoreGroup.order`) that stands in for the virtual-synchrony stack. Each
 * server signs its own rekeys with its own Ed25519 key and serves the leaves linked to it; data
 * is relayed to every leaf of every server (standing in for the gossip tier).
 */
import { createHash, randomBytes } from 'node:crypto';
import type { X509Certificate } from 'node:crypto';
import type { CipherSuite } from '../../crypto/index.js';
import { TlsTransport } from '../../net/index.js';
import {
  MutualTls,
  PeerVerifier,
  parseIdentityUri,
  type Credentials,
  type CertInfo,
} from '../../auth/index.js';
import { encodeWelcome } from '../../keytree/index.js';
import {
  decodeLeafFrame,
  encodeLeafFrame,
  MAX_LEAF_FRAME_BYTES,
  type LeafFrameBody,
  type LeafFrameType,
  type SignerKey,
  type EvictionReason,
  type PublishResult,
} from '../../gossip-edge/index.js';
import {
  LeafStateMachine,
  RekeyHistory,
  signBatch,
  type BatchOutput,
  type LeafCommand,
} from '../../leaf-plane/index.js';

export interface Session {
  readonly peer: string;
  readonly name: string;
  awaitingWelcome: boolean;
  /** Our slot for the leaf as of the last epoch it was sent (for routing its part). */
  slot: number;
}

export class TestCoreServer {
  readonly machine: LeafStateMachine;
  readonly history = new RekeyHistory(16);
  readonly seed: Uint8Array;
  readonly publicKey: Uint8Array;
  /** This server's certificate serial (listed with its signing key). */
  readonly serial: string;
  readonly sessions = new Map<string, Session>();
  readonly transport: TlsTransport;
  /** Leaves whose next rekey push is withheld (to make a gap the leaf must catch up on). */
  readonly withholdNextPush = new Set<string>();
  /** Leaves whose renewals are acknowledged but not applied (to make a lease lapse). */
  readonly ignoreRenewals = new Set<string>();
  /** Every frame type received, for assertions. */
  readonly received: string[] = [];
  /** Publish answers are held back while set (flow-control tests); `releasePublishAnswers` sends them. */
  holdPublishAnswers = false;
  private readonly heldAnswers: { peer: string; result: PublishResult }[] = [];
  /** CRLs (DER) this server hands out in its welcomes (revocation in band). */
  crls: Uint8Array[] = [];
  /** Joins are answered 'not-primary' while set. */
  refuseJoins = false;
  /** The next this-many publishes are refused as 'overloaded'. */
  refusePublishes = 0;
  /** The next this-many catch-ups are refused as 'rate-limited' (a real server's per-leaf budget). */
  rateLimitCatchUps = 0;
  port = 0;
  alive = true;
  private readonly certs = new Map<string, { serial: string; fingerprint: Uint8Array }>();

  constructor(
    readonly group: TestCoreGroup,
    readonly name: string,
    creds: Credentials,
    ca: CertInfo,
  ) {
    const suite = group.suite;
    this.machine = new LeafStateMachine({
      suite,
      group: group.groupId,
      secret: group.secret,
      leaseMs: group.leaseMs,
      checkInvariants: true,
    });
    this.machine.setPrimary(true);
    this.seed = new Uint8Array(randomBytes(32));
    this.publicKey = suite.ed25519PublicKey(this.seed);
    this.serial = creds.certificate.serial;
    const mtls = new MutualTls(creds, new PeerVerifier({ anchors: [ca], group: 'g' }));
    const identify = mtls.transportIdentify({ roles: ['leaf'], peerSide: 'client' });
    this.transport = new TlsTransport({
      local: `g/core/${name}`,
      tls: mtls.contextOptions(),
      identify: (cert: X509Certificate) => {
        const id = identify(cert);
        if (typeof id === 'string') {
          this.certs.set(id, {
            serial: cert.serialNumber.toLowerCase(),
            fingerprint: new Uint8Array(createHash('sha256').update(cert.raw).digest()),
          });
        }
        return id;
      },
      maxMessageBytes: MAX_LEAF_FRAME_BYTES,
    });
    this.transport.setHandler({
      onMessage: (from, data) => this.onMessage(from, data),
      onPeerDown: (peer) => this.sessions.delete(peer),
    });
  }

  async start(): Promise<void> {
    this.port = (await this.transport.listen(0)).port;
  }

  private answerPublish(peer: string, result: PublishResult): void {
    if (this.holdPublishAnswers) this.heldAnswers.push({ peer, result });
    else this.send(peer, 'publishAck', { result });
  }

  releasePublishAnswers(): void {
    this.holdPublishAnswers = false;
    for (const a of this.heldAnswers.splice(0)) this.send(a.peer, 'publishAck', { result: a.result });
  }

  /** Crash: the link and the replica go away. */
  async stop(): Promise<void> {
    this.alive = false;
    await this.transport.close();
  }

  sendRaw(peer: string, bytes: Uint8Array): boolean {
    return this.transport.send(peer, bytes);
  }

  send<K extends LeafFrameType>(peer: string, type: K, body: LeafFrameBody<K>): boolean {
    return this.transport.send(peer, encodeLeafFrame(type, body));
  }

  sessionOf(name: string): Session | undefined {
    for (const s of this.sessions.values()) if (s.name === name) return s;
    return undefined;
  }

  private onMessage(peer: string, data: Uint8Array): void {
    let frame;
    try {
      frame = decodeLeafFrame(data);
    } catch (e) {
      this.send(peer, 'error', { code: 'malformed', detail: (e as Error).message.slice(0, 200) });
      this.transport.disconnect(peer, 'malformed frame');
      return;
    }
    this.received.push(frame.type);
    const name = parseIdentityUri(`keyglass://${peer}`)!.name;
    const now = Date.now();
    switch (frame.type) {
      case 'join': {
        if (this.refuseJoins)
          return void this.send(peer, 'error', { code: 'not-primary', detail: 'refusing joins (test)' });
        const session: Session = { peer, name, awaitingWelcome: true, slot: -1 };
        this.sessions.set(peer, session);
        const entry = this.machine.entry(name);
        const resume = frame.body.resume;
        if (resume !== undefined && entry !== undefined && entry.admittedEpoch === resume.admittedEpoch) {
          this.welcome(session); // the replicated registry knows this admission: resume
          return;
        }
        const cert = this.certs.get(peer)!;
        this.group.order({
          kind: 'admit',
          value: { name, serial: cert.serial, fingerprint: cert.fingerprint, now },
        });
        return;
      }
      case 'leaseRenew':
        if (!this.ignoreRenewals.has(name))
          this.group.order({
            kind: 'renewLeases',
            value: { renewals: [{ name, until: now + this.group.leaseMs }] },
          });
        this.send(peer, 'leaseAck', { seq: frame.body.seq, leaseMs: this.group.leaseMs, stream: undefined });
        return;
      case 'dataPublish':
        if (this.refusePublishes > 0) {
          this.refusePublishes--;
          return this.answerPublish(peer, 'overloaded');
        }
        this.group.relay(peer, frame.body.envelope);
        return this.answerPublish(peer, 'accepted');
      case 'leave': {
        // As the real server: a leave naming another admission than the current one is stale.
        const named = frame.body.admittedEpoch;
        if (named !== undefined && this.machine.entry(name)?.admittedEpoch !== named) return;
        this.group.order({ kind: 'leave', value: { name } });
        return;
      }
      case 'catchUpRequest':
        if (this.rateLimitCatchUps > 0) {
          this.rateLimitCatchUps--;
          return void this.send(peer, 'error', { code: 'rate-limited', detail: 'catchUpRequest: (test)' });
        }
        this.send(peer, 'catchUpReply', this.history.catchUp(frame.body.fromEpoch, frame.body.slot));
        return;
      case 'gossipHello':
      case 'gossipReseed':
        return; // a server without an edge relay: the leaf stays on TLS pushes
      default:
        this.send(peer, 'error', { code: 'unexpected', detail: `a leaf sent ${frame.type}` });
    }
  }

  private welcome(s: Session): void {
    const entry = this.machine.entry(s.name)!;
    s.awaitingWelcome = false;
    s.slot = entry.slot;
    this.send(s.peer, 'welcome', {
      welcome: encodeWelcome(this.machine.welcomeFor(s.name)!),
      epoch: this.machine.epoch,
      admittedEpoch: entry.admittedEpoch,
      memberId: entry.memberId,
      leaseMs: this.group.leaseMs,
      signers: this.group.signers(),
      crls: this.crls,
    });
  }

  deliver(cmd: LeafCommand): void {
    const { batch } = this.machine.apply(cmd);
    if (batch !== undefined) this.distribute(batch);
  }

  private distribute(batch: BatchOutput): void {
    this.history.record(batch, this.publicKey, signBatch(this.group.suite, this.seed, batch));
    const evicted = new Map<string, EvictionReason>(batch.evicted.map((d) => [d.name, d.reason]));
    for (const s of [...this.sessions.values()]) {
      const reason = evicted.get(s.name);
      const entry = this.machine.entry(s.name);
      if (reason !== undefined && !(reason === 'replaced' && entry !== undefined)) {
        this.send(s.peer, 'evicted', { reason, epoch: batch.epoch });
        this.sessions.delete(s.peer);
        this.transport.disconnect(s.peer, `evicted: ${reason}`);
        continue;
      }
      if (entry === undefined || entry.slot < 0) continue;
      if (s.awaitingWelcome) {
        if (batch.admitted.some((a) => a.name === s.name)) this.welcome(s);
        continue;
      }
      const p = this.history.pushFor(batch.epoch, s.slot);
      if (p !== undefined && !this.withholdNextPush.delete(s.name)) this.send(s.peer, 'rekeyPush', p.push);
      s.slot = entry.slot;
    }
  }

  relayOut(fromPeer: string, envelope: Uint8Array): void {
    for (const s of this.sessions.values()) {
      if (s.peer !== fromPeer && !s.awaitingWelcome) this.send(s.peer, 'dataDeliver', { envelope });
    }
  }
}

export class TestCoreGroup {
  readonly servers: TestCoreServer[] = [];
  readonly groupId = new TextEncoder().encode('g');
  readonly secret = new Uint8Array(randomBytes(32));
  /** Every envelope published, in order (what an eavesdropper on the gossip tier sees). */
  readonly relayed: Uint8Array[] = [];
  /** The group key of every epoch (what the core knows), for secrecy checks in tests. */
  readonly groupKeys = new Map<number, Uint8Array>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    readonly suite: CipherSuite,
    readonly leaseMs = 3000,
    readonly batchMs = 30,
  ) {}

  async addServer(name: string, creds: Credentials, ca: CertInfo): Promise<TestCoreServer> {
    const s = new TestCoreServer(this, name, creds, ca);
    await s.start();
    this.servers.push(s);
    return s;
  }

  signers(): SignerKey[] {
    return this.servers.map((s) => ({ name: s.name, publicKey: s.publicKey, serial: s.serial }));
  }

  /** Total order: every live replica applies `cmd` at the same position. */
  order(cmd: LeafCommand): void {
    for (const s of this.servers) if (s.alive) s.deliver(cmd);
    const first = this.servers.find((s) => s.alive);
    const key = first?.machine.groupKey();
    if (first !== undefined && key !== undefined) this.groupKeys.set(first.machine.epoch, key);
  }

  relay(fromPeer: string, envelope: Uint8Array): void {
    this.relayed.push(envelope);
    for (const s of this.servers) if (s.alive) s.relayOut(fromPeer, envelope);
  }

  startBatching(): void {
    this.timer = setInterval(() => {
      // Always cut: an empty cut changes nothing, and a cut also expires lapsed leases.
      const first = this.servers.find((s) => s.alive);
      if (first === undefined) return;
      this.order({ kind: 'cutBatch', value: { epoch: first.machine.epoch + 1, now: Date.now() } });
    }, this.batchMs);
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await Promise.all(this.servers.filter((s) => s.alive).map((s) => s.stop()));
  }
}
