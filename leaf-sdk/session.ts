/**
 * LeafSession — the leaf side of the leaf protocol as a sans-IO machine: `handle(event, now)`
 * returns the effects its host runs (send a frame, drop the link, set a timer, a gossip command,
 * an event for the application). It owns no clock, timer, socket or file; LeafClient hosts it
 * over TLS and UDP, the system simulation over the simulated network.
 *
 * What it decides (the rules LeafClient documents): the welcome's checks; every rekey push
 * verified against the signers the welcome listed (Ed25519 over `signedBytes(header)`), replays
 * and stale epochs ignored, a gap asks for a catch-up, an unrecoverable path re-joins; gossip
 * items admitted only when signed by a known core server and labelled as what they carry
 * (gossip-items.ts); data opened under the epochs we hold; the publish window; lease renewals,
 * and "no ack for two thirds of the lease → drop the link" (the host fails over); own-key
 * refreshes from the link's exporter; CRLs held and enforced against core servers.
 *
 * Re-entrancy: the host may call back into the session while running an effect (a gossip
 * command delivers items): every effect list is produced after the session's state for that
 * event is complete, so a nested call sees a consistent machine.
 */
import { constantTimeEqual, concatBytes, type CipherSuite } from '../crypto/index.js';
import { DecodeError } from '../wire/index.js';
import { RevocationRegistry, type VerifiedCrl } from '../auth/index.js';
import {
  KeytreeError,
  LEAF_KEY_EXPORTER_BYTES,
  LEAF_KEY_EXPORTER_LABEL,
  LeafKeys,
  MAX_REFRESH_COUNTER,
  decodeHeader,
  decodePart,
  decodeWelcome,
  refreshedLeafKey,
  signedBytes,
  type EpochHeader,
} from '../keytree/index.js';
import {
  DataEnvelopeError,
  DataKeyring,
  DataOpener,
  DataSealer,
  EarlyHold,
  DEFAULT_PREVIOUS_EPOCHS,
  DEFAULT_RETIRED_GRACE_MS,
  RetiredKeyError,
  VerifiedHeaders,
  decodeDataEnvelope,
  exportFromKeyring,
  type ExportedSecret,
  decodeLeafFrame,
  encodeLeafFrame,
  isRekeyId,
  admitGossipItem,
  openRekeyItem,
  openStreamItem,
  type AdmitVerdict,
  type EvictionReason,
  type Item,
  type LeafFrame,
  type LeafFrameBody,
  type LeafFrameType,
  type RekeyPush,
  type SignerKey,
} from '../gossip-edge/index.js';
import {
  LeafEvictedError,
  LeafProtocolError,
  newLeafStats,
  type GossipCommand,
  type LeafClientStats,
  type LeafLinkInfo,
  type LeafSessionEffect,
  type LeafSessionEvent,
} from './session-types.js';

export * from './session-types.js';

const KEY_ID_LABEL = new TextEncoder().encode('keyglass key id v1');
/** Unanswered publishes per link: bounds what a slow core makes a publisher hold or lose. */
export const DEFAULT_PUBLISH_WINDOW = 64;
/** A catch-up our server refused as too frequent is asked again after this long (ms). */
export const CATCH_UP_RETRY_MS = 250;

export interface LeafSessionOptions {
  readonly suite: CipherSuite;
  /** How long a server may take to welcome us after the link is up (default 10 s). */
  readonly welcomeTimeoutMs?: number;
  /** Retired epochs whose data stays readable, at most (default 8) … */
  readonly previousEpochs?: number;
  /** … each for this long after a newer epoch arrived (default 2 s; see KeyringOptions). */
  readonly retiredEpochGraceMs?: number;
  /** Publishes that may await their server's answer before `publish` returns false (default 64, 1..4096). */
  readonly publishWindow?: number;
  /** Ed25519 seed to sign every published envelope with. */
  readonly signingSeed?: Uint8Array;
  /** Public keys of signing senders (by member id), and whether unsigned data is refused. */
  readonly senderKey?: (memberId: number) => Uint8Array | undefined;
  readonly requireSignatures?: boolean;
  /**
   * Refuse core servers while the CRL we hold for their issuer is past its nextUpdate (default
   * false: a stale CRL still revokes what it lists, and servers bring newer ones in band).
   */
  readonly requireFreshCrl?: boolean;
  /** Counters to update (the host's `stats`); default a fresh set. */
  readonly stats?: LeafClientStats;
}

/** down: no link · joining: a join awaits its welcome · up: welcomed on the link. */
type Phase = 'down' | 'joining' | 'up' | 'evicted' | 'closed';

/** How a data envelope reached us: from our server, from gossip, or pulled from our server's stream. */
type DataPath = 'tls' | 'gossip' | 'pulled';

export class LeafSession {
  readonly stats: LeafClientStats;
  /** The CRLs we hold (the host's TLS verifier reads them at every handshake). */
  readonly revocation = new RevocationRegistry();

