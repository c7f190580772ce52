/** Key files at rest: what Keyglass writes, what it still reads, and what it refuses to try. */
import test from 'ava';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import forge from 'node-forge';
import {
  CredentialError,
  decodePrivateKey,
  describeKeyProtection,
  encodePrivateKey,
  KEY_KDF_ITERATIONS,
  keyProtectionWeakness,
  MAX_KEY_KDF_ITERATIONS,
  toPem,
  weakKeyFileWarning,
} from '../../auth/index.js';

const PASS = 'twelve chars or more';
const { privateKey } = generateKeyPairSync('ed25519');
const pkcs8Hex = (k: KeyObject): string => k.export({ format: 'der', type: 'pkcs8' }).toString('hex');

test('a new key file: PBKDF2-HMAC-SHA256 at KEY_KDF_ITERATIONS, round-trips, not flagged weak', (t) => {
  const pem = encodePrivateKey(privateKey, PASS);
  const p = describeKeyProtection(pem);
  t.deepEqual(p, { kind: 'pbkdf2', prf: 'HMAC-SHA256', iterations: KEY_KDF_ITERATIONS });
  t.is(keyProtectionWeakness(p), undefined);
  t.is(pkcs8Hex(decodePrivateKey(pem, PASS)), pkcs8Hex(privateKey));
  // non-ASCII passphrases are UTF-8, as OpenSSL takes them
  const uni = 'pässwörd-ünïcødé';
  t.is(pkcs8Hex(decodePrivateKey(encodePrivateKey(privateKey, uni), uni)), pkcs8Hex(privateKey));
});

test('a key file of an earlier release (node export: 2,048 iterations) still opens and is flagged weak', (t) => {
  const legacy = privateKey.export({
    format: 'pem',
    type: 'pkcs8',
    cipher: 'aes-256-cbc',
    passphrase: 'old',
  });
  t.is(pkcs8Hex(decodePrivateKey(legacy.toString(), 'old')), pkcs8Hex(privateKey));
  const p = describeKeyProtection(legacy.toString());
  t.deepEqual(p, { kind: 'pbkdf2', prf: 'HMAC-SHA256', iterations: 2048 });
  t.regex(keyProtectionWeakness(p) ?? '', /PBKDF2-HMAC-SHA256 at 2,048 iterations/);
  t.deepEqual(describeKeyProtection(encodePrivateKey(privateKey, undefined)), { kind: 'none' });
  // the one line keyglass ca / leaf / server print: what is weak and the command that fixes it
  t.is(
    weakKeyFileWarning(legacy.toString(), 'm.key'),
    'm.key: it is encrypted with PBKDF2-HMAC-SHA256 at 2,048 iterations (Keyglass writes HMAC-SHA256 at 600,000); ' +
      're-encrypt it: openssl pkcs8 -topk8 -v2 aes-256-cbc -v2prf hmacWithSHA256 -iter 600000 -in m.key -out m.key.new',
  );
  t.is(weakKeyFileWarning(encodePrivateKey(privateKey, PASS), 'm.key'), undefined);
  t.is(
    weakKeyFileWarning(encodePrivateKey(privateKey, undefined), 'm.key'),
    undefined,
    'unencrypted: opted out',
  );
  t.is(weakKeyFileWarning('not a key', 'm.key'), undefined, 'malformed: the loader reports it');
});

test('a key file demanding more than MAX_KEY_KDF_ITERATIONS is refused before any derivation', (t) => {
  // Rewrite the iteration count of a genuine file (forge ASN.1: EPKI → alg → PBES2 params → KDF → params[1]).
  const der = Buffer.from(
    encodePrivateKey(privateKey, PASS).replace(/-----[A-Z ]+-----|\s/g, ''),
    'base64',
  ).toString('latin1');
  const epki = forge.asn1.fromDer(der);
  const kids = (a: forge.asn1.Asn1, i: number): forge.asn1.Asn1 => (a.value as forge.asn1.Asn1[])[i]!;
  const count = kids(kids(kids(kids(kids(epki, 0), 1), 0), 1), 1);
  count.value = forge.asn1.integerToDer(2 ** 31 - 1).getBytes();
  const pem = toPem('ENCRYPTED PRIVATE KEY', Buffer.from(forge.asn1.toDer(epki).getBytes(), 'latin1'));
  const started = process.hrtime.bigint();
  const e = t.throws(() => decodePrivateKey(pem, PASS, 'key file'), { instanceOf: CredentialError });
  t.is(e?.kind, 'malformed');
  t.is(e?.message, `key file is refused: its 2147483647 PBKDF2 iterations exceed ${MAX_KEY_KDF_ITERATIONS}`);
  t.true(Number(process.hrtime.bigint() - started) / 1e6 < 100, 'refused without deriving');
});

test('a malformed encrypted key is one clear error, not a crash', (t) => {
  const pem = toPem('ENCRYPTED PRIVATE KEY', Buffer.from([0x30, 0x03, 0x30, 0x01, 0x00]));
  t.is(t.throws(() => describeKeyProtection(pem), { instanceOf: CredentialError })?.kind, 'malformed');
  t.is(t.throws(() => decodePrivateKey(pem, PASS), { instanceOf: CredentialError })?.kind, 'malformed');
});
