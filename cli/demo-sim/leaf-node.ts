/**
 * One simulated leaf: the real leaf-side protocol (keytree `LeafKeys`, Ed25519-signed rekey
 * headers, the data envelope) over one session with a core server, with the fail-over a real
 * leaf does: lease renewals; three unanswered renewals → move to the next server and catch up
 * from its signed history; a gap no server can serve → re-join for a fresh welcome.
 */
import type { CipherSuite } from '../../crypto/index.js';
import {
  DataEnvelopeError,
  DataKeyring,
  DataOpener,
  DataSealer,
  decodeLeafFrame,
  encodeLeafFrame,
  MAX_CATCH_UP_EPOCHS,
  type LeafFrameBody,
  type LeafFrameType,
  type RekeyPush,
} from '../../gossip-edge/index.js';
import {
  KeytreeError,
  LeafKeys,
  decodeHeader,
  decodePart,
  decodeWelcome,
  signedBytes,
} from '../../keytree/index.js';
import type { NodeEnv } from '../../net/index.js';
import { constantTimeEqual } from '../../crypto/index.js';
import type { DemoRecorder } from './recorder.js';

const RENEW_MS = 500;
const MISSED_RENEWALS_BEFORE_FAILOVER = 3;
const WELCOME_TIMEOUT_MS = 2_000;

/** `leaving`: asked to leave, still a member (and still following rekeys) until the batch that removes it. */
export type LeafPhase = 'idle' | 'joining' | 'member' | 'leaving' | 'left' | 'evicted';

export interface LeafConfig {
  readonly suite: CipherSuite;
  readonly recorder: DemoRecorder;
  readonly name: string;
  /** Simulator node ids of the core servers, in fail-over order starting at the home server. */
  readonly servers: readonly number[];
  /** Called once when the server confirms the leaf's removal (left or evicted), with what it knew then. */
  readonly onDepart: (leaf: LeafNode) => void;
}

export class LeafNode {
  phase: LeafPhase = 'idle';
  keys: LeafKeys | undefined;
  memberId = -1;
  private readonly keyring: DataKeyring;
  private readonly opener: DataOpener;
  private sealer: DataSealer | undefined;
  private signers: Uint8Array[] = [];
  private serverIdx = 0;
  private renewSeq = 0;
  private unanswered = 0;
  private joinSentAt = -1;
  private renewing = false;
  /** Group keys this leaf held, newest last (what it keeps, as an adversary, after it departs). */
  readonly heldKeys: { epoch: number; key: Uint8Array }[] = [];

  constructor(
    private readonly cfg: LeafConfig,
    private readonly env: NodeEnv<Uint8Array>,
  ) {
    this.keyring = new DataKeyring(cfg.suite, { now: () => env.now() }); // virtual time: runs replay
    this.opener = new DataOpener(cfg.suite, this.keyring);
  }

  get name(): string {
    return this.cfg.name;
  }

  get server(): number {
    return this.cfg.servers[this.serverIdx % this.cfg.servers.length]!;
  }

  /** Asks the current server for admission. */
  join(): void {
    this.phase = 'joining';
    this.joinSentAt = this.env.now();
    this.send('join', { resume: undefined, crlNumber: undefined });
    this.env.setTimer(WELCOME_TIMEOUT_MS, this.welcomeTimeout);
  }

  /** Seals `data` under the newest group key and hands it to the server; returns its `sender/seq` id, undefined if not a member. */
  publish(data: Uint8Array): string | undefined {
    if (this.phase !== 'member' || this.sealer === undefined) return undefined;
    const id = `${this.memberId}/${this.sealer.seq}`;
    const envelope = this.sealer.seal(data);
    this.send('dataPublish', { envelope });
    return id;
  }

  /** Asks to leave; repeated to the next server on fail-over until a server confirms the removal. */
  leave(): void {
    if (this.phase !== 'member') return;
    this.send('leave', { admittedEpoch: undefined }); // by name: the simulated leaf does not track its admission epoch
    this.phase = 'leaving';
  }

  /** Holds a key of the group: admitted and not yet removed by a batch. */
  get holdsKey(): boolean {
    return this.phase === 'member' || this.phase === 'leaving';
  }

