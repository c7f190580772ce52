/**
 * KeyServer — one core key server as a process: the HOST of the virtual-synchrony stack
 * (GroupMember, over a TLS 1.3 mutual-auth mesh) and of the leaf plane (leaf-plane/
 * server-plane.ts, ServerPlane: replication of leaf-state commands, group commit, batch cuts,
 * uniform release, lease grace, revocations, and through its LeafEdge the leaf sessions). Every
 * piece of logic lives in those sans-IO machines; this file wires them to the world: the core and
 * leaf ports, the edge relay's UDP socket, timers (the stack's tick, the batch interval, the
 * timers the plane asks for), the data dir (LeafStore, PrimaryRecord, IncarnationRecord), CRL
 * reload, SIGHUP reload, prom-client metrics, the admin HTTP endpoint and logs. Each stack
 * upcall and leaf frame is handed to the plane with Date.now().
 *
 * Core key: the stack runs with the core key on (GroupMemberOptions.keys). Every frame between
 * core servers is sealed; a new core key is agreed on every view change and every
 * `coreKeyRefreshMs` inside a view, over pairwise keys whose offers are signed with each server's
 * certificate key (Ed25519, required) and verified against the certificate its peers saw on the
 * authenticated TLS link. Each commit hands the plane the key (it derives the leaf-tree secret).
 * Before the first key of a cluster, the secret is random from a server's first boot and made
 * common by state transfer (the joiner compacts its store at once, so it survives a restart).
 *
 * Incarnations: a server's first boot in cluster generation G is incarnation G·2^30 (the founders
 * of the genesis view are every configured server at that incarnation); a restart takes a later
 * one (IncarnationRecord: the data dir holds a durable reservation one past the incarnation in
 * use, advanced whenever the stack rejoins in memory as incarnation + 1), so a restarted server is
 * a new member that merges into the running group and receives its state. The durable primary
 * component (PrimaryRecord, data dir file `primary`) keeps the last primary view and the version
 * of the committed state across restarts: after any outage the servers become primary again by
 * themselves once a majority of the last primary view's names are connected, and the newest
 * state among them is the one every other adopts (never name order). `generation` is only the
 * disaster-recovery step for a majority lost for good (primary-record.ts).
 *
 * Signing key: the certificate's key when it is Ed25519 (the default of `keyglass ca issue`),
 * otherwise the 32-byte seed in `signingKeyFile` (hex). The plane announces it to the other
 * servers after every view change; welcomes list every key known whose server's certificate our
 * CRL does not revoke, and carry the CRL itself (leaves verify it and refuse revoked servers).
 */
import { randomBytes, type X509Certificate } from 'node:crypto';
import { unwatchFile, watchFile } from 'node:fs';
import type { CipherSuite } from '../crypto/index.js';
import { LEAF_KEY_EXPORTER_BYTES, LEAF_KEY_EXPORTER_LABEL } from '../keytree/index.js';
import {
  TlsTransport,
  ThreadTransport,
  LinkError,
  threadCpuSeconds,
  DUPLICATE_IDENTITY,
  INSTANCE_BYTES,
} from '../net/index.js';
import {
  CrlError,
  MutualTls,
  readCrlFile,
  REFUSAL_REASONS,
  PeerVerifier,
  normalizeSerial,
  type CertInfo,
  type Credentials,
  type DirLock,
  type RevocationRegistry,
} from '../auth/index.js';
import { EdgeRelay } from './edge-relay-socket.js';
import {
  GroupMember,
  MAX_STATE_BYTES,
  incarnationOf,
  memberKey,
  versionText,
  type CoreKeyConfig,
  type CoreKeyInfo,
  type Delivery,
  type GroupApp,
  type MemberKey,
  type StateVersion,
  type View,
} from '../core-group/index.js';
import {
  MAX_RENEWALS_PER_COMMAND,
  ServerPlane,
  isStoreFailure,
  type LeafStateMachine,
  type LeafStore,
  type PlaneTimer,
} from '../leaf-plane/index.js';
import { INCARNATIONS_PER_GENERATION, MAX_CORE_SERVERS, type ServerConfig } from './config.js';
import {
  MAX_LEAF_LINKS,
  leafIdentify,
  leafLinkOptions,
  leafLinkRefusal,
  nextLeafPortCrl,
  spawnLeafPortThread,
  type LeafLinkInfo,
  type LeafPortCrl,
  type LeafPortEvent,
} from './leaf-port.js';
import { jsonLogger, type Logger, type LogLevel } from './log.js';
import { Readiness } from './readiness.js';
import { planReload } from './reload.js';
import { ServerMetrics } from './metrics.js';
import { AdminServer } from './admin.js';
import { bound, openServer, type OpenedServer } from './open.js';
import { certificateVerifyKey, type IncarnationRecord } from './boot.js';

