/**
 * LeafClient — the SDK a leaf application uses to join a Keyglass leaf group.
 *
 *   const leaf = new LeafClient();
 *   leaf.on('key', ({ epoch, keyId }) => …);
 *   leaf.on('message', ({ sender, seq, data }) => …);
 *   leaf.on('evicted', ({ reason }) => …);
 *   await leaf.connect({ servers: [{ host, port }, …], credentials: { certPem, keyPem }, trust: { caPem } });
 *   leaf.publish(bytes);
 *   await leaf.close();
 *
 * Gossip tier: by default the client also binds a UDP socket (GossipLink, 127.0.0.1 ephemeral;
 * `gossip` option) and announces it after each welcome (`gossipHello`). A server with an edge
 * relay then stops pushing rekeys and data over TLS and seeds our views instead: rekey parts
 * (routed by subtree) and data envelopes reach us leaf to leaf. Every rekey item is checked
 * against the signers the welcome listed, and its id, epoch and scope against the part the
 * signed header commits to, before it is stored, relayed or applied (a peer that sends one that
 * fails is dropped from our views); a gossiped part for another path never makes us re-join; data is
 * delivered only after AEAD (and signature when required). The TLS link stays for the welcome,
 * catch-up (a gap, or a newer epoch we cannot get from peers, pulls from the server), leases,
 * publishing, and as the whole path to a server without a relay. `stats` counts what arrived
 * by which path.
 *
 * One mutually authenticated TLS 1.3 link (net/tls TlsTransport) to one core server at a time;
 * the server must present a `core` certificate of the leaf's group. `connect` resolves at the
 * first group key (the welcome). A lost link fails over to the next server with bounded retries,
 * exponential backoff and jitter, resuming the same admission (the registry is replicated, so any
 * core server recognises it).
 *
 * Rekeys: every push is checked against the signing keys the welcome listed (Ed25519 over keytree
 * `signedBytes(header)`); an unsigned or badly signed push is a protocol violation (error event,
 * link dropped, fail-over). Replayed and stale epochs are ignored; a gap asks the server for a
 * catch-up; a path that cannot be recovered (missing key, failed unwrap, no part) re-joins for a
 * fresh welcome. Malformed frames from a server: error event, link dropped, fail-over — never a
 * crash. `error` events are emitted only while someone listens (so an application that does not
 * care is not killed by EventEmitter's unhandled-'error' rule); failures are also counted in `stats`.
 *
 * Revocation of core servers: the client holds the CA-signed CRLs it was given (`trust.crlPem`,
 * `updateCrl`) or learned in band (welcomes and `crlUpdate` frames carry the server's CRLs as
 * DER). Each is verified against our trust anchors and installed only if its CRL number does not
 * go backwards (a replayed older CRL is ignored and counted). The TLS verifier consults the CRLs
 * held at each handshake, so a revoked core server is refused there; a link to a server that a
 * newer CRL revokes is dropped (we fail over); and the signing keys of revoked servers (each
 * signer entry names its server's certificate serial) leave our signer list, so their rekeys and
 * stream entries are refused. With `requireFreshCrl` a server is refused while the CRL of its
 * issuer is past nextUpdate.
 *
 * This file is the host: TLS dialing, failover and backoff, the UDP gossip link, real timers and
 * the EventEmitter API. Every protocol rule above is LeafSession's (session.ts, sans-IO).
 */
import { EventEmitter } from 'node:events';
import { loadSuite, type CipherSuite } from '../crypto/index.js';
import { DecodeError } from '../wire/index.js';
import { LinkError, TlsTransport, type LinkDownReason } from '../net/index.js';
import {
  CrlError,
  MutualTls,
  PeerVerifier,
  credentialsFromPem,
  formatIdentity,
  parseCertificatesPem,
  trustAnchorsFromPem,
  verifyCrl,
  verifyCrlPem,
  type AcceptedPeer,
  type CertInfo,
  type VerifiedCrl,
} from '../auth/index.js';
import { ExportUnavailableError, MAX_LEAF_FRAME_BYTES, type ExportedSecret } from '../gossip-edge/index.js';
import { GossipLink } from './gossip-socket.js';
import {
  LeafEvictedError,
  LeafSession,
  checkPublishWindow,
  newLeafStats,
  type GossipCommand,
  type LeafClientStats,
  type LeafSessionEffect,
  type LeafSessionEvent,
  type LeafTimer,
} from './session.js';

