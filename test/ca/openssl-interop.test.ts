/**
 * Interop with OpenSSL: its verifier accepts good certificates and rejects revoked ones
 * against our CRL, it reads the SAN URI and the CRL, opens our PKCS#12 bundle, and signs
 * CSRs that we issue from. Runs whenever an `openssl` binary is on PATH (CI installs it).
 */
import test from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import { createPublicKey } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodePrivateKey, describeKeyProtection, keyProtectionWeakness } from '../../auth/index.js';
import { issueArgs, keyglass, tempDir } from './run-cli.js';

const hasOpenssl = spawnSync('openssl', ['version']).status === 0;
const withOpenssl = hasOpenssl ? test : test.skip;
if (!hasOpenssl) console.warn('openssl not found: the interop tests are skipped');

const ENV = { KEYGLASS_CA_PASSPHRASE: 'ca secret phrase', KEYGLASS_KEY_PASSPHRASE: 'member secret' };

function openssl(args: string[], input?: string): { status: number; out: string } {
  const r = spawnSync('openssl', args, {
    encoding: 'utf8',
    timeout: 20_000,
    ...(input !== undefined ? { input } : {}),
  });
  return { status: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
}

async function ok(args: string[]): Promise<string> {
  const r = await keyglass(args, { env: ENV });
  if (r.code !== 0) throw new Error(`keyglass ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

for (const alg of ['ed25519', 'p256', 'rsa3072'] as const) {
  withOpenssl(`openssl verifies a ${alg} CA's certificates and honours its CRL`, async (t) => {
    const work = tempDir(`kg-ossl-${alg}-`);
    const dir = join(work, 'ca');
    await ok(['ca', 'init', '--dir', dir, '--name', `Interop ${alg}`, '--key', alg]);
    // Members keep the (fast) default key; the CA's algorithm signs them.
    await ok([
      ...issueArgs(dir, 'core', 'good', 'prod'),
      '--host',
      '127.0.0.1',
      '--out',
      join(work, 'good'),
      '--p12',
    ]);
    await ok([...issueArgs(dir, 'leaf', 'bad', 'prod'), '--out', join(work, 'bad')]);
    await ok(['ca', 'revoke', '--dir', dir, '--name', 'bad', '--reason', 'keyCompromise']);
    await ok(['ca', 'crl', '--dir', dir]);
    const ca = join(dir, 'ca.pem');
    const crl = join(dir, 'crl.pem');
    const good = openssl(['verify', '-CAfile', ca, '-CRLfile', crl, '-crl_check', join(work, 'good.pem')]);
    t.is(good.status, 0, good.out);
    t.regex(good.out, /good\.pem: OK/);
    const bad = openssl(['verify', '-CAfile', ca, '-CRLfile', crl, '-crl_check', join(work, 'bad.pem')]);
    t.not(bad.status, 0);
    t.regex(bad.out, /certificate revoked/);
    const purpose = openssl(['verify', '-CAfile', ca, '-purpose', 'sslserver', join(work, 'good.pem')]);
    t.is(purpose.status, 0, purpose.out);
    const text = openssl(['x509', '-in', join(work, 'good.pem'), '-noout', '-text']);
    t.regex(text.out, /URI:keyglass:\/\/prod\/core\/good/);
    t.regex(text.out, /IP Address:127\.0\.0\.1/);
    t.regex(text.out, /TLS Web Server Authentication, TLS Web Client Authentication/);
    const crlText = openssl(['crl', '-in', crl, '-noout', '-text', '-CAfile', ca]);
    t.is(crlText.status, 0, crlText.out);
    t.regex(crlText.out, /verify OK/);
    t.regex(crlText.out, /X509v3 CRL Number:\s*\n\s*1\b/);
    t.regex(crlText.out, /Key Compromise/);
    const p12 = openssl([
      'pkcs12',
      '-in',
      join(work, 'good.p12'),
      '-passin',
      'pass:member secret',
      '-nokeys',
    ]);
    t.is(p12.status, 0, p12.out);
    t.regex(p12.out, /subject=CN ?= ?good/);
    t.not(openssl(['pkcs12', '-in', join(work, 'good.p12'), '-passin', 'pass:wrong', '-nokeys']).status, 0);
    // the key bag (PBKDF2-SHA256, 600,000 iterations) decrypts without -legacy, to the key of good.key
    const bundled = openssl([
      'pkcs12',
      '-in',
      join(work, 'good.p12'),
      '-passin',
      'pass:member secret',
      '-nocerts',
      '-noenc',
    ]);
    t.is(bundled.status, 0, bundled.out);
    const fromP12 = openssl(['pkey', '-pubout'], bundled.out);
    const fromKey = openssl([
      'pkey',
      '-in',
      join(work, 'good.key'),
      '-passin',
      'pass:member secret',
      '-pubout',
    ]);
    t.is(fromKey.status, 0, fromKey.out);
    t.is(fromP12.out, fromKey.out);
    // openssl opens the CA key Keyglass wrote, with the passphrase only
    const caKey = openssl([
      'pkey',
      '-in',
      join(dir, 'ca.key'),
      '-passin',
      `pass:${ENV.KEYGLASS_CA_PASSPHRASE}`,
      '-noout',
    ]);
    t.is(caKey.status, 0, caKey.out);
    t.not(
      openssl(['pkey', '-in', join(dir, 'ca.key'), '-passin', 'pass:wrong passphrase', '-noout']).status,
      0,
    );
  });
}