// The leaf port's bound on links also bounds the renewals the edge collects per interval (one
// name per linked leaf): one renewal command must carry them all, or acknowledged ones are lost.
if (MAX_LEAF_LINKS > MAX_RENEWALS_PER_COMMAND)
  throw new Error('leaf edge: one renewal command must carry every linked leaf');

/** How often a server dials configured peers it has no link to. */
const DIAL_INTERVAL_MS = 300;
/** Uniform [0,1) draws for the pairwise renewal jitter: 48 random bits (a safe integer). */
const uniform = (): number => randomBytes(6).readUIntBE(0, 6) / 2 ** 48;

export interface ServerStatus {
  readonly name: string;
  readonly member: MemberKey;
  readonly view: { readonly id: string; readonly members: readonly MemberKey[]; readonly primary: boolean };
  readonly coordinator: boolean;
  /** Generation of the committed core key: equal on every member of a keyed view; 0 before the first. */
  readonly coreEpoch: number;
  readonly leafEpoch: number;
  /**
   * Version of the committed leaf state (generation.step.applied.extra, PrimaryRecord): after an
   * outage the newest one among the servers is the state they all adopt.
   */
  readonly stateVersion: string;
  /** Generation of the leaf tree's key-derivation secret (follows the core key in primary views). */
  readonly leafKeyGeneration: number;
  readonly leaves: number;
  readonly sessions: number;
  readonly pendingBatch: number;
  /**
   * The last leaf batch this server applied: its epoch, when (ms since the Unix epoch), and how
   * long handing it to this server's leaves took (signing, every TLS push encrypted and written,
   * the relay's datagrams sent, welcomes): the server's share of a rekey's latency.
   */
  readonly lastBatch:
    { readonly epoch: number; readonly appliedAtMs: number; readonly fanOutMs: number } | undefined;
  readonly signers: readonly string[];
  readonly links: readonly string[];
}

export class KeyServer implements GroupApp {
  readonly metrics = new ServerMetrics();
  readonly log: Logger;
  private readonly member: GroupMember;
  private readonly core: TlsTransport;
  private readonly leaf: TlsTransport | ThreadTransport;
  /** The CRL text last loaded, and the number of the last load that revoked something (leaf-port.ts). */
  private crl: LeafPortCrl | undefined;
  private readonly admin: AdminServer;
  /** The leaf plane: replication, batches, release and the leaf sessions (sans-IO). */
  readonly plane: ServerPlane;
  /** The edge relay's UDP socket, when gossip is on. */
  private relay: EdgeRelay | undefined;
  /** How long handing the last released batch to this server's leaves took (status). */
  private lastFanOutMs = 0;
  /**
   * The certificate serial each core peer last linked with. Kept after its link goes down: a link
   * replaced by a newer one reports its down after the newer one's identify, and a revocation
   * must still find the server (and start its full refresh) while it is unlinked. Bounded by the
   * core names the CA issued that ever linked here (MAX_CORE_SERVERS × 4 at most).
   */
  private readonly corePeerSerials = new Map<string, string>();
  /** Ed25519 certificate keys of core peers, by name, as seen on authenticated links (verifyKeyOf). */
  private readonly coreVerifyKeys = new Map<string, Uint8Array>();
  /** TLS exporters of leaf links whose TLS runs on the worker thread (handed over at link up). */
  private readonly leafExporters = new Map<string, Uint8Array>();
  private coreKeyEpoch = 0;
  /** When the current view was installed, until its first core key commits (rekey duration). */
  private viewInstalledAt: number | undefined;
  private readonly dialing = new Set<string>();
  private readonly timers: NodeJS.Timeout[] = [];
  private blockedAt: number | undefined;
  private stopped = false;
  /**
   * Called once when the server stopped itself after a failure it cannot run past (the process
   * that runs it exits non-zero: cli/server.ts). Today: a failed store write — the replica may
   * be ahead of its durable log, so it must restart from storage (the torn tail is cut there) and
   * catch up by state transfer, not go on.
   */
  onFatal: ((e: Error) => void) | undefined;
  private memberStarted = false;
  private ports = { core: 0, leaf: 0, admin: 0 };
  readonly readiness: Readiness;
  /** Identity checks of the current trust anchors and credentials (replaced by a reload). */
  private coreIdentify!: (cert: X509Certificate) => string | Error;
  private leafIdentifyFn!: (cert: X509Certificate) => string | Error;
  /** TLS options of the core port (coreCreds) and of the leaf port (creds, the newest). */
  private coreTlsOptions!: ReturnType<MutualTls['contextOptions']>;
  private tlsOptions!: ReturnType<MutualTls['contextOptions']>;
  /**
   * The credentials the core port presents. Its key is this server's core identity key (peers
   * verify its pairwise offers against the certificate of the link), which the stack holds for
   * the process lifetime: a reloaded certificate with the SAME key replaces these; one with a new
   * key serves the leaf port only, until a restart.
   */
  private coreCreds: Credentials;
  /** When each peer's duplicate-identity refusal was last logged (one line per peer per 10 s). */
  private readonly duplicateLogged = new Map<string, number>();

