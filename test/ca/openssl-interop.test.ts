/**
 * Interop with OpenSSL: its verifier accepts good certificates and rejects revoked ones
 * against our CRL, it reads the SAN URI and the CRL, opens our PKCS#12 bundle, and signs
 * CSRs that we issue from. Runs whenever an `openssl` binary is on PATH (CI installs it).
 */
import test from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { issueArgs, keyglass, tempDir } from './run-cli.js';

const hasOpenssl = spawnSync('openssl', ['version']).status === 0;
const withOpenssl = hasOpenssl ? test : test.skip;
if (!hasOpenssl) console.warn('openssl not found: the interop tests are skipped');

const ENV = { KEYGLASS_CA_PASSPHRASE: 'ca secret', KEYGLASS_KEY_PASSPHRASE: 'member secret' };

function openssl(args: string[]): { status: number; out: string } {
  const r = spawnSync('openssl', args, { encoding: 'utf8', timeout: 20_000 });
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
  });
}

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