import {
  LeafConnectError,
  type LeafServerAddress,
  type LeafConnectOptions,
  type LeafClientOptions,
  type LeafClientEvents,
} from './client-api.js';
type State = 'idle' | 'connecting' | 'up' | 'evicted' | 'closed';

interface Waiter {
  resolve(): void;
  reject(err: Error): void;
}

export class LeafClient extends EventEmitter<LeafClientEvents> {
  readonly stats: LeafClientStats = newLeafStats();

  /** The protocol machine (created with the suite: at construction if given, else at the first connect). */
  private session: LeafSession | undefined;
  private state: State = 'idle';
  private transport: TlsTransport | undefined;
  private servers: readonly LeafServerAddress[] = [];
  private nextServer = 0;
  private peer: string | undefined;
  /** CAs a CRL may come from: our anchors and intermediates (set by connect). */
  private crlIssuers: readonly CertInfo[] = [];
  /** Core servers as the TLS verifier accepted them (certificate, issuer), by link identity. */
  private readonly acceptedServers = new Map<string, AcceptedPeer>();
  /** In-band CRLs are verified one batch after another, in arrival order. */
  private crlQueue: Promise<void> = Promise.resolve();
  private welcomeWaiter: Waiter | undefined;
  /** The session's timers, run for real. */
  private readonly timers = new Map<LeafTimer, NodeJS.Timeout>();
  /** Items the gossip node delivers now come from our data pull (stats). */
  private pulling = false;
  /** What connect() set up to link to core servers (kept to link again only to leave). */
  private tlsIdentity: { mtls: MutualTls; local: string } | undefined;
  /** The running failover after an established link went down (settles, never rejects). */
  private failover: Promise<void> | undefined;
  private link: GossipLink | undefined;
  private readonly opts: Required<
    Pick<
      LeafClientOptions,
      'maxAttempts' | 'backoffBaseMs' | 'backoffMaxMs' | 'welcomeTimeoutMs' | 'handshakeTimeoutMs'
    >
  > &
    LeafClientOptions;

  constructor(options: LeafClientOptions = {}) {
    super();
    this.opts = {
      maxAttempts: 8,
      backoffBaseMs: 100,
      backoffMaxMs: 5000,
      welcomeTimeoutMs: 10_000,
      handshakeTimeoutMs: 10_000,
      ...options,
    };
    if (!(this.opts.maxAttempts >= 1 && this.opts.maxAttempts <= 1000))
      throw new RangeError('maxAttempts 1..1000');
    if (options.publishWindow !== undefined) checkPublishWindow(options.publishWindow);
    if (options.suite !== undefined) this.session = this.newSession(options.suite);
  }

  private newSession(suite: CipherSuite): LeafSession {
    const o = this.opts;
    // The session's options pass through as they are (one list: LeafSessionOptions).
    const {
      suite: _suite,
      maxAttempts: _attempts,
      backoffBaseMs: _base,
      backoffMaxMs: _max,
      handshakeTimeoutMs: _handshake,
      random: _random,
      gossip: _gossip,
      ...sessionOptions
    } = o;
    return new LeafSession({ ...sessionOptions, suite, stats: this.stats });
  }

  /** The current epoch, or undefined without a key. */
  get epoch(): number | undefined {
    return this.session?.epoch;
  }

  /** Our member id (sender id of our data) in the current admission. */
  get member(): number | undefined {
    return this.session?.member;
  }

  /** The epoch our admission began at: data sealed under earlier epochs is not ours to read. */
  get admissionEpoch(): number | undefined {
    return this.session?.admissionEpoch;
  }

  /** The gossip link (UDP endpoint, counters), when the gossip tier is on. */
  get gossip(): GossipLink | undefined {
    return this.link;
  }

  /**
   * The core servers whose rekeys and stream entries we accept now: those our server listed,
   * minus any whose certificate a CRL we hold revokes.
   */
  get trustedSigners(): readonly { name: string; serial: string }[] {
    return this.session?.trustedSigners ?? [];
  }

  /** The identity of the core server we are linked to. */
  get server(): string | undefined {
    return this.state === 'up' ? this.peer : undefined;
  }

