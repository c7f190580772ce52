/**
 * KeyServer — one core key server as a process: the HOST of the virtual-synchrony stack
 * (GroupMember) and of the leaf plane (leaf-plane/server-plane.ts ServerPlane: replication of
 * leaf-state commands, group commit, batch cuts, uniform release, lease grace, revocations, and
 * through its LeafEdge the leaf sessions). Every piece of logic lives in those sans-IO machines;
 * this file wires them to the world and hands each stack upcall and leaf frame to the plane with
 * Date.now(). The wiring, one concern per module: core-mesh.ts (the core port's TLS mesh),
 * leaf-port.ts (the leaf port, its TLS on a worker thread or not), crl-watch.ts (CRL polling and
 * revocations), reload.ts (SIGHUP: anchors and credentials in force), refusals.ts, status.ts
 * (metrics, readiness and logs of the stack; the status document), open.ts (the data dir and
 * credentials at start), admin.ts; here: the timers (the stack's tick, the batch interval, the
 * timers the plane asks for), the edge relay's UDP socket, start, reload and stop.
 *
 * Core key: the stack runs with it on (GroupMemberOptions.keys): every frame between core servers
 * is sealed; a new core key is agreed on every view change and every `coreKeyRefreshMs`, over
 * pairwise keys whose offers are signed with each server's certificate key (core-mesh.ts). Each
 * commit hands the plane the key (it derives the leaf-tree secret). Before a cluster's first
 * key, the secret is random from a server's first boot and made common by state transfer.
 *
 * Incarnations: a server's first boot in cluster generation G is incarnation G·2^30 (the genesis
 * founders are every configured server at it); a restart, or a rejoin in memory, takes a later
 * one (boot.ts IncarnationRecord), so a restarted server is a new member that merges into the
 * running group and receives its state. After any outage the servers become primary again by
 * themselves once a majority of the last primary view's names are connected, and the newest
 * state among them is the one every other adopts (primary-record.ts).
 *
 * Signing key: the certificate's key when it is Ed25519, otherwise the seed in `signingKeyFile`.
 * The plane announces it to the other servers after every view change; welcomes list every key
 * whose server our CRL does not revoke, and carry the CRL (leaves refuse revoked servers).
 */
import { randomBytes } from 'node:crypto';
import { threadCpuSeconds } from '../net/index.js';
import { EdgeRelay } from './edge-relay-socket.js';
import {
  GroupMember,
  incarnationOf,
  memberKey,
  type CoreKeyInfo,
  type Delivery,
  type GroupApp,
  type MemberKey,
  type StateVersion,
  type View,
} from '../core-group/index.js';
import { MAX_RENEWALS_PER_COMMAND, ServerPlane } from '../leaf-plane/index.js';
import { INCARNATIONS_PER_GENERATION, type ServerConfig } from './config.js';
import { CoreMesh } from './core-mesh.js';
import { CrlWatch } from './crl-watch.js';
import { GuardedEvents } from './guarded-events.js';
import { LeafPort, MAX_LEAF_LINKS } from './leaf-port.js';
import { jsonLogger, type LevelledLogger, type Logger } from './log.js';
import { Readiness } from './readiness.js';
import { PortRefusals } from './refusals.js';
import { planReload, TrustInForce } from './reload.js';
import { StackObserver, type ServerStatus } from './status.js';
import { ServerMetrics } from './metrics.js';
import { AdminServer } from './admin.js';
import { bound, openServer, type OpenedServer } from './open.js';

// The leaf port's bound on links also bounds the renewals the edge collects per interval (one
// name per linked leaf): one renewal command must carry them all, or acknowledged ones are lost.
if (MAX_LEAF_LINKS > MAX_RENEWALS_PER_COMMAND)
  throw new Error('leaf edge: one renewal command must carry every linked leaf');

/** Uniform [0,1) draws for the pairwise renewal jitter: 48 random bits (a safe integer). */
const uniform = (): number => randomBytes(6).readUIntBE(0, 6) / 2 ** 48;

export class KeyServer implements GroupApp {
  readonly metrics = new ServerMetrics();
  readonly log: Logger;
  readonly readiness: Readiness;
  /** The leaf plane: replication, batches, release and the leaf sessions (sans-IO). */
  readonly plane: ServerPlane;
  /**
   * Called once when the server stopped itself after a failure it cannot run past (the process
   * that runs it exits non-zero: cli/server.ts). Today: a failed store write — the replica may
   * be ahead of its durable log, so it must restart from storage (the torn tail is cut there) and
   * catch up by state transfer, not go on.
   */
  onFatal: ((e: Error) => void) | undefined;
  private readonly member: GroupMember;
  private readonly mesh: CoreMesh;
  private readonly leafPort: LeafPort;
  private readonly crlWatch: CrlWatch | undefined;
  private readonly admin: AdminServer;
  /** Trust anchors and credentials in force (a reload replaces them). */
  private readonly trust: TrustInForce;
  private readonly observer: StackObserver;
  /** Intervals, the plane's timers and upcalls, under the failure rule (a store failure stops the server). */
  private readonly events: GuardedEvents;
  private stopped = false;
  private memberStarted = false;
  private ports = { core: 0, leaf: 0, admin: 0 };

