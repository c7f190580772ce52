/**
 * Loading a member's credentials (certificate chain + private key, the key optionally
 * PKCS#8-encrypted under a passphrase) and trust anchors, with every failure turned into
 * a `CredentialError` whose message is one line a user can act on.
 */
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { CertificateParseError, parseCertificatesPem, type CertInfo } from './certificate.js';
import type { Identity } from './identity.js';
import { DerError } from './der.js';
import {
  describeEncryptedPkcs8,
  encryptPkcs8,
  keyProtectionTooCostly,
  keyProtectionWarning,
  type KeyProtection,
} from './key-encryption.js';
import { MAX_PEM_FILE_BYTES, parsePem, PemError, toPem, type PemBlock } from './pem.js';

export type CredentialErrorKind =
  'unreadable' | 'malformed' | 'bad-passphrase' | 'weak-passphrase' | 'key-mismatch' | 'not-a-ca';

export class CredentialError extends Error {
  override readonly name = 'CredentialError';
  constructor(
    readonly kind: CredentialErrorKind,
    message: string,
  ) {
    super(message);
  }
}

export interface Credentials {
  /** Leaf first, then any intermediates, as PEM (what node:tls takes as `cert`). */
  readonly certChainPem: string;
  /** The decrypted private key as unencrypted PKCS#8 PEM, held in memory only. */
  readonly keyPem: string;
  readonly privateKey: KeyObject;
  /** How the key file protected the key (callers warn when `keyProtectionWeakness` finds it weak). */
  readonly keyProtection: KeyProtection;
  readonly certificate: CertInfo;
  readonly chain: readonly CertInfo[];
  /** The Keyglass identity of the certificate, if it carries one. */
  readonly identity: Identity | undefined;
}

/** PKCS#8 encryption used for every private key Keyglass writes (with PBKDF2-HMAC-SHA256, see key-encryption.ts). */
export const KEY_CIPHER = 'aes-256-cbc';

/**
 * The shortest passphrase Keyglass encrypts a new key under. A stolen key file meets an offline
 * attacker; 600,000 PBKDF2 iterations buy a factor of ~2^19 per guess, the passphrase must bring
 * the rest. 12 characters (code points) is the floor that keeps even a lower-case-only phrase
 * near 2^56 candidates; existing keys with shorter passphrases still open.
 */
export const MIN_PASSPHRASE_CHARS = 12;

/** One line refusing a passphrase too short for a new key (`what` names it), or undefined. */
export function newPassphraseProblem(passphrase: string, what: string): string | undefined {
  const chars = [...passphrase].length;
  return chars < MIN_PASSPHRASE_CHARS
    ? `${what} must be at least ${MIN_PASSPHRASE_CHARS} characters (got ${chars})`
    : undefined;
}

/** Throws CredentialError('weak-passphrase') for a passphrase too short to protect a new key. */
export function checkNewPassphrase(passphrase: string, what = 'passphrase'): void {
  const problem = newPassphraseProblem(passphrase, what);
  if (problem !== undefined) throw new CredentialError('weak-passphrase', problem);
}

/** Reads a text file of bounded size, mapping I/O errors to CredentialError('unreadable'). */
export function readTextFile(path: string, what: string, maxBytes = MAX_PEM_FILE_BYTES): string {
  let buf: Buffer;
  try {
    buf = readFileSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'error';
    throw new CredentialError('unreadable', `cannot read ${what} ${path} (${code})`);
  }
  if (buf.length > maxBytes)
    throw new CredentialError('malformed', `${what} ${path} is larger than ${maxBytes} bytes`);
  return buf.toString('utf8');
}

/** The first PRIVATE KEY block of a PEM text and how many blocks it holds; CredentialError if it does not parse. */
function privateKeyBlock(pem: string, what: string): { block: PemBlock | undefined; blocks: number } {
  let blocks: PemBlock[];
  try {
    blocks = parsePem(pem);
  } catch (e) {
    throw new CredentialError('malformed', `${what}: ${e instanceof PemError ? e.message : String(e)}`);
  }
  return { block: blocks.find((b) => b.label.endsWith('PRIVATE KEY')), blocks: blocks.length };
}