  /** Links to a core server and waits for the welcome. Rejects with LeafConnectError when every attempt failed. */
  async connect(target: LeafConnectOptions): Promise<void> {
    if (this.state !== 'idle') throw new Error(`LeafClient: connect in state ${this.state}`);
    if (target.servers.length === 0) throw new RangeError('LeafClient: no servers');
    this.state = 'connecting';
    try {
      const suite = this.opts.suite ?? (await loadSuite());
      const session = (this.session ??= this.newSession(suite));
      const creds =
        'privateKey' in target.credentials
          ? target.credentials
          : credentialsFromPem(
              target.credentials.certPem,
              target.credentials.keyPem,
              target.credentials.passphrase,
            );
      if (creds.identity === undefined || creds.identity.role !== 'leaf')
        throw new RangeError(
          'LeafClient: credentials must carry a leaf identity (keyglass://<group>/leaf/<name>)',
        );
      const anchors = trustAnchorsFromPem(target.trust.caPem);
      const intermediates =
        target.trust.intermediatesPem !== undefined
          ? parseCertificatesPem(target.trust.intermediatesPem)
          : [];
      this.crlIssuers = [...anchors, ...intermediates];
      if (target.trust.crlPem !== undefined) await this.updateCrl(target.trust.crlPem);
      const verifier = new PeerVerifier({
        anchors,
        intermediates,
        group: target.trust.group ?? creds.identity.group,
        // Live: every handshake reads the CRLs held at that moment.
        revocation: session.revocation,
        refuseStaleCrl: this.opts.requireFreshCrl ?? false,
      });
      const mtls = new MutualTls(creds, verifier);
      if (this.opts.gossip !== false)
        this.link = await GossipLink.bind(
          suite,
          {
            admit: (item) => session.admit(item, Date.now()),
            deliver: (item) => this.feed({ type: 'gossipDeliver', item, pulled: this.pulling }),
            pullFromCore: (req) => this.feed({ type: 'gossipPull', req, coreStream: this.link?.coreStream }),
            reseed: () => this.feed({ type: 'gossipReseed' }),
          },
          this.opts.gossip ?? {},
        );
      this.servers = target.servers;
      this.tlsIdentity = { mtls, local: formatIdentity(creds.identity) };
      this.transport = this.newTransport();
      this.transport.setHandler({
        onMessage: (from, data) => this.onFrame(from, data),
        onPeerDown: (peer, reason, detail) => this.onLinkDown(peer, reason, detail),
      });
      await this.dial();
    } catch (e) {
      // Closed or evicted meanwhile: that state stays; otherwise the client may connect again.
      if (this.state === 'connecting') await this.shutdown('idle');
      throw e;
    }
  }

  /**
   * Seals and sends `data` to the group under the current epoch. False, and nothing sent, while
   * `publishWindow` publishes await their server's answer (wait for 'drain'), or when the link
   * could not take it now, or when our newest key was retired longer than the grace window ago
   * (we lag behind the group: a 'refused' event with reason 'retired-epoch' at once, 'drain' at
   * our next key). A refusal by the server comes as a 'refused' event.
   */
  publish(data: Uint8Array): boolean {
    if (this.session === undefined || this.state !== 'up') throw new Error('LeafClient: not connected');
    const { sent, effects } = this.session.publish(data, Date.now());
    return this.run(effects) && sent;
  }

  /** Publishes sent on the current link and not answered yet. */
  get publishesInFlight(): number {
    return this.session?.publishesInFlight ?? 0;
  }

  /**
   * A secret for the application's own encryption (files, media, streams), derived from the
   * current epoch's group key and bound to the group, that epoch, `label` (1..64 printable ASCII
   * characters naming the use, e.g. 'myapp file key') and `context` (≤ 512 bytes, e.g. a file or
   * stream id); `length` 16..1024 bytes. Every member of the epoch derives the same secret; a
   * member evicted before it cannot, nor can one admitted after it. The secret changes with the
   * epoch: each `key` event announces a new one (export again there). Returns the epoch with
   * the secret, a fresh buffer the caller owns (wipe it when done). Throws
   * `ExportUnavailableError` without a usable key (not connected, evicted, closed, or our newest
   * key retired beyond the grace window while we lag), RangeError for a bad argument.
   * Construction: gossip-edge/exporter.ts.
   */
  exportSecret(label: string, context: Uint8Array, length: number): ExportedSecret {
    return this.exportAt(undefined, label, context, length);
  }

  /**
   * `exportSecret` for `epoch`, the current one or a retired one still readable (at most
   * `previousEpochs` back, for `retiredEpochGraceMs` after it was retired): to read what was
   * protected under it, never to protect new data (members evicted since can derive it).
   * `ExportUnavailableError` with reason 'before-admission', 'not-yet' or 'retired' otherwise.
   */
  exportSecretAt(epoch: number, label: string, context: Uint8Array, length: number): ExportedSecret {
    return this.exportAt(epoch, label, context, length);
  }