  private readonly suite: CipherSuite;
  private readonly opts: Required<
    Pick<LeafSessionOptions, 'welcomeTimeoutMs' | 'previousEpochs' | 'retiredEpochGraceMs' | 'publishWindow'>
  > &
    LeafSessionOptions;
  private phase: Phase = 'down';
  /** The newest `now` we were handed: the keyring's clock. */
  private clock = 0;
  private out: LeafSessionEffect[] = [];
  private link: LeafLinkInfo | undefined;
  private keys: LeafKeys | undefined;
  private keyring: DataKeyring | undefined;
  private sealer: DataSealer | undefined;
  private opener: DataOpener | undefined;
  /**
   * Envelopes sealed under the epoch after ours: the publisher got that epoch's push before we
   * did (its server released the batch first, or our server relayed the publish ahead of the
   * push). Opened when the key arrives; bounded, unauthenticated until then.
   */
  private readonly earlyData = new EarlyHold<
    { readonly epoch: number; readonly envelope: Uint8Array },
    DataPath
  >();
  /** Signers the server listed, and those of them no CRL we hold revokes (the ones we accept). */
  private announcedSigners: readonly SignerKey[] = [];
  private signers: readonly SignerKey[] = [];
  private memberId: number | undefined;
  private admittedEpoch: number | undefined;
  private leaseMs = 0;
  private leaseEvery = 0;
  private leaseSeq = 0;
  private lastAckAt = 0;
  private catchUpPending = false;
  /** A re-join on the live link awaits its welcome, the welcome timer running (see `sendJoin`). */
  private rejoinPending = false;
  /** Newest epoch a verified push announced: catch up until we hold it. */
  private newestSeen = 0;
  /** Rekey headers already verified (the parts of one epoch share one signature). */
  private readonly verified = new VerifiedHeaders();
  /** Sequence numbers of our publishes on the current link awaiting their publishAck, oldest first. */
  private unanswered: number[] = [];
  /** A publish was deferred for a full window: 'drain' is owed once it has room. */
  private windowFull = false;
  /** The current server seeded us (it runs a relay): reseeds may be asked of it. */
  private seeded = false;
  /** The gossip node's slot since we started it on this link's gossip endpoint (undefined: not started). */
  private gossipSelf: number | undefined;

  constructor(options: LeafSessionOptions) {
    // `??`, not a spread over defaults: an option given as undefined keeps its default.
    this.opts = {
      ...options,
      welcomeTimeoutMs: options.welcomeTimeoutMs ?? 10_000,
      previousEpochs: options.previousEpochs ?? DEFAULT_PREVIOUS_EPOCHS,
      retiredEpochGraceMs: options.retiredEpochGraceMs ?? DEFAULT_RETIRED_GRACE_MS,
      publishWindow: options.publishWindow ?? DEFAULT_PUBLISH_WINDOW,
    };
    checkPublishWindow(this.opts.publishWindow);
    if (!(this.opts.welcomeTimeoutMs > 0)) throw new RangeError('welcomeTimeoutMs > 0');
    this.suite = options.suite;
    this.stats = options.stats ?? newLeafStats();
  }

  // ── what the host and application read ─────────────────────────────────────────────────

  get epoch(): number | undefined {
    return this.keys?.epoch;
  }

  /** Our slot in the key tree (our gossip id), with a key. */
  get slot(): number | undefined {
    return this.keys?.slot;
  }

  get member(): number | undefined {
    return this.memberId;
  }

  get admissionEpoch(): number | undefined {
    return this.admittedEpoch;
  }

  /** The frame that says we leave our admission (sent over any authenticated link); none without one. */
  leaveFrame(): Uint8Array | undefined {
    if (this.memberId === undefined) return undefined;
    return encodeLeafFrame('leave', { admittedEpoch: this.admittedEpoch });
  }

  /** Welcomed on a live link. */
  get welcomed(): boolean {
    return this.phase === 'up';
  }

  get publishesInFlight(): number {
    return this.unanswered.length;
  }

  get trustedSigners(): readonly { name: string; serial: string }[] {
    return this.signers.map((s) => ({ name: s.name, serial: s.serial }));
  }

  /** The lowest CRL number we hold (decimal) for joins: the server then sends only newer CRLs. */
  heldCrlNumber(): string | undefined {
    const held = this.revocation.installed();
    if (held.length === 0) return undefined;
    let lowest: bigint | undefined;
    for (const c of held) {
      if (c.crlNumber === undefined) return undefined;
      if (lowest === undefined || c.crlNumber < lowest) lowest = c.crlNumber;
    }
    return lowest?.toString();
  }

  // ── events ─────────────────────────────────────────────────────────────────────────────

  handle(event: LeafSessionEvent, now: number): LeafSessionEffect[] {
    return this.run(now, () => this.dispatch(event));
  }