  onMessage(from: number, bytes: Uint8Array): void {
    if (from !== this.server || this.phase === 'left' || this.phase === 'evicted') return;
    const f = decodeLeafFrame(bytes); // servers are trusted to encode well; a DecodeError is a bug
    switch (f.type) {
      case 'welcome':
        return this.welcome(f.body);
      case 'rekeyPush':
        return this.applyPush(f.body);
      case 'catchUpReply':
        if (f.body.rejoin) {
          this.cfg.recorder.rejoins++;
          return this.join();
        }
        for (const p of f.body.pushes) this.applyPush(p);
        if (f.body.pushes.length === MAX_CATCH_UP_EPOCHS) this.requestCatchUp();
        return;
      case 'dataDeliver':
        return this.deliver(f.body.envelope);
      case 'leaseAck':
        this.unanswered = 0;
        return;
      case 'evicted':
        this.phase = f.body.reason === 'left' ? 'left' : 'evicted';
        this.cfg.onDepart(this);
        return;
      default:
        return;
    }
  }

  private welcome(w: LeafFrameBody<'welcome'>): void {
    const welcome = decodeWelcome(w.welcome);
    if (this.keys !== undefined && welcome.epoch <= this.keys.epoch) return;
    const first = this.phase === 'joining';
    this.keys = LeafKeys.fromWelcome(welcome);
    this.signers = w.signers.map((s) => s.publicKey);
    if (w.memberId !== this.memberId) {
      this.memberId = w.memberId;
      this.sealer = new DataSealer(this.cfg.suite, this.keyring, { sender: w.memberId });
    }
    this.phase = 'member';
    this.install();
    if (first && !this.renewing) {
      this.renewing = true;
      this.env.setTimer(RENEW_MS, this.renew);
    }
  }

  private applyPush(p: RekeyPush): void {
    if (this.keys === undefined) return;
    const t0 = performance.now();
    const suite = this.cfg.suite;
    const header = decodeHeader(p.header);
    if (!this.signers.some((s) => constantTimeEqual(s, p.signer))) {
      this.cfg.recorder.pushErrors++;
      return;
    }
    if (!suite.ed25519Verify(p.signer, signedBytes(header), p.signature)) {
      this.cfg.recorder.pushErrors++;
      return;
    }
    const part = p.parts[0]; // a push to one leaf carries exactly its part
    if (part === undefined) {
      this.cfg.recorder.pushErrors++;
      return;
    }
    try {
      this.keys = this.keys.processPart(suite, header, decodePart(part));
      this.install();
    } catch (e) {
      if (!(e instanceof KeytreeError)) throw e;
      if (e.code === 'out-of-order') this.requestCatchUp();
      else if (e.code !== 'replay' && e.code !== 'stale-epoch') this.cfg.recorder.pushErrors++;
      return;
    }
    this.cfg.recorder.leafCpuMs.push(performance.now() - t0);
  }

  private install(): void {
    const keys = this.keys!;
    const key = keys.groupKey();
    this.keyring.install(keys.epoch, key);
    this.heldKeys.push({ epoch: keys.epoch, key });
    if (this.heldKeys.length > 4) this.heldKeys.shift();
    this.cfg.recorder.keyInstalled(keys.epoch, this.env.now());
  }

  private deliver(envelope: Uint8Array): void {
    try {
      const d = this.opener.open(envelope);
      if (d.sender !== this.memberId && this.holdsKey)
        this.cfg.recorder.messageDelivered(`${d.sender}/${d.seq}`);
    } catch (e) {
      if (!(e instanceof DataEnvelopeError)) throw e;
      this.cfg.recorder.undelivered(e.reason);
    }
  }

  private requestCatchUp(): void {
    const k = this.keys!;
    this.send('catchUpRequest', { fromEpoch: k.epoch + 1, slot: k.slot });
  }

  private readonly renew = (): void => {
    if (!this.holdsKey) {
      this.renewing = false;
      return;
    }
    if (this.unanswered >= MISSED_RENEWALS_BEFORE_FAILOVER) {
      // The server is gone (or cut off): move to the next one and catch up from its history
      // (or repeat the leave request there).
      this.cfg.recorder.failovers++;
      this.serverIdx++;
      this.unanswered = 0;
      if (this.phase === 'leaving') this.send('leave', { admittedEpoch: undefined });
      else this.requestCatchUp();
    }
    this.unanswered++;
    this.send('leaseRenew', { seq: this.renewSeq++ });
    this.env.setTimer(RENEW_MS, this.renew);
  };

  private readonly welcomeTimeout = (): void => {
    if (this.phase !== 'joining' || this.env.now() - this.joinSentAt < WELCOME_TIMEOUT_MS) return;
    this.cfg.recorder.failovers++;
    this.serverIdx++;
    this.join();
  };

  private send<K extends LeafFrameType>(type: K, body: LeafFrameBody<K>): void {
    const bytes = encodeLeafFrame(type, body);
    this.cfg.recorder.leafBytes += bytes.length;
    this.cfg.recorder.leafMessages++;
    this.env.send(this.server, bytes);
  }
}
