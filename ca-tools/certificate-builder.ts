/**
 * Builds and signs X.509 v3 certificates with @peculiar/x509. Every profile decision is
 * explicit in `CertificateSpec`, so the CA's defaults live in one place (authority.ts)
 * and tests can build deliberately bad certificates with the same code path.
 */
import { randomBytes, type KeyObject } from 'node:crypto';
import { isIP as netIsIP } from 'node:net';
import {
  EKU_CLIENT_AUTH,
  EKU_SERVER_AUTH,
  KU_CRL_SIGN,
  KU_DIGITAL_SIGNATURE,
  KU_KEY_CERT_SIGN,
  normalizeSerial,
} from '../auth/index.js';
import { x509 } from './x509-setup.js';
import { toPublicCryptoKey, toSigningKey, webAlgorithmsFor } from './keys.js';

export interface Issuer {
  /** DER of the issuing CA certificate (undefined: self-signed, the subject key signs). */
  readonly certificateDer: Uint8Array | undefined;
  readonly privateKey: KeyObject;
}

export interface CertificateSpec {
  readonly commonName: string;
  /** Extra subject attributes after CN, e.g. 'O=Keyglass'. */
  readonly subjectSuffix?: string;
  readonly publicKey: KeyObject;
  readonly serial?: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly isCa: boolean;
  readonly pathLength?: number;
  readonly keyUsage: number;
  /** EKU OIDs; empty: no extension. */
  readonly extKeyUsage: readonly string[];
  readonly sanUris: readonly string[];
  /** Host names and IP literals for DNS / IP SANs. */
  readonly hosts: readonly string[];
}

/** A positive 128-bit serial (RFC 5280 allows ≤ 20 octets; CA/B asks for ≥ 64 random bits). */
export function randomSerial(): string {
  const b = randomBytes(16);
  b[0] = ((b[0] as number) & 0x7f) | 0x01; // positive, and no leading zero octet
  return normalizeSerial(b.toString('hex'));
}

/** RFC 4514 escaping for a value in a distinguished name. */
function escapeDnValue(v: string): string {
  return v.replace(/[\\,+"<>;=]/g, (c) => `\\${c}`).replace(/^[ #]/, (c) => `\\${c}`);
}

export const MEMBER_KEY_USAGE = KU_DIGITAL_SIGNATURE;
export const CA_KEY_USAGE = KU_KEY_CERT_SIGN | KU_CRL_SIGN | KU_DIGITAL_SIGNATURE;
export const MEMBER_EKU: readonly string[] = [EKU_SERVER_AUTH, EKU_CLIENT_AUTH];

export async function buildCertificate(spec: CertificateSpec, issuer: Issuer): Promise<Uint8Array> {
  if (!(spec.notBefore.getTime() < spec.notAfter.getTime()))
    throw new RangeError('notBefore must precede notAfter');
  const subject = `CN=${escapeDnValue(spec.commonName)}${spec.subjectSuffix ? `, ${spec.subjectSuffix}` : ''}`;
  const subjectKey = await toPublicCryptoKey(spec.publicKey);
  const signingKey = await toSigningKey(issuer.privateKey);
  const issuerCert = issuer.certificateDer ? new x509.X509Certificate(issuer.certificateDer) : undefined;
  const extensions: InstanceType<typeof x509.Extension>[] = [
    new x509.BasicConstraintsExtension(spec.isCa, spec.isCa ? spec.pathLength : undefined, true),
    new x509.KeyUsagesExtension(spec.keyUsage, true),
    await x509.SubjectKeyIdentifierExtension.create(subjectKey),
    await x509.AuthorityKeyIdentifierExtension.create(issuerCert ? issuerCert.publicKey : subjectKey),
  ];
  if (spec.extKeyUsage.length > 0)
    extensions.push(new x509.ExtendedKeyUsageExtension([...spec.extKeyUsage], false));
  const names = [
    ...spec.sanUris.map((value) => ({ type: 'url' as const, value })),
    ...spec.hosts.map((h) =>
      netIsIP(h) ? { type: 'ip' as const, value: h } : { type: 'dns' as const, value: h },
    ),
  ];
  if (names.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(names, false));
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: spec.serial ?? randomSerial(),
    subject,
    issuer: issuerCert ? issuerCert.subject : subject,
    notBefore: spec.notBefore,
    notAfter: spec.notAfter,
    publicKey: subjectKey,
    signingKey,
    signingAlgorithm: webAlgorithmsFor(issuer.privateKey).signAlg,
    extensions,
  });
  return new Uint8Array(cert.rawData);
}