  private exportAt(
    epoch: number | undefined,
    label: string,
    context: Uint8Array,
    length: number,
  ): ExportedSecret {
    if (this.session === undefined) throw new ExportUnavailableError('no-key', epoch);
    return this.session.exportSecret(epoch, label, context, length, Date.now());
  }

  /**
   * Installs the CA's CRL(s) (PEM; e.g. a file the application reloads): each must verify under
   * our trust anchors (CrlError otherwise, nothing installed). A CRL older than the one held for
   * its issuer is ignored (counted); a newer one is installed and enforced at once: a link to a
   * server it revokes is dropped, and its servers' signing keys are no longer accepted. Callable
   * before `connect` only through `trust.crlPem`.
   */
  async updateCrl(pem: string): Promise<{ applied: number; ignored: number }> {
    if (this.crlIssuers.length === 0 || this.session === undefined)
      throw new Error('LeafClient: updateCrl before connect');
    const verified = await verifyCrlPem(pem, this.crlIssuers);
    if (verified.length === 0) throw new CrlError('no X509 CRL PEM block');
    const { applied, ignored, effects } = this.session.installCrls(verified, Date.now());
    this.run(effects);
    return { applied, ignored };
  }

  /** The CRLs held now, one per issuer (what `updateCrl`, `trust.crlPem` and servers brought). */
  get crls(): readonly { issuer: string; crlNumber: bigint | undefined; nextUpdate: Date | undefined }[] {
    return (this.session?.revocation.installed() ?? []).map((c) => ({
      issuer: c.issuer.subject,
      crlNumber: c.crlNumber,
      nextUpdate: c.nextUpdate,
    }));
  }

  /**
   * Leaves the group (the server evicts us in its next batch) and closes. A client that is
   * failing over when asked to leave first waits (at most `leaveWaitMs`, default the welcome
   * timeout) for the new link, and one whose failover gave up links again just to leave, so that
   * its leave reaches a server: otherwise the registry would keep it until its lease expired.
   */
  async close(opts: { leave?: boolean; leaveWaitMs?: number } = {}): Promise<void> {
    if (this.state === 'closed') return;
    if (opts.leave ?? true) {
      const waitMs = opts.leaveWaitMs ?? this.opts.welcomeTimeoutMs;
      const failover = this.failover;
      if (this.state === 'connecting' && failover !== undefined) await within(failover, waitMs);
      if (this.state === 'up') this.feed({ type: 'leave' });
      else if (this.state === 'idle') await this.leaveWithoutLink(waitMs);
    }
    await this.shutdown('closed');
  }

  // ── the session's effects ──────────────────────────────────────────────────────────────

  private feed(event: LeafSessionEvent): void {
    if (this.session !== undefined) this.run(this.session.handle(event, Date.now()));
  }

  /** Runs the session's effects in order; false if a frame could not be sent (the session is told). */
  private run(effects: readonly LeafSessionEffect[]): boolean {
    let allSent = true;
    for (const e of effects) if (!this.effect(e)) allSent = false;
    return allSent;
  }

  private effect(e: LeafSessionEffect): boolean {
    switch (e.type) {
      case 'send': {
        const peer = this.peer;
        if (peer !== undefined && this.transport?.send(peer, e.bytes) === true) return true;
        this.feed({
          type: 'sendFailed',
          frameType: e.frameType,
          ...(e.seq !== undefined ? { seq: e.seq } : {}),
        });
        return false;
      }
      case 'dropLink':
        if (this.peer !== undefined) this.transport?.disconnect(this.peer, e.reason.message); // onLinkDown fails over
        break;
      case 'setTimer': {
        clearTimeout(this.timers.get(e.timer));
        const timer = setTimeout(() => {
          this.timers.delete(e.timer);
          this.feed({ type: 'timer', timer: e.timer });
        }, e.afterMs);
        // A pending welcome keeps the process (and connect) alive; renewals and retries do not.
        if (e.timer !== 'welcome') timer.unref();
        this.timers.set(e.timer, timer);
        break;
      }
      case 'cancelTimer':
        clearTimeout(this.timers.get(e.timer));
        this.timers.delete(e.timer);
        break;
      case 'welcomed': {
        const w = this.welcomeWaiter;
        this.welcomeWaiter = undefined;
        w?.resolve();
        break;
      }
      case 'joinFailed':
        this.failWaiter(e.error);
        break;
      case 'gossip':
        this.gossipCommand(e.command);
        break;
      case 'verifyCrls':
        this.verifyCrls(e.ders);
        break;
      case 'key':
        this.emit('key', { epoch: e.epoch, keyId: e.keyId });
        break;
      case 'message':
        this.emit('message', { sender: e.sender, seq: e.seq, epoch: e.epoch, data: e.data });
        break;
      case 'refused':
        this.emit('refused', { seq: e.seq, reason: e.reason });
        break;
      case 'drain':
        this.emit('drain');
        break;
      case 'evicted':
        void this.shutdown('evicted');
        this.emit('evicted', { reason: e.reason });
        break;
      case 'error':
        this.report(e.error);
        break;
    }
    return true;
  }