  /**
   * Seals `data` for the group under our newest key. `sent` false, nothing sent: the window is
   * full, or our newest key was retired beyond the grace window (a 'refused' effect). If the host
   * cannot send the frame it answers `sendFailed` with the effect's `seq`.
   */
  publish(data: Uint8Array, now: number): { sent: boolean; effects: LeafSessionEffect[] } {
    let sent = false;
    const effects = this.run(now, () => {
      const sealer = this.sealer;
      if (sealer === undefined || this.phase !== 'up') throw new Error('LeafClient: not connected');
      if (this.unanswered.length >= this.opts.publishWindow) {
        this.windowFull = true;
        this.stats.publishesDeferred++;
        return;
      }
      const seq = sealer.seq;
      let envelope: Uint8Array;
      try {
        envelope = sealer.seal(data);
      } catch (e) {
        if (!(e instanceof RetiredKeyError)) throw e;
        // We lag: the group moved past our newest key longer than the grace window ago, and a
        // member evicted since may hold it. Nothing is sent; 'drain' follows our next key.
        this.stats.publishesRetired++;
        this.windowFull = true;
        this.out.push({ type: 'refused', seq, reason: 'retired-epoch' });
        return;
      }
      this.send('dataPublish', { envelope }, seq);
      this.unanswered.push(seq);
      sent = true;
    });
    return { sent, effects };
  }

  /**
   * Installs each verified CRL that is newer than the one held for its issuer, then enforces
   * them (a link to a server now revoked is dropped, revoked servers' signing keys refused).
   */
  installCrls(
    verified: readonly VerifiedCrl[],
    now: number,
  ): { applied: number; ignored: number; effects: LeafSessionEffect[] } {
    let counts = { applied: 0, ignored: 0 };
    const effects = this.run(now, () => (counts = this.applyCrls(verified)));
    return { ...counts, effects };
  }

  /**
   * Before the gossip node stores or relays an item: a rekey part must carry a signature of a
   * core server we know over its header (an insider holding the MAC key still cannot forge
   * keys), and its id, epoch and scope must be those of the part the header signs at that
   * position (`rekeyItemBound`: a relabelled genuine part never takes the id the real one
   * needs); a data item's epoch must match its envelope's clear header (its id is the relay's
   * stream position, which the envelope does not carry), and that epoch must be one whose key
   * we hold. No effects: a verdict and counters.
   */
  /**
   * A secret for the application from the keyring's exporter keys: the newest epoch (`epoch`
   * undefined) or a retired one still readable at `now` (gossip-edge/exporter.ts). Throws
   * ExportUnavailableError or RangeError; the host's exportSecret/exportSecretAt.
   */
  exportSecret(
    epoch: number | undefined,
    label: string,
    context: Uint8Array,
    length: number,
    now: number,
  ): ExportedSecret {
    this.clock = Math.max(this.clock, now);
    const held = { group: this.keys?.group, admittedEpoch: this.admittedEpoch };
    return exportFromKeyring(this.suite, this.keyring, held, epoch, label, context, length);
  }

  admit(item: Item, now: number): AdmitVerdict {
    this.clock = Math.max(this.clock, now);
    // The shipped admission (gossip-items.ts), the one the gossip simulation's leaves run too.
    const verdict = admitGossipItem(item, {
      suite: this.suite,
      heldEpoch: () => this.keys?.epoch,
      isSigner: (key) => this.isSigner(key),
      verify: (key, message, sig) => this.suite.ed25519Verify(key, message, sig),
      verifiedHeader: (push) => {
        try {
          return this.verifyPush(push);
        } catch (e) {
          if (e instanceof LeafProtocolError) return undefined;
          throw e;
        }
      },
    });
    if (verdict === false || verdict === 'foreign') this.stats.gossipRefused++;
    return verdict;
  }

  /** Runs `step` with `now` as the clock; returns what it asked for (nested calls keep their own list). */
  private run(now: number, step: () => void): LeafSessionEffect[] {
    const outer = this.out;
    this.out = [];
    // A host's clock may step back a little (timers vs. callbacks): the machine's never does.
    this.clock = Math.max(this.clock, now);
    try {
      step();
      return this.out;
    } finally {
      this.out = outer;
    }
  }

  private dispatch(event: LeafSessionEvent): void {
    switch (event.type) {
      case 'linkUp':
        return this.onLinkUp(event.link);
      case 'frame':
        return this.onFrame(event.frame);
      case 'badFrame':
        return this.dropLink(new LeafProtocolError('bad-frame', event.detail));
      case 'linkDown':
        return this.onLinkDown(event.error);
      case 'timer':
        if (event.timer === 'welcome') {
          if (this.phase === 'joining')
            this.failJoin(new Error(`no welcome within ${this.opts.welcomeTimeoutMs} ms`));
          else if (this.phase === 'up' && this.rejoinPending) {
            this.rejoinPending = false;
            this.dropLink(
              new LeafProtocolError(
                'unexpected',
                `no welcome within ${this.opts.welcomeTimeoutMs} ms of a re-join`,
              ),
            );
          }
          return;
        }
        if (event.timer === 'lease') return this.onLeaseTimer();
        // A refused catch-up, asked again if we are still behind on this link.
        if (this.keys !== undefined && this.keys.epoch < this.newestSeen) this.requestCatchUp();
        return;
      case 'sendFailed':
        if (event.frameType === 'join' && this.phase === 'joining')
          return this.failJoin(new Error('could not send join'));
        if (event.frameType === 'dataPublish' && event.seq !== undefined) {
          const i = this.unanswered.lastIndexOf(event.seq);
          if (i >= 0) this.unanswered.splice(i, 1);
        }
        return;
      case 'gossipDeliver':
        return this.deliverItem(event.item, event.pulled);
      case 'gossipPull':
        this.requestCatchUp();
        if (event.req.why !== 'behind') this.pullData(event.coreStream);
        return;
      case 'gossipReseed':
        if (this.seeded && this.phase === 'up') this.send('gossipReseed', {});
        return;
      case 'crlsVerified':
        for (const why of event.invalid) {
          this.stats.crlsInvalid++;
          this.report(
            new LeafProtocolError('unexpected', `a server sent a CRL that does not verify: ${why}`),
          );
        }
        if (this.phase !== 'closed') this.applyCrls(event.verified);
        return;
      case 'leave':
        if (this.phase === 'up') this.send('leave', { admittedEpoch: this.admittedEpoch });
        return;
      case 'shutdown':
        return this.shutdown(event.state);
    }
  }

