/**
 * A parsed X.509 certificate with exactly the facts verification needs. Parsing uses
 * @peculiar/x509 (every extension) and node's X509Certificate (fast, synchronous signature
 * checks for Ed25519, ECDSA and RSA), so verification can run inside node's synchronous
 * TLS callbacks.
 */
import { X509Certificate as NodeX509, type KeyObject } from 'node:crypto';
import { x509 } from './x509-setup.js';
import { parseIdentityUri, type Identity } from './identity.js';
import { pemBlocksOf, PemError } from './pem.js';

export const EKU_SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
export const EKU_CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
export const KU_DIGITAL_SIGNATURE = 1;
export const KU_KEY_CERT_SIGN = 32;
export const KU_CRL_SIGN = 64;

export type KeyKind = 'ed25519' | 'ed448' | 'ec' | 'rsa' | 'rsa-pss' | 'other';

export interface CertInfo extends KeyDescription {
  readonly der: Uint8Array;
  /** Lower-case hex, no leading zeros: the form the store, the CLI and CRL lookups use. */
  readonly serial: string;
  readonly subject: string;
  readonly issuer: string;
  readonly commonName: string | undefined;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly isCa: boolean;
  /** basicConstraints pathLenConstraint of a CA: how many intermediates may follow it. */
  readonly pathLength: number | undefined;
  /** keyUsage bit flags (KU_*), undefined when the extension is absent (= any usage). */
  readonly keyUsage: number | undefined;
  /** extendedKeyUsage OIDs, undefined when the extension is absent (= any purpose). */
  readonly extKeyUsage: readonly string[] | undefined;
  readonly sanUris: readonly string[];
  readonly dnsNames: readonly string[];
  readonly ipAddresses: readonly string[];
  /** The Keyglass identity if exactly one keyglass:// SAN URI is present and well formed. */
  readonly identity: Identity | undefined;
  readonly publicKey: KeyObject;
  readonly selfIssued: boolean;
  /** node's view of the same certificate, for signature and issuer checks. */
  readonly node: NodeX509;
  readonly sha256: string;
}

export class CertificateParseError extends Error {
  override readonly name = 'CertificateParseError';
}

export function normalizeSerial(hex: string): string {
  const s = hex.toLowerCase().replace(/^0+/, '');
  return s === '' ? '0' : s;
}

export interface KeyDescription {
  readonly keyKind: KeyKind;
  /** RSA modulus bits, EC curve name, or the kind again for Edwards keys. */
  readonly keyDetail: string;
}

export function describeKey(key: KeyObject): KeyDescription {
  const kind = key.asymmetricKeyType;
  const details = key.asymmetricKeyDetails ?? {};
  const keyKind: KeyKind =
    kind === 'ed25519' || kind === 'ed448' || kind === 'ec' || kind === 'rsa' || kind === 'rsa-pss'
      ? kind
      : 'other';
  const keyDetail =
    keyKind === 'rsa' || keyKind === 'rsa-pss'
      ? String(details.modulusLength ?? 0)
      : keyKind === 'ec'
        ? String(details.namedCurve ?? 'unknown')
        : keyKind;
  return { keyKind, keyDetail };
}

/** Parses one DER certificate; throws CertificateParseError on anything malformed. */
export function parseCertificate(der: Uint8Array): CertInfo {
  let pc: InstanceType<typeof x509.X509Certificate>;
  let node: NodeX509;
  try {
    pc = new x509.X509Certificate(der);
    node = new NodeX509(der);
  } catch (e) {
    throw new CertificateParseError(`certificate does not parse: ${(e as Error).message}`);
  }
  const bc = pc.getExtension(x509.BasicConstraintsExtension);
  const ku = pc.getExtension(x509.KeyUsagesExtension);
  const eku = pc.getExtension(x509.ExtendedKeyUsageExtension);
  const san = pc.getExtension(x509.SubjectAlternativeNameExtension);
  const names = san ? san.names.items : [];
  const sanUris = names.filter((n) => n.type === 'url').map((n) => n.value);
  const keyglassUris = sanUris.filter((u) => u.startsWith('keyglass:'));
  const identity = keyglassUris.length === 1 ? parseIdentityUri(keyglassUris[0] as string) : undefined;
  const publicKey = node.publicKey;
  const { keyKind, keyDetail } = describeKey(publicKey);
  const cn = pc.subjectName.getField('CN')[0];
  return {
    der,
    serial: normalizeSerial(pc.serialNumber),
    subject: pc.subject,
    issuer: pc.issuer,
    commonName: cn,
    notBefore: pc.notBefore,
    notAfter: pc.notAfter,
    isCa: bc?.ca === true,
    pathLength: bc?.ca === true ? bc.pathLength : undefined,
    keyUsage: ku ? ku.usages : undefined,
    extKeyUsage: eku ? eku.usages.map(String) : undefined,
    sanUris,
    dnsNames: names.filter((n) => n.type === 'dns').map((n) => n.value),
    ipAddresses: names.filter((n) => n.type === 'ip').map((n) => n.value),
    identity,
    keyKind,
    keyDetail,
    publicKey,
    selfIssued: pc.subject === pc.issuer,
    node,
    sha256: node.fingerprint256,
  };
}

/** Parses every CERTIFICATE block of a PEM text (a chain or a bundle of anchors). */
export function parseCertificatesPem(pem: string): CertInfo[] {
  let ders: Uint8Array[];
  try {
    ders = pemBlocksOf(pem, 'CERTIFICATE');
  } catch (e) {
    if (e instanceof PemError) throw new CertificateParseError(e.message);
    throw e;
  }
  return ders.map(parseCertificate);
}

/** True when `issuer` names and signed `cert`. */
export function isIssuedBy(cert: CertInfo, issuer: CertInfo): 'yes' | 'no' | 'bad-signature' {
  if (!cert.node.checkIssued(issuer.node)) return 'no';
  try {
    return cert.node.verify(issuer.publicKey) ? 'yes' : 'bad-signature';
  } catch {
    return 'bad-signature';
  }
}

export function sameCertificate(a: CertInfo, b: CertInfo): boolean {
  return Buffer.from(a.der).equals(Buffer.from(b.der));
}
