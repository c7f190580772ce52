/**
 * Mutual TLS 1.3 between Keyglass members. `MutualTls` builds node:tls options from a
 * member's credentials and a `PeerVerifier`, and admits peers after the handshake.
 *
 * Why node's `rejectUnauthorized` is off: with it on, node destroys a refused client
 * silently on the server side, so no reason could be counted, and it cannot apply a clock
 * skew. Instead every socket passes `admit()`, which runs our full verification (chain to
 * the anchors, validity with skew, CRL, usage, group, role, policy) and then also requires
 * node's own chain verdict (except its clock checks, which ours replace), mapping node's
 * OpenSSL codes into the same vocabulary. `createServer` and `connect` below are fail-closed
 * wrappers: application code only ever sees admitted sockets.
 */
import * as tls from 'node:tls';
import { X509Certificate } from 'node:crypto';
import type { Credentials } from './credentials.js';
import { formatIdentity, type Role } from './identity.js';
import { PeerRefusedError, reasonFromNodeTlsCode, type RefusalReason } from './refusal.js';
import type { AcceptedPeer, PeerExpectation, PeerVerdict, PeerVerifier } from './verify.js';
import { toPem } from './pem.js';

/** node codes about time that our skew-tolerant check replaces. */
const NODE_TIME_CODES = new Set(['CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID']);
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;

/** The peer's chain as DER, leaf first, from node's detailed peer certificate. */
export function chainFromPeerCertificate(
  cert: tls.PeerCertificate | tls.DetailedPeerCertificate | undefined,
): Uint8Array[] {
  const chain: Uint8Array[] = [];
  let cur = cert as tls.DetailedPeerCertificate | undefined;
  // A certificate object without `raw` means the peer sent none.
  while (cur?.raw && chain.length < 8) {
    chain.push(new Uint8Array(cur.raw));
    const next: tls.DetailedPeerCertificate | undefined = cur.issuerCertificate;
    if (!next || next === cur || next.raw?.equals(cur.raw)) break; // node links a root to itself
    cur = next;
  }
  return chain;
}

export interface RefusalEvent {
  readonly reason: RefusalReason;
  readonly detail: string;
  readonly remote: string;
}

export interface ServerHandlers {
  /** An admitted peer: the only way application code receives a socket. */
  onPeer(socket: tls.TLSSocket, peer: AcceptedPeer): void;
  /** A peer refused by certificate checks (count it: keyglass_refusals_total{reason}). */
  onRefused?(event: RefusalEvent): void;
  /** A handshake that failed before any certificate check (protocol error, timeout, reset). */
  onHandshakeError?(error: Error): void;
}

export interface ConnectOptions {
  readonly host: string;
  readonly port: number;
  /** Roles the server must hold (a leaf client expects ['core']). */
  readonly expectRoles: readonly Role[];
  readonly timeoutMs?: number;
}

export class MutualTls {
  private readonly anchorsPem: string;

  constructor(
    readonly credentials: Credentials,
    readonly verifier: PeerVerifier,
  ) {
    this.anchorsPem = verifier.anchors.map((a) => toPem('CERTIFICATE', a.der)).join('');
  }

  private baseOptions(): tls.SecureContextOptions {
    return {
      key: this.credentials.keyPem,
      cert: this.credentials.certChainPem,
      ca: this.anchorsPem,
      minVersion: 'TLSv1.3',
      maxVersion: 'TLSv1.3',
    };
  }

  /** Options for `tls.createServer`: client certificates are required; `admit` decides. */
  serverOptions(): tls.TlsOptions {
    return {
      ...this.baseOptions(),
      requestCert: true,
      rejectUnauthorized: false,
      handshakeTimeout: DEFAULT_HANDSHAKE_TIMEOUT_MS,
    };
  }

  /** Options for `tls.connect`; identity is checked by `admit` from the SAN URI, not the host name. */
  clientOptions(): tls.ConnectionOptions {
    return { ...this.baseOptions(), rejectUnauthorized: false, checkServerIdentity: () => undefined };
  }

