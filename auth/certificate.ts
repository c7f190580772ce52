/**
 * A parsed X.509 certificate with exactly the facts verification needs. node's
 * X509Certificate checks the structure, gives the public key and does fast, synchronous
 * signature checks (Ed25519, ECDSA, RSA), so verification can run inside node's TLS
 * callbacks; the fields we decide on (serial, validity, CN, basic constraints, key usages,
 * SAN URIs) come from a minimal DER reader (cert-fields.ts), ~100× cheaper than a general
 * ASN.1 parse. Display strings (subject, issuer, host names) are read by the same reader only
 * when someone reads them. Nothing here loads @peculiar/x509: a leaf application links this.
 */
import { X509Certificate as NodeX509, type KeyObject } from 'node:crypto';
import { parseIdentityUri, type Identity } from './identity.js';
import { pemBlocksOf, PemError } from './pem.js';
import {
  readCertDisplayFields,
  readCertFields,
  type CertDisplayFields,
  type CertFields,
} from './cert-fields.js';

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

/**
 * Parses one DER certificate; throws CertificateParseError on anything malformed. `parsed`, if
 * given, is node's X509Certificate of exactly these bytes (a TLS socket's), reused as is.
 */
export function parseCertificate(der: Uint8Array, parsed?: NodeX509): CertInfo {
  if (parsed !== undefined && !parsed.raw.equals(der))
    throw new RangeError('parseCertificate: the X509Certificate given is not of these bytes');
  let node: NodeX509;
  let fields: CertFields;
  let publicKey: KeyObject;
  try {
    // node (OpenSSL) checks the whole structure; our reader takes the fields we decide on.
    node = parsed ?? new NodeX509(der);
    fields = readCertFields(der);
    publicKey = node.publicKey; // decoded on demand: a damaged key throws only here
  } catch (e) {
    throw new CertificateParseError(`certificate does not parse: ${(e as Error).message}`);
  }
  const keyglassUris = fields.sanUris.filter((u) => u.startsWith('keyglass:'));
  return new ParsedCertificate(der, node, fields, publicKey, describeKey(publicKey), {
    identity: keyglassUris.length === 1 ? parseIdentityUri(keyglassUris[0] as string) : undefined,
    // Name equality as node renders both names: what OpenSSL's issuer matching compares.
    selfIssued: node.subject === node.issuer,
  });
}

/** Display facts, read on first use: verification never needs them. */
function readDisplayFields(der: Uint8Array, node: NodeX509): CertDisplayFields {
  try {
    return readCertDisplayFields(der);
  } catch {
    // A certificate node and our field reader accept but whose names we cannot render (e.g. a
    // string type we do not read): node's rendering (a getter must not throw where a refusal
    // message is being written).
    return {
      subject: node.subject.replace(/\n/g, ', '),
      issuer: node.issuer.replace(/\n/g, ', '),
      dnsNames: [],
      ipAddresses: [],
    };
  }
}

class ParsedCertificate implements CertInfo {
  readonly serial: string;
  readonly commonName: string | undefined;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly isCa: boolean;
  readonly pathLength: number | undefined;
  readonly keyUsage: number | undefined;
  readonly extKeyUsage: readonly string[] | undefined;
  readonly sanUris: readonly string[];
  readonly identity: Identity | undefined;
  readonly selfIssued: boolean;
  readonly keyKind: KeyKind;
  readonly keyDetail: string;
  private display: CertDisplayFields | undefined;

  constructor(
    readonly der: Uint8Array,
    readonly node: NodeX509,
    fields: CertFields,
    readonly publicKey: KeyObject,
    key: KeyDescription,
    derived: { identity: Identity | undefined; selfIssued: boolean },
  ) {
    this.serial = normalizeSerial(fields.serialHex);
    this.commonName = fields.commonName;
    this.notBefore = fields.notBefore;
    this.notAfter = fields.notAfter;
    this.isCa = fields.isCa;
    this.pathLength = fields.pathLength;
    this.keyUsage = fields.keyUsage;
    this.extKeyUsage = fields.extKeyUsage;
    this.sanUris = fields.sanUris;
    this.identity = derived.identity;
    this.selfIssued = derived.selfIssued;
    this.keyKind = key.keyKind;
    this.keyDetail = key.keyDetail;
  }

  private get shown(): CertDisplayFields {
    return (this.display ??= readDisplayFields(this.der, this.node));
  }

  get subject(): string {
    return this.shown.subject;
  }
  get issuer(): string {
    return this.shown.issuer;
  }
  get dnsNames(): readonly string[] {
    return this.shown.dnsNames;
  }
  get ipAddresses(): readonly string[] {
    return this.shown.ipAddresses;
  }
  get sha256(): string {
    return this.node.fingerprint256;
  }
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
  return ders.map((der) => parseCertificate(der));
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
