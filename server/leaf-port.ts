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
 */
import { createHash, type X509Certificate } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import { normalizeSerial, type AdmissionPolicy, type MutualTls, type RefusalReason } from '../auth/index.js';
import { MAX_LEAF_FRAME_BYTES } from '../gossip-edge/index.js';
import type { TlsTransportOptions } from '../net/index.js';
// A type only: this module runs in the leaf port's TLS thread, which must not load the leaf plane.
import type { LeafCert } from '../leaf-plane/index.js';

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