  /** Verifies a peer certificate object (for transports that hand over `getPeerCertificate(true)`). */
  identify(
    cert: tls.PeerCertificate | tls.DetailedPeerCertificate | undefined,
    expect: PeerExpectation,
  ): PeerVerdict {
    return this.verifier.verify(chainFromPeerCertificate(cert), expect);
  }

  /** Secure-context options alone (key, chain, anchors, TLS 1.3) for transports that build their own sockets. */
  contextOptions(): tls.SecureContextOptions {
    return this.baseOptions();
  }

  /**
   * An `identify` callback for transports that hand over the peer's leaf certificate
   * (net/tls TlsTransport): the identity string 'group/role/name', or a PeerRefusedError
   * carrying the typed reason. Intermediates must then be configured on the verifier.
   * `onAccepted` sees the accepted peer (its certificate and issuer, e.g. for a later
   * revocation check of a live link).
   */
  transportIdentify(
    expect: PeerExpectation,
    onRefused?: (reason: RefusalReason, detail: string) => void,
    onAccepted?: (peer: AcceptedPeer) => void,
  ): (cert: { readonly raw: Uint8Array }) => string | Error {
    return (cert) => {
      // node's X509Certificate of a TLS socket is reused as is: no second parse of its bytes.
      const v = this.verifier.verify(
        [cert instanceof X509Certificate ? cert : new Uint8Array(cert.raw)],
        expect,
      );
      if (v.ok) {
        onAccepted?.(v);
        return formatIdentity(v.identity);
      }
      onRefused?.(v.reason, v.detail);
      return new PeerRefusedError(v.reason, v.detail);
    };
  }

  /** Verifies the peer of a completed handshake; a refused socket is destroyed. */
  admit(socket: tls.TLSSocket, expect: PeerExpectation): PeerVerdict {
    let verdict = this.identify(socket.getPeerCertificate(true), expect);
    if (verdict.ok && !socket.authorized) {
      const code = String(socket.authorizationError ?? 'unknown');
      if (!NODE_TIME_CODES.has(code))
        verdict = { ok: false, reason: reasonFromNodeTlsCode(code), detail: `TLS verification: ${code}` };
    }
    if (!verdict.ok) socket.destroy();
    return verdict;
  }

  /** A TLS server that hands `onPeer` only peers admitted with one of `expectRoles`. */
  createServer(expectRoles: readonly Role[], handlers: ServerHandlers): tls.Server {
    const server = tls.createServer(this.serverOptions());
    const expect: PeerExpectation = { roles: expectRoles, peerSide: 'client' };
    server.on('secureConnection', (socket: tls.TLSSocket) => {
      const remote = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
      const verdict = this.admit(socket, expect);
      if (verdict.ok) handlers.onPeer(socket, verdict);
      else handlers.onRefused?.({ reason: verdict.reason, detail: verdict.detail, remote });
    });
    server.on('tlsClientError', (err: Error) => handlers.onHandshakeError?.(err));
    return server;
  }

  /** Connects and admits the server; rejects with PeerRefusedError when its certificate is refused. */
  connect(opts: ConnectOptions): Promise<{ socket: tls.TLSSocket; peer: AcceptedPeer }> {
    const expect: PeerExpectation = { roles: opts.expectRoles, peerSide: 'server' };
    const timeoutMs = opts.timeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS;
    return new Promise((resolve, reject) => {
      const socket = tls.connect({ ...this.clientOptions(), host: opts.host, port: opts.port });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`TLS handshake with ${opts.host}:${opts.port} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      const onError = (err: NodeJS.ErrnoException): void => {
        clearTimeout(timer);
        reject(
          err.code && reasonFromNodeTlsCode(err.code) !== 'untrusted'
            ? new PeerRefusedError(reasonFromNodeTlsCode(err.code), err.message)
            : err,
        );
      };
      socket.once('error', onError);
      socket.once('secureConnect', () => {
        clearTimeout(timer);
        socket.off('error', onError);
        const verdict = this.admit(socket, expect);
        if (verdict.ok) resolve({ socket, peer: verdict });
        else reject(new PeerRefusedError(verdict.reason, verdict.detail));
      });
    });
  }
}