  private readonly suite: CipherSuite;
  private creds: Credentials;
  private anchors: readonly CertInfo[];
  private readonly revocation: RevocationRegistry;
  private readonly machine: LeafStateMachine;
  private readonly store: LeafStore;
  private readonly incarnation: IncarnationRecord;
  private readonly signingSeed: Uint8Array;
  private readonly dirLock: DirLock;

  private constructor(
    /** The config in force (a reload replaces the fields it applies). */
    public cfg: ServerConfig,
    opened: OpenedServer,
    log: Logger,
  ) {
    const { suite, creds, revocation, machine, store, record, signingSeed, identitySeed, incarnation } =
      opened;
    this.suite = suite;
    this.creds = creds;
    this.anchors = opened.anchors;
    this.revocation = revocation;
    this.machine = machine;
    this.store = store;
    this.incarnation = incarnation;
    this.signingSeed = signingSeed;
    this.dirLock = opened.dirLock;
    this.log = log;
    this.coreCreds = creds;
    this.readiness = new Readiness(this.metrics.registry, log, () => Date.now());
    this.buildTls();
    const local = `${cfg.group}/core/${cfg.name}`;

    this.core = new TlsTransport({
      local,
      tls: this.coreTlsOptions,
      // One process per server name on the mesh (net/tls.ts): a second process presenting this
      // server's certificate is refused by the peers while this one is live, and vice versa.
      instance: new Uint8Array(randomBytes(INSTANCE_BYTES)),
      identify: (cert: X509Certificate) => {
        const id = this.coreIdentify(cert);
        if (typeof id === 'string') {
          this.corePeerSerials.delete(id);
          this.corePeerSerials.set(id, normalizeSerial(cert.serialNumber));
          if (this.corePeerSerials.size > 4 * MAX_CORE_SERVERS)
            this.corePeerSerials.delete(this.corePeerSerials.keys().next().value!);
          // The peer's newest certificate wins: a renewed one may carry a new key.
          const verifyKey = certificateVerifyKey(cert);
          if (verifyKey !== undefined) this.coreVerifyKeys.set(nameOfCoreId(id), verifyKey);
          else this.coreVerifyKeys.delete(nameOfCoreId(id));
        }
        return id;
      },
      maxMessageBytes: MAX_STATE_BYTES + 64 * 1024,
      maxQueuedBytes: 4 * (MAX_STATE_BYTES + 64 * 1024),
      idleTimeoutMs: 30_000,
      handshakeTimeoutMs: cfg.handshakeTimeoutMs,
      onHandshakeFailed: (remote, reason, detail) => this.handshakeFailed('core', remote, reason, detail),
    });
    this.leaf = cfg.leafTlsThread
      ? this.leafPortThread(local)
      : new TlsTransport({
          local,
          tls: this.tlsOptions,
          identify: (cert) => this.leafIdentifyFn(cert),
          ...leafLinkOptions(cfg.leaseMs, cfg.handshakeTimeoutMs),
          onHandshakeFailed: (remote, reason, detail) => this.handshakeFailed('leaf', remote, reason, detail),
        });

    this.plane = new ServerPlane(
      {
        name: cfg.name,
        suite,
        machine,
        store,
        record,
        revocation,
        signingSeed,
        signingPublic: suite.ed25519PublicKey(signingSeed),
        serial: creds.certificate.serial,
        leaseMs: cfg.leaseMs,
        leafKeyRefreshMs: cfg.leafKeyRefreshMs,
        fullRefreshWindowMs: cfg.fullRefreshWindowMs,
        requestLimits: cfg.leafRequests,
        catchUpBytesPerSec: cfg.catchUpBytesPerSec,
        exporter: (peer) =>
          this.leaf instanceof ThreadTransport
            ? this.leafExporters.get(peer)?.slice()
            : this.leaf.exportKeyingMaterial(peer, LEAF_KEY_EXPORTER_BYTES, LEAF_KEY_EXPORTER_LABEL),
        meshSerialOf: (name) => this.corePeerSerials.get(`${cfg.group}/core/${name}`),
        links: this.leaf,
        host: {
          multicast: (channel, payload) => this.member.multicast(channel, payload),
          setTimer: (timer, delay) => this.setPlaneTimer(timer, delay),
          timed: (what, work) => this.timed(what, work),
        },
        metrics: this.metrics,
        log,
      },
      Date.now(),
    );

    const names = [cfg.name, ...cfg.peers.keys()];
    this.coreVerifyKeys.set(cfg.name, suite.ed25519PublicKey(identitySeed));
    const keys: CoreKeyConfig = {
      suite,
      identitySeed,
      verifyKeyOf: (name) => this.coreVerifyKeys.get(name),
      random: uniform,
      refreshMs: cfg.coreKeyRefreshMs,
    };
    this.member = new GroupMember(
      {
        name: cfg.name,
        incarnation: incarnation.current,
        founders: names.map((n) => memberKey(n, cfg.generation * INCARNATIONS_PER_GENERATION)),
        peers: names,
        keys,
        memory: record,
      },
      {
        now: () => Date.now(),
        send: (toName, bytes) => void this.core.send(`${cfg.group}/core/${toName}`, bytes),
      },
      this,
    );
    this.core.setHandler({
      onMessage: (_from, data) => {
        if (!this.memberStarted) return; // the peer sends again
        this.member.receive(data);
        this.incarnationMayHaveChanged();
      },
      onPeerUp: (peer) => this.log.info('core link up', { peer }),
      onPeerDown: (peer, reason, detail) => {
        if (detail?.includes(DUPLICATE_IDENTITY)) this.duplicateIdentity(peer, detail);
        else this.log.info('core link down', { peer, reason, detail });
      },
    });
    this.leaf.setHandler({
      onMessage: (from, data) =>
        this.guard('leaf message', () => this.plane.leafMessage(from, data, Date.now())),
      onPeerDown: (peer, reason, detail) => {
        // A leaf that broke the framing (oversize or malformed frame) is worth an operator's look.
        if (reason === 'bad-frame') this.log.warn('leaf link closed', { peer, reason, detail });
        this.leafExporters.get(peer)?.fill(0);
        this.leafExporters.delete(peer);
        this.plane.leafDown(peer, Date.now());
      },
    });
    this.admin = new AdminServer(
      this.metrics.registry,
      () => this.status(),
      () => !this.stopped,
      () => this.readiness.report(),
    );
  }

