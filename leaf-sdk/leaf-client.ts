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
 * One mutually authenticated TLS 1.3 link to one core server at a time (it must present a `core`
 * certificate of our group); `connect` resolves at the welcome (the first group key). A lost link
 * fails over to the next server (bounded retries, exponential backoff with jitter), resuming the
 * same admission: the registry is replicated, so any core server recognises it. By default the
 * client also binds a UDP gossip socket (`gossip` option) and announces it after each welcome: a
 * server with an edge relay then seeds our views, and rekey parts and data reach us leaf to leaf;
 * the TLS link stays for the welcome, catch-up, leases, publishing, and as the whole path to a
 * server without a relay. `stats` counts what arrived by which path.
 *
 * Every rekey (pushed or gossiped) must be signed by a core server the welcome listed, and a
 * gossip item must carry the id, epoch and scope of the part its signed header commits to, before
 * it is stored, relayed or applied; replays and stale epochs are ignored, a gap asks for a
 * catch-up, a path that cannot be recovered re-joins (never for a gossiped part of another path);
 * data is delivered only after AEAD (and a signature when required). A malformed frame or a bad
 * signature from a server is a protocol violation: error event, link dropped, fail-over — never a
 * crash. CRLs (given, or brought in band by servers) are verified against our anchors and never
 * roll back; a revoked core server is refused at the handshake, dropped when a newer CRL revokes
 * it, and its signing keys leave our signer list. `error` events are emitted only while someone
 * listens (an application that does not care is not killed by EventEmitter's 'error' rule).
 *
 * This file is the host of LeafSession (session.ts, sans-IO), which holds every rule above: it
 * feeds the session events with `now`, runs its effects and is the public API. Its parts: the TLS
 * link, dialing and backoff in server-link.ts; mutual TLS and CRL verification in server-trust.ts;
 * the UDP gossip link in gossip-host.ts; options in client-options.ts.
 */
import { EventEmitter } from 'node:events';
import { loadSuite, type CipherSuite } from '../crypto/index.js';
import { DecodeError } from '../wire/index.js';
import type { LinkError } from '../net/index.js';
import { ExportUnavailableError, type ExportedSecret } from '../gossip-edge/index.js';
import type { GossipLink } from './gossip-socket.js';
import {
  LeafSession,
  newLeafStats,
  type LeafClientStats,
  type LeafLinkInfo,
  type LeafSessionEffect,
  type LeafSessionEvent,
  type LeafTimer,
} from './session.js';
import {
  LeafConnectError,
  type LeafConnectOptions,
  type LeafClientOptions,
  type LeafClientEvents,
} from './client-api.js';
import { ServerLink, within } from './server-link.js';
import { ServerTrust } from './server-trust.js';
import { GossipHost, discardGossipCommand } from './gossip-host.js';
import { clientOptions, type ClientOptions } from './client-options.js';
import { RealTimers } from './real-timers.js';

type State = 'idle' | 'connecting' | 'up' | 'evicted' | 'closed';

export class LeafClient extends EventEmitter<LeafClientEvents> {
  readonly stats: LeafClientStats = newLeafStats();

  /** The protocol machine (created with the suite: at construction if given, else at the first connect). */
  private session: LeafSession | undefined;
  private state: State = 'idle';
  /** What connect() set up; kept after a shutdown to verify CRLs and to link again only to leave. */
  private trust: ServerTrust | undefined;
  private serverLink: ServerLink | undefined;
  private gossipHost: GossipHost | undefined;
  /** The session's timers, run for real. */
  private readonly timers = new RealTimers<LeafTimer>();
  /** The running failover after an established link went down (settles, never rejects). */
  private failover: Promise<void> | undefined;
  private readonly opts: ClientOptions;

  constructor(options: LeafClientOptions = {}) {
    super();
    this.opts = clientOptions(options);
    if (this.opts.suite !== undefined) this.session = this.newSession(this.opts.suite);
  }

  private newSession(suite: CipherSuite): LeafSession {
    return new LeafSession({ ...this.opts.session, suite, stats: this.stats });
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
    return this.gossipHost?.link;
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
    return this.state === 'up' ? this.serverLink?.server : undefined;
  }

  /** Links to a core server and waits for the welcome. Rejects with LeafConnectError when every attempt failed. */
  async connect(target: LeafConnectOptions): Promise<void> {
    if (this.state !== 'idle') throw new Error(`LeafClient: connect in state ${this.state}`);
    if (target.servers.length === 0) throw new RangeError('LeafClient: no servers');
    this.state = 'connecting';
    try {
      const suite = this.opts.suite ?? (await loadSuite());
      const session = (this.session ??= this.newSession(suite));
      const trust = (this.trust = new ServerTrust(target, {
        revocation: session.revocation, // live: every handshake reads the CRLs held at that moment
        requireFreshCrl: this.opts.session.requireFreshCrl ?? false,
        onRevoked: () => this.stats.serversRevoked++,
      }));
      if (target.trust.crlPem !== undefined) await this.updateCrl(target.trust.crlPem);
      const feed = (event: LeafSessionEvent): void => this.feed(event);
      const { gossip: gossipOptions } = this.opts;
      const gossip =
        gossipOptions === false ? undefined : await GossipHost.bind(suite, session, feed, gossipOptions);
      if (this.state !== 'connecting') {
        await gossip?.close(); // closed meanwhile: nothing of this connect is kept
        throw new LeafConnectError(`client ${this.state}`, []);
      }
      this.gossipHost = gossip;
      this.serverLink = new ServerLink(
        trust,
        { ...this.opts.dial, servers: target.servers },
        {
          linkUp: (link) => this.onLinkUp(link),
          frame: (server, bytes) => this.onFrame(server, bytes),
          linkDown: (error, joining) => this.onLinkDown(error, joining),
        },
      );
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
    const { trust, session } = this;
    if (trust === undefined || session === undefined) throw new Error('LeafClient: updateCrl before connect');
    const verified = await trust.verifyPem(pem);
    const { applied, ignored, effects } = session.installCrls(verified, Date.now());
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
      const waitMs = opts.leaveWaitMs ?? this.opts.leaveWaitMs;
      const failover = this.failover;
      if (this.state === 'connecting' && failover !== undefined) await within(failover, waitMs);
      if (this.state === 'up') this.feed({ type: 'leave' });
      else if (this.state === 'idle') {
        const leave = this.session?.leaveFrame(); // none: we hold no admission
        if (leave !== undefined) await this.serverLink?.leaveWithoutLink(leave, waitMs);
      }
    }
    await this.shutdown('closed');
  }

  // ── the session's events and effects ───────────────────────────────────────────────────

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
      case 'send':
        if (this.serverLink?.send(e.bytes) === true) return true;
        this.feed({ type: 'sendFailed', frameType: e.frameType, seq: e.seq });
        return false;
      case 'dropLink':
        this.serverLink?.drop(e.reason.message); // onLinkDown fails over
        break;
      case 'setTimer': {
        const fire = (): void => this.feed({ type: 'timer', timer: e.timer });
        // A pending welcome keeps the process (and connect) alive; renewals and retries do not.
        this.timers.set(e.timer, e.afterMs, fire, e.timer === 'welcome');
        break;
      }
      case 'cancelTimer':
        this.timers.cancel(e.timer);
        break;
      case 'welcomed':
        this.serverLink?.welcomed();
        break;
      case 'joinFailed':
        this.serverLink?.joinFailed(e.error);
        break;
      case 'gossip':
        if (this.gossipHost !== undefined) this.gossipHost.run(e.command);
        else discardGossipCommand(e.command);
        break;
      case 'verifyCrls':
        this.trust?.verifyInOrder(
          e.ders,
          (verified, invalid) => this.feed({ type: 'crlsVerified', verified, invalid }),
          (error) => this.report(error),
        );
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

  /** A new link (authenticated): the session joins over it, resuming our admission. */
  private onLinkUp(link: LeafLinkInfo): void {
    const endpoint = this.gossipHost?.endpoint;
    this.feed({ type: 'linkUp', link: endpoint !== undefined ? { ...link, gossip: endpoint } : link });
  }

  private onFrame(server: string, bytes: Uint8Array): void {
    try {
      this.feed({ type: 'frame', frame: bytes });
    } catch (e) {
      // A gossip command the frame carried (a stream position, a pull reply) is out of range.
      if (!(e instanceof DecodeError)) throw e;
      this.feed({ type: 'badFrame', detail: `from ${server}: ${e.message}` });
    }
  }

  private onLinkDown(error: LinkError, joining: boolean): void {
    this.feed({ type: 'linkDown', error });
    if (!joining && this.state === 'up') this.reconnect();
  }

  // ── connection state ───────────────────────────────────────────────────────────────────

  /** Links to a server that welcomes us (at connect, and to fail over); then we are up. */
  private async dial(): Promise<void> {
    const link = this.serverLink;
    if (link === undefined) throw new LeafConnectError('client closed', []);
    const server = await link.dial();
    if (this.state !== 'connecting') throw new LeafConnectError(`client ${this.state}`, []);
    this.state = 'up';
    this.emit('connected', { server });
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
    this.timers.cancelAll();
    const gossip = this.gossipHost;
    this.gossipHost = undefined;
    // The link's close fails a pending join and ends the transport at once (before any await).
    await Promise.all([this.serverLink?.close(`client ${next}`), gossip?.close()]);
    if (next === 'idle') this.state = 'idle';
  }

  private report(err: Error): void {
    if (this.listenerCount('error') > 0) this.emit('error', err);
  }
}
