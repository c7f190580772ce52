/**
 * KeyServer — one core key server as a process: the virtual-synchrony stack over a TLS 1.3
 * mutual-auth mesh, the replicated leaf state machine with its durable store, the leaf edge, CRL
 * reload, and the admin HTTP endpoint.
 *
 * Replication: every leaf-state command (admit, leave, revoke, renewLeases, cutBatch) goes
 * through the GroupMember stack's ordered multicast, the commands of one event-loop turn packed
 * into one message (CommandOutbox); each server applies the ordered commands of PRIMARY views to
 * its own replica, making those one stack event delivered durable together before applying them
 * (LeafStore.commit: one write, one fsync — group commit).
 * The view's coordinator (its oldest member) orders a `cutBatch` every batch interval while
 * changes are pending (and once a second to expire lapsed leases). Every server signs the
 * batches it applies with its own Ed25519 key and pushes them to its own leaves. Data envelopes
 * go through the FIFO channel to every server and out to its leaves.
 *
 * Core key: the stack runs with the core key on (GroupMemberOptions.keys). Every frame between
 * core servers is sealed; a new core key is agreed on every view change and every
 * `coreKeyRefreshMs` inside a view, over pairwise keys whose offers are signed with each server's
 * certificate key (Ed25519, required) and verified against the certificate its peers saw on the
 * authenticated TLS link. Application traffic (commands, data, signer announcements) waits for
 * the view's first key.
 *
 * Key material: the leaf tree draws keys from a secret (LeafStateMachine `secret`). Each core key
 * commit hands this server `leafTreeSecret(coreKey, generation)` (the `key` upcall), at the same
 * point of the total order on every member; in a primary view the server orders it into its
 * replica there as a `setKeySecret` command — made durable with the commands delivered around it
 * (group commit), so a restart replays it from the store. Before the first key of a cluster, the
 * secret is random from a server's first boot and made common by state transfer: the GroupMember
 * coordinator's state (which includes the secret) is installed on every member that joins its
 * view, and the joiner compacts its store right away, so it survives a restart.
 *
 * Incarnations: a server's first boot in cluster generation G is incarnation G·2^30 (the founders
 * of the genesis view are every configured server at that incarnation); a restart takes a later
 * one (IncarnationRecord: the data dir holds a durable reservation one past the incarnation in
 * use, advanced whenever the stack rejoins in memory as incarnation + 1), so a restarted server is
 * a new member that merges into the running group and receives its state. The stack remembers the
 * last primary view in memory only, so a group whose servers ALL went down cannot become primary
 * again by itself (no majority of the last primary exists): the operator bumps `generation` in
 * every config and restarts them; each recovers its registry from its store, and the first
 * merged view's coordinator (lowest name) transfers its state to the others. A server that was
 * behind must therefore rejoin a running group (or have its data dir removed) before a
 * generation bump — its stale registry would otherwise win.
 *
 * Lease grace: a server that becomes the coordinator of a primary view renews every registered
 * lease once (ordered), so leaves whose server died, or that were reconnecting through a restart,
 * are not evicted for silence the failure caused.
 *
 * Signing key: the certificate's key when it is Ed25519 (the default of `keyglass ca issue`),
 * otherwise the 32-byte seed in `signingKeyFile` (hex). Servers announce their signing public
 * keys to each other after every view change; welcomes list every key known.
 */