  /** The TLS options and identity checks of the current credentials and trust anchors. */
  private buildTls(): MutualTls {
    const verifier = new PeerVerifier({
      anchors: this.anchors,
      group: this.cfg.group,
      revocation: this.revocation,
      ...(this.cfg.admissionPolicy !== undefined ? { policy: this.cfg.admissionPolicy } : {}),
    });
    const mtls = new MutualTls(this.creds, verifier);
    const coreMtls = this.coreCreds === this.creds ? mtls : new MutualTls(this.coreCreds, verifier);
    this.metrics.certificatesLoaded(this.creds.certificate, this.anchors);
    const refused = (port: string) => (reason: string, detail: string) => this.refused(port, reason, detail);
    this.coreIdentify = coreMtls.transportIdentify({ roles: ['core'], peerSide: 'either' }, refused('core'));
    this.leafIdentifyFn = leafIdentify(mtls, refused('leaf'), (id, cert) =>
      this.plane.leafCertificate(id, cert),
    );
    this.coreTlsOptions = coreMtls.contextOptions();
    this.tlsOptions = mtls.contextOptions();
    return mtls;
  }

  /** A second process under one server name (net/tls.ts): an error line per peer per 10 s. */
  private duplicateIdentity(peer: string, detail: string): void {
    this.metrics.refusals.inc({ port: 'core', reason: 'duplicate-identity' });
    const now = Date.now();
    if (now - (this.duplicateLogged.get(peer) ?? -Infinity) < 10_000) return;
    this.duplicateLogged.set(peer, now);
    this.log.error('core link refused: another process runs under this server name', { peer, detail });
  }

