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
 */
import { EventEmitter } from 'node:events';
import { constantTimeEqual, concatBytes, loadSuite, type CipherSuite } from '../crypto/index.js';
import { DecodeError } from '../wire/index.js';
import { LinkError, TlsTransport, type LinkDownReason } from '../net/index.js';
import {
  CrlError,
  MutualTls,
  PeerVerifier,
  RevocationRegistry,
  credentialsFromPem,
  formatIdentity,
  parseCertificatesPem,
  trustAnchorsFromPem,
  verifyCrl,
  verifyCrlPem,
  type AcceptedPeer,
  type CertInfo,
  type Credentials,
  type VerifiedCrl,
} from '../auth/index.js';
import {
  KeytreeError,
  LEAF_KEY_EXPORTER_BYTES,
  LEAF_KEY_EXPORTER_LABEL,
  LeafKeys,
  MAX_REFRESH_COUNTER,
  decodeHeader,
  refreshedLeafKey,
  decodePart,
  decodeWelcome,
  signedBytes,
  type EpochHeader,
} from '../keytree/index.js';
import {
  DATA_ERROR_REASONS,
  DataEnvelopeError,
  RetiredKeyError,
  DataKeyring,
  DataOpener,
  DataSealer,
  DEFAULT_PREVIOUS_EPOCHS,
  DEFAULT_RETIRED_GRACE_MS,
  decodeDataEnvelope,
  type DataErrorReason,
} from '../gossip-edge/index.js';
import {
  MAX_LEAF_FRAME_BYTES,
  decodeLeafFrame,
  encodeLeafFrame,
  type EvictionReason,
  type LeafErrorCode,
  type LeafFrame,
  type LeafFrameBody,
  type PublishResult,
  PUBLISH_RESULTS,
  type LeafFrameType,
  type RekeyPush,
  type SignerKey,
} from '../gossip-edge/index.js';
import { GossipLink, type GossipLinkOptions } from '../gossip-edge/index.js';
import type { AdmitVerdict } from '../gossip-edge/index.js';
import { admitGossipItem, openRekeyItem, openStreamItem } from '../gossip-edge/index.js';
import { isRekeyId } from '../gossip-edge/index.js';
import { VerifiedHeaders } from '../gossip-edge/index.js';
import type { Item } from '../gossip-edge/index.js';

export interface LeafServerAddress {
  readonly host: string;
  readonly port: number;
}

export interface LeafConnectOptions {
  /** Core servers to try, in order (a failed one passes to the next). */
  readonly servers: readonly LeafServerAddress[];
  /** PEM certificate chain + private key (optionally encrypted), or already loaded credentials. */
  readonly credentials: { certPem: string; keyPem: string; passphrase?: string } | Credentials;
  /**
   * Trust anchors (the Keyglass CA) and optional intermediates; `group` defaults to ours.
   * `crlPem`: the CA's CRL(s) to start from (core servers it revokes are refused); newer ones
   * arrive in band from the servers, or by `updateCrl`.
   */
  readonly trust: { caPem: string; intermediatesPem?: string; group?: string; crlPem?: string };
}

export interface LeafClientOptions {
  /** Cipher suite (default: `await loadSuite()`). */
  readonly suite?: CipherSuite;
  /** Connection attempts per (re)connect, across servers (default 8). */
  readonly maxAttempts?: number;
  /** Backoff between attempts: base·2^k capped at max, times a jitter in [0.5, 1) (defaults 100 ms, 5 s). */
  readonly backoffBaseMs?: number;
  readonly backoffMaxMs?: number;
  /** How long a server may take to welcome us after the link is up (default 10 s). */
  readonly welcomeTimeoutMs?: number;
  readonly handshakeTimeoutMs?: number;
  /** Retired epochs whose data stays readable, at most (default 8) … */
  readonly previousEpochs?: number;
  /** … each for this long after a newer epoch arrived (default 2 s; see KeyringOptions). */
  readonly retiredEpochGraceMs?: number;
  /** Publishes that may await their server's answer before `publish` returns false (default 64). */
  readonly publishWindow?: number;
  /** Ed25519 seed to sign every published envelope with. */
  readonly signingSeed?: Uint8Array;
  /** Public keys of signing senders (by member id), and whether unsigned data is refused. */
  readonly senderKey?: (memberId: number) => Uint8Array | undefined;
  readonly requireSignatures?: boolean;
  /** Randomness for jitter (default Math.random). */
  readonly random?: () => number;
  /** UDP gossip tier (default: on, bound to 127.0.0.1, ephemeral port); false: TLS only. */
  readonly gossip?: GossipLinkOptions | false;
  /**
   * Refuse core servers while the CRL we hold for their issuer is past its nextUpdate (default
   * false: a stale CRL still revokes what it lists, and servers bring newer ones in band).
   */
  readonly requireFreshCrl?: boolean;
}

