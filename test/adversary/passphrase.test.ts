/**
 * Adversary: a thief holding a copy of a key file (ca.key, a member's .key, a .p12) guesses
 * passphrases offline. What slows every guess is the KDF the product wrote into the file, and
 * what bounds the guesses is the passphrase the product let the operator choose. The files are
 * parsed here with node-forge's ASN.1 layer, independently of the product's own reader, and the
 * thresholds are the issue's (PBKDF2-HMAC-SHA256 >= 600,000 iterations; a minimum length).
 */
import test, { type ExecutionContext } from 'ava';
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import forge from 'node-forge';
import { encodePrivateKey } from '../../auth/index.js';
import { buildPkcs12, CertificateAuthority } from '../../ca-tools/index.js';
import { issueArgs, keyglass, tempDir } from '../ca/run-cli.js';

const STRONG = {
  KEYGLASS_CA_PASSPHRASE: 'correct horse battery staple',
  KEYGLASS_KEY_PASSPHRASE: 'member passphrase of length',
};
const MIN_ITERATIONS = 600_000;
const OID = {
  pbes2: '1.2.840.113549.1.5.13',
  pbkdf2: '1.2.840.113549.1.5.12',
  hmacWithSha256: '1.2.840.113549.2.9',
  aes256Cbc: '2.16.840.1.101.3.4.1.42',
  pkcs8ShroudedKeyBag: '1.2.840.113549.1.12.10.1.2',
  sha256: '2.16.840.1.101.3.4.2.1',
};

type Asn1 = forge.asn1.Asn1;
const kids = (a: Asn1): Asn1[] => a.value as Asn1[];
const kid = (a: Asn1, i: number): Asn1 => {
  const k = kids(a)[i];
  if (k === undefined) throw new Error(`no child ${i}`);
  return k;
};
const oidOf = (a: Asn1): string => forge.asn1.derToOid(a.value as string);
const intOf = (a: Asn1): number =>
  forge.util.createBuffer(a.value as string).getInt(8 * (a.value as string).length);
const fromDer = (b: Uint8Array | string): Asn1 =>
  forge.asn1.fromDer(typeof b === 'string' ? b : Buffer.from(b).toString('latin1'));

interface Pbes2 {
  scheme: string;
  kdf: string;
  iterations: number;
  prf: string;
  cipher: string;
}

/** The PBES2 parameters of an EncryptedPrivateKeyInfo (RFC 8018 A.2, A.4, RFC 5958). */
function pbes2Of(epki: Asn1): Pbes2 {
  const alg = kid(epki, 0);
  const params = kid(alg, 1);
  const kdf = kid(params, 0);
  const kdfParams = kid(kdf, 1);
  // PBKDF2-params: salt, iterationCount, keyLength OPTIONAL, prf DEFAULT hmacWithSHA1
  const rest = kids(kdfParams).slice(2);
  const prfSeq = rest.find((a) => a.type === forge.asn1.Type.SEQUENCE);
  return {
    scheme: oidOf(kid(alg, 0)),
    kdf: oidOf(kid(kdf, 0)),
    iterations: intOf(kid(kdfParams, 1)),
    prf: prfSeq ? oidOf(kid(prfSeq, 0)) : '1.2.840.113549.2.7',
    cipher: oidOf(kid(kid(params, 1), 0)),
  };
}

function pemBody(pem: string, label: string): string {
  const m = new RegExp(`-----BEGIN ${label}-----([^-]+)-----END ${label}-----`).exec(pem);
  if (!m) throw new Error(`no ${label} block`);
  return Buffer.from((m[1] as string).replace(/\s+/g, ''), 'base64').toString('latin1');
}

function assertStrongKeyFile(t: ExecutionContext, pem: string, what: string): void {
  const p = pbes2Of(fromDer(pemBody(pem, 'ENCRYPTED PRIVATE KEY')));
  t.is(p.scheme, OID.pbes2, `${what}: PBES2`);
  t.is(p.kdf, OID.pbkdf2, `${what}: PBKDF2`);
  t.is(p.prf, OID.hmacWithSha256, `${what}: HMAC-SHA256`);
  t.is(p.cipher, OID.aes256Cbc, `${what}: AES-256-CBC`);
  t.true(p.iterations >= MIN_ITERATIONS, `${what}: ${p.iterations} PBKDF2 iterations`);
}