  /** Loads credentials and state (open.ts), binds every listener, joins the core group. */
  static async start(
    cfg: ServerConfig,
    log: Logger = jsonLogger(cfg.logLevel, { server: cfg.name }),
  ): Promise<KeyServer> {
    const opened = await openServer(cfg, log);
    try {
      const server = new KeyServer(cfg, opened, log);
      if (opened.crlPem !== undefined) server.installedCrl(opened.crlPem, false);
      try {
        await server.listen();
      } catch (e) {
        await server.stop();
        throw e;
      }
      return server;
    } catch (e) {
      opened.dirLock.release();
      throw e;
    }
  }

  get addresses(): { core: number; leaf: number; admin: number } {
    return { ...this.ports };
  }

  private async listen(): Promise<void> {
    const { core, leaf, admin } = this.cfg.listen;
    this.ports.leaf = (await bound('listen.leaf', leaf, this.leaf.listen(leaf.port, leaf.host))).port;
    this.ports.admin = await bound('listen.admin', admin, this.admin.listen(admin.port, admin.host));
    const g = this.cfg.gossip;
    if (g.enabled) {
      const { suite, signingSeed } = this;
      this.relay = await EdgeRelay.bind(suite, g, {
        publicKey: suite.ed25519PublicKey(signingSeed),
        sign: (message) => suite.ed25519Sign(signingSeed, message),
      });
      this.plane.edge.attachRelay(this.relay);
      this.log.info('edge relay listening', { udp: this.relay.local, fanout: g.fanout });
    }
    this.metrics.observeRelay(() => this.plane.edge.relayCounters());
    this.metrics.observeThreads(() => {
      const main = threadCpuSeconds(); // read on the main thread: scrapes are served there
      const tls = this.leaf instanceof ThreadTransport ? this.leaf.threadCpuSeconds : undefined;
      return { ...(main !== undefined ? { main } : {}), ...(tls !== undefined ? { 'leaf-tls': tls } : {}) };
    });
    // The core port last, right before the stack starts: a peer's hello must not reach a stack
    // without a view (starting the leaf port's TLS thread takes a while).
    this.ports.core = (await bound('listen.core', core, this.core.listen(core.port, core.host))).port;
    this.member.start();
    this.memberStarted = true;
    this.readiness.start();
    this.every(1000, () => this.readiness.tick());
    this.every(this.member.tickMs, () => {
      this.member.tick();
      this.incarnationMayHaveChanged();
      this.plane.stackTick(Date.now()); // what the stack refused earlier
    });
    this.every(this.cfg.batchIntervalMs, () => this.plane.batchTick(Date.now()));
    this.every(DIAL_INTERVAL_MS, () => this.dialPeers());
    this.dialPeers();
    if (this.cfg.crl !== undefined) {
      const crl = this.cfg.crl;
      watchFile(crl, { interval: this.cfg.crlPollMs, persistent: false }, () => void this.reloadCrl());
    }
    this.log.info('listening', {
      core: this.ports.core,
      leaf: this.ports.leaf,
      admin: this.ports.admin,
      leafTls: this.leaf instanceof ThreadTransport ? 'worker thread' : 'main thread',
      member: this.member.self,
    });
  }

  /**
   * The stack rejoins as incarnation + 1 after an exclusion, inside `receive` or `tick`: reserve
   * the next one at once, so no restart can reuse a member key this process has used.
   */
  private incarnationMayHaveChanged(): void {
    const self = this.member.self;
    this.guard('incarnation record', () => {
      if (this.incarnation.advance(incarnationOf(self)))
        this.log.info('rejoined as a new incarnation', { member: self });
    });
  }

  private every(ms: number, fn: () => void): void {
    const t = setInterval(() => this.guard('timer', fn), ms);
    this.timers.push(t);
  }

  /** One failing event must not take the server down; it is logged and counted. A store failure does (see onFatal). */
  private guard(what: string, fn: () => void): void {
    try {
      fn();
    } catch (e) {
      if (isStoreFailure(e)) return this.fatal(e);
      this.log.error(`${what} failed`, { error: (e as Error).message });
    }
  }

  /** A stack upcall into the plane: a store failure there stops the server too (and is rethrown to the stack). */
  private upcall<T>(fn: () => T): T {
    try {
      return fn();
    } catch (e) {
      if (isStoreFailure(e)) this.fatal(e);
      throw e;
    }
  }

