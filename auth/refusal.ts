/**
 * Why a peer credential was refused. Stable strings: servers count them as metric labels
 * (`keyglass_refusals_total{reason}`), logs print them, tests assert on them.
 */
export const REFUSAL_REASONS = [
  'no-certificate', // the peer presented no certificate
  'malformed', // a certificate, key or CRL that does not parse
  'expired', // notAfter (plus skew) is in the past, for the peer or a CA in its chain
  'not-yet-valid', // notBefore (minus skew) is in the future
  'untrusted', // no chain to a trust anchor (signed by another CA)
  'self-signed', // a self-issued certificate that is not an anchor
  'bad-signature', // a chain link whose signature does not verify
  'revoked', // the serial is on the issuer's CRL
  'crl-stale', // the issuer's CRL is past its nextUpdate and stale CRLs are refused
  'no-identity', // no well-formed keyglass:// SAN URI
  'wrong-group', // the SAN group is not the group expected here
  'wrong-role', // the SAN role is not the role expected here
  'bad-key-usage', // keyUsage lacks digitalSignature, or a CA lacks keyCertSign
  'wrong-eku', // extendedKeyUsage lacks serverAuth / clientAuth as needed
  'weak-key', // RSA < 2048 bits or an unsupported curve
  'ca-as-member', // a CA certificate (basicConstraints CA:TRUE) presented as a member
  'policy-denied', // the admission policy refuses this role or name
] as const;

export type RefusalReason = (typeof REFUSAL_REASONS)[number];

/** Thrown (or returned) when a credential is refused; `reason` is the typed vocabulary. */
export class PeerRefusedError extends Error {
  override readonly name = 'PeerRefusedError';
  /** node's tls reads `code` from errors returned by checkServerIdentity. */
  readonly code: string;
  constructor(
    readonly reason: RefusalReason,
    readonly detail: string,
  ) {
    super(`${reason}: ${detail}`);
    this.code = `KEYGLASS_PEER_${reason.toUpperCase().replace(/-/g, '_')}`;
  }
}

/**
 * OpenSSL verification codes as node reports them (socket.authorizationError, or the `code`
 * of a handshake error), mapped to our vocabulary so a refusal node made itself is counted
 * under the same label as one we made.
 */
const NODE_TLS_CODES: Readonly<Record<string, RefusalReason>> = {
  CERT_HAS_EXPIRED: 'expired',
  CERT_NOT_YET_VALID: 'not-yet-valid',
  CRL_HAS_EXPIRED: 'crl-stale',
  CERT_REVOKED: 'revoked',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'self-signed',
  SELF_SIGNED_CERT_IN_CHAIN: 'untrusted',
  UNABLE_TO_GET_ISSUER_CERT: 'untrusted',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'untrusted',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'untrusted',
  CERT_SIGNATURE_FAILURE: 'bad-signature',
  CERT_UNTRUSTED: 'untrusted',
  CERT_REJECTED: 'untrusted',
  INVALID_CA: 'untrusted',
  INVALID_PURPOSE: 'wrong-eku',
  ERROR_IN_CERT_NOT_BEFORE_FIELD: 'malformed',
  ERROR_IN_CERT_NOT_AFTER_FIELD: 'malformed',
  UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY: 'malformed',
  EE_KEY_TOO_SMALL: 'weak-key',
  CA_KEY_TOO_SMALL: 'weak-key',
  ERR_SSL_EE_KEY_TOO_SMALL: 'weak-key',
};

/** Maps a node/OpenSSL TLS error code to a refusal reason; unknown codes are 'untrusted'. */
export function reasonFromNodeTlsCode(code: string | undefined | null): RefusalReason {
  if (!code) return 'untrusted';
  if (code.startsWith('KEYGLASS_PEER_')) {
    const r = code.slice('KEYGLASS_PEER_'.length).toLowerCase().replace(/_/g, '-');
    if ((REFUSAL_REASONS as readonly string[]).includes(r)) return r as RefusalReason;
  }
  return NODE_TLS_CODES[code] ?? 'untrusted';
}