  // ── link ───────────────────────────────────────────────────────────────────────────────

  /** Joins over a new link, resuming our admission when we hold its keys. */
  private onLinkUp(link: LeafLinkInfo): void {
    if (this.phase === 'evicted' || this.phase === 'closed')
      return void this.out.push({ type: 'joinFailed', error: new Error(`client ${this.phase}`) });
    if (this.phase !== 'down') this.onLinkDown(new Error('superseded by a new join'));
    this.link = link;
    this.phase = 'joining';
    this.out.push({ type: 'setTimer', timer: 'welcome', afterMs: this.opts.welcomeTimeoutMs });
    this.sendJoin();
  }

  private onLinkDown(error: Error): void {
    if (this.link === undefined) return;
    this.link = undefined;
    this.stopLinkTimers();
    this.forgetUnanswered();
    if (this.phase === 'joining') this.out.push({ type: 'joinFailed', error });
    if (this.phase === 'joining' || this.phase === 'up') this.phase = 'down';
  }

  /** The pending join failed on this link: done with it (the host ends it and tries the next server). */
  private failJoin(error: Error): void {
    this.onLinkDown(error);
  }

  private stopLinkTimers(): void {
    this.rejoinPending = false;
    this.out.push({ type: 'cancelTimer', timer: 'welcome' });
    this.out.push({ type: 'cancelTimer', timer: 'lease' });
    this.out.push({ type: 'cancelTimer', timer: 'catchUpRetry' });
  }

  /** The link that carried our unanswered publishes is gone: their answers will not come. */
  private forgetUnanswered(): void {
    this.stats.publishesUnanswered += this.unanswered.length;
    this.unanswered = [];
    this.drainIfRoom();
  }

  /** 'drain' once a deferred publisher has half the window free again. */
  private drainIfRoom(): void {
    if (!this.windowFull || this.unanswered.length > this.opts.publishWindow / 2) return;
    this.windowFull = false;
    this.out.push({ type: 'drain' });
  }

  /** A protocol violation (or a revoked server): report it, end the link; the host fails over. */
  private dropLink(err: Error): void {
    this.stats.protocolErrors++;
    this.report(err);
    if (this.link !== undefined) this.out.push({ type: 'dropLink', reason: err });
  }

  private shutdown(next: 'idle' | 'closed' | 'evicted'): void {
    if (this.link !== undefined) this.onLinkDown(new Error(`client ${next}`));
    else {
      this.stopLinkTimers();
      this.forgetUnanswered();
    }
    this.phase = next === 'idle' ? 'down' : next;
    this.keyring?.clear();
    this.keys = undefined;
    this.sealer = undefined;
    this.opener = undefined;
    this.earlyData.clear();
    this.seeded = false;
    this.gossipSelf = undefined; // the host's gossip link is closed with it
  }

  private send<K extends LeafFrameType>(type: K, body: LeafFrameBody<K>, seq?: number): void {
    if (this.link === undefined) return;
    const bytes = encodeLeafFrame(type, body);
    this.out.push(
      seq === undefined
        ? { type: 'send', frameType: type, bytes }
        : { type: 'send', frameType: type, bytes, seq },
    );
  }

  private sendJoin(): void {
    const resume =
      this.admittedEpoch !== undefined && this.keys !== undefined
        ? { admittedEpoch: this.admittedEpoch, epoch: this.keys.epoch }
        : undefined;
    this.send('join', { resume, crlNumber: this.heldCrlNumber() });
    // A re-join on a live link (our path is lost): the server holds the link for the welcome (no
    // pushes meanwhile) but goes on acking renewals, and the admit it orders may be lost in the
    // core (an ordered message its failed sequencer left unordered is dropped). Without the
    // deadline a joining link has, we would wait on stale keys for ever (system simulation, seed
    // 6019): no welcome in time ends the link and the host fails over. The first deadline holds.
    if (this.phase === 'up' && this.link !== undefined && !this.rejoinPending) {
      this.rejoinPending = true;
      this.out.push({ type: 'setTimer', timer: 'welcome', afterMs: this.opts.welcomeTimeoutMs });
    }
  }

  private gossip(command: GossipCommand): void {
    this.out.push({ type: 'gossip', command });
  }

