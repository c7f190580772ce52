/**
 * Passphrase protection of private keys at rest: PKCS#8 EncryptedPrivateKeyInfo (RFC 5958)
 * under PBES2 (RFC 8018) with PBKDF2-HMAC-SHA256 and AES-256-CBC.
 *
 * node's `KeyObject.export({ cipher, passphrase })` writes this very scheme but with OpenSSL's
 * fixed 2,048 iterations (~0.4 ms per offline guess on one core), so Keyglass builds the
 * structure itself to set the count: 600,000 (OWASP's 2023 figure for PBKDF2-HMAC-SHA256,
 * ~120 ms here). Not scrypt: OpenSSL 3.0's decoder (which node and `openssl pkey` use) refuses
 * scrypt above 32 MiB, i.e. N <= 2^14 at r = 8, and Java and Windows read PBKDF2 only for
 * PKCS#12 — one scheme for key files and PKCS#12 bundles alike.
 *
 * Reading stays with node (OpenSSL): any scheme it decrypts still loads, including the
 * 2,048-iteration files of earlier releases; `describeKeyProtection` lets callers warn.
 */
import { createCipheriv, pbkdf2Sync, randomBytes } from 'node:crypto';
import {
  DerReader,
  derOid,
  derSmallUnsigned,
  derTlv,
  readOid,
  readSmallUnsigned,
  TAG_INTEGER,
  TAG_OCTET_STRING,
  TAG_OID,
  TAG_SEQUENCE,
} from './der.js';

/** PBKDF2-HMAC-SHA256 iterations of every key Keyglass encrypts. */
export const KEY_KDF_ITERATIONS = 600_000;
/**
 * Above this a key file is refused unread: the count is the file's to choose, and 10^7
 * iterations already cost ~2 s of one core before the passphrase can even be judged.
 */
export const MAX_KEY_KDF_ITERATIONS = 10_000_000;
/** scrypt N·r·p of OWASP's weakest listed equivalent (N = 2^14, r = 8, p = 5). */
const MIN_SCRYPT_COST = 2 ** 14 * 8 * 5;
/** ~25 times that, a few seconds of one core: the scrypt counterpart of MAX_KEY_KDF_ITERATIONS. */
const MAX_SCRYPT_COST = 2 ** 24;

const OID = {
  pbes2: '1.2.840.113549.1.5.13',
  pbkdf2: '1.2.840.113549.1.5.12',
  scrypt: '1.3.6.1.4.1.11591.4.11',
  hmacWithSha1: '1.2.840.113549.2.7',
  hmacWithSha256: '1.2.840.113549.2.9',
  aes256Cbc: '2.16.840.1.101.3.4.1.42',
};
const PRF_NAMES: Readonly<Record<string, string>> = {
  [OID.hmacWithSha1]: 'HMAC-SHA1',
  '1.2.840.113549.2.8': 'HMAC-SHA224',
  [OID.hmacWithSha256]: 'HMAC-SHA256',
  '1.2.840.113549.2.10': 'HMAC-SHA384',
  '1.2.840.113549.2.11': 'HMAC-SHA512',
};

/** PKCS#8 PrivateKeyInfo DER → EncryptedPrivateKeyInfo DER (PBES2, PBKDF2-HMAC-SHA256, AES-256-CBC). */
export function encryptPkcs8(pkcs8Der: Uint8Array, passphrase: string): Buffer {
  const salt = randomBytes(16);
  const iv = randomBytes(16);
  // RFC 8018 takes the password as octets; OpenSSL (and so node and `openssl pkey`) uses UTF-8.
  const key = pbkdf2Sync(Buffer.from(passphrase, 'utf8'), salt, KEY_KDF_ITERATIONS, 32, 'sha256');
  const cipher = createCipheriv('aes-256-cbc', key, iv);
  const encrypted = Buffer.concat([cipher.update(pkcs8Der), cipher.final()]);
  key.fill(0);
  const nullParam = Buffer.from([0x05, 0x00]);
  const pbkdf2Params = derTlv(
    TAG_SEQUENCE,
    derTlv(TAG_OCTET_STRING, salt),
    derSmallUnsigned(KEY_KDF_ITERATIONS),
    derTlv(TAG_SEQUENCE, derOid(OID.hmacWithSha256), nullParam),
  );
  const pbes2Params = derTlv(
    TAG_SEQUENCE,
    derTlv(TAG_SEQUENCE, derOid(OID.pbkdf2), pbkdf2Params),
    derTlv(TAG_SEQUENCE, derOid(OID.aes256Cbc), derTlv(TAG_OCTET_STRING, iv)),
  );
  return derTlv(
    TAG_SEQUENCE,
    derTlv(TAG_SEQUENCE, derOid(OID.pbes2), pbes2Params),
    derTlv(TAG_OCTET_STRING, encrypted),
  );
}

