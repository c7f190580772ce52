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
 * a new member that merges into the running group and receives its state. The durable primary
 * component (PrimaryRecord, data dir file `primary`) keeps the last primary view and the version
 * of the committed state across restarts: after any outage the servers become primary again by
 * themselves once a majority of the last primary view's names are connected, and the newest
 * state among them is the one every other adopts (never name order). `generation` is only the
 * disaster-recovery step for a majority lost for good (primary-record.ts).
 *
 * Lease grace: a server that becomes the coordinator of a primary view renews every registered
 * lease once (ordered), so leaves whose server died, or that were reconnecting through a restart,
 * are not evicted for silence the failure caused.
 *
 * Signing key: the certificate's key when it is Ed25519 (the default of `keyglass ca issue`),
 * otherwise the 32-byte seed in `signingKeyFile` (hex). Servers announce their signing public
 * keys (with their certificate serials) to each other after every view change; welcomes list
 * every key known whose server's certificate our CRL does not revoke, and carry the CRL itself
 * (leaves verify it and refuse revoked servers; see leaf-edge.ts).
 *
 * Revocations reach the tree: the leaf registry is changed only by a primary view, so a CRL
 * loaded at start-up or while outside the primary would otherwise never be ordered. On every
 * primary view (and after a state transfer or CRL load in one) each server orders a `revoke`
 * for every registered leaf its CRL revokes; replicas apply the first and ignore the rest.
 */