  private report(error: Error): void {
    this.out.push({ type: 'error', error });
  }

  // ── frames ─────────────────────────────────────────────────────────────────────────────

  private onFrame(input: Uint8Array | LeafFrame): void {
    if (this.link === undefined) return;
    try {
      this.onDecodedFrame(input instanceof Uint8Array ? decodeLeafFrame(input) : input);
    } catch (e) {
      if (e instanceof DecodeError) return this.dropLink(new LeafProtocolError('bad-frame', e.message));
      if (e instanceof LeafProtocolError) return this.dropLink(e);
      throw e;
    }
  }

  private onDecodedFrame(frame: LeafFrame): void {
    switch (frame.type) {
      case 'welcome':
        return this.onWelcome(frame.body);
      case 'rekeyPush':
        if (this.keys !== undefined && this.onPush(frame.body, true) === 'applied') this.stats.tlsRekeys++;
        return;
      case 'catchUpReply':
        return this.onCatchUp(frame.body);
      case 'dataDeliver':
        this.onData(frame.body.envelope, 'tls');
        return;
      case 'dataPullReply':
        return this.gossip({ op: 'dataPull', reply: frame.body });
      case 'gossipSeed':
        this.seeded = true;
        return this.gossip({ op: 'seed', seed: frame.body });
      case 'leaseAck':
        this.lastAckAt = this.clock;
        if (frame.body.stream !== undefined) this.gossip({ op: 'noteCoreStream', stream: frame.body.stream });
        return;
      case 'publishAck': {
        const seq = this.unanswered.shift();
        if (seq === undefined) throw new LeafProtocolError('unexpected', 'a publishAck for no publish');
        const result = frame.body.result;
        this.stats.publishes[result]++;
        if (result !== 'accepted') this.out.push({ type: 'refused', seq, reason: result });
        return this.drainIfRoom();
      }
      case 'evicted':
        return this.onEvicted(frame.body.reason);
      case 'crlUpdate':
        // From a server that passed our CRL check: same trust as the welcome's list.
        this.announcedSigners = frame.body.signers;
        this.enforceRevocation();
        return this.offerCrls(frame.body.crls);
      case 'leafKeyRefresh':
        return this.onKeyRefresh(frame.body);
      case 'error': {
        if (frame.body.code === 'rate-limited') return this.onRateLimited(frame.body.detail);
        const err = new LeafProtocolError(frame.body.code, frame.body.detail);
        if (this.phase === 'joining') return this.failJoin(err);
        // A server that can no longer serve us (not primary, overloaded): fail over.
        return this.dropLink(err);
      }
      default:
        throw new LeafProtocolError('unexpected', `a server sent '${frame.type}'`);
    }
  }

  private onWelcome(body: LeafFrameBody<'welcome'>): void {
    const welcome = decodeWelcome(body.welcome);
    if (welcome.epoch !== body.epoch) throw new LeafProtocolError('unexpected', 'welcome epoch mismatch');
    if (body.signers.length === 0) throw new LeafProtocolError('unexpected', 'welcome lists no signers');
    const sameAdmission = this.memberId === body.memberId && this.admittedEpoch === body.admittedEpoch;
    if (sameAdmission && this.keys !== undefined && welcome.epoch < this.keys.epoch)
      return this.onStaleWelcome(body);
    let keys: LeafKeys;
    try {
      keys = LeafKeys.fromWelcome(welcome);
      // Refreshes ordered for this admission and not yet applied stay pending across a welcome.
      if (sameAdmission) keys = keys.carryPendingFrom(this.keys);
    } catch (e) {
      if (e instanceof KeytreeError) throw new LeafProtocolError('unexpected', e.message);
      throw e;
    }
    if (!sameAdmission || this.keyring === undefined) {
      this.keyring = new DataKeyring(this.suite, {
        now: () => this.clock,
        previousEpochs: this.opts.previousEpochs,
        retiredGraceMs: this.opts.retiredEpochGraceMs,
      });
      this.sealer = new DataSealer(this.suite, this.keyring, {
        sender: body.memberId,
        ...(this.opts.signingSeed !== undefined ? { signingSeed: this.opts.signingSeed } : {}),
      });
      this.opener = new DataOpener(this.suite, this.keyring, {
        ...(this.opts.senderKey !== undefined ? { senderKey: this.opts.senderKey } : {}),
        requireSignature: this.opts.requireSignatures ?? false,
      });
    }
    this.announcedSigners = body.signers;
    this.filterSigners();
    this.offerCrls(body.crls);
    this.memberId = body.memberId;
    this.admittedEpoch = body.admittedEpoch;
    if (this.link?.gossip !== undefined && this.gossipSelf === undefined) {
      this.gossip({ op: 'start', slot: keys.slot, epoch: keys.epoch, arity: keys.arity });
      this.gossipSelf = keys.slot;
    }
    this.install(keys);
    this.linkWelcomed(body);
  }