  private fatal(e: Error): void {
    if (this.stopped) return;
    this.log.error('store write failed: stopping (a restart reopens the store and catches up)', {
      error: e.message,
    });
    void this.stop().then(() => this.onFatal?.(e));
  }

  private dialPeers(): void {
    const up = new Set(this.core.peers());
    for (const [name, addr] of this.cfg.peers) {
      const id = `${this.cfg.group}/core/${name}`;
      if (up.has(id) || this.dialing.has(id)) continue;
      this.dialing.add(id);
      this.core
        .connect(addr.host, addr.port, id)
        .catch((e: unknown) => {
          if (e instanceof LinkError && e.detail.includes(DUPLICATE_IDENTITY))
            this.duplicateIdentity(id, e.detail);
          else if (!(e instanceof LinkError && e.reason === 'error'))
            this.log.debug('dial failed', { peer: id, error: (e as Error).message });
        })
        .finally(() => this.dialing.delete(id));
    }
  }

  private refused(port: string, reason: string, detail: string): void {
    this.metrics.refusals.inc({ port, reason });
    this.log.warn('peer refused', { port, reason, detail });
  }

  /** The leaf port with its TLS on a worker thread (leaf-port.ts). */
  private leafPortThread(local: string): ThreadTransport {
    const cfg = this.cfg;
    return new ThreadTransport({
      local,
      maxMessageBytes: leafLinkOptions(cfg.leaseMs, cfg.handshakeTimeoutMs).maxMessageBytes!,
      // Called at listen and again whenever a dead thread is replaced: it starts from the CRL,
      // credentials and anchors loaded last.
      spawn: () =>
        spawnLeafPortThread({
          local,
          group: cfg.group,
          certChainPem: this.creds.certChainPem,
          keyPem: this.creds.keyPem,
          anchorsDer: this.anchors.map((a) => a.der),
          policy: cfg.admissionPolicy,
          crl: this.crl,
          leaseMs: cfg.leaseMs,
          handshakeTimeoutMs: cfg.handshakeTimeoutMs,
        }),
      onLinkUp: (peer, raw) => {
        const info = raw as LeafLinkInfo | undefined;
        const refusal = leafLinkRefusal(info, this.crl?.version ?? 0);
        if (refusal === undefined) {
          this.plane.leafCertificate(peer, info!.cert);
          if (info!.exporter?.length === LEAF_KEY_EXPORTER_BYTES)
            this.leafExporters.set(peer, info!.exporter);
        }
        return refusal;
      },
      onEvent: (raw) => {
        const e = raw as LeafPortEvent;
        if (e.kind === 'refused') this.refused('leaf', e.reason, e.detail);
        else this.log.error('leaf TLS thread: CRL not installed', { error: e.error });
      },
      onHandshakeFailed: (remote, reason, detail) => this.handshakeFailed('leaf', remote, reason, detail),
      onThreadExit: (detail) => this.log.error('leaf TLS thread exited; restarting it', { detail }),
    });
  }

  private handshakeFailed(port: string, remote: string, reason: string, detail: string): void {
    if (detail.includes(DUPLICATE_IDENTITY)) return this.duplicateIdentity(remote, detail);
    // A certificate refusal was already counted under its own reason by the identify callback.
    if (REFUSAL_REASONS.some((r) => detail.startsWith(`${r}: `))) return;
    this.metrics.refusals.inc({ port, reason: reason === 'auth' ? 'handshake' : reason });
    this.log.warn('handshake failed', { port, remote, reason, detail: detail.slice(0, 200) });
  }

  // ── the plane's effects ──────────────────────────────────────────────────────────────────

  /**
   * A timer the plane asked for: 'end-of-event' runs before any other event (a microtask: group
   * commit), 0 once the current event is done, otherwise after the delay. None fires after stop.
   */
  private setPlaneTimer(timer: PlaneTimer, delay: number | 'end-of-event'): void {
    if (this.stopped) return;
    const fire = (): void =>
      this.guard(timer, () => {
        if (!this.stopped) this.plane.onTimer(timer, Date.now());
      });
    if (delay === 'end-of-event') queueMicrotask(fire);
    else if (delay === 0) setImmediate(fire);
    else setTimeout(fire, delay).unref();
  }

  private timed<T>(what: 'commit' | 'fanOut', work: () => T): T {
    const started = performance.now();
    try {
      return work();
    } finally {
      const ms = performance.now() - started;
      if (what === 'commit') this.metrics.commitSeconds.observe(ms / 1000);
      else this.lastFanOutMs = ms;
    }
  }

