/**
 * The leaf port's TLS: one set of link options and one way of judging a leaf certificate, whether
 * the TLS runs on the server's main thread (TlsTransport) or on a worker thread
 * (ThreadTransport + leaf-port-thread.ts, the default: handshakes and record encryption for
 * thousands of leaves then stay off the thread that runs the core group's protocol).
 *
 * With the thread, the leaf certificate is judged there against the thread's copy of the CRL;
 * the main thread forwards every CRL it loads and numbers the loads that revoked something. A
 * link judged under an older number than the main thread's is closed on arrival (the leaf
 * reconnects and is judged again), so a revocation cannot slip through the hand-over.
 *
 * LeafPort is the main thread's host of the port: it picks the thread, hands the leaf plane
 * certificates, frames and link downs, keeps the TLS exporters the thread hands over, and passes
 * CRLs and reloaded credentials to the thread.
 *
 * The TLS thread loads this module too (leaf-port-thread.ts): its value imports must stay modules
 * that thread loads anyway (auth, net, keytree, the leaf frame bound); the leaf plane and the
 * core stack are type imports only (test/server/leaf-port-imports.test.ts checks it). Loading
 * them made every TLS worker load the core stack and slowed server start.
 */
import { createHash, type X509Certificate } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import {
  normalizeSerial,
  type AdmissionPolicy,
  type CertInfo,
  type Credentials,
  type MutualTls,
  type RefusalReason,
} from '../auth/index.js';
import { MAX_LEAF_FRAME_BYTES } from '../gossip-edge/index.js';
import { LEAF_KEY_EXPORTER_BYTES, LEAF_KEY_EXPORTER_LABEL } from '../keytree/index.js';
import { ThreadTransport, TlsTransport, type TlsTransportOptions } from '../net/index.js';
import type { LeafCert, ServerPlane } from '../leaf-plane/index.js';
import type { ServerConfig } from './config.js';
import type { Logger } from './log.js';
import type { PortRefusals } from './refusals.js';

export type { LeafCert };

/**
 * Leaf links one server holds. It also bounds the renewals waiting for the next interval (one
 * name per linked leaf), so a renewal that was acknowledged is never dropped: a cap of 512 did
 * drop them while a server stood outside the primary component, and 380 leaves whose leases the
 * server had acknowledged expired in one 10^4-leaf run. (key-server.ts checks that one renewal
 * command carries them all.)
 */
export const MAX_LEAF_LINKS = 4096;

/** What the TLS thread tells the main thread about a leaf link that came up. */
export interface LeafLinkInfo {
  readonly cert: LeafCert;
  /** The number of the CRL load the certificate was judged against (see the module comment). */
  readonly crlVersion: number;
  /** The link's TLS exporter for own-key refreshes (keytree/leaf-key-refresh.ts). */
  readonly exporter?: Uint8Array;
}

/** What the TLS thread reports besides links. */
export type LeafPortEvent =
  | { readonly kind: 'refused'; readonly reason: RefusalReason; readonly detail: string }
  | { readonly kind: 'controlFailed'; readonly error: string };

/** A CRL the main thread loaded, for the TLS thread. */
export interface LeafPortCrl {
  readonly pem: string;
  readonly version: number;
}

/** New credentials and trust anchors for the TLS thread (a reload): links made from now on use them. */
export interface LeafPortTls {
  readonly kind: 'tls';
  readonly certChainPem: string;
  readonly keyPem: string;
  readonly anchorsDer: readonly Uint8Array[];
}

/** What the main thread hands the TLS thread after it started. */
export type LeafPortControl = LeafPortCrl | LeafPortTls;

/** Everything the TLS thread needs to build its transport (structured-cloneable). */
export interface LeafPortThreadData {
  readonly local: string;
  readonly group: string;
  readonly certChainPem: string;
  readonly keyPem: string;
  readonly anchorsDer: readonly Uint8Array[];
  readonly policy: AdmissionPolicy | undefined;
  readonly crl: LeafPortCrl | undefined;
  readonly leaseMs: number;
  readonly handshakeTimeoutMs: number;
}

/**
 * The CRL record after a load: every load goes to the thread, and only a load that revoked
 * something gets a new number (links judged before it must be judged again; links judged before
 * a load that changed nothing, such as a new nextUpdate, need not).
 */
export function nextLeafPortCrl(
  prev: LeafPortCrl | undefined,
  pem: string,
  revokedSomething: boolean,
): LeafPortCrl {
  return { pem, version: (prev?.version ?? 0) + (revokedSomething ? 1 : 0) };
}