import { randomBytes, type X509Certificate } from 'node:crypto';
import { existsSync, unwatchFile, watchFile } from 'node:fs';
import { join } from 'node:path';
import { loadSuite, type CipherSuite } from '../../crypto/index.js';
import { DecodeError } from '../../wire/index.js';
import { LEAF_KEY_EXPORTER_BYTES, LEAF_KEY_EXPORTER_LABEL } from '../../keytree/index.js';
import { TlsTransport, ThreadTransport, LinkError, threadCpuSeconds } from '../../net/index.js';
import {
  CrlError,
  MutualTls,
  readCrlFile,
  REFUSAL_REASONS,
  PeerVerifier,
  RevocationRegistry,
  ensureDir,
  loadCredentials,
  loadTrustAnchors,
  normalizeSerial,
  type CertInfo,
  type Credentials,
} from '../../auth/index.js';
import type { SignerKey } from '../../gossip-edge/index.js';
import { GroupMember, type Delivery, type GroupApp } from '../member.js';
import type { CoreKeyConfig, CoreKeyInfo } from '../rekey.js';
import { incarnationOf, memberKey, nameOf, type MemberKey, type View } from '../ids.js';
import { MAX_STATE_BYTES } from '../messages.js';
import {
  LeafStateMachine,
  LeafStore,
  decodeCommand,
  type BatchOutput,
  type LeafCommand,
} from '../leaf-state/index.js';
import { INCARNATIONS_PER_GENERATION, MAX_CORE_SERVERS, type ServerConfig } from './config.js';
import { decodeCoreMessage, encodeCoreMessage } from './core-messages.js';
import { LeafEdge } from './leaf-edge.js';
import {
  leafIdentify,
  leafLinkOptions,
  leafLinkRefusal,
  nextLeafPortCrl,
  spawnLeafPortThread,
  type LeafLinkInfo,
  type LeafPortCrl,
  type LeafPortEvent,
} from './leaf-port.js';
import { CommandOutbox } from './command-outbox.js';
import { jsonLogger, type Logger } from './log.js';
import { ServerMetrics } from './metrics.js';
import { AdminServer } from './admin.js';
import {
  IncarnationRecord,
  certificateVerifyKey,
  coreIdentitySeedOf,
  signingSeedOf,
  ServerStartError,
} from './boot.js';