  private gossipCommand(c: GossipCommand): void {
    const link = this.link;
    if (link === undefined) {
      if (c.op === 'installKey') c.groupKey.fill(0);
      return;
    }
    switch (c.op) {
      case 'start':
        if (!link.started) link.start(c.slot, c.epoch, c.arity);
        return;
      case 'installKey':
        try {
          if (link.started) link.installKey(c.epoch, c.groupKey);
        } finally {
          c.groupKey.fill(0);
        }
        return;
      case 'moveTo':
        if (link.started) link.moveTo(c.slot, c.epoch);
        return;
      case 'seed':
        return link.seed(c.seed);
      case 'noteCoreStream':
        return link.noteCoreStream(c.stream);
      case 'dataPull':
        this.pulling = true;
        try {
          link.onDataPull(c.reply);
        } finally {
          this.pulling = false;
        }
        return;
    }
  }

  /** CRLs a server sent (DER): verified off the frame path, in order; the session installs and enforces them. */
  private verifyCrls(ders: readonly Uint8Array[]): void {
    this.crlQueue = this.crlQueue
      .then(async () => {
        const verified: VerifiedCrl[] = [];
        const invalid: string[] = [];
        for (const der of ders) {
          try {
            verified.push(await verifyCrl(der, this.crlIssuers));
          } catch (e) {
            if (!(e instanceof CrlError)) throw e;
            invalid.push(e.message);
          }
        }
        this.feed({ type: 'crlsVerified', verified, invalid });
      })
      .catch((e: unknown) => this.report(e as Error));
  }

  // ── connection management ────────────────────────────────────────────────────────────────

  /** A TLS transport to core servers under our identity (connect() set it up). */
  private newTransport(): TlsTransport {
    const id = this.tlsIdentity!;
    return new TlsTransport({
      local: id.local,
      tls: id.mtls.contextOptions(),
      identify: id.mtls.transportIdentify(
        { roles: ['core'], peerSide: 'server' },
        (reason) => {
          if (reason === 'revoked') this.stats.serversRevoked++;
        },
        (peer) => {
          // Bounded by the core servers' identities (one entry each, the newest certificate).
          this.acceptedServers.set(formatIdentity(peer.identity), peer);
        },
      ),
      maxMessageBytes: MAX_LEAF_FRAME_BYTES,
      handshakeTimeoutMs: this.opts.handshakeTimeoutMs,
      maxLinks: 4,
    });
  }

  /**
   * A client whose failover gave up still holds its admission in the registry: it links to the
   * servers in turn (within `waitMs`) only to say it leaves. A server takes a leave from any
   * authenticated link of that leaf, welcomed or not.
   */
  private async leaveWithoutLink(waitMs: number): Promise<void> {
    const leave = this.session?.leaveFrame();
    if (this.tlsIdentity === undefined || leave === undefined) return;
    const t = this.newTransport();
    t.setHandler({ onMessage: () => {}, onPeerDown: () => {} });
    const deadline = Date.now() + waitMs;
    try {
      for (const s of this.servers) {
        const left = deadline - Date.now();
        if (left <= 0) return;
        const peer = await within(
          t.connect(s.host, s.port).catch(() => undefined),
          left,
        );
        if (peer !== undefined && t.send(peer, leave)) return;
      }
    } finally {
      await t.close(); // ends each link after what was written
    }
  }