  // ── GroupApp upcalls: handed to the plane with the time ──────────────────────────────────

  view(view: View, self: MemberKey): void {
    const now = Date.now();
    this.metrics.viewSize.set(view.members.length);
    this.metrics.viewChanges.inc();
    this.metrics.primary.set(view.primary ? 1 : 0);
    this.readiness.viewInstalled(viewText(view), view.primary);
    this.viewInstalledAt = performance.now();
    if (this.blockedAt !== undefined) {
      this.metrics.viewChangeSeconds.observe((now - this.blockedAt) / 1000);
      this.blockedAt = undefined;
    }
    this.log.info('view installed', {
      view: viewText(view),
      members: view.members,
      primary: view.primary,
      self,
    });
    this.upcall(() => this.plane.view(view, self, now));
  }

  deliver(d: Delivery): void {
    this.upcall(() => this.plane.deliver(d, Date.now()));
  }

  key(info: CoreKeyInfo): void {
    this.coreKeyEpoch = info.epoch;
    this.metrics.coreEpoch.set(info.epoch);
    this.metrics.coreRekeys.inc({ cause: info.refresh ? 'refresh' : 'view' });
    if (!info.refresh && this.viewInstalledAt !== undefined)
      this.metrics.coreRekeySeconds.observe((performance.now() - this.viewInstalledAt) / 1000);
    this.viewInstalledAt = undefined;
    this.readiness.keyCommitted(`${info.view.epoch}@${info.view.coord}`);
    this.log.info('core key committed', {
      epoch: info.epoch,
      view: `${info.view.epoch}@${info.view.coord}`,
      refresh: info.refresh,
    });
    this.upcall(() => this.plane.key(info, Date.now())); // it derives the leaf-tree secret and wipes the key
  }

  unicast(): void {}

  block(): void {
    const now = Date.now();
    this.upcall(() => this.plane.block(now));
    this.blockedAt ??= now;
  }

  unblock(): void {
    this.plane.unblock(Date.now());
  }

  getState(): Uint8Array {
    return this.upcall(() => this.plane.getState(Date.now()));
  }

  stateVersion(): StateVersion {
    return this.plane.stateVersion();
  }

  setState(state: Uint8Array, version: StateVersion): void {
    this.readiness.stateTransferStarted(); // done when the view that carried it is installed
    this.upcall(() => this.plane.setState(state, version, Date.now()));
  }

  // ── revocation ───────────────────────────────────────────────────────────────────────────

  private async reloadCrl(): Promise<void> {
    const path = this.cfg.crl!;
    let fresh;
    let pem;
    try {
      pem = await readCrlFile(path);
      fresh = await this.revocation.load(pem, this.anchors);
    } catch (e) {
      if (!(e instanceof CrlError)) throw e;
      this.log.warn('CRL not reloaded', { path, error: e.message });
      return;
    }
    const changed = this.installedCrl(pem, fresh.length > 0);
    this.log.info('CRL reloaded', { path, newlyRevoked: fresh.length });
    if (changed) this.log.info('CRL going out to linked leaves', { leaves: this.plane.pushCrl(Date.now()) });
    if (fresh.length === 0) return;
    this.metrics.revocations.inc(fresh.length);
    const serials = new Set(fresh.map((r) => r.serial));
    const coreServers: { name: string; serial: string }[] = [];
    for (const [peer, serial] of this.corePeerSerials)
      if (serials.has(serial)) {
        this.coreVerifyKeys.delete(nameOfCoreId(peer)); // no new pairwise key with a revoked server
        coreServers.push({ name: nameOfCoreId(peer), serial });
        this.core.disconnect(peer, 'certificate revoked');
      }
    for (const name of this.plane.revoked(serials, coreServers, Date.now()))
      this.log.info('revoked leaf disconnected', { leaf: name });
  }

  /**
   * Keeps the loaded CRL's text for the leaf port's TLS thread and hands it over; the plane takes
   * the CRLs in force for its leaves. Returns whether what leaves get in band changed.
   */
  private installedCrl(pem: string, revokedSomething: boolean): boolean {
    this.crl = nextLeafPortCrl(this.crl, pem, revokedSomething);
    if (this.leaf instanceof ThreadTransport) this.leaf.control(this.crl);
    this.metrics.crlsInstalled(this.revocation.installed());
    return this.plane.crlInstalled();
  }

  // ── reload (SIGHUP) ──────────────────────────────────────────────────────────────────────