export interface LeafClientEvents {
  key: [{ epoch: number; keyId: string }];
  message: [{ sender: number; seq: number; epoch: number; data: Uint8Array }];
  evicted: [{ reason: EvictionReason }];
  error: [Error];
  /** A link to a core server came up and we were welcomed or resumed. */
  connected: [{ server: string }];
  /** The server refused publish `seq` (the envelope's sequence number); it reached nobody. */
  refused: [{ seq: number; reason: Exclude<PublishResult, 'accepted'> }];
  /** `publish` returned false (window full) and the window has room again. */
  drain: [];
}

/** A server said no, or broke the protocol. */
export class LeafProtocolError extends Error {
  override readonly name = 'LeafProtocolError';
  constructor(
    readonly code:
      LeafErrorCode | 'bad-signature' | 'unknown-signer' | 'bad-frame' | 'revoked-server' | 'stale-crl',
    message: string,
  ) {
    super(`${code}: ${message}`);
  }
}

/** Every server failed for this (re)connect. */
export class LeafConnectError extends Error {
  override readonly name = 'LeafConnectError';
  constructor(
    message: string,
    readonly attempts: readonly string[],
  ) {
    super(message);
  }
}

export interface LeafClientStats {
  rekeysApplied: number;
  rekeysIgnored: number;
  catchUps: number;
  rejoins: number;
  /** Own-key refreshes our servers ordered (post-compromise recovery). */
  keyRefreshes: number;
  reconnects: number;
  protocolErrors: number;
  decryptFailures: Record<DataErrorReason, number>;
  /** Envelopes sealed under an epoch before our admission: unreadable by design (backward secrecy). */
  dataBeforeAdmission: number;
  /** Rekeys applied / data messages delivered that arrived over gossip. */
  gossipRekeys: number;
  gossipData: number;
  /** … that arrived over the TLS link (pushes, catch-up replies, data deliveries). */
  tlsRekeys: number;
  tlsData: number;
  /** Gossip items refused before storing (bad signature, unknown signer, labels not their content, garbage). */
  gossipRefused: number;
  /** Gossiped rekey parts that do not name our path (relayed through us; never a re-join). */
  gossipNotOurs: number;
  /** Pulls of our server's data stream (gaps gossip did not fill) and the messages they delivered. */
  dataPulls: number;
  pulledData: number;
  /**
   * Data items that carried an envelope already delivered (copies injected by two servers into
   * an overlay that mixes their leaves after a failover): refused by the replay window, not
   * counted as decrypt failures.
   */
  dataDuplicates: number;
  /** Our publishes as our server answered them: accepted into the core relay, or refused. */
  publishes: Record<PublishResult, number>;
  /** `publish` calls refused here, nothing sent: our newest key was retired beyond the grace window. */
  publishesRetired: number;
  /** Requests our server refused as too frequent (`rate-limited`). */
  rateLimited: number;
  /** `publish` calls that returned false because `publishWindow` publishes awaited an answer. */
  publishesDeferred: number;
  /** Publishes whose answer never came: the link went down first (they may or may not have gone out). */
  publishesUnanswered: number;
  /** CRLs installed (newer than the one held for their issuer), given or in band. */
  crlsApplied: number;
  /** CRLs offered that were older than the one held (a replayed CRL): not installed. */
  crlsIgnored: number;
  /** CRLs offered in band that did not verify under our trust anchors. */
  crlsInvalid: number;
  /** Core servers refused as revoked: at the TLS handshake, or a live link dropped by a newer CRL. */
  serversRevoked: number;
}

type State = 'idle' | 'connecting' | 'up' | 'evicted' | 'closed';