  private constructor(
    /** The config in force (a reload replaces the fields it applies). */
    public cfg: ServerConfig,
    /** The data dir's lock, records, store and seeds (open.ts); the creds in force are `trust`'s. */
    private readonly opened: OpenedServer,
    log: Logger,
  ) {
    const { suite, creds, revocation, machine, store, record, signingSeed, identitySeed, incarnation } =
      opened;
    this.log = log;
    this.events = new GuardedEvents(log, (e) => this.fatal(e));
    this.readiness = new Readiness(this.metrics.registry, log, () => Date.now());
    this.observer = new StackObserver(this.metrics, this.readiness, log);
    this.trust = new TrustInForce(creds, opened.anchors, revocation, cfg);
    const tls = this.trust.mutualTls();
    this.metrics.certificatesLoaded(creds.certificate, opened.anchors);
    const refusals = new PortRefusals(this.metrics, log);
    this.mesh = new CoreMesh({
      cfg,
      mtls: tls.core,
      selfVerifyKey: suite.ed25519PublicKey(identitySeed),
      refusals,
      log,
      onMessage: (data) => {
        if (!this.memberStarted) return; // the peer sends again
        this.member.receive(data);
        this.incarnationMayHaveChanged();
      },
    });
    this.leafPort = new LeafPort({
      cfg,
      mtls: tls.leaf,
      trust: () => this.trust,
      refusals,
      log,
      guard: (what, fn) => this.events.guard(what, fn),
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
        exporter: (peer) => this.leafPort.exporter(peer),
        meshSerialOf: (name) => this.mesh.serialOf(name),
        links: this.leafPort.transport,
        host: {
          multicast: (channel, payload) => this.member.multicast(channel, payload),
          setTimer: (timer, delay) =>
            this.events.after(delay, timer, () => this.plane.onTimer(timer, Date.now())),
          timed: (what, work) => this.observer.timed(what, work),
        },
        metrics: this.metrics,
        log,
      },
      Date.now(),
    );
    this.leafPort.serve(this.plane);

    const names = [cfg.name, ...cfg.peers.keys()];
    this.member = new GroupMember(
      {
        name: cfg.name,
        incarnation: incarnation.current,
        founders: names.map((n) => memberKey(n, cfg.generation * INCARNATIONS_PER_GENERATION)),
        peers: names,
        keys: {
          suite,
          identitySeed,
          verifyKeyOf: (name) => this.mesh.verifyKeyOf(name),
          random: uniform,
          refreshMs: cfg.coreKeyRefreshMs,
        },
        memory: record,
      },
      { now: () => Date.now(), send: (toName, bytes) => this.mesh.send(toName, bytes) },
      this,
    );
    this.crlWatch =
      cfg.crl === undefined
        ? undefined
        : new CrlWatch({
            path: cfg.crl,
            pollMs: cfg.crlPollMs,
            revocation,
            anchors: () => this.trust.anchors,
            mesh: this.mesh,
            leafPort: this.leafPort,
            plane: this.plane,
            metrics: this.metrics,
            log,
            events: this.events,
          });
    this.admin = new AdminServer(
      this.metrics.registry,
      () => this.status(),
      () => !this.stopped,
      () => this.readiness.report(),
    );
  }