  /**
   * Takes trust anchors, this server's certificate and key, the CRL and the log level from `next`
   * (the config file read again; reload.ts). A piece that does not load keeps its old value and
   * is logged with why; links made from now on use the new certificate and anchors, up links keep
   * theirs. A certificate with a new KEY serves the leaf port only: on the core port the key is
   * this server's core identity key (see coreCreds), so core links keep the old certificate until
   * a restart (renew with the same key, from a CSR, to rotate them without one). The leaf-batch
   * signing key stays the one the server started with until a restart too.
   */
  async reload(next: ServerConfig): Promise<void> {
    if (this.stopped) return;
    const plan = planReload(this.cfg, next, this.anchors, this.creds);
    for (const p of plan.problems) this.log.warn('reload: kept the old value', { detail: p });
    if (plan.restartNeeded.length > 0)
      this.log.warn('reload: changed fields need a restart', { fields: plan.restartNeeded });
    if (next.logLevel !== this.cfg.logLevel) this.setLogLevel(next.logLevel);
    if (plan.anchors !== undefined || plan.creds !== undefined) {
      if (plan.anchors !== undefined) this.anchors = plan.anchors;
      if (plan.creds !== undefined) {
        this.creds = plan.creds;
        if (plan.creds.privateKey.equals(this.coreCreds.privateKey)) this.coreCreds = plan.creds;
        else
          this.log.warn(
            'reload: new key serves the leaf port; core links keep the old certificate until a restart',
            {
              detail:
                "the certificate key is this server's core identity key, fixed for the process lifetime",
            },
          );
      }
      this.buildTls();
      this.core.setTls(this.coreTlsOptions); // its identify calls this.coreIdentify, rebuilt above
      if (this.leaf instanceof ThreadTransport)
        this.leaf.control({
          kind: 'tls',
          certChainPem: this.creds.certChainPem,
          keyPem: this.creds.keyPem,
          anchorsDer: this.anchors.map((a) => a.der),
        });
      else this.leaf.setTls(this.tlsOptions);
    }
    this.cfg = {
      ...this.cfg,
      credentials: plan.creds !== undefined ? next.credentials : this.cfg.credentials,
      trustAnchors: plan.anchors !== undefined ? next.trustAnchors : this.cfg.trustAnchors,
      logLevel: next.logLevel,
    };
    this.log.info('reloaded', { changes: plan.changes, problems: plan.problems.length });
    // The CRL last: it is checked against the anchors now in force (and reaches the TLS thread after them).
    if (this.cfg.crl !== undefined) await this.reloadCrl();
  }

  private setLogLevel(level: LogLevel): void {
    const l = this.log as Logger & { setLevel?: (level: LogLevel) => void };
    if (l.setLevel === undefined) return;
    l.setLevel(level);
  }

  // ── status and shutdown ──────────────────────────────────────────────────────────────────

  status(): ServerStatus {
    const v = this.member.view;
    return {
      name: this.cfg.name,
      member: this.member.self,
      view: { id: `${v.id.epoch}@${v.id.coord}`, members: v.members, primary: v.primary },
      coordinator: this.plane.isCoordinator,
      coreEpoch: this.coreKeyEpoch,
      leafEpoch: this.machine.epoch,
      stateVersion: versionText(this.plane.stateVersion()),
      leafKeyGeneration: this.machine.secretGeneration,
      leaves: this.machine.members,
      sessions: this.plane.edge.sessionCount,
      pendingBatch: this.machine.pendingChanges,
      lastBatch: this.plane.lastBatch && { ...this.plane.lastBatch, fanOutMs: this.lastFanOutMs },
      signers: this.plane.signerNames,
      links: this.core.peers().sort(),
    };
  }

  /** The signers to list to leaves: none whose certificate our CRL revokes. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.readiness.stop();
    for (const t of this.timers) clearInterval(t);
    this.plane.stop();
    if (this.cfg.crl !== undefined) unwatchFile(this.cfg.crl);
    await Promise.all([
      this.core.close(),
      this.leaf.close(),
      this.admin.close(),
      this.plane.edge.detachRelay()?.close(),
    ]);
    this.store.close();
    this.dirLock.release();
    this.log.info('stopped');
  }
}

/** The certificate name in a core link identity `group/core/name`. */
function nameOfCoreId(id: string): string {
  return id.slice(id.lastIndexOf('/') + 1);
}

function viewText(v: View): string {
  return `${v.id.epoch}@${v.id.coord}`;
}