interface Waiter {
  resolve(): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

const KEY_ID_LABEL = new TextEncoder().encode('keyglass key id v1');
/** Unanswered publishes per link: bounds what a slow core makes a publisher hold or lose. */
export const DEFAULT_PUBLISH_WINDOW = 64;
/** A catch-up our server refused as too frequent is asked again after this long (ms). */
const CATCH_UP_RETRY_MS = 250;

export class LeafClient extends EventEmitter<LeafClientEvents> {
  readonly stats: LeafClientStats = {
    rekeysApplied: 0,
    rekeysIgnored: 0,
    catchUps: 0,
    rejoins: 0,
    keyRefreshes: 0,
    reconnects: 0,
    protocolErrors: 0,
    decryptFailures: Object.fromEntries(DATA_ERROR_REASONS.map((r) => [r, 0])) as Record<
      DataErrorReason,
      number
    >,
    dataBeforeAdmission: 0,
    gossipRekeys: 0,
    gossipData: 0,
    tlsRekeys: 0,
    tlsData: 0,
    gossipRefused: 0,
    gossipNotOurs: 0,
    dataPulls: 0,
    pulledData: 0,
    dataDuplicates: 0,
    publishes: Object.fromEntries(PUBLISH_RESULTS.map((r) => [r, 0])) as Record<PublishResult, number>,
    publishesDeferred: 0,
    rateLimited: 0,
    publishesRetired: 0,
    publishesUnanswered: 0,
    crlsApplied: 0,
    crlsIgnored: 0,
    crlsInvalid: 0,
    serversRevoked: 0,
  };