  /** Loads credentials and state (open.ts), binds every listener, joins the core group. */
  static async start(
    cfg: ServerConfig,
    log: Logger = jsonLogger(cfg.logLevel, { server: cfg.name }),
  ): Promise<KeyServer> {
    const opened = await openServer(cfg, log);
    try {
      const server = new KeyServer(cfg, opened, log);
      if (opened.crlPem !== undefined) server.crlWatch?.installed(opened.crlPem, false);
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
    this.ports.leaf = (await bound('listen.leaf', leaf, this.leafPort.listen(leaf.port, leaf.host))).port;
    this.ports.admin = await bound('listen.admin', admin, this.admin.listen(admin.port, admin.host));
    const g = this.cfg.gossip;
    if (g.enabled) {
      const { suite, signingSeed } = this.opened;
      const relay = await EdgeRelay.bind(suite, g, {
        publicKey: suite.ed25519PublicKey(signingSeed),
        sign: (message) => suite.ed25519Sign(signingSeed, message),
      });
      this.plane.edge.attachRelay(relay);
      this.log.info('edge relay listening', { udp: relay.local, fanout: g.fanout });
    }
    this.metrics.observeRelay(() => this.plane.edge.relayCounters());
    this.metrics.observeThreads(() => {
      const main = threadCpuSeconds(); // read on the main thread: scrapes are served there
      const tls = this.leafPort.threadCpuSeconds;
      return { ...(main !== undefined ? { main } : {}), ...(tls !== undefined ? { 'leaf-tls': tls } : {}) };
    });
    // The core port last, right before the stack starts: a peer's hello must not reach a stack
    // without a view (starting the leaf port's TLS thread takes a while).
    this.ports.core = (await bound('listen.core', core, this.mesh.listen(core.port, core.host))).port;
    this.member.start();
    this.memberStarted = true;
    this.readiness.start();
    this.events.every(1000, () => this.readiness.tick());
    this.events.every(this.member.tickMs, () => {
      this.member.tick();
      this.incarnationMayHaveChanged();
      this.plane.stackTick(Date.now()); // what the stack refused earlier
    });
    this.events.every(this.cfg.batchIntervalMs, () => this.plane.batchTick(Date.now()));
    this.mesh.startDialing();
    this.crlWatch?.start();
    this.log.info('listening', {
      ...this.ports,
      leafTls: this.leafPort.onThread ? 'worker thread' : 'main thread',
      member: this.member.self,
    });
  }

  /**
   * The stack rejoins as incarnation + 1 after an exclusion, inside `receive` or `tick`: reserve
   * the next one at once, so no restart can reuse a member key this process has used.
   */
  private incarnationMayHaveChanged(): void {
    const self = this.member.self;
    this.events.guard('incarnation record', () => {
      if (this.opened.incarnation.advance(incarnationOf(self)))
        this.log.info('rejoined as a new incarnation', { member: self });
    });
  }

  private fatal(e: Error): void {
    if (this.stopped) return;
    this.log.error('store write failed: stopping (a restart reopens the store and catches up)', {
      error: e.message,
    });
    void this.stop().then(() => this.onFatal?.(e));
  }

  // ── GroupApp upcalls: handed to the plane with the time ──────────────────────────────────

  view(view: View, self: MemberKey): void {
    const now = Date.now();
    this.observer.viewInstalled(view, self, now);
    this.events.upcall(() => this.plane.view(view, self, now));
  }

  deliver(d: Delivery): void {
    this.events.upcall(() => this.plane.deliver(d, Date.now()));
  }

  key(info: CoreKeyInfo): void {
    this.observer.keyCommitted(info);
    this.events.upcall(() => this.plane.key(info, Date.now())); // it derives the leaf-tree secret and wipes the key
  }

  unicast(): void {}

  block(): void {
    const now = Date.now();
    this.events.upcall(() => this.plane.block(now));
    this.observer.blocked(now);
  }

  unblock(): void {
    this.plane.unblock(Date.now());
  }

  getState(): Uint8Array {
    return this.events.upcall(() => this.plane.getState(Date.now()));
  }

  stateVersion(): StateVersion {
    return this.plane.stateVersion();
  }

  setState(state: Uint8Array, version: StateVersion): void {
    this.readiness.stateTransferStarted(); // done when the view that carried it is installed
    this.events.upcall(() => this.plane.setState(state, version, Date.now()));
  }

  // ── reload (SIGHUP) ──────────────────────────────────────────────────────────────────────

  /**
   * Takes trust anchors, this server's certificate and key, the CRL and the log level from `next`
   * (the config file read again; reload.ts). A piece that does not load keeps its old value and
   * is logged with why; links made from now on use the new certificate and anchors, up links keep
   * theirs. A certificate with a new KEY serves the leaf port only: on the core port the key is
   * this server's core identity key (TrustInForce), so core links keep the old certificate until
   * a restart (renew with the same key, from a CSR, to rotate them without one). The leaf-batch
   * signing key stays the one the server started with until a restart too.
   */
  async reload(next: ServerConfig): Promise<void> {
    if (this.stopped) return;
    const plan = planReload(this.cfg, next, this.trust.anchors, this.trust.creds);
    for (const p of plan.problems) this.log.warn('reload: kept the old value', { detail: p });
    if (plan.restartNeeded.length > 0)
      this.log.warn('reload: changed fields need a restart', { fields: plan.restartNeeded });
    if (next.logLevel !== this.cfg.logLevel) (this.log as Partial<LevelledLogger>).setLevel?.(next.logLevel);
    if (this.trust.take(plan, this.log)) {
      const tls = this.trust.mutualTls();
      this.metrics.certificatesLoaded(this.trust.creds.certificate, this.trust.anchors);
      this.mesh.setTls(tls.core);
      this.leafPort.setTls(tls.leaf);
    }
    this.cfg = {
      ...this.cfg,
      credentials: plan.creds !== undefined ? next.credentials : this.cfg.credentials,
      trustAnchors: plan.anchors !== undefined ? next.trustAnchors : this.cfg.trustAnchors,
      logLevel: next.logLevel,
    };
    this.log.info('reloaded', { changes: plan.changes, problems: plan.problems.length });
    // The CRL last: it is checked against the anchors now in force (and reaches the TLS thread after them).
    await this.crlWatch?.reload();
  }

  // ── status and shutdown ──────────────────────────────────────────────────────────────────

  status(): ServerStatus {
    const { cfg, member, plane, opened, mesh } = this;
    return this.observer.status(cfg.name, member, plane, opened.machine, mesh.links());
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.events.stop();
    this.readiness.stop();
    this.plane.stop();
    this.crlWatch?.stop();
    await Promise.all([
      this.mesh.close(),
      this.leafPort.close(),
      this.admin.close(),
      this.plane.edge.detachRelay()?.close(),
    ]);
    this.opened.store.close();
    this.opened.dirLock.release();
    this.log.info('stopped');
  }
}
