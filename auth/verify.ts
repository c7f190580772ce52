/**
 * Verification of a peer's certificate chain: path to a trust anchor, signatures, validity
 * window with a bounded clock skew, CA constraints, key strength, key usage and EKU,
 * revocation, the Keyglass identity in the SAN URI, expected group and role, and the
 * admission policy. Synchronous, so it can run inside node's TLS callbacks.
 *
 * The order of checks decides which reason a certificate with several faults is refused
 * for: structure first (parse, CA-as-member, key), then trust (chain, time, revocation),
 * then purpose (usage, identity, group, role, policy).
 *
 * Cost: a leaf admission used to spend ~2 ms here parsing with asn1js; parsing is now node's
 * X509Certificate plus a minimal DER reader (certificate.ts), and the signed path of a chain
 * seen before comes from a bounded cache (time, revocation and purpose are never cached).
 */
import { createHash, X509Certificate as NodeX509 } from 'node:crypto';
import { LruMap } from './lru.js';
import {
  EKU_CLIENT_AUTH,
  EKU_SERVER_AUTH,
  isIssuedBy,
  KU_DIGITAL_SIGNATURE,
  KU_KEY_CERT_SIGN,
  parseCertificate,
  sameCertificate,
  CertificateParseError,
  type CertInfo,
  type KeyDescription,
} from './certificate.js';
import type { RevocationRegistry } from './crl.js';
import { formatIdentity, type Identity, type Role } from './identity.js';
import { policyRefusal, type AdmissionPolicy } from './policy.js';
import type { RefusalReason } from './refusal.js';

export const DEFAULT_CLOCK_SKEW_MS = 60_000;
export const MAX_CLOCK_SKEW_MS = 15 * 60_000;
export const MAX_CHAIN_LENGTH = 6; // leaf + up to 4 intermediates + anchor
export const MIN_RSA_BITS = 2048;
/** Verified chains remembered by default (a few MB: each holds parsed certificates and keys). */
export const DEFAULT_PATH_CACHE_SIZE = 4096;
const ACCEPTED_CURVES = new Set(['prime256v1', 'secp384r1', 'secp521r1']);

export interface VerifierOptions {
  /** Trust anchors: the Keyglass CA, or the roots of a bring-your-own CA. At least one. */
  readonly anchors: readonly CertInfo[];
  /** Intermediate CAs to build paths with when a peer sends only its leaf (bring-your-own CA chains). */
  readonly intermediates?: readonly CertInfo[];
  /** Group this endpoint serves; peers of other groups are refused. Undefined: any group (policy decides). */
  readonly group?: string;
  /** Tolerated clock difference for validity windows (default 60 s, at most 15 min). */
  readonly clockSkewMs?: number;
  readonly revocation?: RevocationRegistry;
  /** Refuse a peer whose issuer has no CRL loaded (default false: no CRL = nothing revoked). */
  readonly requireCrl?: boolean;
  /** Refuse a peer whose issuer's CRL is past nextUpdate (default true). */
  readonly refuseStaleCrl?: boolean;
  readonly policy?: AdmissionPolicy;
  /** Injected clock (ms since epoch); default Date.now. */
  readonly now?: () => number;
  /**
   * Chains whose signed path to an anchor is remembered, keyed by their SHA-256 (default
   * DEFAULT_PATH_CACHE_SIZE; 0 = none). A reconnecting peer then skips parsing and signature
   * checks; validity times, revocation, usage, identity, group, role and policy are checked on
   * every call, so a CRL reload or an expiry takes effect at once without invalidation.
   */
  readonly pathCacheSize?: number;
}

/** Which role the peer must hold and which TLS side it plays. */
export interface PeerExpectation {
  readonly roles: readonly Role[];
  /**
   * 'server': the peer is a TLS server (needs serverAuth); 'client': a TLS client (needs
   * clientAuth); 'either': a mesh peer that both dials and accepts (needs both).
   */
  readonly peerSide: 'server' | 'client' | 'either';
}

export interface AcceptedPeer {
  readonly ok: true;
  readonly identity: Identity;
  readonly certificate: CertInfo;
  /** The CA that issued the peer certificate (for revocation lookups later). */
  readonly issuer: CertInfo;
}

export interface RefusedPeer {
  readonly ok: false;
  readonly reason: RefusalReason;
  readonly detail: string;
}

export type PeerVerdict = AcceptedPeer | RefusedPeer;

const refuse = (reason: RefusalReason, detail: string): RefusedPeer => ({ ok: false, reason, detail });

export class PeerVerifier {
  readonly anchors: readonly CertInfo[];
  private readonly skewMs: number;
  private readonly now: () => number;
  /** chainKey → [leaf, …, anchor], every link signature-checked (see VerifierOptions.pathCacheSize). */
  private readonly paths: LruMap<string, readonly CertInfo[]>;