import { randomBytes, type X509Certificate } from 'node:crypto';
import { existsSync, unwatchFile, watchFile } from 'node:fs';
import { join } from 'node:path';
import { loadSuite, type CipherSuite } from '../crypto/index.js';
import { DecodeError } from '../wire/index.js';
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
  CredentialError,
  CrlError,
  MutualTls,
  readCrlFile,
  REFUSAL_REASONS,
  PeerVerifier,
  RevocationRegistry,
  ensureDir,
  DirLockedError,
  lockDirForProcess,
  loadCredentials,
  keyProtectionWarning,
  loadTrustAnchors,
  normalizeSerial,
  type CertInfo,
  type Credentials,
  type DirLock,
} from '../auth/index.js';
import { MAX_IN_BAND_CRL_BYTES, MAX_IN_BAND_CRLS, type SignerKey } from '../gossip-edge/index.js';
import { GroupMember, type Delivery, type GroupApp } from '../core-group/index.js';
import type { CoreKeyConfig, CoreKeyInfo } from '../core-group/index.js';
import {
  compareVersion,
  incarnationOf,
  memberKey,
  nameOf,
  versionText,
  type MemberKey,
  type StateVersion,
  type View,
} from '../core-group/index.js';
import { PrimaryRecord } from './primary-record.js';
import { FileStorage } from './file-storage.js';
import { MAX_STATE_BYTES } from '../core-group/index.js';
import {
  LeafStateMachine,
  LeafStore,
  decodeCommand,
  leafTreeSecret,
  type BatchOutput,
  type LeafCommand,
} from '../leaf-plane/index.js';
import { INCARNATIONS_PER_GENERATION, MAX_CORE_SERVERS, type ServerConfig } from './config.js';
import { decodeCoreMessage, encodeCoreMessage } from './core-messages.js';
import { LeafEdge, type InBandCrls } from './leaf-edge.js';
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
import { jsonLogger, type Logger, type LogLevel } from './log.js';
import { Readiness } from './readiness.js';
import { planReload } from './reload.js';
import { auditBatch } from './audit.js';
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
  private readonly edge: LeafEdge;
  private readonly admin: AdminServer;
  private readonly outbox: CommandOutbox;
  /** Rekey-signing keys of core servers by name, with their certificate serials. */
  private readonly signers = new Map<string, { publicKey: Uint8Array; serial: string }>();
  /** What welcomes and crlUpdates carry (installedCrl). */
  private inBandCrls: InBandCrls = { ders: [], lowest: undefined };
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
  /** The committed state's version when the current flush froze this server (setState's check). */
  private versionAtBlock: StateVersion | undefined;
  private wasCoordinator = false;
  private lastCutAt = 0;
  /** Ordered commands delivered in the current stack event, not yet durable (see enqueueDelivered). */
  private delivered: LeafCommand[] = [];
  /** Batches applied and durable here, not yet known durable at a majority of the primary view (see release). */
  private readonly unreleased: { batch: BatchOutput; started: number }[] = [];
  /** The leaf epoch each member of the current view reported durable in it (`durable` messages). */
  private readonly durableAt = new Map<MemberKey, number>();
  /**
   * The replica's state up to this epoch is not known committed: after a start from the store
   * (its last batches may never have reached a majority) and after a state transfer (the sender's
   * may not have). Undefined once a majority of a primary view held it.
   */
  private uncommittedUpTo: number | undefined;
  private stopped = false;
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

  private constructor(
    /** The config in force (a reload replaces the fields it applies). */
    public cfg: ServerConfig,
    private readonly suite: CipherSuite,
    private creds: Credentials,
    private anchors: readonly CertInfo[],
    private readonly revocation: RevocationRegistry,
    private readonly machine: LeafStateMachine,
    private readonly store: LeafStore,
    private readonly incarnation: IncarnationRecord,
    private readonly record: PrimaryRecord,
    signingSeed: Uint8Array,
    identitySeed: Uint8Array,
    log: Logger,
    private readonly dirLock: DirLock,
  ) {
    this.log = log;
    this.coreCreds = creds;
    this.uncommittedUpTo = machine.epoch;
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

    const signingPublic = suite.ed25519PublicKey(signingSeed);
    this.signers.set(cfg.name, { publicKey: signingPublic, serial: creds.certificate.serial });
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
      crls: () => this.inBandCrls,
      order: (cmd) => this.order(cmd),
      publish: (peer, envelope) =>
        this.member.multicast('fifo', encodeCoreMessage({ kind: 'data', value: { origin: peer, envelope } })),
      metrics: this.metrics,
      log,
      requestLimits: cfg.leafRequests,
      catchUpBytesPerSec: cfg.catchUpBytesPerSec,
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
        memory: record,
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
        if (detail?.includes(DUPLICATE_IDENTITY)) this.duplicateIdentity(peer, detail);
        else this.log.info('core link down', { peer, reason, detail });
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
      () => this.readiness.report(),
    );
  }

  /** The TLS options and identity checks of the current credentials and trust anchors. */
  private buildTls(): MutualTls {
    this.metrics.certificatesLoaded(this.creds.certificate, this.anchors);
    const verifier = new PeerVerifier({
      anchors: this.anchors,
      group: this.cfg.group,
      revocation: this.revocation,
      ...(this.cfg.admissionPolicy !== undefined ? { policy: this.cfg.admissionPolicy } : {}),
    });
    const mtls = new MutualTls(this.creds, verifier);
    const coreMtls = this.coreCreds === this.creds ? mtls : new MutualTls(this.coreCreds, verifier);
    const refused = (port: string) => (reason: string, detail: string) => this.refused(port, reason, detail);
    this.coreIdentify = coreMtls.transportIdentify({ roles: ['core'], peerSide: 'either' }, refused('core'));
    this.leafIdentifyFn = leafIdentify(mtls, refused('leaf'), (id, cert) => this.edge.rememberCert(id, cert));
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

  /** Loads credentials and state, binds every listener, joins the core group. */
  static async start(
    cfg: ServerConfig,
    log: Logger = jsonLogger(cfg.logLevel, { server: cfg.name }),
  ): Promise<KeyServer> {
    const suite = await loadSuite();
    let creds: Credentials;
    try {
      creds = loadCredentials({
        certFile: cfg.credentials.cert,
        keyFile: cfg.credentials.key,
        ...(cfg.credentials.passphrase !== undefined ? { passphrase: cfg.credentials.passphrase } : {}),
      });
    } catch (e) {
      // "wrong passphrase for private key" alone does not say which file: name it.
      if (e instanceof CredentialError && e.kind === 'bad-passphrase')
        throw new ServerStartError(`credentials.key: ${e.message} ${cfg.credentials.key}`);
      throw e;
    }
    // Keys written by earlier releases (2,048 PBKDF2 iterations) still load; say how to fix them.
    const weakKey = keyProtectionWarning(creds.keyProtection, cfg.credentials.key);
    if (weakKey !== undefined) log.warn('private key weakly protected', { detail: weakKey });
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
    // One process per data dir, for this process's lifetime (a copied unit, a botched deploy).
    let dirLock: DirLock;
    try {
      dirLock = lockDirForProcess(cfg.dataDir);
    } catch (e) {
      if (!(e instanceof DirLockedError)) throw e;
      throw new ServerStartError(`dataDir: ${e.message}; another keyglass server uses this data directory`);
    }
    try {
      return await KeyServer.open(
        cfg,
        log,
        suite,
        creds,
        anchors,
        revocation,
        crlPem,
        seed,
        identitySeed,
        dirLock,
      );
    } catch (e) {
      dirLock.release();
      throw e;
    }
  }

  private static async open(
    cfg: ServerConfig,
    log: Logger,
    suite: CipherSuite,
    creds: Credentials,
    anchors: readonly CertInfo[],
    revocation: RevocationRegistry,
    crlPem: string | undefined,
    seed: Uint8Array,
    identitySeed: Uint8Array,
    dirLock: DirLock,
  ): Promise<KeyServer> {
    const storage = new FileStorage();
    const incarnation = IncarnationRecord.boot(storage, cfg.dataDir, cfg.generation);
    const machine = new LeafStateMachine({
      suite,
      group: new TextEncoder().encode(cfg.group),
      secret: new Uint8Array(randomBytes(32)),
      leaseMs: cfg.leaseMs,
    });
    const store = LeafStore.open(storage, join(cfg.dataDir, 'leaf-state'), machine, { suite });
    // A fresh store holds no snapshot: write one now, so the random secret survives a restart.
    if (store.index === 0 && store.opened.snapshotIndex === 0) store.compact();
    const record = PrimaryRecord.open(storage, cfg.dataDir, cfg.generation, store.index, log, machine.epoch);
    log.info('store opened', {
      epoch: machine.epoch,
      leaves: machine.members,
      replayed: store.opened.replayed,
      incarnation: incarnation.current,
      stateVersion: versionText(record.stateVersion(store.index)),
      lastPrimary: record.load()?.lastPrimary.members ?? 'none',
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
      record,
      seed,
      identitySeed,
      log,
      dirLock,
    );
    if (crlPem !== undefined) server.installedCrl(crlPem, false);
    try {
      await server.listen();
    } catch (e) {
      await server.stop();
      throw e;
    }
    return server;
  }

  get addresses(): { core: number; leaf: number; admin: number } {
    return { ...this.ports };
  }

  private async listen(): Promise<void> {
    const { core, leaf, admin } = this.cfg.listen;
    this.ports.leaf = (await bound('listen.leaf', leaf, this.leaf.listen(leaf.port, leaf.host))).port;
    this.ports.admin = await bound('listen.admin', admin, this.admin.listen(admin.port, admin.host));
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
    this.ports.core = (await bound('listen.core', core, this.core.listen(core.port, core.host))).port;
    this.member.start();
    this.memberStarted = true;
    this.readiness.start();
    this.every(1000, () => this.readiness.tick());
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
    if (detail.includes(DUPLICATE_IDENTITY)) return this.duplicateIdentity(remote, detail);
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
    this.versionAtBlock = undefined;
    this.durableAt.clear(); // acks count in the view they were sent in
    // Before any command of the view is applied (see PrimaryRecord).
    if (view.primary) this.record.primaryInstalled(view.lastPrimary.step, this.store.index);
    this.machine.setPrimary(view.primary);
    this.metrics.viewSize.set(view.members.length);
    this.metrics.viewChanges.inc();
    this.metrics.primary.set(view.primary ? 1 : 0);
    this.readiness.viewInstalled(`${view.id.epoch}@${view.id.coord}`, view.primary);
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
    const own = this.signers.get(this.cfg.name)!;
    this.member.multicast(
      'fifo',
      encodeCoreMessage({
        kind: 'signer',
        value: { name: this.cfg.name, publicKey: own.publicKey, serial: own.serial },
      }),
    );
    this.orderCrlRevocations('primary view');
    // Every member of a primary view holds the same state once it is installed (flush, state
    // transfer): each says so, and what waited for a majority is released on those acks.
    this.ackDurable();
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
        // Durable before any command after the gap (PrimaryRecord: the version's prefix stops there).
        if (d.afterGap === true) this.record.gap(this.store.index + this.delivered.length);
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
      case 'signer': {
        const name = nameOf(d.sender);
        if (name !== msg.value.name) return;
        // The serial its certificate showed on our mesh link wins over the announced one.
        const seen = this.corePeerSerials.get(`${this.cfg.group}/core/${name}`);
        if (seen !== undefined && seen !== msg.value.serial)
          this.log.warn('signer serial differs from its mesh certificate', { server: name });
        this.signers.set(name, { publicKey: msg.value.publicKey, serial: seen ?? msg.value.serial });
        return;
      }
      case 'durable': {
        const v = this.member.view;
        // An ack sent while blocked travels in the next view, about the state of the old one: dropped.
        if (d.sender === this.member.self || msg.value.view !== viewText(v)) return;
        this.durableAt.set(d.sender, msg.value.epoch);
        return this.release();
      }
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
      if (result.batch !== undefined) {
        this.unreleased.push({ batch: result.batch, started });
        this.edge.hold();
      }
    });
    this.metrics.leavesExposed.set(this.machine.exposedLeaves);
    if (this.unreleased.length > 0) this.ackDurable();
  }

  /** Tells the view which leaf epoch this replica holds durably in it (the batches it applied are fsynced). */
  private ackDurable(): void {
    const v = this.member.view;
    if (!v.primary) return;
    this.member.multicast(
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
    const v = this.member.view;
    if (!v.primary) return;
    // The epoch a majority of the view holds: the majority-th highest ack, this replica included.
    const acks = v.members.map((m) =>
      m === this.member.self ? this.machine.epoch : (this.durableAt.get(m) ?? -1),
    );
    acks.sort((a, b) => b - a);
    const committed = acks[Math.floor(v.members.length / 2)]!;
    if (this.uncommittedUpTo !== undefined && committed >= this.uncommittedUpTo)
      this.uncommittedUpTo = undefined;
    while (this.unreleased.length > 0 && this.unreleased[0]!.batch.epoch <= committed) {
      const { batch, started } = this.unreleased.shift()!;
      if (this.unreleased.length === 0 && this.uncommittedUpTo === undefined) this.edge.settle();
      this.distribute(batch, started);
    }
    if (this.unreleased.length === 0 && this.uncommittedUpTo === undefined) this.edge.settle();
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
    // The audit trail: a line per admission and removal, wherever the leaf is linked ('leaf
    // evicted' names only this server's sessions), once the batch can no longer be undone.
    auditBatch(this.log, this.cfg.name, batch);
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
    this.readiness.keyCommitted(`${info.view.epoch}@${info.view.coord}`);
    this.log.info('core key committed', {
      epoch: info.epoch,
      view: `${info.view.epoch}@${info.view.coord}`,
      refresh: info.refresh,
    });
    if (!this.machine.isPrimary) return;
    // Generations restart at 1 in a cluster restarted from its stores (generation bump); the
    // replicas agree on their secret generation here, so counting on from it stays deterministic.
    const generation = Math.max(info.epoch, this.pendingSecretGeneration() + 1);
    const secret = leafTreeSecret(this.suite, info.coreKey, info.epoch);
    info.coreKey.fill(0);
    this.enqueueDelivered({ kind: 'setKeySecret', value: { generation, secret } });
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
    this.versionAtBlock ??= this.stateVersion();
  }

  unblock(): void {}

  getState(): Uint8Array {
    this.commitDelivered();
    return this.machine.snapshot();
  }

  stateVersion(): StateVersion {
    return this.record.stateVersion(this.store.index);
  }

  setState(state: Uint8Array, version: StateVersion): void {
    // The stack keeps the newest state of every merge (gms.ts), as the members reported it when
    // they froze for the flush: an older one would undo changes.
    const own = this.versionAtBlock ?? this.stateVersion();
    if (compareVersion(version, own) < 0)
      this.log.error('state transfer from an older state version', {
        own: versionText(own),
        received: versionText(version),
      });
    this.setLeafState(state);
    this.record.stateInstalled(version, this.store.index);
  }

  private setLeafState(state: Uint8Array): void {
    this.commitDelivered();
    this.readiness.stateTransferStarted(); // done when the view that carried it is installed
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
    // What waited for a majority is replaced, and the sender's newest batches may not have one yet.
    this.unreleased.length = 0;
    this.uncommittedUpTo = this.machine.epoch;
    this.edge.hold();
    this.edge.onStateReplaced();
    this.orderCrlRevocations('state transfer');
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
    const before = this.inBandCrls;
    this.installedCrl(pem, fresh.length > 0);
    this.log.info('CRL reloaded', { path, newlyRevoked: fresh.length });
    if (!sameCrls(before, this.inBandCrls))
      this.log.info('CRL going out to linked leaves', { leaves: this.edge.pushCrl() });
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
   * Every registered leaf whose certificate our CRL revokes: order its revoke (a primary view
   * only; idempotent — a serial whose leaf is gone is a no-op at every replica, so several
   * servers ordering the same one do no harm). It runs on every view change, on the thread that
   * heartbeats the core: it walks the smaller of the CRLs and the registry, one map lookup each.
   */
  private orderCrlRevocations(why: string): void {
    if (!this.machine.isPrimary) return;
    const crls = this.revocation.installed();
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
      for (const e of entries.values()) if (this.revocation.isRevokedSerial(e.serial)) revoke(e.serial);
    }
    if (ordered > 0) this.log.info('revocations ordered for registered leaves', { why, ordered });
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
    const installed = this.revocation.installed();
    this.metrics.crlsInstalled(installed);
    const ders = installed.map((c) => c.der);
    if (ders.length > MAX_IN_BAND_CRLS || ders.some((d) => d.length > MAX_IN_BAND_CRL_BYTES)) {
      this.log.warn('CRL too large to send to leaves in band; leaves need it as a file', {
        crls: ders.length,
        bytes: ders.reduce((n, d) => n + d.length, 0),
      });
      this.inBandCrls = { ders: [], lowest: undefined };
      return;
    }
    let lowest: bigint | undefined = installed[0]?.crlNumber;
    for (const c of installed)
      lowest = c.crlNumber === undefined || lowest === undefined ? undefined : min(lowest, c.crlNumber);
    this.inBandCrls = { ders, lowest };
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
      coordinator: this.isCoordinator(),
      coreEpoch: this.coreKeyEpoch,
      leafEpoch: this.machine.epoch,
      stateVersion: versionText(this.stateVersion()),
      leafKeyGeneration: this.machine.secretGeneration,
      leaves: this.machine.members,
      sessions: this.edge.sessionCount,
      pendingBatch: this.machine.pendingChanges,
      lastBatch: this.lastBatch,
      signers: [...this.signers.keys()].sort(),
      links: this.core.peers().sort(),
    };
  }

  /** The signers to list to leaves: none whose certificate our CRL revokes. */
  private signerList(): SignerKey[] {
    const out: SignerKey[] = [];
    for (const [name, { publicKey, serial }] of this.signers)
      if (!this.revocation.isRevokedSerial(serial)) out.push({ name, publicKey, serial });
    return out;
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.readiness.stop();
    for (const t of this.timers) clearInterval(t);
    this.outbox.clear();
    if (this.cfg.crl !== undefined) unwatchFile(this.cfg.crl);
    await Promise.all([this.core.close(), this.leaf.close(), this.admin.close(), this.edge.stopRelay()]);
    this.store.close();
    this.dirLock.release();
    this.log.info('stopped');
  }
}

