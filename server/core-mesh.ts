/**
 * The core mesh of one key server: a TLS 1.3 mutual-auth link to every other configured core
 * server (TlsTransport on the core port), dialed and redialed while it is down, carrying the
 * core-group stack's frames. One process per server name (net/tls.ts instance): a second process
 * under this server's certificate is refused by the peers while this one is live, and vice versa.
 *
 * It keeps what the links showed of each peer's certificate: the serial (a revocation finds the
 * peer to cut off by it, and the leaf plane asks it of core servers it revokes) and the Ed25519
 * key. The stack agrees the core key over pairwise keys whose offers are signed with each
 * server's certificate key (Ed25519, required) and verifies them against the certificate its
 * peers saw on the authenticated TLS link: this key (verifyKeyOf).
 */
import { randomBytes, type X509Certificate } from 'node:crypto';
import { TlsTransport, LinkError, DUPLICATE_IDENTITY, INSTANCE_BYTES } from '../net/index.js';
import { normalizeSerial, type MutualTls } from '../auth/index.js';
import { MAX_STATE_BYTES } from '../core-group/index.js';
import { MAX_CORE_SERVERS, type HostPort, type ServerConfig } from './config.js';
import { certificateVerifyKey } from './boot.js';
import type { Logger } from './log.js';
import type { PortRefusals } from './refusals.js';

/** How often a server dials configured peers it has no link to. */
export const DIAL_INTERVAL_MS = 300;
/** The largest core frame: a state transfer plus room for its envelope. */
const MAX_CORE_FRAME_BYTES = MAX_STATE_BYTES + 64 * 1024;
/**
 * Peer serials kept: every core name the CA issued that ever linked here, a few certificates
 * each. Entries outlive their links (see `identified`), so this bounds them.
 */
const MAX_PEER_SERIALS = 4 * MAX_CORE_SERVERS;

export interface CoreMeshOptions {
  /** This server's group and name, the other core servers with the address each listens on. */
  readonly cfg: Pick<ServerConfig, 'group' | 'name' | 'peers' | 'handshakeTimeoutMs'>;
  /** The TLS of the core port: this server's core credentials and the trust anchors in force. */
  readonly mtls: MutualTls;
  /** This server's own core identity verify key (Ed25519 public key of the identity seed). */
  readonly selfVerifyKey: Uint8Array;
  readonly refusals: PortRefusals;
  readonly log: Logger;
  /** A stack frame from a peer. */
  onMessage(data: Uint8Array): void;
}

export class CoreMesh {
  private readonly transport: TlsTransport;
  private readonly group: string;
  private readonly peers: ReadonlyMap<string, HostPort>;
  private readonly refusals: PortRefusals;
  private readonly log: Logger;
  /** The identity check of the core credentials and anchors in force (replaced by setTls). */
  private identify: (cert: X509Certificate) => string | Error;
  /**
   * The certificate serial each core peer last linked with, by link identity. Kept after its link
   * goes down: a link replaced by a newer one reports its down after the newer one's identify,
   * and a revocation must still find the server (and start its full refresh) while it is
   * unlinked. Bounded: MAX_PEER_SERIALS, oldest identify first out.
   */
  private readonly serials = new Map<string, string>();
  /** Ed25519 certificate keys of core servers by name, as seen on authenticated links (verifyKeyOf). */
  private readonly verifyKeys = new Map<string, Uint8Array>();
  private readonly dialing = new Set<string>();
  private dialTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(opts: CoreMeshOptions) {
    this.group = opts.cfg.group;
    this.peers = opts.cfg.peers;
    this.refusals = opts.refusals;
    this.log = opts.log;
    this.identify = this.identifyOf(opts.mtls);
    this.verifyKeys.set(opts.cfg.name, opts.selfVerifyKey);
    this.transport = new TlsTransport({
      local: this.idOf(opts.cfg.name),
      tls: opts.mtls.contextOptions(),
      instance: new Uint8Array(randomBytes(INSTANCE_BYTES)),
      identify: (cert) => this.identified(cert),
      maxMessageBytes: MAX_CORE_FRAME_BYTES,
      maxQueuedBytes: 4 * MAX_CORE_FRAME_BYTES,
      idleTimeoutMs: 30_000,
      handshakeTimeoutMs: opts.cfg.handshakeTimeoutMs,
      onHandshakeFailed: (remote, reason, detail) =>
        this.refusals.handshakeFailed('core', remote, reason, detail),
    });
    this.transport.setHandler({
      onMessage: (_from, data) => opts.onMessage(data),
      onPeerUp: (peer) => this.log.info('core link up', { peer }),
      onPeerDown: (peer, reason, detail) => {
        if (detail?.includes(DUPLICATE_IDENTITY)) this.refusals.duplicateIdentity(peer, detail);
        else this.log.info('core link down', { peer, reason, detail });
      },
    });
  }