test('every key file the CLI writes (CA key, member key, PKCS#12 key bag and MAC) costs >= 600,000 PBKDF2-SHA256 iterations per guess', async (t) => {
  const work = tempDir('kg-adv-pass-');
  const dir = join(work, 'ca');
  const init = await keyglass(['ca', 'init', '--dir', dir, '--name', 'Adversary CA'], { env: STRONG });
  t.is(init.code, 0, init.stderr);
  assertStrongKeyFile(t, readFileSync(join(dir, 'ca.key'), 'utf8'), 'ca.key');
  const out = join(work, 'm');
  const issue = await keyglass([...issueArgs(dir, 'leaf', 'm'), '--out', out, '--p12'], { env: STRONG });
  t.is(issue.code, 0, issue.stderr);
  assertStrongKeyFile(t, readFileSync(`${out}.key`, 'utf8'), 'member key');

  // PFX: version, authSafe (data → AuthenticatedSafe), macData {DigestInfo, salt, iterations}
  const pfx = fromDer(readFileSync(`${out}.p12`));
  const macData = kid(pfx, 2);
  t.is(oidOf(kid(kid(kid(macData, 0), 0), 0)), OID.sha256, 'PKCS#12 MAC digest');
  const macIterations = intOf(kid(macData, 2));
  t.true(macIterations >= MIN_ITERATIONS, `PKCS#12 MAC: ${macIterations} iterations`);
  const authSafe = fromDer(kid(kid(kid(pfx, 1), 1), 0).value as string);
  const bags = kids(authSafe).flatMap((ci) => kids(fromDer(kid(kid(ci, 1), 0).value as string)));
  const keyBag = bags.find((b) => oidOf(kid(b, 0)) === OID.pkcs8ShroudedKeyBag);
  if (!keyBag) return t.fail('no key bag');
  const p = pbes2Of(kid(kid(keyBag, 1), 0));
  t.is(p.prf, OID.hmacWithSha256);
  t.true(p.iterations >= MIN_ITERATIONS, `PKCS#12 key bag: ${p.iterations} iterations`);
});

test('the library writes the same strong key files', async (t) => {
  const { privateKey } = generateKeyPairSync('ed25519');
  assertStrongKeyFile(t, encodePrivateKey(privateKey, 'a library passphrase'), 'encodePrivateKey');
});

const SHORT = /must be at least 12 characters/;

test('a short CA or member key passphrase is refused with one clear line, and nothing is written', async (t) => {
  const work = tempDir('kg-adv-short-');
  const dir = join(work, 'ca');
  const init = await keyglass(['ca', 'init', '--dir', dir, '--name', 'Weak CA'], {
    env: { KEYGLASS_CA_PASSPHRASE: 'x' },
  });
  t.is(init.code, 1, init.stderr);
  t.regex(init.stderr, /^keyglass ca: CA key passphrase must be at least 12 characters \(got 1\)\n$/);
  t.false(existsSync(join(dir, 'ca.key')));

  t.is((await keyglass(['ca', 'init', '--dir', dir, '--name', 'CA'], { env: STRONG })).code, 0);
  const out = join(work, 'm');
  const issue = await keyglass([...issueArgs(dir, 'leaf', 'm'), '--out', out], {
    env: { ...STRONG, KEYGLASS_KEY_PASSPHRASE: 'hunter2' },
  });
  t.is(issue.code, 1, issue.stderr);
  t.regex(issue.stderr, /^keyglass ca: member key passphrase must be at least 12 characters \(got 7\)\n$/);
  t.false(existsSync(`${out}.key`));
});

test('the library refuses short passphrases too (encodePrivateKey, CA init, PKCS#12)', async (t) => {
  const { privateKey } = generateKeyPairSync('ed25519');
  t.throws(() => encodePrivateKey(privateKey, 'short'), { message: SHORT });
  await t.throwsAsync(
    CertificateAuthority.init({ dir: join(tempDir('kg-adv-lib-'), 'ca'), name: 'L', passphrase: 'short' }),
    { message: SHORT },
  );
  t.throws(
    () => buildPkcs12({ privateKey, certificatesDer: [new Uint8Array([0x30, 0])], password: 'short' }),
    {
      message: SHORT,
    },
  );
});