/** How a key file's private key is protected, as far as its parameters say. */
export type KeyProtection =
  | { readonly kind: 'none' }
  | { readonly kind: 'pbkdf2'; readonly prf: string; readonly iterations: number }
  | { readonly kind: 'scrypt'; readonly n: number; readonly r: number; readonly p: number }
  | { readonly kind: 'other'; readonly scheme: string };

/**
 * Reads the encryption parameters of an EncryptedPrivateKeyInfo (DER). Throws DerError on a
 * structure that is not one; a scheme other than PBES2 with PBKDF2 or scrypt is 'other'.
 */
export function describeEncryptedPkcs8(der: Uint8Array): KeyProtection {
  const epki = new DerReader(new DerReader(der).expect(TAG_SEQUENCE, 'EncryptedPrivateKeyInfo'));
  const alg = new DerReader(epki.expect(TAG_SEQUENCE, 'encryptionAlgorithm'));
  const scheme = readOid(alg.expect(TAG_OID, 'encryption scheme'));
  if (scheme !== OID.pbes2) return { kind: 'other', scheme };
  const params = new DerReader(alg.expect(TAG_SEQUENCE, 'PBES2-params'));
  const kdf = new DerReader(params.expect(TAG_SEQUENCE, 'keyDerivationFunc'));
  const kdfOid = readOid(kdf.expect(TAG_OID, 'KDF'));
  const kp = new DerReader(kdf.expect(TAG_SEQUENCE, 'KDF params'));
  kp.expect(TAG_OCTET_STRING, 'salt');
  if (kdfOid === OID.scrypt) {
    const n = readSmallUnsigned(kp.expect(TAG_INTEGER, 'scrypt N'));
    const r = readSmallUnsigned(kp.expect(TAG_INTEGER, 'scrypt r'));
    const p = readSmallUnsigned(kp.expect(TAG_INTEGER, 'scrypt p'));
    return { kind: 'scrypt', n, r, p };
  }
  if (kdfOid !== OID.pbkdf2) return { kind: 'other', scheme: `PBES2 with KDF ${kdfOid}` };
  const iterations = readSmallUnsigned(kp.expect(TAG_INTEGER, 'PBKDF2 iterations'));
  kp.optional(TAG_INTEGER); // keyLength
  const prfSeq = kp.optional(TAG_SEQUENCE);
  const prfOid =
    prfSeq === undefined ? OID.hmacWithSha1 : readOid(new DerReader(prfSeq).expect(TAG_OID, 'PRF'));
  return { kind: 'pbkdf2', prf: PRF_NAMES[prfOid] ?? prfOid, iterations };
}

/** One line saying why a protection is weaker than what Keyglass writes, or undefined if it is not. */
export function keyProtectionWeakness(p: KeyProtection): string | undefined {
  switch (p.kind) {
    case 'none':
      return 'it is not encrypted';
    case 'pbkdf2':
      return p.iterations < KEY_KDF_ITERATIONS || p.prf === 'HMAC-SHA1'
        ? `it is encrypted with PBKDF2-${p.prf} at ${p.iterations.toLocaleString('en-US')} iterations (Keyglass writes HMAC-SHA256 at ${KEY_KDF_ITERATIONS.toLocaleString('en-US')})`
        : undefined;
    case 'scrypt':
      return p.n * p.r * p.p < MIN_SCRYPT_COST
        ? `it is encrypted with scrypt N=${p.n} r=${p.r} p=${p.p}`
        : undefined;
    case 'other':
      return `it is encrypted with the legacy scheme ${p.scheme}`;
  }
}

/** Why a key file's parameters would cost too much CPU to even try, or undefined. */
export function keyProtectionTooCostly(p: KeyProtection): string | undefined {
  if (p.kind === 'pbkdf2' && p.iterations > MAX_KEY_KDF_ITERATIONS)
    return `its ${p.iterations} PBKDF2 iterations exceed ${MAX_KEY_KDF_ITERATIONS}`;
  // OpenSSL bounds scrypt's memory (32 MiB) but not p, which multiplies the time.
  if (p.kind === 'scrypt' && p.n * p.r * p.p > MAX_SCRYPT_COST)
    return `its scrypt cost N·r·p = ${p.n * p.r * p.p} exceeds ${MAX_SCRYPT_COST}`;
  return undefined;
}

/**
 * One line warning that an encrypted key is protected more weakly than Keyglass writes keys
 * now, with the command that fixes it; undefined otherwise. An unencrypted key was the
 * operator's explicit choice (--insecure-no-passphrase), so it does not warn.
 */
export function keyProtectionWarning(p: KeyProtection, file: string): string | undefined {
  const weakness = p.kind === 'none' ? undefined : keyProtectionWeakness(p);
  return weakness === undefined ? undefined : `${file}: ${weakness}; re-encrypt it: ${reencryptHint(file)}`;
}

/** The command that re-encrypts a weak key file in place of Keyglass (same passphrase, strong KDF). */
export function reencryptHint(file: string): string {
  return `openssl pkcs8 -topk8 -v2 aes-256-cbc -v2prf hmacWithSHA256 -iter ${KEY_KDF_ITERATIONS} -in ${file} -out ${file}.new`;
}