/** Parses a private key PEM, decrypting it with `passphrase` when it is encrypted. */
export function decodePrivateKey(
  pem: string,
  passphrase: string | undefined,
  what = 'private key',
): KeyObject {
  const { block, blocks } = privateKeyBlock(pem, what);
  if (!block || blocks !== 1)
    throw new CredentialError('malformed', `${what}: expected exactly one PRIVATE KEY PEM block`);
  const encrypted = block.label === 'ENCRYPTED PRIVATE KEY';
  if (encrypted && (passphrase === undefined || passphrase === '')) {
    throw new CredentialError('bad-passphrase', `${what} is encrypted and no passphrase was given`);
  }
  const tooCostly = encrypted ? keyProtectionTooCostly(protectionOf(block.der, what)) : undefined;
  if (tooCostly !== undefined) throw new CredentialError('malformed', `${what} is refused: ${tooCostly}`);
  try {
    return createPrivateKey(
      encrypted ? { key: pem, format: 'pem', passphrase: passphrase as string } : { key: pem, format: 'pem' },
    );
  } catch (e) {
    const msg = (e as Error).message;
    if (encrypted && /decrypt|passphrase|bad password/i.test(msg))
      throw new CredentialError('bad-passphrase', `wrong passphrase for ${what}`);
    throw new CredentialError('malformed', `${what} does not parse (${msg.split('\n')[0]})`);
  }
}

function protectionOf(der: Uint8Array, what: string): KeyProtection {
  try {
    return describeEncryptedPkcs8(der);
  } catch (e) {
    if (e instanceof DerError)
      throw new CredentialError('malformed', `${what} does not parse (${e.message})`);
    throw e;
  }
}

/** How a private key PEM protects its key; throws CredentialError('malformed') if it does not parse. */
export function describeKeyProtection(pem: string, what = 'private key'): KeyProtection {
  const { block } = privateKeyBlock(pem, what);
  if (!block) throw new CredentialError('malformed', `${what}: no PRIVATE KEY PEM block`);
  return block.label === 'ENCRYPTED PRIVATE KEY' ? protectionOf(block.der, what) : { kind: 'none' };
}

/** keyProtectionWarning for a key file's text; a malformed file is the loader's to report. */
export function weakKeyFileWarning(pem: string, file: string): string | undefined {
  try {
    return keyProtectionWarning(describeKeyProtection(pem, file), file);
  } catch {
    return undefined;
  }
}

/**
 * Serializes a private key as PKCS#8 PEM, encrypted (PBES2: PBKDF2-HMAC-SHA256 at
 * KEY_KDF_ITERATIONS, AES-256-CBC) unless passphrase is undefined. A passphrase shorter than
 * MIN_PASSPHRASE_CHARS is refused: this is where every new key file gets its protection.
 */
export function encodePrivateKey(key: KeyObject, passphrase: string | undefined): string {
  if (passphrase === undefined) return key.export({ format: 'pem', type: 'pkcs8' }).toString();
  checkNewPassphrase(passphrase);
  return toPem(
    'ENCRYPTED PRIVATE KEY',
    encryptPkcs8(key.export({ format: 'der', type: 'pkcs8' }), passphrase),
  );
}

function spkiOf(k: KeyObject): Buffer {
  return (k.type === 'private' ? createPublicKey(k) : k).export({ format: 'der', type: 'spki' });
}

export function keyMatchesCertificate(key: KeyObject, cert: CertInfo): boolean {
  return spkiOf(key).equals(spkiOf(cert.publicKey));
}

export function parseCertificatesOrThrow(pem: string, what: string): CertInfo[] {
  try {
    return parseCertificatesPem(pem);
  } catch (e) {
    if (e instanceof CertificateParseError) throw new CredentialError('malformed', `${what}: ${e.message}`);
    throw e;
  }
}

export function credentialsFromPem(certPem: string, keyPem: string, passphrase?: string): Credentials {
  const chain = parseCertificatesOrThrow(certPem, 'certificate');
  const privateKey = decodePrivateKey(keyPem, passphrase);
  const keyProtection = describeKeyProtection(keyPem);
  const certificate = chain[0] as CertInfo;
  if (!keyMatchesCertificate(privateKey, certificate)) {
    throw new CredentialError(
      'key-mismatch',
      `private key does not match certificate '${certificate.subject}'`,
    );
  }
  return {
    certChainPem: certPem,
    keyPem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    privateKey,
    keyProtection,
    certificate,
    chain,
    identity: certificate.identity,
  };
}

export interface CredentialFiles {
  readonly certFile: string;
  readonly keyFile: string;
  readonly passphrase?: string;
}

export function loadCredentials(files: CredentialFiles): Credentials {
  return credentialsFromPem(
    readTextFile(files.certFile, 'certificate'),
    readTextFile(files.keyFile, 'private key'),
    files.passphrase,
  );
}

/** Trust anchors from a PEM bundle text: every block must be a CA certificate. */
export function trustAnchorsFromPem(pem: string): CertInfo[] {
  const anchors = parseCertificatesOrThrow(pem, 'trust anchors');
  for (const a of anchors)
    if (!a.isCa) throw new CredentialError('not-a-ca', `trust anchor '${a.subject}' is not a CA certificate`);
  return anchors;
}

export function loadTrustAnchors(file: string): CertInfo[] {
  return trustAnchorsFromPem(readTextFile(file, 'trust anchors'));
}
