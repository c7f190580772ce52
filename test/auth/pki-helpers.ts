/**
 * Test PKI for auth/ and ca-tools/ tests: CAs and member certificates built through the
 * production certificate builder, with every profile knob open so tests can make the
 * bad certificates a real attacker or a careless operator would.
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import {
  parseCertificate,
  toPem,
  credentialsFromPem,
  type CertInfo,
  type Credentials,
  type Role,
} from '../../auth/index.js';
import {
  buildCertificate,
  buildCrl,
  CA_KEY_USAGE,
  generateKeyPair,
  MEMBER_EKU,
  MEMBER_KEY_USAGE,
  type KeyAlgorithm,
} from '../../ca-tools/index.js';

const HOUR = 3_600_000;

export interface TestCa {
  readonly der: Uint8Array;
  readonly info: CertInfo;
  readonly pem: string;
  readonly key: KeyObject;
}

export async function makeCa(
  name: string,
  opts: { alg?: KeyAlgorithm; issuer?: TestCa; pathLength?: number; notAfter?: Date } = {},
): Promise<TestCa> {
  const kp = generateKeyPair(opts.alg ?? 'ed25519');
  const now = Date.now();
  const der = await buildCertificate(
    {
      commonName: name,
      subjectSuffix: 'O=Keyglass Test',
      publicKey: kp.publicKey,
      notBefore: new Date(now - 48 * HOUR),
      notAfter: opts.notAfter ?? new Date(now + 24 * HOUR),
      isCa: true,
      ...(opts.pathLength !== undefined ? { pathLength: opts.pathLength } : {}),
      keyUsage: CA_KEY_USAGE,
      extKeyUsage: [],
      sanUris: [],
      hosts: [],
    },
    { certificateDer: opts.issuer?.der, privateKey: opts.issuer?.key ?? kp.privateKey },
  );
  return { der, info: parseCertificate(der), pem: toPem('CERTIFICATE', der), key: kp.privateKey };
}

export interface MemberOptions {
  readonly group?: string;
  readonly role?: Role;
  readonly sanUris?: readonly string[];
  readonly notBefore?: Date;
  readonly notAfter?: Date;
  readonly extKeyUsage?: readonly string[];
  readonly keyUsage?: number;
  readonly isCa?: boolean;
  readonly alg?: KeyAlgorithm;
  readonly rsaBits?: number;
  /** subjectAltName host names and addresses (default 127.0.0.1). */
  readonly hosts?: readonly string[];
  /** Sign with the subject's own key (self-signed). */
  readonly selfSigned?: boolean;
  /** Intermediates to append to the chain (PEM). */
  readonly chain?: readonly TestCa[];
}

export interface TestMember {
  readonly der: Uint8Array;
  readonly info: CertInfo;
  readonly credentials: Credentials;
}

export async function makeMember(ca: TestCa, name: string, o: MemberOptions = {}): Promise<TestMember> {
  const kp = o.rsaBits
    ? generateKeyPairSync('rsa', { modulusLength: o.rsaBits })
    : generateKeyPair(o.alg ?? 'ed25519');
  const now = Date.now();
  const der = await buildCertificate(
    {
      commonName: name,
      publicKey: kp.publicKey,
      notBefore: o.notBefore ?? new Date(now - HOUR),
      notAfter: o.notAfter ?? new Date(now + 24 * HOUR),
      isCa: o.isCa ?? false,
      keyUsage: o.keyUsage ?? (o.isCa ? CA_KEY_USAGE : MEMBER_KEY_USAGE),
      extKeyUsage: o.extKeyUsage ?? MEMBER_EKU,
      sanUris: o.sanUris ?? [`keyglass://${o.group ?? 'g'}/${o.role ?? 'leaf'}/${name}`],
      hosts: o.hosts ?? ['127.0.0.1'],
    },
    o.selfSigned
      ? { certificateDer: undefined, privateKey: kp.privateKey }
      : { certificateDer: ca.der, privateKey: ca.key },
  );
  const chainPem = toPem('CERTIFICATE', der) + (o.chain ?? []).map((c) => c.pem).join('');
  const credentials = credentialsFromPem(
    chainPem,
    kp.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
  );
  return { der, info: parseCertificate(der), credentials };
}

export interface TestCrl {
  readonly der: Uint8Array;
  readonly pem: string;
}

/** A CRL of `ca` numbered `crlNumber` that revokes `serials` (valid for an hour unless told). */
export async function makeCrl(
  ca: TestCa,
  serials: readonly string[],
  crlNumber: bigint,
  opts: { nextUpdate?: Date } = {},
): Promise<TestCrl> {
  const now = Date.now();
  const der = await buildCrl({
    caCertificateDer: ca.der,
    caPrivateKey: ca.key,
    crlNumber,
    thisUpdate: new Date(now - 60_000),
    nextUpdate: opts.nextUpdate ?? new Date(now + HOUR),
    entries: serials.map((serial) => ({ serial, revokedAt: new Date(now - 1000), reason: 'keyCompromise' })),
  });
  return { der, pem: toPem('X509 CRL', der) };
}