  /** What any welcome gives the link: the lease, our UDP endpoint announced, the phase. */
  private linkWelcomed(body: LeafFrameBody<'welcome'>): void {
    this.leaseMs = body.leaseMs;
    this.catchUpPending = false;
    this.startLease();
    const endpoint = this.link?.gossip;
    if (endpoint !== undefined) {
      // Announce our UDP endpoint to this server (each server keeps its own leaves' addresses).
      this.seeded = false;
      this.send('gossipHello', { host: endpoint.host, port: endpoint.port });
    }
    if (this.rejoinPending) {
      this.rejoinPending = false;
      this.out.push({ type: 'cancelTimer', timer: 'welcome' });
    }
    if (this.phase === 'joining') {
      this.phase = 'up';
      this.out.push({ type: 'cancelTimer', timer: 'welcome' });
      this.out.push({ type: 'welcomed' });
    }
  }

  /**
   * A welcome of our admission at an epoch older than the key we hold: a lagging server answering
   * a re-join, or a captured welcome replayed. A welcome is the server's word, not a signed
   * statement, so nothing in it proves it current; its key (and the signer list of that moment)
   * would take us back to an epoch members evicted since still hold. We keep our keys and
   * signers and take only the link: the lease, and the CRLs (each only if newer than ours).
   */
  private onStaleWelcome(body: LeafFrameBody<'welcome'>): void {
    this.stats.welcomesStale++;
    this.offerCrls(body.crls);
    this.linkWelcomed(body);
  }

  /**
   * Our server ordered a refresh of our own key (post-compromise recovery): derive it from this
   * link's exporter, as the server did, and hold it until the batch that installs it.
   */
  private onKeyRefresh(body: LeafFrameBody<'leafKeyRefresh'>): void {
    const keys = this.keys;
    if (keys === undefined || body.admittedEpoch !== this.admittedEpoch) return; // another admission
    if (body.counter < 1 || body.counter > MAX_REFRESH_COUNTER)
      throw new LeafProtocolError('unexpected', `own-key refresh counter ${body.counter}`);
    const exporter = this.link?.exportKeyingMaterial(LEAF_KEY_EXPORTER_BYTES, LEAF_KEY_EXPORTER_LABEL);
    if (exporter === undefined) return; // the link is gone: the next session refreshes again
    const key = refreshedLeafKey(this.suite, exporter, {
      group: keys.group,
      admittedEpoch: body.admittedEpoch,
      counter: body.counter,
    });
    exporter.fill(0);
    this.keys = keys.withPendingOwnKey(key);
    key.fill(0);
    this.stats.keyRefreshes++;
  }

  private install(keys: LeafKeys): void {
    const changed = this.keys === undefined || this.keys.epoch !== keys.epoch;
    this.keys = keys;
    const groupKey = keys.groupKey();
    this.keyring!.install(keys.epoch, groupKey);
    if (this.gossipSelf !== undefined) {
      this.gossip({ op: 'installKey', epoch: keys.epoch, groupKey: groupKey.slice() });
      // A compaction moved us: our gossip id is our slot; ask for contacts around the new one.
      if (this.gossipSelf !== keys.slot) {
        this.gossipSelf = keys.slot;
        this.gossip({ op: 'moveTo', slot: keys.slot, epoch: keys.epoch });
        if (this.seeded) this.send('gossipReseed', {});
      }
    }
    const keyId = hex(this.suite.sha256(concatBytes(KEY_ID_LABEL, groupKey)).subarray(0, 8));
    groupKey.fill(0);
    if (changed) {
      this.out.push({ type: 'key', epoch: keys.epoch, keyId });
      for (const x of this.earlyData.ready(keys.epoch)) this.onData(x.env.envelope, x.from);
      this.drainIfRoom(); // a publish refused under a retired key may go now
    }
  }

  /** Verifies and applies one push. `live`: arrived unsolicited (a gap then asks for a catch-up). */
  private onPush(push: RekeyPush, live: boolean): 'applied' | 'ignored' | 'gap' | 'rejoin' {
    return this.applyPush(push, this.verifyPush(push), live);
  }

  /** Is `key` the signing key of a core server our welcome listed? */
  private isSigner(key: Uint8Array): boolean {
    return this.signers.some((s) => constantTimeEqual(s.publicKey, key));
  }

  /** The push's header if a core server we know signed it; throws LeafProtocolError if not. */
  private verifyPush(push: RekeyPush): EpochHeader {
    const header: EpochHeader = decodeHeader(push.header);
    if (!this.isSigner(push.signer))
      throw new LeafProtocolError(
        'unknown-signer',
        `rekey of epoch ${header.epoch} signed by an unknown key`,
      );
    if (this.verified.has(push.signer, push.header, push.signature)) return header;
    if (!this.suite.ed25519Verify(push.signer, signedBytes(header), push.signature))
      throw new LeafProtocolError('bad-signature', `rekey of epoch ${header.epoch} has a bad signature`);
    this.verified.add(push.signer, push.header, push.signature);
    return header;
  }