/** Listens, or names the config field and address that could not be bound (one start-up line). */
async function bound<T>(
  field: string,
  addr: { host: string; port: number },
  listening: Promise<T>,
): Promise<T> {
  try {
    return await listening;
  } catch (e) {
    // The leaf port's TLS thread reports its listen failure as text: find the code in it.
    const code =
      (e as NodeJS.ErrnoException).code ??
      /\b(EADDRINUSE|EACCES|EADDRNOTAVAIL)\b/.exec((e as Error).message)?.[1];
    const why =
      code === 'EADDRINUSE'
        ? 'is already in use'
        : code === 'EACCES'
          ? 'needs privileges this process lacks'
          : code === 'EADDRNOTAVAIL'
            ? 'is not an address of this host'
            : `cannot be bound (${code ?? (e as Error).message})`;
    throw new ServerStartError(`${field}: ${addr.host}:${addr.port} ${why}`);
  }
}

function min(a: bigint, b: bigint): bigint {
  return a < b ? a : b;
}

function sameCrls(a: InBandCrls, b: InBandCrls): boolean {
  return a.ders.length === b.ders.length && a.ders.every((d, i) => Buffer.from(d).equals(b.ders[i]!));
}

/** The certificate name in a core link identity `group/core/name`. */
function nameOfCoreId(id: string): string {
  return id.slice(id.lastIndexOf('/') + 1);
}

function viewText(v: View): string {
  return `${v.id.epoch}@${v.id.coord}`;
}