/**
 * The main thread's check of a leaf link its TLS thread brought up: why to close it, or undefined
 * to take it. Closed: no verified certificate reached us, or it was judged against a CRL older than
 * the newest one that revoked something here (a revocation must not slip through the hand-over).
 */
export function leafLinkRefusal(info: LeafLinkInfo | undefined, crlVersion: number): string | undefined {
  if (info === undefined) return 'no verified certificate';
  if (info.crlVersion < crlVersion) return 'judged against an older CRL';
  return undefined;
}

export function leafCertOf(id: string, cert: X509Certificate): LeafCert {
  return {
    name: id.slice(id.lastIndexOf('/') + 1),
    serial: normalizeSerial(cert.serialNumber),
    fingerprint: new Uint8Array(createHash('sha256').update(cert.raw).digest()),
  };
}

/** The leaf port's link settings, on either thread. */
export function leafLinkOptions(
  leaseMs: number,
  handshakeTimeoutMs: number,
): Pick<TlsTransportOptions, 'maxMessageBytes' | 'idleTimeoutMs' | 'maxLinks' | 'handshakeTimeoutMs'> {
  return {
    maxMessageBytes: MAX_LEAF_FRAME_BYTES,
    idleTimeoutMs: Math.max(3 * leaseMs, 30_000),
    maxLinks: MAX_LEAF_LINKS,
    handshakeTimeoutMs,
  };
}

/**
 * The leaf port's identify: a certificate of role leaf, client side, this group, not revoked,
 * admitted by policy; `accepted` sees each accepted one.
 */
export function leafIdentify(
  mtls: MutualTls,
  onRefused: (reason: RefusalReason, detail: string) => void,
  accepted: (id: string, cert: LeafCert) => void,
): (cert: X509Certificate) => string | Error {
  const identify = mtls.transportIdentify({ roles: ['leaf'], peerSide: 'client' }, onRefused);
  return (cert) => {
    const id = identify(cert);
    if (typeof id === 'string') accepted(id, leafCertOf(id, cert));
    return id;
  };
}

export function spawnLeafPortThread(data: LeafPortThreadData): Worker {
  return new Worker(new URL('./leaf-port-thread.js', import.meta.url), { workerData: data });
}

/** What the leaf port hands the leaf plane. */
export type LeafPortPlane = Pick<ServerPlane, 'leafCertificate' | 'leafMessage' | 'leafDown'>;

/** The credentials and trust anchors in force (a reload replaces them). */
export interface LeafPortTrust {
  readonly creds: Credentials;
  readonly anchors: readonly CertInfo[];
}

export interface LeafPortOptions {
  /** This server's group and name, where the TLS runs, the admission policy, the lease. */
  readonly cfg: Pick<
    ServerConfig,
    'group' | 'name' | 'leafTlsThread' | 'admissionPolicy' | 'leaseMs' | 'handshakeTimeoutMs'
  >;
  /** The TLS of the credentials and anchors in force, and those themselves (a thread starts from them). */
  readonly mtls: MutualTls;
  readonly trust: () => LeafPortTrust;
  readonly refusals: PortRefusals;
  readonly log: Logger;
  /** Runs one leaf frame's handling; what a failure means is the host's to judge. */
  guard(what: string, fn: () => void): void;
}

export class LeafPort {
  readonly transport: TlsTransport | ThreadTransport;
  /** This server's link identity: `group/core/name` (the port presents its core certificate). */
  private readonly local: string;
  /** The CRL text last loaded, and the number of the last load that revoked something. */
  private crl: LeafPortCrl | undefined;
  /** TLS exporters of leaf links whose TLS runs on the worker thread (handed over at link up). */
  private readonly exporters = new Map<string, Uint8Array>();
  /** The main thread's identify check of the credentials and anchors in force (replaced by setTls). */
  private identify: (cert: X509Certificate) => string | Error;
  private plane: LeafPortPlane | undefined;

  constructor(private readonly opts: LeafPortOptions) {
    this.identify = this.identifyOf(opts.mtls);
    const handshakeFailed = (remote: string, reason: string, detail: string): void =>
      opts.refusals.handshakeFailed('leaf', remote, reason, detail);
    const { cfg } = opts;
    this.local = `${cfg.group}/core/${cfg.name}`;
    this.transport = cfg.leafTlsThread
      ? this.threadTransport()
      : new TlsTransport({
          local: this.local,
          tls: opts.mtls.contextOptions(),
          identify: (cert) => this.identify(cert),
          ...leafLinkOptions(cfg.leaseMs, cfg.handshakeTimeoutMs),
          onHandshakeFailed: handshakeFailed,
        });
  }

  get onThread(): boolean {
    return this.transport instanceof ThreadTransport;
  }