  private suite: CipherSuite | undefined;
  private state: State = 'idle';
  private transport: TlsTransport | undefined;
  private servers: readonly LeafServerAddress[] = [];
  private nextServer = 0;
  private peer: string | undefined;
  private keys: LeafKeys | undefined;
  private keyring: DataKeyring | undefined;
  private sealer: DataSealer | undefined;
  private opener: DataOpener | undefined;
  /** Signers the server listed, and those of them no CRL we hold revokes (the ones we accept). */
  private announcedSigners: readonly SignerKey[] = [];
  private signers: readonly SignerKey[] = [];
  /** The CRLs we hold (the TLS verifier reads them at every handshake). */
  private readonly revocation = new RevocationRegistry();
  /** CAs a CRL may come from: our anchors and intermediates (set by connect). */
  private crlIssuers: readonly CertInfo[] = [];
  private verifier: PeerVerifier | undefined;
  /** Core servers as the TLS verifier accepted them (certificate, issuer), by link identity. */
  private readonly acceptedServers = new Map<string, AcceptedPeer>();
  /** In-band CRLs are verified one batch after another, in arrival order. */
  private crlQueue: Promise<void> = Promise.resolve();
  private memberId: number | undefined;
  private admittedEpoch: number | undefined;
  private leaseMs = 0;
  private leaseTimer: NodeJS.Timeout | undefined;
  private leaseSeq = 0;
  private lastAckAt = 0;
  private catchUpPending = false;
  /** Items the node delivers now come from our data pull (stats). */
  private pulling = false;
  /** Newest epoch a verified push announced: catch up until we hold it. */
  private newestSeen = 0;
  private welcomeWaiter: Waiter | undefined;
  /** Rekey headers already verified (the parts of one epoch share one signature). */
  private readonly verified = new VerifiedHeaders();
  /** Sequence numbers of our publishes on the current link awaiting their publishAck, oldest first. */
  private unanswered: number[] = [];
  /** A publish was deferred for a full window: 'drain' is owed once it has room. */
  private windowFull = false;
  /** What connect() set up to link to core servers (kept to link again only to leave). */
  private tlsIdentity: { mtls: MutualTls; local: string } | undefined;
  /** The running failover after an established link went down (settles, never rejects). */
  private failover: Promise<void> | undefined;
  private link: GossipLink | undefined;
  /** The current server seeded us (it runs a relay): reseeds may be asked of it. */
  private seeded = false;
  private readonly opts: Required<
    Pick<
      LeafClientOptions,
      | 'maxAttempts'
      | 'backoffBaseMs'
      | 'backoffMaxMs'
      | 'welcomeTimeoutMs'
      | 'handshakeTimeoutMs'
      | 'previousEpochs'
      | 'retiredEpochGraceMs'
      | 'publishWindow'
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
      previousEpochs: DEFAULT_PREVIOUS_EPOCHS,
      retiredEpochGraceMs: DEFAULT_RETIRED_GRACE_MS,
      publishWindow: DEFAULT_PUBLISH_WINDOW,
      ...options,
    };
    if (!(this.opts.maxAttempts >= 1 && this.opts.maxAttempts <= 1000))
      throw new RangeError('maxAttempts 1..1000');
    if (!(
      Number.isInteger(this.opts.publishWindow) &&
      this.opts.publishWindow >= 1 &&
      this.opts.publishWindow <= 4096
    ))
      throw new RangeError('publishWindow 1..4096');
  }

  /** The current epoch, or undefined without a key. */
  get epoch(): number | undefined {
    return this.keys?.epoch;
  }

  /** Our member id (sender id of our data) in the current admission. */
  get member(): number | undefined {
    return this.memberId;
  }

  /** The epoch our admission began at: data sealed under earlier epochs is not ours to read. */
  get admissionEpoch(): number | undefined {
    return this.admittedEpoch;
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
    return this.signers.map((s) => ({ name: s.name, serial: s.serial }));
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
      this.suite = this.opts.suite ?? (await loadSuite());
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
        revocation: this.revocation,
        refuseStaleCrl: this.opts.requireFreshCrl ?? false,
      });
      this.verifier = verifier;
      const mtls = new MutualTls(creds, verifier);
      if (this.opts.gossip !== false)
        this.link = await GossipLink.bind(
          this.suite,
          {
            admit: (item) => this.admitItem(item),
            deliver: (item) => this.deliverItem(item),
            pullFromCore: (req) => {
              this.requestCatchUp();
              if (req.why !== 'behind') this.pullData();
            },
            reseed: () => {
              if (this.seeded && this.state === 'up') this.send('gossipReseed', {});
            },
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
    if (this.sealer === undefined || this.state !== 'up') throw new Error('LeafClient: not connected');
    if (this.unanswered.length >= this.opts.publishWindow) {
      this.windowFull = true;
      this.stats.publishesDeferred++;
      return false;
    }
    const seq = this.sealer.seq;
    let envelope: Uint8Array;
    try {
      envelope = this.sealer.seal(data);
    } catch (e) {
      if (!(e instanceof RetiredKeyError)) throw e;
      // We lag: the group moved past our newest key longer than the grace window ago, and a
      // member evicted since may hold it. Nothing is sent; 'drain' follows our next key.
      this.stats.publishesRetired++;
      this.windowFull = true;
      this.emit('refused', { seq, reason: 'retired-epoch' });
      return false;
    }
    if (!this.send('dataPublish', { envelope })) return false;
    this.unanswered.push(seq);
    return true;
  }

  /** Publishes sent on the current link and not answered yet. */
  get publishesInFlight(): number {
    return this.unanswered.length;
  }

  /**
   * Installs the CA's CRL(s) (PEM; e.g. a file the application reloads): each must verify under
   * our trust anchors (CrlError otherwise, nothing installed). A CRL older than the one held for
   * its issuer is ignored (counted); a newer one is installed and enforced at once: a link to a
   * server it revokes is dropped, and its servers' signing keys are no longer accepted. Callable
   * before `connect` only through `trust.crlPem`.
   */
  async updateCrl(pem: string): Promise<{ applied: number; ignored: number }> {
    if (this.crlIssuers.length === 0) throw new Error('LeafClient: updateCrl before connect');
    const verified = await verifyCrlPem(pem, this.crlIssuers);
    if (verified.length === 0) throw new CrlError('no X509 CRL PEM block');
    return this.installCrls(verified);
  }

  /** The CRLs held now, one per issuer (what `updateCrl`, `trust.crlPem` and servers brought). */
  get crls(): readonly { issuer: string; crlNumber: bigint | undefined; nextUpdate: Date | undefined }[] {
    return this.revocation
      .installed()
      .map((c) => ({ issuer: c.issuer.subject, crlNumber: c.crlNumber, nextUpdate: c.nextUpdate }));
  }

  /** Installs each verified CRL that is newer than the one held for its issuer, then enforces them. */
  private installCrls(verified: readonly VerifiedCrl[]): { applied: number; ignored: number } {
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

  /** CRLs a server sent (DER): verified off the frame path, in order; bad ones are counted and reported. */
  private offerCrls(ders: readonly Uint8Array[]): void {
    if (ders.length === 0) return;
    this.crlQueue = this.crlQueue
      .then(async () => {
        const verified: VerifiedCrl[] = [];
        for (const der of ders) {
          try {
            verified.push(await verifyCrl(der, this.crlIssuers));
          } catch (e) {
            if (!(e instanceof CrlError)) throw e;
            this.stats.crlsInvalid++;
            this.report(
              new LeafProtocolError('unexpected', `a server sent a CRL that does not verify: ${e.message}`),
            );
          }
        }
        if (this.state !== 'closed') this.installCrls(verified);
      })
      .catch((e: unknown) => this.report(e as Error));
  }

  /**
   * After a CRL change (or a new signer list): keep only signers whose server the CRLs do not
   * revoke, and drop the link to our server if it is revoked now (or, with requireFreshCrl, if
   * its issuer's CRL went stale): the failover's handshakes then refuse it.
   */
  private enforceRevocation(): void {
    this.filterSigners();
    const peer = this.peer;
    const accepted = peer === undefined ? undefined : this.acceptedServers.get(peer);
    if (accepted === undefined || this.verifier === undefined) return;
    if (this.verifier.isRevoked(accepted)) {
      this.stats.serversRevoked++;
      // Its signer list is its word alone (it could have put a key of its own under a good
      // server's serial): nothing is accepted until a good server welcomes us with its list.
      this.announcedSigners = [];
      this.signers = [];
      return this.dropLink(
        new LeafProtocolError('revoked-server', `the certificate of ${peer} is revoked (CRL)`),
      );
    }
    if (
      this.opts.requireFreshCrl === true &&
      this.revocation.status(accepted.issuer, accepted.certificate.serial, new Date()) === 'stale'
    )
      this.dropLink(new LeafProtocolError('stale-crl', `the CRL of ${peer}'s issuer is past nextUpdate`));
  }

  /** Accept the signers our server listed whose certificates no CRL we hold revokes. */
  private filterSigners(): void {
    this.signers = this.announcedSigners.filter((s) => !this.revocation.isRevokedSerial(s.serial));
  }

  /** The lowest CRL number we hold (decimal) for joins: the server then sends only newer CRLs. */
  private heldCrlNumber(): string | undefined {
    const held = this.revocation.installed();
    if (held.length === 0) return undefined;
    let lowest: bigint | undefined;
    for (const c of held) {
      if (c.crlNumber === undefined) return undefined;
      if (lowest === undefined || c.crlNumber < lowest) lowest = c.crlNumber;
    }
    return lowest?.toString();
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
      if (this.state === 'up') this.send('leave', { admittedEpoch: this.admittedEpoch });
      else if (this.state === 'idle') await this.leaveWithoutLink(waitMs);
    }
    await this.shutdown('closed');
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
    if (this.tlsIdentity === undefined || this.memberId === undefined) return;
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
        const leave = encodeLeafFrame('leave', { admittedEpoch: this.admittedEpoch });
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
        await this.join();
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

  /** Sends a join (resuming our admission when we have one) and waits for the welcome. */
  private join(): Promise<void> {
    const resume =
      this.admittedEpoch !== undefined && this.keys !== undefined
        ? { admittedEpoch: this.admittedEpoch, epoch: this.keys.epoch }
        : undefined;
    return new Promise((resolve, reject) => {
      this.failWaiter(new Error('superseded by a new join'));
      const timer = setTimeout(() => {
        this.welcomeWaiter = undefined;
        reject(new Error(`no welcome within ${this.opts.welcomeTimeoutMs} ms`));
      }, this.opts.welcomeTimeoutMs);
      this.welcomeWaiter = { resolve, reject, timer };
      if (!this.send('join', { resume, crlNumber: this.heldCrlNumber() }))
        this.failWaiter(new Error('could not send join'));
    });
  }

  private failWaiter(err: Error): void {
    const w = this.welcomeWaiter;
    if (w === undefined) return;
    this.welcomeWaiter = undefined;
    clearTimeout(w.timer);
    w.reject(err);
  }

  private onLinkDown(peer: string, reason: LinkDownReason, detail: string | undefined): void {
    if (peer !== this.peer) return;
    this.peer = undefined;
    this.stopLease();
    this.forgetUnanswered();
    if (this.welcomeWaiter !== undefined)
      return this.failWaiter(new LinkError(reason, detail ?? 'link down'));
    if (this.state === 'up') this.reconnect();
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
    this.emit('drain');
  }

  /** Drops the current link (a protocol violation) and fails over. */
  private dropLink(err: Error): void {
    this.stats.protocolErrors++;
    this.report(err);
    const peer = this.peer;
    if (peer !== undefined) this.transport?.disconnect(peer, err.message); // onLinkDown reconnects
  }

  private async shutdown(next: 'idle' | 'closed' | 'evicted'): Promise<void> {
    this.state = next;
    this.stopLease();
    this.forgetUnanswered();
    this.failWaiter(new Error(`client ${next}`));
    this.keyring?.clear();
    this.keys = undefined;
    this.sealer = undefined;
    this.opener = undefined;
    this.peer = undefined;
    const t = this.transport;
    this.transport = undefined;
    const link = this.link;
    this.link = undefined;
    this.seeded = false;
    await Promise.all([t?.close(), link?.close()]);
    if (next === 'idle') this.state = 'idle';
  }

  // ── frames ───────────────────────────────────────────────────────────────────────────────

  private send<K extends LeafFrameType>(type: K, body: LeafFrameBody<K>): boolean {
    const peer = this.peer;
    if (peer === undefined || this.transport === undefined) return false;
    return this.transport.send(peer, encodeLeafFrame(type, body));
  }

  private onFrame(from: string, bytes: Uint8Array): void {
    if (from !== this.peer) return;
    let frame: LeafFrame;
    try {
      frame = decodeLeafFrame(bytes);
    } catch (e) {
      if (!(e instanceof DecodeError)) throw e;
      return this.dropLink(new LeafProtocolError('bad-frame', `from ${from}: ${e.message}`));
    }
    try {
      this.handle(frame);
    } catch (e) {
      if (e instanceof DecodeError) return this.dropLink(new LeafProtocolError('bad-frame', e.message));
      if (e instanceof LeafProtocolError) return this.dropLink(e);
      throw e;
    }
  }

  private handle(frame: LeafFrame): void {
    switch (frame.type) {
      case 'welcome':
        return this.onWelcome(frame.body);
      case 'rekeyPush':
        if (this.keys !== undefined && this.onPush(frame.body, true) === 'applied') this.stats.tlsRekeys++;
        return;
      case 'catchUpReply':
        return this.onCatchUp(frame.body);
      case 'dataDeliver':
        if (this.onData(frame.body.envelope)) this.stats.tlsData++;
        return;
      case 'dataPullReply':
        this.pulling = true;
        try {
          this.link?.onDataPull(frame.body);
        } finally {
          this.pulling = false;
        }
        return;
      case 'gossipSeed':
        this.seeded = true;
        this.link?.seed(frame.body);
        return;
      case 'leaseAck':
        this.lastAckAt = Date.now();
        if (frame.body.stream !== undefined) this.link?.noteCoreStream(frame.body.stream);
        return;
      case 'publishAck': {
        const seq = this.unanswered.shift();
        if (seq === undefined) throw new LeafProtocolError('unexpected', 'a publishAck for no publish');
        const result = frame.body.result;
        this.stats.publishes[result]++;
        if (result !== 'accepted') this.emit('refused', { seq, reason: result });
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
        if (this.welcomeWaiter !== undefined) return this.failWaiter(err);
        // A server that can no longer serve us (not primary, overloaded): fail over.
        return this.dropLink(err);
      }
      default:
        throw new LeafProtocolError('unexpected', `a server sent '${frame.type}'`);
    }
  }

  private onWelcome(body: LeafFrameBody<'welcome'>): void {
    const suite = this.suite!;
    const welcome = decodeWelcome(body.welcome);
    if (welcome.epoch !== body.epoch) throw new LeafProtocolError('unexpected', 'welcome epoch mismatch');
    if (body.signers.length === 0) throw new LeafProtocolError('unexpected', 'welcome lists no signers');
    let keys: LeafKeys;
    try {
      keys = LeafKeys.fromWelcome(welcome);
      // Refreshes ordered for this admission and not yet applied stay pending across a welcome.
      if (this.memberId === body.memberId && this.admittedEpoch === body.admittedEpoch)
        keys = keys.carryPendingFrom(this.keys);
    } catch (e) {
      if (e instanceof KeytreeError) throw new LeafProtocolError('unexpected', e.message);
      throw e;
    }
    const sameAdmission = this.memberId === body.memberId && this.admittedEpoch === body.admittedEpoch;
    if (!sameAdmission || this.keyring === undefined) {
      this.keyring = new DataKeyring(suite, {
        now: Date.now,
        previousEpochs: this.opts.previousEpochs,
        retiredGraceMs: this.opts.retiredEpochGraceMs,
      });
      this.sealer = new DataSealer(suite, this.keyring, {
        sender: body.memberId,
        ...(this.opts.signingSeed !== undefined ? { signingSeed: this.opts.signingSeed } : {}),
      });
      this.opener = new DataOpener(suite, this.keyring, {
        ...(this.opts.senderKey !== undefined ? { senderKey: this.opts.senderKey } : {}),
        requireSignature: this.opts.requireSignatures ?? false,
      });
    }
    this.announcedSigners = body.signers;
    this.filterSigners();
    this.offerCrls(body.crls);
    this.memberId = body.memberId;
    this.admittedEpoch = body.admittedEpoch;
    this.leaseMs = body.leaseMs;
    this.catchUpPending = false;
    const link = this.link;
    if (link !== undefined && !link.started) link.start(keys.slot, keys.epoch, keys.arity);
    this.install(keys);
    this.startLease();
    if (link !== undefined) {
      // Announce our UDP endpoint to this server (each server keeps its own leaves' addresses).
      this.seeded = false;
      this.send('gossipHello', { host: link.endpoint.host, port: link.endpoint.port });
    }
    const w = this.welcomeWaiter;
    if (w !== undefined) {
      this.welcomeWaiter = undefined;
      clearTimeout(w.timer);
      w.resolve();
    }
  }

  /**
   * Our server ordered a refresh of our own key (post-compromise recovery): derive it from this
   * TLS session's exporter, as the server did, and hold it until the batch that installs it.
   */
  private onKeyRefresh(body: LeafFrameBody<'leafKeyRefresh'>): void {
    const keys = this.keys;
    if (keys === undefined || body.admittedEpoch !== this.admittedEpoch) return; // another admission
    if (body.counter < 1 || body.counter > MAX_REFRESH_COUNTER)
      throw new LeafProtocolError('unexpected', `own-key refresh counter ${body.counter}`);
    const exporter = this.transport?.exportKeyingMaterial(
      this.peer!,
      LEAF_KEY_EXPORTER_BYTES,
      LEAF_KEY_EXPORTER_LABEL,
    );
    if (exporter === undefined) return; // the link is gone: the next session refreshes again
    const key = refreshedLeafKey(this.suite!, exporter, {
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
    const link = this.link;
    if (link?.started === true) {
      link.installKey(keys.epoch, groupKey);
      // A compaction moved us: our gossip id is our slot; ask for contacts around the new one.
      if (link.self !== keys.slot) {
        link.moveTo(keys.slot, keys.epoch);
        if (this.seeded) this.send('gossipReseed', {});
      }
    }
    const keyId = Buffer.from(
      this.suite!.sha256(concatBytes(KEY_ID_LABEL, groupKey)).subarray(0, 8),
    ).toString('hex');
    groupKey.fill(0);
    if (changed) {
      this.emit('key', { epoch: keys.epoch, keyId });
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
    if (!this.suite!.ed25519Verify(push.signer, signedBytes(header), push.signature))
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
    const suite = this.suite!;
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
        const next = keys.processPart(suite, header, decodePart(bytes));
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
    this.rejoin();
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
      if (this.welcomeWaiter !== undefined) return this.failWaiter(err);
      return this.dropLink(err);
    }
    if (!detail.startsWith('catchUpRequest') || !this.catchUpPending) return;
    this.catchUpPending = false;
    const peer = this.peer;
    setTimeout(() => {
      if (this.peer === peer && this.keys !== undefined && this.keys.epoch < this.newestSeen)
        this.requestCatchUp();
    }, CATCH_UP_RETRY_MS).unref();
  }

  /** Our gossip node lacks items of our server's data stream that its peers did not bring. */
  private pullData(): void {
    const stream = this.link?.coreStream;
    if (stream === undefined || this.keys === undefined || !this.seeded) return;
    this.stats.dataPulls++;
    this.send('dataPull', { origin: stream.origin, fromSeq: stream.next });
  }

  private onCatchUp(body: LeafFrameBody<'catchUpReply'>): void {
    this.catchUpPending = false;
    if (this.keys === undefined) return;
    if (body.rejoin) {
      this.stats.rejoins++;
      return this.rejoin();
    }
    const before = this.keys.epoch;
    for (const push of body.pushes) {
      const outcome = this.onPush(push, false);
      if (outcome === 'applied') this.stats.tlsRekeys++;
      if (outcome === 'rejoin') return;
      if (outcome === 'gap') break;
    }
    if (this.keys === undefined || this.keys.epoch >= this.newestSeen) return;
    // Still behind an epoch a signed push announced: a capped reply or epochs cut meanwhile
    // (ask for the rest), or a server that cannot serve the gap (re-join).
    if (this.keys.epoch > before) this.requestCatchUp();
    else {
      this.stats.rejoins++;
      this.rejoin();
    }
  }

  /** A fresh welcome for our admission on the current link (no waiting: it arrives as a frame). */
  private rejoin(): void {
    const resume =
      this.admittedEpoch !== undefined && this.keys !== undefined
        ? { admittedEpoch: this.admittedEpoch, epoch: this.keys.epoch }
        : undefined;
    this.send('join', { resume, crlNumber: this.heldCrlNumber() });
  }

  /** For an envelope that decoded (its epoch was unknown): sealed before our admission? */
  private sealedBeforeAdmission(envelope: Uint8Array): boolean {
    return this.admittedEpoch !== undefined && decodeDataEnvelope(envelope).header.epoch < this.admittedEpoch;
  }

  /** Opens and emits one envelope; true if it was delivered. `copies`: may be a copy of one delivered. */
  private onData(envelope: Uint8Array, copies = false): boolean {
    if (this.opener === undefined) return false;
    try {
      const m = this.opener.open(envelope);
      this.emit('message', { sender: m.sender, seq: m.seq, epoch: m.epoch, data: m.data });
      return true;
    } catch (e) {
      if (!(e instanceof DataEnvelopeError)) throw e;
      // Sealed under an epoch before our admission (a publisher not yet at our first epoch):
      // unreadable by design (backward secrecy), not a failure.
      if (e.reason === 'unknown-epoch' && this.sealedBeforeAdmission(envelope))
        this.stats.dataBeforeAdmission++;
      else if (e.reason === 'replay' && copies) this.stats.dataDuplicates++;
      else this.stats.decryptFailures[e.reason]++;
      return false;
    }
  }

  // ── gossip items ─────────────────────────────────────────────────────────────────────────

  /** Before the node stores or relays an item: the shipped admission (gossip-items.ts `admitGossipItem`). */
  private admitItem(item: Item): AdmitVerdict {
    const verdict = admitGossipItem(item, {
      suite: this.suite!,
      heldEpoch: () => this.keys?.epoch,
      isSigner: (key) => this.isSigner(key),
      verify: (key, message, sig) => this.suite!.ed25519Verify(key, message, sig),
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

  private deliverItem(item: Item): void {
    if (this.keys === undefined) return;
    if (!isRekeyId(item.id)) {
      const entry = openStreamItem(item)!; // checked in admitItem
      entry.envelopes.forEach((envelope, i) => {
        // Our own publications come back through the core relay: not news to us.
        if (entry.headers[i]!.sender === this.memberId) return;
        if (this.onData(envelope, true)) {
          if (this.pulling) this.stats.pulledData++;
          else this.stats.gossipData++;
        }
      });
      return;
    }
    const push = openRekeyItem(item);
    const header = decodeHeader(push.header); // verified in admitItem
    if (this.applyPush(push, header, true, true) === 'applied') this.stats.gossipRekeys++;
  }

  private onEvicted(reason: EvictionReason): void {
    if (reason === 'key-exposed' && this.state === 'up' && this.welcomeWaiter === undefined) {
      // Our own key was not refreshed in time after a core server's revocation: that admission
      // ended, we did not. The server closes the link; the reconnect joins afresh (no resume),
      // so the new admission's keys are fresh.
      this.admittedEpoch = undefined;
      this.stats.rejoins++;
      return;
    }
    const waiter = this.welcomeWaiter;
    this.welcomeWaiter = undefined;
    if (waiter !== undefined) {
      clearTimeout(waiter.timer);
      waiter.reject(new LeafEvictedError(reason));
    }
    void this.shutdown('evicted');
    this.emit('evicted', { reason });
  }

  // ── lease ────────────────────────────────────────────────────────────────────────────────

  private startLease(): void {
    this.stopLease();
    if (this.leaseMs <= 0) return;
    const every = Math.max(10, Math.floor(this.leaseMs / 3));
    this.lastAckAt = Date.now();
    this.leaseTimer = setInterval(() => {
      // No ack for two thirds of the lease: the link is dead or the server is stuck — fail over
      // before the lease lapses.
      if (Date.now() - this.lastAckAt > (2 * this.leaseMs) / 3 + every) {
        return this.dropLink(new LeafProtocolError('unexpected', 'lease renewals not acknowledged'));
      }
      // A CRL goes stale with time alone: with requireFreshCrl the link ends when it does.
      if (this.opts.requireFreshCrl === true) this.enforceRevocation();
      this.send('leaseRenew', { seq: this.leaseSeq++ });
    }, every);
    this.leaseTimer.unref();
  }

  private stopLease(): void {
    if (this.leaseTimer !== undefined) clearInterval(this.leaseTimer);
    this.leaseTimer = undefined;
  }

  private report(err: Error): void {
    if (this.listenerCount('error') > 0) this.emit('error', err);
  }
}

/** The server evicted us while we were joining. */
export class LeafEvictedError extends Error {
  override readonly name = 'LeafEvictedError';
  constructor(readonly reason: EvictionReason) {
    super(`evicted: ${reason}`);
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