  constructor(private readonly opts: VerifierOptions) {
    if (opts.anchors.length === 0) throw new RangeError('PeerVerifier needs at least one trust anchor');
    for (const a of opts.anchors) {
      if (!a.isCa) throw new RangeError(`trust anchor '${a.subject}' is not a CA certificate`);
    }
    this.skewMs = opts.clockSkewMs ?? DEFAULT_CLOCK_SKEW_MS;
    if (!(this.skewMs >= 0 && this.skewMs <= MAX_CLOCK_SKEW_MS))
      throw new RangeError(`clock skew must be within 0..${MAX_CLOCK_SKEW_MS} ms`);
    this.anchors = opts.anchors;
    this.now = opts.now ?? Date.now;
    this.paths = new LruMap(opts.pathCacheSize ?? DEFAULT_PATH_CACHE_SIZE);
  }

  get group(): string | undefined {
    return this.opts.group;
  }

  /**
   * Verifies a chain given as DER certificates, leaf first (intermediates may follow, in any
   * order). An element may be node's X509Certificate of those bytes (what a TLS socket hands
   * over), which spares parsing them again.
   */
  verify(chainIn: readonly (Uint8Array | NodeX509)[], expect: PeerExpectation): PeerVerdict {
    if (chainIn.length === 0) return refuse('no-certificate', 'the peer presented no certificate');
    if (chainIn.length > MAX_CHAIN_LENGTH)
      return refuse('untrusted', `chain longer than ${MAX_CHAIN_LENGTH}`);
    const chainDer = chainIn.map((c) => (c instanceof NodeX509 ? new Uint8Array(c.raw) : c));
    const key = chainKey(chainDer);
    let path = this.paths.get(key);
    if (path === undefined) {
      const built = this.chainPath(chainDer, chainIn);
      if (!built.ok) return built;
      path = built.certs;
      this.paths.set(key, path);
    }
    const leaf = path[0] as CertInfo;
    const now = this.now();
    for (const c of path) {
      if (c.notAfter.getTime() + this.skewMs < now)
        return refuse('expired', `'${c.subject}' expired ${c.notAfter.toISOString()}`);
      if (c.notBefore.getTime() - this.skewMs > now) {
        return refuse('not-yet-valid', `'${c.subject}' is valid from ${c.notBefore.toISOString()}`);
      }
    }
    const revoked = this.checkRevocation(path, new Date(now));
    if (revoked) return revoked;

    if (leaf.keyUsage !== undefined && (leaf.keyUsage & KU_DIGITAL_SIGNATURE) === 0) {
      return refuse('bad-key-usage', 'keyUsage lacks digitalSignature');
    }
    if (leaf.extKeyUsage !== undefined) {
      const eku = leaf.extKeyUsage;
      if (expect.peerSide !== 'client' && !eku.includes(EKU_SERVER_AUTH))
        return refuse('wrong-eku', 'extendedKeyUsage lacks serverAuth');
      if (expect.peerSide !== 'server' && !eku.includes(EKU_CLIENT_AUTH))
        return refuse('wrong-eku', 'extendedKeyUsage lacks clientAuth');
    }
    const id = leaf.identity;
    if (!id) return refuse('no-identity', 'no single well-formed keyglass:// SAN URI');
    if (leaf.commonName !== id.name)
      return refuse(
        'no-identity',
        `subject CN '${leaf.commonName ?? ''}' differs from SAN name '${id.name}'`,
      );
    if (this.opts.group !== undefined && id.group !== this.opts.group) {
      return refuse('wrong-group', `${formatIdentity(id)} is not of group '${this.opts.group}'`);
    }
    if (!expect.roles.includes(id.role)) {
      return refuse('wrong-role', `${formatIdentity(id)} is not ${expect.roles.join(' or ')}`);
    }
    if (this.opts.policy) {
      const why = policyRefusal(this.opts.policy, id);
      if (why) return refuse('policy-denied', why);
    }
    return { ok: true, identity: id, certificate: leaf, issuer: path[1] as CertInfo };
  }

  /**
   * What a chain's bytes alone decide, given this verifier's anchors and intermediates: parse,
   * structure (CA-as-member, key strength) and the signed path to an anchor. Time, revocation
   * and purpose are not part of it: `verify` checks them on every call.
   */
  private chainPath(
    chainDer: readonly Uint8Array[],
    chainIn: readonly (Uint8Array | NodeX509)[],
  ): { ok: true; certs: CertInfo[] } | RefusedPeer {
    let chain: CertInfo[];
    try {
      chain = chainDer.map((der, i) => {
        const given = chainIn[i];
        return parseCertificate(der, given instanceof NodeX509 ? given : undefined);
      });
    } catch (e) {
      if (e instanceof CertificateParseError) return refuse('malformed', e.message);
      throw e;
    }
    const leaf = chain[0] as CertInfo;
    if (leaf.isCa) return refuse('ca-as-member', `'${leaf.subject}' is a CA certificate`);
    const weak = keyWeakness(leaf);
    if (weak) return refuse('weak-key', weak);
    return this.buildPath(leaf, [...chain.slice(1), ...(this.opts.intermediates ?? [])]);
  }