  /** CPU seconds of the TLS thread, when there is one and the OS can say. */
  get threadCpuSeconds(): number | undefined {
    return this.transport instanceof ThreadTransport ? this.transport.threadCpuSeconds : undefined;
  }

  /** Hands the port's certificates, frames and link downs to `plane`; before listen. */
  serve(plane: LeafPortPlane): void {
    this.plane = plane;
    this.transport.setHandler({
      onMessage: (from, data) =>
        this.opts.guard('leaf message', () => plane.leafMessage(from, data, Date.now())),
      onPeerDown: (peer, reason, detail) => {
        // A leaf that broke the framing (oversize or malformed frame) is worth an operator's look.
        if (reason === 'bad-frame') this.opts.log.warn('leaf link closed', { peer, reason, detail });
        this.exporters.get(peer)?.fill(0);
        this.exporters.delete(peer);
        plane.leafDown(peer, Date.now());
      },
    });
  }

  listen(port: number, host: string): Promise<{ host: string; port: number }> {
    if (this.plane === undefined) throw new Error('leaf port: serve(plane) before listen');
    return this.transport.listen(port, host);
  }

  /** The TLS exporter of the up link to `peer` (own-key refreshes): a copy the caller may wipe. */
  exporter(peer: string): Uint8Array | undefined {
    return this.transport instanceof ThreadTransport
      ? this.exporters.get(peer)?.slice()
      : this.transport.exportKeyingMaterial(peer, LEAF_KEY_EXPORTER_BYTES, LEAF_KEY_EXPORTER_LABEL);
  }

  /** A CRL the main thread loaded: numbered (nextLeafPortCrl) and handed to the TLS thread. */
  crlLoaded(pem: string, revokedSomething: boolean): void {
    this.crl = nextLeafPortCrl(this.crl, pem, revokedSomething);
    if (this.transport instanceof ThreadTransport) this.transport.control(this.crl);
  }

  /** New credentials or anchors (a reload): links made from now on use them, up links keep theirs. */
  setTls(mtls: MutualTls): void {
    this.identify = this.identifyOf(mtls);
    if (this.transport instanceof ThreadTransport) {
      const { creds, anchors } = this.opts.trust();
      this.transport.control({
        kind: 'tls',
        certChainPem: creds.certChainPem,
        keyPem: creds.keyPem,
        anchorsDer: anchors.map((a) => a.der),
      } satisfies LeafPortTls);
    } else this.transport.setTls(mtls.contextOptions());
  }

  close(): Promise<void> {
    return this.transport.close();
  }

  private identifyOf(mtls: MutualTls): (cert: X509Certificate) => string | Error {
    return leafIdentify(
      mtls,
      (reason, detail) => this.opts.refusals.refused('leaf', reason, detail),
      (id, cert) => this.plane?.leafCertificate(id, cert),
    );
  }

  /** The leaf port with its TLS on a worker thread. */
  private threadTransport(): ThreadTransport {
    const o = this.opts;
    const { cfg } = o;
    return new ThreadTransport({
      local: this.local,
      maxMessageBytes: leafLinkOptions(cfg.leaseMs, cfg.handshakeTimeoutMs).maxMessageBytes!,
      // Called at listen and again whenever a dead thread is replaced: it starts from the CRL,
      // credentials and anchors loaded last.
      spawn: () => {
        const { creds, anchors } = o.trust();
        return spawnLeafPortThread({
          local: this.local,
          group: cfg.group,
          certChainPem: creds.certChainPem,
          keyPem: creds.keyPem,
          anchorsDer: anchors.map((a) => a.der),
          policy: cfg.admissionPolicy,
          crl: this.crl,
          leaseMs: cfg.leaseMs,
          handshakeTimeoutMs: cfg.handshakeTimeoutMs,
        });
      },
      onLinkUp: (peer, raw) => {
        const info = raw as LeafLinkInfo | undefined;
        const refusal = leafLinkRefusal(info, this.crl?.version ?? 0);
        if (refusal === undefined) {
          this.plane?.leafCertificate(peer, info!.cert);
          if (info!.exporter?.length === LEAF_KEY_EXPORTER_BYTES) this.exporters.set(peer, info!.exporter);
        }
        return refusal;
      },
      onEvent: (raw) => {
        const e = raw as LeafPortEvent;
        if (e.kind === 'refused') o.refusals.refused('leaf', e.reason, e.detail);
        else o.log.error('leaf TLS thread: CRL not installed', { error: e.error });
      },
      onHandshakeFailed: (remote, reason, detail) =>
        o.refusals.handshakeFailed('leaf', remote, reason, detail),
      onThreadExit: (detail) => o.log.error('leaf TLS thread exited; restarting it', { detail }),
    });
  }
}