  /** New core credentials or anchors (a reload): links made from now on use them, up links keep theirs. */
  setTls(mtls: MutualTls): void {
    this.identify = this.identifyOf(mtls);
    this.transport.setTls(mtls.contextOptions());
  }

  listen(port: number, host: string): Promise<{ host: string; port: number }> {
    return this.transport.listen(port, host);
  }

  /** Dials every configured peer without a link, now and every DIAL_INTERVAL_MS until close. */
  startDialing(): void {
    if (this.closed || this.dialTimer !== undefined) return;
    this.dialPeers();
    this.dialTimer = setInterval(() => {
      try {
        this.dialPeers();
      } catch (e) {
        this.log.error('dialing peers failed', { error: (e as Error).message });
      }
    }, DIAL_INTERVAL_MS);
  }

  /** Sends a stack frame to the core server `name`; dropped when there is no link (the stack resends). */
  send(name: string, bytes: Uint8Array): void {
    void this.transport.send(this.idOf(name), bytes);
  }

  /** The link identities of the up links, sorted. */
  links(): string[] {
    return this.transport.peers().sort();
  }

  /** The Ed25519 certificate key core server `name` last linked with (the stack's verifyKeyOf). */
  verifyKeyOf(name: string): Uint8Array | undefined {
    return this.verifyKeys.get(name);
  }

  /** The certificate serial core server `name` last linked with, if it ever did. */
  serialOf(name: string): string | undefined {
    return this.serials.get(this.idOf(name));
  }

  /**
   * Newly revoked serials: every peer that last linked with one of them loses its link and its
   * verify key (no new pairwise key with a revoked server). Returns them, for the leaf plane.
   */
  revoke(serials: ReadonlySet<string>): { name: string; serial: string }[] {
    const revoked: { name: string; serial: string }[] = [];
    for (const [peer, serial] of this.serials)
      if (serials.has(serial)) {
        this.verifyKeys.delete(nameOfCoreId(peer));
        revoked.push({ name: nameOfCoreId(peer), serial });
        this.transport.disconnect(peer, 'certificate revoked');
      }
    return revoked;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.dialTimer);
    await this.transport.close();
  }

  private identifyOf(mtls: MutualTls): (cert: X509Certificate) => string | Error {
    return mtls.transportIdentify({ roles: ['core'], peerSide: 'either' }, (reason, detail) =>
      this.refusals.refused('core', reason, detail),
    );
  }

  /** The transport's identify: the check in force, and what an accepted certificate shows. */
  private identified(cert: X509Certificate): string | Error {
    const id = this.identify(cert);
    if (typeof id !== 'string') return id;
    this.serials.delete(id); // re-inserted: the newest identify is the last to go
    this.serials.set(id, normalizeSerial(cert.serialNumber));
    if (this.serials.size > MAX_PEER_SERIALS) this.serials.delete(this.serials.keys().next().value!);
    // The peer's newest certificate wins: a renewed one may carry a new key.
    const verifyKey = certificateVerifyKey(cert);
    if (verifyKey !== undefined) this.verifyKeys.set(nameOfCoreId(id), verifyKey);
    else this.verifyKeys.delete(nameOfCoreId(id));
    return id;
  }

  private dialPeers(): void {
    if (this.closed) return;
    const up = new Set(this.transport.peers());
    for (const [name, addr] of this.peers) {
      const id = this.idOf(name);
      if (up.has(id) || this.dialing.has(id)) continue;
      this.dialing.add(id);
      this.transport
        .connect(addr.host, addr.port, id)
        .catch((e: unknown) => {
          if (e instanceof LinkError && e.detail.includes(DUPLICATE_IDENTITY))
            this.refusals.duplicateIdentity(id, e.detail);
          else if (!(e instanceof LinkError && e.reason === 'error'))
            this.log.debug('dial failed', { peer: id, error: (e as Error).message });
        })
        .finally(() => this.dialing.delete(id));
    }
  }

  /** The link identity of core server `name`: `group/core/name`. */
  private idOf(name: string): string {
    return `${this.group}/core/${name}`;
  }
}

/** The certificate name in a core link identity `group/core/name`. */
function nameOfCoreId(id: string): string {
  return id.slice(id.lastIndexOf('/') + 1);
}