  /** Revocation status of an already accepted peer (used when a new CRL arrives). */
  isRevoked(peer: AcceptedPeer): boolean {
    return (
      this.opts.revocation?.status(peer.issuer, peer.certificate.serial, new Date(this.now())) === 'revoked'
    );
  }

  /** leaf → … → anchor, each link name-matched and signature-checked; intermediates must be CAs. */
  private buildPath(
    leaf: CertInfo,
    pool: readonly CertInfo[],
  ): { ok: true; certs: CertInfo[] } | RefusedPeer {
    const certs = [leaf];
    let cur = leaf;
    let sawBadSignature = false;
    for (let depth = 0; depth < MAX_CHAIN_LENGTH; depth++) {
      // An anchor presented by the peer is only trusted if it is one of ours (byte-equal).
      for (const a of this.anchors) {
        const r = isIssuedBy(cur, a);
        if (r === 'yes') {
          certs.push(a);
          return checkPathLengths(certs);
        }
        if (r === 'bad-signature') sawBadSignature = true;
      }
      if (depth === 0 && cur.selfIssued && verifiesUnder(cur, cur)) {
        return refuse('self-signed', `'${cur.subject}' is self-signed and not a trust anchor`);
      }
      let next: CertInfo | undefined;
      for (const c of pool) {
        if (certs.some((x) => sameCertificate(x, c))) continue;
        const r = isIssuedBy(cur, c);
        if (r === 'yes') {
          next = c;
          break;
        }
        if (r === 'bad-signature') sawBadSignature = true;
      }
      if (!next) {
        return sawBadSignature
          ? refuse('bad-signature', `signature of '${cur.subject}' does not verify under its named issuer`)
          : refuse('untrusted', `no trusted issuer for '${cur.subject}' (issued by '${cur.issuer}')`);
      }
      if (!canSignCertificates(next))
        return refuse('untrusted', `'${next.subject}' is not a CA that may issue certificates`);
      const weak = keyWeakness(next);
      if (weak) return refuse('weak-key', weak);
      certs.push(next);
      cur = next;
    }
    return refuse('untrusted', `no trust anchor within ${MAX_CHAIN_LENGTH} certificates`);
  }

  private checkRevocation(path: readonly CertInfo[], now: Date): RefusedPeer | undefined {
    const reg = this.opts.revocation;
    if (!reg) return undefined;
    // Every certificate but the anchor is checked against its issuer's CRL.
    for (let i = 0; i + 1 < path.length; i++) {
      const cert = path[i] as CertInfo;
      const issuer = path[i + 1] as CertInfo;
      const st = reg.status(issuer, cert.serial, now);
      if (st === 'revoked') return refuse('revoked', `serial ${cert.serial} of '${cert.subject}' is revoked`);
      if (st === 'stale' && this.opts.refuseStaleCrl !== false)
        return refuse('crl-stale', `the CRL of '${issuer.subject}' is past nextUpdate`);
      if (st === 'unknown' && this.opts.requireCrl)
        return refuse('crl-stale', `no CRL loaded for '${issuer.subject}'`);
    }
    return undefined;
  }
}

/** The cache key of a chain: the SHA-256 of each certificate, in order. */
function chainKey(chainDer: readonly Uint8Array[]): string {
  let key = '';
  for (const der of chainDer) key += createHash('sha256').update(der).digest('base64');
  return key;
}

/** Every CA in the path allows the number of intermediates below it (RFC 5280 pathLenConstraint). */
function checkPathLengths(certs: CertInfo[]): { ok: true; certs: CertInfo[] } | RefusedPeer {
  // certs = [leaf, intermediates..., anchor]; the CA at index i has i - 1 intermediates below it.
  for (let i = 1; i < certs.length; i++) {
    const ca = certs[i] as CertInfo;
    if (ca.pathLength !== undefined && i - 1 > ca.pathLength) {
      return refuse(
        'untrusted',
        `'${ca.subject}' allows ${ca.pathLength} intermediate CAs below it, the chain has ${i - 1}`,
      );
    }
  }
  return { ok: true, certs };
}

/** Signature check alone (OpenSSL's issuer check would also demand keyCertSign of the signer). */
function verifiesUnder(c: CertInfo, signer: CertInfo): boolean {
  try {
    return c.node.verify(signer.publicKey);
  } catch {
    return false;
  }
}

function canSignCertificates(c: CertInfo): boolean {
  return c.isCa && (c.keyUsage === undefined || (c.keyUsage & KU_KEY_CERT_SIGN) !== 0);
}

/** A reason the certificate's key is too weak or of an unsupported kind, or undefined. */
export function keyWeakness(c: KeyDescription): string | undefined {
  switch (c.keyKind) {
    case 'ed25519':
    case 'ed448':
      return undefined;
    case 'ec':
      return ACCEPTED_CURVES.has(c.keyDetail) ? undefined : `EC curve ${c.keyDetail} is not accepted`;
    case 'rsa':
    case 'rsa-pss':
      return Number(c.keyDetail) >= MIN_RSA_BITS
        ? undefined
        : `RSA-${c.keyDetail} is below ${MIN_RSA_BITS} bits`;
    default:
      return `unsupported key type`;
  }
}