withOpenssl(
  'keys openssl encrypts (scrypt, PBKDF2 at 600,000) load; a 2,048-iteration one loads with a warning',
  async (t) => {
    const work = tempDir('kg-ossl-keys-');
    const plain = join(work, 'plain.key');
    execFileSync('openssl', ['genpkey', '-algorithm', 'ed25519', '-out', plain], { stdio: 'pipe' });
    const pub = openssl(['pkey', '-in', plain, '-pubout']).out;
    const pass = 'an openssl passphrase';
    const variants: Record<string, string[]> = {
      scrypt: ['-scrypt', '-scrypt_N', '16384', '-scrypt_r', '8', '-scrypt_p', '5'],
      pbkdf2: ['-v2', 'aes-256-cbc', '-v2prf', 'hmacWithSHA256', '-iter', '600000'],
    };
    for (const [name, args] of Object.entries(variants)) {
      const out = join(work, `${name}.key`);
      execFileSync(
        'openssl',
        ['pkcs8', '-topk8', '-in', plain, '-passout', `pass:${pass}`, '-out', out, ...args],
        {
          stdio: 'pipe',
        },
      );
      const key = decodePrivateKey(readFileSync(out, 'utf8'), pass);
      t.is(createPublicKey(key).export({ format: 'pem', type: 'spki' }).toString(), pub, name);
      t.is(keyProtectionWeakness(describeKeyProtection(readFileSync(out, 'utf8'))), undefined, name);
    }
    // A CA whose key an earlier release wrote (2,048 iterations) still signs; the CLI says how to fix it.
    const dir = join(work, 'ca');
    await ok(['ca', 'init', '--dir', dir, '--name', 'Old CA']);
    const caKey = decodePrivateKey(readFileSync(join(dir, 'ca.key'), 'utf8'), ENV.KEYGLASS_CA_PASSPHRASE);
    writeFileSync(
      join(dir, 'ca.key'),
      caKey.export({ format: 'pem', type: 'pkcs8', cipher: 'aes-256-cbc', passphrase: 'short' }),
    );
    const r = await keyglass(['ca', 'crl', '--dir', dir], { env: { KEYGLASS_CA_PASSPHRASE: 'short' } });
    t.is(r.code, 0, r.stderr);
    t.regex(r.stderr, /warning: .*ca\.key: it is encrypted with PBKDF2-HMAC-SHA256 at 2,048 iterations/);
    t.regex(r.stderr, /openssl pkcs8 -topk8 -v2 aes-256-cbc -v2prf hmacWithSHA256 -iter 600000/);
    // and the suggested command gives a file Keyglass no longer warns about
    const fixed = openssl([
      'pkcs8',
      '-topk8',
      '-v2',
      'aes-256-cbc',
      '-v2prf',
      'hmacWithSHA256',
      '-iter',
      '600000',
      '-in',
      join(dir, 'ca.key'),
      '-passin',
      'pass:short',
      '-passout',
      'pass:short',
      '-out',
      join(dir, 'ca.key.new'),
    ]);
    t.is(fixed.status, 0, fixed.out);
    t.is(
      keyProtectionWeakness(describeKeyProtection(readFileSync(join(dir, 'ca.key.new'), 'utf8'))),
      undefined,
    );
  },
);

withOpenssl('a CSR made by openssl is issued; the key never leaves its owner', async (t) => {
  const work = tempDir('kg-ossl-csr-');
  const dir = join(work, 'ca');
  await ok(['ca', 'init', '--dir', dir, '--name', 'CSR CA']);
  const key = join(work, 'member.key');
  const csr = join(work, 'member.csr');
  execFileSync(
    'openssl',
    ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', key],
    { stdio: 'pipe' },
  );
  execFileSync('openssl', ['req', '-new', '-key', key, '-subj', '/CN=whatever', '-out', csr], {
    stdio: 'pipe',
  });
  await ok([...issueArgs(dir, 'leaf', 'member'), '--csr', csr, '--out', join(work, 'member')]);
  const v = openssl(['verify', '-CAfile', join(dir, 'ca.pem'), join(work, 'member.pem')]);
  t.is(v.status, 0, v.out);
  // the issued certificate carries the CSR's key
  const a = openssl(['x509', '-in', join(work, 'member.pem'), '-noout', '-pubkey']).out;
  const b = openssl(['pkey', '-in', key, '-pubout']).out;
  t.is(a, b);
  // an RSA-1024 CSR is refused
  const weakKey = join(work, 'weak.key');
  execFileSync(
    'openssl',
    ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:1024', '-out', weakKey],
    { stdio: 'pipe' },
  );
  execFileSync(
    'openssl',
    ['req', '-new', '-key', weakKey, '-subj', '/CN=weak', '-out', join(work, 'weak.csr')],
    { stdio: 'pipe' },
  );
  const r = await keyglass(
    [...issueArgs(dir, 'leaf', 'weak'), '--csr', join(work, 'weak.csr'), '--out', join(work, 'weak')],
    { env: ENV },
  );
  t.not(r.code, 0);
  t.regex(r.stderr, /RSA-1024 is below 2048 bits/);
});