  /** Tries servers in turn until one welcomes us (bounded attempts, backoff with jitter). */
  private async dial(): Promise<void> {
    const tried: string[] = [];
    for (let attempt = 0; attempt < this.opts.maxAttempts; attempt++) {
      if (this.state === 'closed' || this.state === 'evicted')
        throw new LeafConnectError('client closed', tried);
      if (attempt > 0) await sleep(this.backoff(attempt - 1));
      const transport = this.transport;
      if (transport === undefined) throw new LeafConnectError('client closed', tried);
      const server = this.servers[this.nextServer % this.servers.length]!;
      this.nextServer = (this.nextServer + 1) % this.servers.length;
      const where = `${server.host}:${server.port}`;
      try {
        const peer = await transport.connect(server.host, server.port);
        this.peer = peer;
        await this.join(peer);
        if (this.state !== 'connecting') throw new LeafConnectError(`client ${this.state}`, tried);
        this.state = 'up';
        this.nextServer = (this.nextServer + this.servers.length - 1) % this.servers.length; // stay on it
        this.emit('connected', { server: peer });
        return;
      } catch (e) {
        if (e instanceof LeafEvictedError) throw e;
        tried.push(`${where}: ${(e as Error).message}`);
        if (this.peer !== undefined) transport.disconnect(this.peer, 'join failed');
        this.peer = undefined;
      }
    }
    throw new LeafConnectError(`no core server welcomed us after ${this.opts.maxAttempts} attempts`, tried);
  }

  private backoff(k: number): number {
    const base = Math.min(this.opts.backoffMaxMs, this.opts.backoffBaseMs * 2 ** Math.min(k, 20));
    return base * (0.5 + 0.5 * (this.opts.random ?? Math.random)());
  }

  /** Hands the new link to the session (it joins, resuming our admission) and waits for the welcome. */
  private join(peer: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.failWaiter(new Error('superseded by a new join'));
      this.welcomeWaiter = { resolve, reject };
      const accepted = this.acceptedServers.get(peer);
      const endpoint = this.link?.endpoint;
      this.feed({
        type: 'linkUp',
        link: {
          server: peer,
          ...(accepted !== undefined ? { accepted } : {}),
          ...(endpoint !== undefined ? { gossip: endpoint } : {}),
          exportKeyingMaterial: (length, label) => this.transport?.exportKeyingMaterial(peer, length, label),
        },
      });
    });
  }

  private failWaiter(err: Error): void {
    const w = this.welcomeWaiter;
    if (w === undefined) return;
    this.welcomeWaiter = undefined;
    w.reject(err);
  }

  private onLinkDown(peer: string, reason: LinkDownReason, detail: string | undefined): void {
    if (peer !== this.peer) return;
    this.peer = undefined;
    const joining = this.welcomeWaiter !== undefined;
    this.feed({ type: 'linkDown', error: new LinkError(reason, detail ?? 'link down') });
    if (!joining && this.state === 'up') this.reconnect();
  }

  /** After losing an established link: fail over, resuming our admission. */
  private reconnect(): void {
    if (this.failover !== undefined) return;
    this.state = 'connecting';
    this.stats.reconnects++;
    this.failover = this.dial()
      .catch(async (e: unknown) => {
        if (this.state === 'connecting') {
          this.report(e as Error);
          await this.shutdown('idle');
        }
      })
      .finally(() => {
        this.failover = undefined;
      });
  }

  private async shutdown(next: 'idle' | 'closed' | 'evicted'): Promise<void> {
    this.state = next;
    this.feed({ type: 'shutdown', state: next });
    this.failWaiter(new Error(`client ${next}`));
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    this.peer = undefined;
    const t = this.transport;
    this.transport = undefined;
    const link = this.link;
    this.link = undefined;
    await Promise.all([t?.close(), link?.close()]);
    if (next === 'idle') this.state = 'idle';
  }

  // ── frames ───────────────────────────────────────────────────────────────────────────────

  private onFrame(from: string, bytes: Uint8Array): void {
    if (from !== this.peer) return;
    try {
      this.feed({ type: 'frame', frame: bytes });
    } catch (e) {
      // A gossip command the frame carried (a stream position, a pull reply) is out of range.
      if (!(e instanceof DecodeError)) throw e;
      this.feed({ type: 'badFrame', detail: `from ${from}: ${e.message}` });
    }
  }

  private report(err: Error): void {
    if (this.listenerCount('error') > 0) this.emit('error', err);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** `p`'s value, or undefined once `ms` passed first (the timer never outlives the wait). */
async function within<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  try {
    const timeout = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms)));
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