/** How often a server dials configured peers it has no link to. */
const DIAL_INTERVAL_MS = 300;
/** The coordinator cuts at least this often, so lapsed leases expire without other activity. */
const LEASE_SWEEP_MS = 1000;
/** Commands waiting for the total order (about one per linked leaf at most, plus cuts and renewals). */
const MAX_OUTBOX_COMMANDS = 8192;
/** Renewals per ordered command: 512 × (64-byte name + varints) stays under a stack payload. */
const GRACE_RENEWALS_PER_COMMAND = 512;
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
  private readonly edge: LeafEdge;
  private readonly admin: AdminServer;
  private readonly outbox: CommandOutbox;
  private readonly signers = new Map<string, Uint8Array>();
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
  /**
   * Revoked core servers (name → serial) whose full refresh is not ordered yet: it is ordered in
   * the first primary view without them, whose core key — and so every refresh ordered in it —
   * they never hold.
   */
  private readonly coreRevocations = new Map<string, string>();
  private coreKeyEpoch = 0;
  private lastBatch: ServerStatus['lastBatch'];
  /** When the current view was installed, until its first core key commits (rekey duration). */
  private viewInstalledAt: number | undefined;
  private readonly dialing = new Set<string>();
  private readonly timers: NodeJS.Timeout[] = [];
  private blockedAt: number | undefined;
  private wasCoordinator = false;
  private lastCutAt = 0;
  /** Ordered commands delivered in the current stack event, not yet durable (see enqueueDelivered). */
  private delivered: LeafCommand[] = [];
  private stopped = false;
  private memberStarted = false;
  private ports = { core: 0, leaf: 0, admin: 0 };

  private constructor(
    readonly cfg: ServerConfig,
    private readonly suite: CipherSuite,
    private readonly creds: Credentials,
    private readonly anchors: readonly CertInfo[],
    private readonly revocation: RevocationRegistry,
    private readonly machine: LeafStateMachine,
    private readonly store: LeafStore,
    private readonly incarnation: IncarnationRecord,
    signingSeed: Uint8Array,
    identitySeed: Uint8Array,
    log: Logger,
  ) {
    this.log = log;
    const verifier = new PeerVerifier({
      anchors,
      group: cfg.group,
      revocation,
      ...(cfg.admissionPolicy !== undefined ? { policy: cfg.admissionPolicy } : {}),
    });
    const mtls = new MutualTls(creds, verifier);
    const local = `${cfg.group}/core/${cfg.name}`;
    const refused = (port: string) => (reason: string, detail: string) => this.refused(port, reason, detail);

    const coreIdentify = mtls.transportIdentify({ roles: ['core'], peerSide: 'either' }, refused('core'));
    this.core = new TlsTransport({
      local,
      tls: mtls.contextOptions(),
      identify: (cert: X509Certificate) => {
        const id = coreIdentify(cert);
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
      ? this.leafPortThread(local, creds, anchors)
      : new TlsTransport({
          local,
          tls: mtls.contextOptions(),
          identify: leafIdentify(mtls, refused('leaf'), (id, cert) => this.edge.rememberCert(id, cert)),
          ...leafLinkOptions(cfg.leaseMs, cfg.handshakeTimeoutMs),
          onHandshakeFailed: (remote, reason, detail) => this.handshakeFailed('leaf', remote, reason, detail),
        });

    const signingPublic = suite.ed25519PublicKey(signingSeed);
    this.signers.set(cfg.name, signingPublic);
    this.edge = new LeafEdge({
      transport: this.leaf,
      machine,
      suite,
      signingSeed,
      signingPublic,
      leaseMs: cfg.leaseMs,
      leafKeyRefreshMs: cfg.leafKeyRefreshMs,
      exporter: (peer) =>
        this.leaf instanceof ThreadTransport
          ? this.leafExporters.get(peer)?.slice()
          : this.leaf.exportKeyingMaterial(peer, LEAF_KEY_EXPORTER_BYTES, LEAF_KEY_EXPORTER_LABEL),
      signers: () => this.signerList(),
      order: (cmd) => this.order(cmd),
      publish: (peer, envelope) =>
        this.member.multicast('fifo', encodeCoreMessage({ kind: 'data', value: { origin: peer, envelope } })),
      metrics: this.metrics,
      log,
    });

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
      },
      {
        now: () => Date.now(),
        send: (toName, bytes) => void this.core.send(`${cfg.group}/core/${toName}`, bytes),
      },
      this,
    );
    this.outbox = new CommandOutbox(MAX_OUTBOX_COMMANDS, {
      multicast: (payload) => this.member.multicast('ordered', payload),
      schedule: (flush) => setImmediate(() => this.guard('order', flush)),
    });
    this.core.setHandler({
      onMessage: (_from, data) => {
        if (!this.memberStarted) return; // the peer sends again
        this.member.receive(data);
        this.incarnationMayHaveChanged();
      },
      onPeerUp: (peer) => this.log.info('core link up', { peer }),
      onPeerDown: (peer, reason, detail) => {
        this.log.info('core link down', { peer, reason, detail });
      },
    });
    this.leaf.setHandler({
      onMessage: (from, data) => this.guard('leaf message', () => this.edge.onMessage(from, data)),
      onPeerDown: (peer, reason, detail) => {
        // A leaf that broke the framing (oversize or malformed frame) is worth an operator's look.
        if (reason === 'bad-frame') this.log.warn('leaf link closed', { peer, reason, detail });
        this.leafExporters.get(peer)?.fill(0);
        this.leafExporters.delete(peer);
        this.edge.onPeerDown(peer);
      },
    });
    this.admin = new AdminServer(
      this.metrics.registry,
      () => this.status(),
      () => !this.stopped,
    );
  }

  /** Loads credentials and state, binds every listener, joins the core group. */
  static async start(
    cfg: ServerConfig,
    log: Logger = jsonLogger(cfg.logLevel, { server: cfg.name }),
  ): Promise<KeyServer> {
    const suite = await loadSuite();
    const creds = loadCredentials({
      certFile: cfg.credentials.cert,
      keyFile: cfg.credentials.key,
      ...(cfg.credentials.passphrase !== undefined ? { passphrase: cfg.credentials.passphrase } : {}),
    });
    const id = creds.identity;
    if (id === undefined || id.role !== 'core' || id.group !== cfg.group || id.name !== cfg.name)
      throw new ServerStartError(
        `credentials.cert: expected identity ${cfg.group}/core/${cfg.name}, found ${id ? `${id.group}/${id.role}/${id.name}` : 'none'}`,
      );
    const anchors = loadTrustAnchors(cfg.trustAnchors);
    const revocation = new RevocationRegistry();
    const crlPem = cfg.crl !== undefined && existsSync(cfg.crl) ? await readCrlFile(cfg.crl) : undefined;
    if (crlPem !== undefined) await revocation.load(crlPem, anchors);
    const seed = signingSeedOf(creds.privateKey, cfg.signingKeyFile);
    const identitySeed = coreIdentitySeedOf(creds.privateKey);

    ensureDir(cfg.dataDir, 0o700);
    const incarnation = IncarnationRecord.boot(cfg.dataDir, cfg.generation);
    const machine = new LeafStateMachine({
      suite,
      group: new TextEncoder().encode(cfg.group),
      secret: new Uint8Array(randomBytes(32)),
      leaseMs: cfg.leaseMs,
    });
    const store = LeafStore.open(join(cfg.dataDir, 'leaf-state'), machine, { suite });
    // A fresh store holds no snapshot: write one now, so the random secret survives a restart.
    if (store.index === 0 && store.opened.snapshotIndex === 0) store.compact();
    log.info('store opened', {
      epoch: machine.epoch,
      leaves: machine.members,
      replayed: store.opened.replayed,
      incarnation: incarnation.current,
    });
    const server = new KeyServer(
      cfg,
      suite,
      creds,
      anchors,
      revocation,
      machine,
      store,
      incarnation,
      seed,
      identitySeed,
      log,
    );
    if (crlPem !== undefined) server.installedCrl(crlPem, false);
    await server.listen();
    return server;
  }

  get addresses(): { core: number; leaf: number; admin: number } {
    return { ...this.ports };
  }

  private async listen(): Promise<void> {
    const { core, leaf, admin } = this.cfg.listen;
    this.ports.leaf = (await this.leaf.listen(leaf.port, leaf.host)).port;
    this.ports.admin = await this.admin.listen(admin.port, admin.host);
    const g = this.cfg.gossip;
    if (g.enabled) await this.edge.startRelay(g);
    this.metrics.observeRelay(() => this.edge.relayCounters());
    this.metrics.observeThreads(() => {
      const main = threadCpuSeconds(); // read on the main thread: scrapes are served there
      const tls = this.leaf instanceof ThreadTransport ? this.leaf.threadCpuSeconds : undefined;
      return { ...(main !== undefined ? { main } : {}), ...(tls !== undefined ? { 'leaf-tls': tls } : {}) };
    });
    // The core port last, right before the stack starts: a peer's hello must not reach a stack
    // without a view (starting the leaf port's TLS thread takes a while).
    this.ports.core = (await this.core.listen(core.port, core.host)).port;
    this.member.start();
    this.memberStarted = true;
    this.every(this.member.tickMs, () => {
      this.member.tick();
      this.incarnationMayHaveChanged();
      this.outbox.flush(); // what the stack refused earlier
    });
    this.every(this.cfg.batchIntervalMs, () => this.batchTick());
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

  /** One failing event must not take the server down; it is logged and counted. */
  private guard(what: string, fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.log.error(`${what} failed`, { error: (e as Error).message });
    }
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
          if (!(e instanceof LinkError && e.reason === 'error'))
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
  private leafPortThread(local: string, creds: Credentials, anchors: readonly CertInfo[]): ThreadTransport {
    const cfg = this.cfg;
    return new ThreadTransport({
      local,
      maxMessageBytes: leafLinkOptions(cfg.leaseMs, cfg.handshakeTimeoutMs).maxMessageBytes!,
      // Called at listen and again whenever a dead thread is replaced: it starts from the CRL
      // loaded last.
      spawn: () =>
        spawnLeafPortThread({
          local,
          group: cfg.group,
          certChainPem: creds.certChainPem,
          keyPem: creds.keyPem,
          anchorsDer: anchors.map((a) => a.der),
          policy: cfg.admissionPolicy,
          crl: this.crl,
          leaseMs: cfg.leaseMs,
          handshakeTimeoutMs: cfg.handshakeTimeoutMs,
        }),
      onLinkUp: (peer, raw) => {
        const info = raw as LeafLinkInfo | undefined;
        const refusal = leafLinkRefusal(info, this.crl?.version ?? 0);
        if (refusal === undefined) {
          this.edge.rememberCert(peer, info!.cert);
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
    // A certificate refusal was already counted under its own reason by the identify callback.
    if (REFUSAL_REASONS.some((r) => detail.startsWith(`${r}: `))) return;
    this.metrics.refusals.inc({ port, reason: reason === 'auth' ? 'handshake' : reason });
    this.log.warn('handshake failed', { port, remote, reason, detail: detail.slice(0, 200) });
  }

  // ── ordering ─────────────────────────────────────────────────────────────────────────────

  /** Submits a command to the core's total order (packed with its turn's others); false = full. */
  private order(cmd: LeafCommand): boolean {
    return this.outbox.submit(cmd);
  }

  private isCoordinator(): boolean {
    const v = this.member.view;
    return v.primary && v.members[0] === this.member.self;
  }

  private batchTick(): void {
    const now = Date.now();
    if (this.machine.isPrimary) {
      const renew = this.edge.takeRenewals(now);
      if (renew !== undefined) this.order(renew);
      const refresh = this.edge.takeRefreshes(now);
      if (refresh !== undefined) this.order(refresh);
    }
    if (!this.isCoordinator() || this.member.blocked) return;
    if (this.machine.pendingChanges > 0 || now - this.lastCutAt >= LEASE_SWEEP_MS) {
      this.lastCutAt = now;
      this.order({ kind: 'cutBatch', value: { epoch: this.machine.epoch + 1, now } });
    }
  }

  // ── GroupApp upcalls ─────────────────────────────────────────────────────────────────────

  view(view: View, self: MemberKey): void {
    this.commitDelivered(); // the old view's commands, applied as the primary they were delivered in
    this.machine.setPrimary(view.primary);
    this.metrics.viewSize.set(view.members.length);
    this.metrics.viewChanges.inc();
    this.metrics.primary.set(view.primary ? 1 : 0);
    this.viewInstalledAt = performance.now();
    if (this.blockedAt !== undefined) {
      this.metrics.viewChangeSeconds.observe((Date.now() - this.blockedAt) / 1000);
      this.blockedAt = undefined;
    }
    // Members that left take their signing keys with them only from new welcomes; keys stay known.
    this.log.info('view installed', {
      view: `${view.id.epoch}@${view.id.coord}`,
      members: view.members,
      primary: view.primary,
      self,
    });
    this.orderCoreRevocations();
    const coordinator = this.isCoordinator();
    if (coordinator && !this.wasCoordinator) this.graceRenewal();
    this.wasCoordinator = coordinator;
    const publicKey = this.signers.get(this.cfg.name)!;
    this.member.multicast(
      'fifo',
      encodeCoreMessage({ kind: 'signer', value: { name: this.cfg.name, publicKey } }),
    );
  }

  deliver(d: Delivery): void {
    let msg;
    try {
      msg = decodeCoreMessage(d.payload);
    } catch (e) {
      if (!(e instanceof DecodeError)) throw e;
      this.metrics.decodeFailures.inc({ channel: 'core' });
      return;
    }
    switch (msg.kind) {
      case 'commands':
        if (d.channel !== 'ordered' || !this.machine.isPrimary) return; // a non-primary component changes nothing
        for (const bytes of msg.value.commands) {
          let cmd;
          try {
            cmd = decodeCommand(bytes);
          } catch (e) {
            if (!(e instanceof DecodeError)) throw e;
            this.metrics.decodeFailures.inc({ channel: 'core' });
            continue; // every replica skips the same command
          }
          this.enqueueDelivered(cmd);
        }
        return;
      case 'data':
        return this.edge.deliverData(
          d.sender === this.member.self ? msg.value.origin : undefined,
          msg.value.envelope,
        );
      case 'signer':
        if (nameOf(d.sender) === msg.value.name) this.signers.set(msg.value.name, msg.value.publicKey);
        return;
    }
  }

  /**
   * Group commit: the ordered commands one stack event delivers (an ORDER record releases up to a
   * tick's worth of them) are made durable together — one write, one fsync — at the end of that
   * event (a microtask), instead of one fsync each. No one observes the replica in between: the
   * stack's other upcalls commit first (`commitDelivered` at their start), and timers, leaf
   * messages and admin requests run in later macrotasks. A welcome or rekey push leaves only
   * after the batch that carries it is durable.
   */
  private enqueueDelivered(cmd: LeafCommand): void {
    if (this.delivered.length === 0) queueMicrotask(() => this.guard('commit', () => this.commitDelivered()));
    this.delivered.push(cmd);
  }

  private commitDelivered(): void {
    if (this.delivered.length === 0) return;
    const cmds = this.delivered;
    this.delivered = [];
    const started = performance.now();
    const results = this.store.commit(cmds);
    this.metrics.commitSeconds.observe((performance.now() - started) / 1000);
    this.metrics.commitCommands.observe(cmds.length);
    results.forEach((result, i) => {
      if (result.refused !== undefined)
        this.log.info('command refused', {
          kind: cmds[i]!.kind,
          leaf: result.refused.name,
          reason: result.refused.reason,
        });
      if (result.batch !== undefined) this.distribute(result.batch, started);
    });
    this.metrics.leavesExposed.set(this.machine.exposedLeaves);
  }

  private distribute(batch: BatchOutput, started: number): void {
    const appliedAtMs = Date.now();
    const fanOutStart = performance.now();
    this.edge.distribute(batch);
    this.lastBatch = { epoch: batch.epoch, appliedAtMs, fanOutMs: performance.now() - fanOutStart };
    this.metrics.batchRekeySeconds.observe((performance.now() - started) / 1000);
    this.metrics.batchSize.observe(batch.admitted.length + batch.evicted.length);
    this.metrics.rekeyBytes.inc(batch.rekey.encoded.length);
    for (const e of batch.evicted) this.metrics.evictions.inc({ reason: e.reason });
    this.metrics.leafEpoch.set(batch.epoch);
    this.metrics.leafMembers.set(this.machine.members);
    this.log.debug('batch applied', {
      epoch: batch.epoch,
      joins: batch.admitted.length,
      departures: batch.evicted.length,
    });
  }

  /** Renews every registered lease once (see Lease grace above), in bounded commands. */
  private graceRenewal(): void {
    const until = Date.now() + this.cfg.leaseMs;
    const names = [...this.machine.parts().entries.keys()];
    for (let i = 0; i < names.length; i += GRACE_RENEWALS_PER_COMMAND) {
      const renewals = names.slice(i, i + GRACE_RENEWALS_PER_COMMAND).map((name) => ({ name, until }));
      this.order({ kind: 'renewLeases', value: { renewals } });
    }
  }

  /**
   * A core key committed, at the same point of the total order on every member of the view: the
   * replicas of a primary view take its leaf-tree secret there, in order with the commands
   * delivered around it (and durable with them). A non-primary component changes nothing; it
   * receives the primary's state when it merges back.
   */
  key(info: CoreKeyInfo): void {
    this.coreKeyEpoch = info.epoch;
    this.metrics.coreEpoch.set(info.epoch);
    this.metrics.coreRekeys.inc({ cause: info.refresh ? 'refresh' : 'view' });
    if (!info.refresh && this.viewInstalledAt !== undefined)
      this.metrics.coreRekeySeconds.observe((performance.now() - this.viewInstalledAt) / 1000);
    this.viewInstalledAt = undefined;
    this.log.info('core key committed', {
      epoch: info.epoch,
      view: `${info.view.epoch}@${info.view.coord}`,
      refresh: info.refresh,
    });
    if (!this.machine.isPrimary) return;
    // Generations restart at 1 in a cluster restarted from its stores (generation bump); the
    // replicas agree on their secret generation here, so counting on from it stays deterministic.
    const generation = Math.max(info.epoch, this.pendingSecretGeneration() + 1);
    this.enqueueDelivered({ kind: 'setKeySecret', value: { generation, secret: info.leafSecret } });
  }

  /** The secret generation the replica will hold once the commands delivered so far are applied. */
  private pendingSecretGeneration(): number {
    let g = this.machine.secretGeneration;
    for (const c of this.delivered) if (c.kind === 'setKeySecret') g = Math.max(g, c.value.generation);
    return g;
  }

  unicast(): void {}

  block(): void {
    this.commitDelivered();
    this.blockedAt ??= Date.now();
  }

  unblock(): void {}

  getState(): Uint8Array {
    this.commitDelivered();
    return this.machine.snapshot();
  }

  setState(state: Uint8Array): void {
    this.commitDelivered();
    // A member merging back often already holds exactly this state (no batch since it left).
    // Then nothing is replaced: restoring, compacting the store and re-welcoming every linked
    // leaf would block this server's event loop for seconds at 10^4 leaves — past the failure
    // detector's bound, so it was excluded again and got the same state again, in a loop.
    if (Buffer.from(state.buffer, state.byteOffset, state.byteLength).equals(this.machine.snapshot())) {
      this.log.info('state transfer: already at this state', { epoch: this.machine.epoch });
      return;
    }
    this.machine.restore(state);
    this.store.compact(); // the transferred state (and its secret) is now this replica's durable state
    this.edge.onStateReplaced();
    this.metrics.leafEpoch.set(this.machine.epoch);
    this.metrics.leafMembers.set(this.machine.members);
    this.log.info('state transferred', { epoch: this.machine.epoch, leaves: this.machine.members });
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
    this.installedCrl(pem, fresh.length > 0);
    this.log.info('CRL reloaded', { path, newlyRevoked: fresh.length });
    if (fresh.length === 0) return;
    this.metrics.revocations.inc(fresh.length);
    const serials = new Set(fresh.map((r) => r.serial));
    for (const name of this.edge.closeRevoked(serials))
      this.log.info('revoked leaf disconnected', { leaf: name });
    for (const [peer, serial] of this.corePeerSerials)
      if (serials.has(serial)) {
        this.coreVerifyKeys.delete(nameOfCoreId(peer)); // no new pairwise key with a revoked server
        this.coreRevocations.set(nameOfCoreId(peer), serial);
        this.core.disconnect(peer, 'certificate revoked');
      }
    this.orderCoreRevocations();
    if (this.machine.isPrimary)
      for (const serial of serials)
        this.order({ kind: 'revoke', value: { target: { kind: 'serial', value: serial }, immediate: true } });
  }

  /**
   * Post-compromise recovery: a revoked core server knew every leaf's own key. Once a primary
   * view excludes it, order the full refresh (leaf-state machine `revokeCore`): commands of this
   * view travel under a core key it never had, so the refreshes ordered in it are unknown to it.
   */
  private orderCoreRevocations(): void {
    const v = this.member.view;
    if (this.coreRevocations.size === 0 || !v.primary || !this.machine.isPrimary) return;
    const members = new Set(v.members.map((m) => nameOf(m)));
    for (const [name, serial] of this.coreRevocations) {
      if (members.has(name)) continue; // still in the view: wait for its exclusion
      this.coreRevocations.delete(name);
      const windowMs = this.cfg.fullRefreshWindowMs;
      this.order({ kind: 'revokeCore', value: { serial, now: Date.now(), windowMs } });
      this.log.warn('core server revoked: full refresh of the leaf tree ordered', { server: name, windowMs });
    }
  }

  /** Keeps the loaded CRL's text for the leaf port's TLS thread and hands it over. */
  private installedCrl(pem: string, revokedSomething: boolean): void {
    this.crl = nextLeafPortCrl(this.crl, pem, revokedSomething);
    if (this.leaf instanceof ThreadTransport) this.leaf.control(this.crl);
  }

  // ── status and shutdown ──────────────────────────────────────────────────────────────────

  status(): ServerStatus {
    const v = this.member.view;
    return {
      name: this.cfg.name,
      member: this.member.self,
      view: { id: `${v.id.epoch}@${v.id.coord}`, members: v.members, primary: v.primary },
      coordinator: this.isCoordinator(),
      coreEpoch: this.coreKeyEpoch,
      leafEpoch: this.machine.epoch,
      leafKeyGeneration: this.machine.secretGeneration,
      leaves: this.machine.members,
      sessions: this.edge.sessionCount,
      pendingBatch: this.machine.pendingChanges,
      lastBatch: this.lastBatch,
      signers: [...this.signers.keys()].sort(),
      links: this.core.peers().sort(),
    };
  }

  private signerList(): SignerKey[] {
    return [...this.signers].map(([name, publicKey]) => ({ name, publicKey }));
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    this.outbox.clear();
    if (this.cfg.crl !== undefined) unwatchFile(this.cfg.crl);
    await Promise.all([this.core.close(), this.leaf.close(), this.admin.close(), this.edge.stopRelay()]);
    this.store.close();
    this.log.info('stopped');
  }
}

/** The certificate name in a core link identity `group/core/name`. */
function nameOfCoreId(id: string): string {
  return id.slice(id.lastIndexOf('/') + 1);
}