  /**
   * `gossip`: the push is one gossiped part. A part that does not name our path (another
   * subtree's, relayed through us, or one we moved past) is ignored there; only a part that
   * names our path and still fails — or a push from our server with no part for us — re-joins.
   */
  private applyPush(
    push: RekeyPush,
    header: EpochHeader,
    live: boolean,
    gossip = false,
  ): 'applied' | 'ignored' | 'gap' | 'rejoin' {
    const keys = this.keys!;
    if (header.epoch > this.newestSeen) this.newestSeen = header.epoch;
    this.keyring?.noteNewer(header.epoch); // signed: our newest key is retired from now on
    if (header.epoch <= keys.epoch) {
      this.stats.rekeysIgnored++; // replayed or stale: we already moved past it
      return 'ignored';
    }
    if (header.epoch > keys.epoch + 1) {
      if (live) this.requestCatchUp();
      return 'gap';
    }
    let addressed = false;
    for (const bytes of push.parts) {
      try {
        const next = keys.processPart(this.suite, header, decodePart(bytes));
        this.stats.rekeysApplied++;
        this.install(next);
        return 'applied';
      } catch (e) {
        if (!(e instanceof KeytreeError)) throw e;
        if (e.code !== 'not-addressed') {
          addressed = true;
          break;
        }
      }
    }
    if (gossip && !addressed) {
      this.stats.gossipNotOurs++;
      return 'ignored';
    }
    // No part recovers our path (a key we lack, a failed unwrap, no part for us): re-join.
    this.stats.rejoins++;
    this.sendJoin();
    return 'rejoin';
  }

  private requestCatchUp(): void {
    if (this.catchUpPending || this.keys === undefined) return;
    this.catchUpPending = true;
    this.stats.catchUps++;
    this.send('catchUpRequest', { fromEpoch: this.keys.epoch + 1, slot: this.keys.slot });
  }

  /**
   * Our server refused a request: we asked faster than it serves one leaf. Not a reason to leave
   * it: a refused catch-up is asked again a little later (if we are still behind), a refused
   * gossip hello or reseed leaves us on TLS pushes. A refused join fails over like any refusal.
   */
  private onRateLimited(detail: string): void {
    this.stats.rateLimited++;
    if (detail.startsWith('join')) {
      const err = new LeafProtocolError('rate-limited', detail);
      if (this.phase === 'joining') return this.failJoin(err);
      return this.dropLink(err);
    }
    if (!detail.startsWith('catchUpRequest') || !this.catchUpPending) return;
    this.catchUpPending = false;
    this.out.push({ type: 'setTimer', timer: 'catchUpRetry', afterMs: CATCH_UP_RETRY_MS });
  }

  /** Our gossip node lacks items of our server's data stream that its peers did not bring. */
  private pullData(stream: { readonly origin: number; readonly next: number } | undefined): void {
    if (stream === undefined || this.keys === undefined || !this.seeded) return;
    this.stats.dataPulls++;
    this.send('dataPull', { origin: stream.origin, fromSeq: stream.next });
  }

  private onCatchUp(body: LeafFrameBody<'catchUpReply'>): void {
    this.catchUpPending = false;
    if (this.keys === undefined) return;
    if (body.rejoin) {
      this.stats.rejoins++;
      return this.sendJoin();
    }
    const before = this.keys.epoch;
    for (const push of body.pushes) {
      const outcome = this.onPush(push, false);
      if (outcome === 'applied') this.stats.tlsRekeys++;
      if (outcome === 'rejoin') return;
      if (outcome === 'gap') break;
    }
    if (this.keys.epoch >= this.newestSeen) return;
    // Still behind an epoch a signed push announced: a capped reply or epochs cut meanwhile
    // (ask for the rest), or a server that cannot serve the gap (re-join).
    if (this.keys.epoch > before) this.requestCatchUp();
    else {
      this.stats.rejoins++;
      this.sendJoin();
    }
  }

  /** Opens one envelope for the application and counts it by `path`; holds it if its key is next. */
  private onData(envelope: Uint8Array, path: DataPath): void {
    if (this.opener === undefined) return;
    try {
      const m = this.opener.open(envelope);
      this.out.push({ type: 'message', sender: m.sender, seq: m.seq, epoch: m.epoch, data: m.data });
      if (path === 'tls') this.stats.tlsData++;
      else if (path === 'gossip') this.stats.gossipData++;
      else this.stats.pulledData++;
    } catch (e) {
      if (!(e instanceof DataEnvelopeError)) throw e;
      if (e.reason === 'unknown-epoch') {
        const epoch = decodeDataEnvelope(envelope).header.epoch; // decoded: only its key was missing
        // Sealed under an epoch before our admission (a publisher not yet at our first epoch):
        // unreadable by design (backward secrecy), not a failure.
        if (this.admittedEpoch !== undefined && epoch < this.admittedEpoch) {
          this.stats.dataBeforeAdmission++;
          return;
        }
        if (this.keys !== undefined && this.earlyData.hold({ epoch, envelope }, path, this.keys.epoch)) {
          this.stats.dataEarly++;
          return;
        }
      }
      // A copy of one delivered (gossip brings the copies two servers injected): not a failure.
      if (e.reason === 'replay' && path !== 'tls') this.stats.dataDuplicates++;
      else this.stats.decryptFailures[e.reason]++;
    }
  }

  /** An item the gossip node admitted (through `admit`) and now delivers. */
  private deliverItem(item: Item, pulled: boolean): void {
    if (this.keys === undefined) return;
    if (!isRekeyId(item.id)) {
      const entry = openStreamItem(item)!; // checked in admit
      entry.envelopes.forEach((envelope, i) => {
        // Our own publications come back through the core relay: not news to us.
        if (entry.headers[i]!.sender === this.memberId) return;
        this.onData(envelope, pulled ? 'pulled' : 'gossip');
      });
      return;
    }
    const push = openRekeyItem(item);
    const header = decodeHeader(push.header); // verified in admit
    if (this.applyPush(push, header, true, true) === 'applied') this.stats.gossipRekeys++;
  }

  private onEvicted(reason: EvictionReason): void {
    if (reason === 'key-exposed' && this.phase === 'up') {
      // Our own key was not refreshed in time after a core server's revocation: that admission
      // ended, we did not. The server closes the link; the reconnect joins afresh (no resume),
      // so the new admission's keys are fresh.
      this.admittedEpoch = undefined;
      this.stats.rejoins++;
      return;
    }
    // A pending join fails with the reason (connect rejects with LeafEvictedError).
    if (this.phase === 'joining') this.onLinkDown(new LeafEvictedError(reason));
    this.shutdown('evicted');
    this.out.push({ type: 'evicted', reason });
  }

  // ── lease ──────────────────────────────────────────────────────────────────────────────

  private startLease(): void {
    this.out.push({ type: 'cancelTimer', timer: 'lease' });
    if (this.leaseMs <= 0) return;
    this.leaseEvery = Math.max(10, Math.floor(this.leaseMs / 3));
    this.lastAckAt = this.clock;
    this.out.push({ type: 'setTimer', timer: 'lease', afterMs: this.leaseEvery });
  }

  private onLeaseTimer(): void {
    if (this.phase !== 'up' || this.leaseMs <= 0) return;
    // No ack for two thirds of the lease: the link is dead or the server is stuck — fail over
    // before the lease lapses.
    if (this.clock - this.lastAckAt > (2 * this.leaseMs) / 3 + this.leaseEvery)
      return this.dropLink(new LeafProtocolError('unexpected', 'lease renewals not acknowledged'));
    // A CRL goes stale with time alone: with requireFreshCrl the link ends when it does.
    if (this.opts.requireFreshCrl === true) this.enforceRevocation();
    this.send('leaseRenew', { seq: this.leaseSeq++ });
    this.out.push({ type: 'setTimer', timer: 'lease', afterMs: this.leaseEvery });
  }

  // ── revocation of core servers ─────────────────────────────────────────────────────────

  private applyCrls(verified: readonly VerifiedCrl[]): { applied: number; ignored: number } {
    let applied = 0;
    let ignored = 0;
    for (const v of verified) {
      if (this.revocation.isOlder(v))
        ignored++; // rollback: a replayed older CRL un-revokes nobody
      else if (this.revocation.isNewer(v)) {
        this.revocation.install([v]);
        applied++;
      }
    }
    this.stats.crlsApplied += applied;
    this.stats.crlsIgnored += ignored;
    if (applied > 0) this.enforceRevocation();
    return { applied, ignored };
  }

  /** CRLs a server sent (DER): the host verifies them off the frame path, in order, and answers `crlsVerified`. */
  private offerCrls(ders: readonly Uint8Array[]): void {
    if (ders.length > 0) this.out.push({ type: 'verifyCrls', ders });
  }

  /**
   * After a CRL change (or a new signer list): keep only signers whose server the CRLs do not
   * revoke, and drop the link to our server if it is revoked now (or, with requireFreshCrl, if
   * its issuer's CRL went stale): the failover's handshakes then refuse it.
   */
  private enforceRevocation(): void {
    this.filterSigners();
    const link = this.link;
    const accepted = link?.accepted;
    if (link === undefined || accepted === undefined) return;
    const status = this.revocation.status(accepted.issuer, accepted.certificate.serial, new Date(this.clock));
    if (status === 'revoked') {
      this.stats.serversRevoked++;
      // Its signer list is its word alone (it could have put a key of its own under a good
      // server's serial): nothing is accepted until a good server welcomes us with its list.
      this.announcedSigners = [];
      this.signers = [];
      return this.dropLink(
        new LeafProtocolError('revoked-server', `the certificate of ${link.server} is revoked (CRL)`),
      );
    }
    if (this.opts.requireFreshCrl === true && status === 'stale')
      this.dropLink(
        new LeafProtocolError('stale-crl', `the CRL of ${link.server}'s issuer is past nextUpdate`),
      );
  }

  /** Accept the signers our server listed whose certificates no CRL we hold revokes. */
  private filterSigners(): void {
    this.signers = this.announcedSigners.filter((s) => !this.revocation.isRevokedSerial(s.serial));
  }
}

export function checkPublishWindow(n: number): void {
  if (!(Number.isInteger(n) && n >= 1 && n <= 4096)) throw new RangeError('publishWindow 1..4096');
}

function hex(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += b.toString(16).padStart(2, '0');
  return s;
}
