/** `keyglass ca` driven as a child process: the happy path, and every kind of bad input. */
import test from 'ava';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CertificateAuthority } from '../../ca-tools/index.js';
import { generateKeyPair, x509 } from '../../ca-tools/index.js';
import { parseCertificatesPem, toPem } from '../../auth/index.js';
import { webcrypto } from 'node:crypto';
import { issueArgs, keyglass, snapshot, tempDir, type CliResult } from './run-cli.js';

const CA_PW = { KEYGLASS_CA_PASSPHRASE: 'ca secret phrase', KEYGLASS_KEY_PASSPHRASE: 'member secret' };

/** One clear line on stderr, a non-zero exit, no stack trace. */
function assertCleanFailure(
  t: {
    true(v: boolean, m?: string): void;
    regex(s: string, r: RegExp): void;
    false(v: boolean, m?: string): void;
  },
  r: CliResult,
  re: RegExp,
): void {
  t.true(r.code !== 0, `exit ${r.code}`);
  t.regex(r.stderr, re);
  t.true(r.stderr.trim().split('\n').length === 1, `stderr: ${r.stderr}`);
  t.false(/\n\s+at /.test(r.stderr) || r.stderr.includes('internal error'), r.stderr);
}

async function newCa(): Promise<{ work: string; dir: string }> {
  const work = tempDir('kg-cli-');
  const dir = join(work, 'ca');
  const r = await keyglass(['ca', 'init', '--dir', dir, '--name', 'Test CA'], { env: CA_PW });
  if (r.code !== 0) throw new Error(r.stderr);
  return { work, dir };
}

test('init, issue, list, revoke, crl, inspect: files, modes and the store', async (t) => {
  const { work, dir } = await newCa();
  t.is(statSync(join(dir, 'ca.key')).mode & 0o777, 0o600);
  t.true(readFileSync(join(dir, 'ca.key'), 'utf8').startsWith('-----BEGIN ENCRYPTED PRIVATE KEY-----'));
  const out = join(work, 'core-1');
  const issued = await keyglass(
    [
      ...issueArgs(dir, 'core', 'core-1'),
      '--host',
      'localhost',
      '--host',
      '127.0.0.1',
      '--key',
      'p256',
      '--out',
      out,
      '--p12',
    ],
    { env: CA_PW },
  );
  t.is(issued.code, 0, issued.stderr);
  t.is(statSync(`${out}.key`).mode & 0o777, 0o600);
  t.is(statSync(`${out}.p12`).mode & 0o777, 0o600);
  const cert = parseCertificatesPem(readFileSync(`${out}.pem`, 'utf8'))[0];
  t.deepEqual(cert?.identity, { group: 'g', role: 'core', name: 'core-1' });
  t.deepEqual(
    [cert?.dnsNames, cert?.ipAddresses, cert?.keyDetail],
    [['localhost'], ['127.0.0.1'], 'prime256v1'],
  );
  const leaf = await keyglass(
    [...issueArgs(dir, 'leaf', 'leaf-1'), '--out', join(work, 'leaf-1'), '--insecure-no-passphrase'],
    { env: CA_PW },
  );
  t.is(leaf.code, 0, leaf.stderr);
  t.true(readFileSync(join(work, 'leaf-1.key'), 'utf8').startsWith('-----BEGIN PRIVATE KEY-----'));

  const list = JSON.parse((await keyglass(['ca', 'list', '--dir', dir, '--json'])).stdout) as {
    serial: string;
    name: string;
    status: string;
  }[];
  t.deepEqual(
    list.map((r) => [r.name, r.status]),
    [
      ['core-1', 'active'],
      ['leaf-1', 'active'],
    ],
  );
  const rv = await keyglass(['ca', 'revoke', '--dir', dir, '--name', 'leaf-1', '--reason', 'key-compromise']);
  t.is(rv.code, 0, rv.stderr);
  const c1 = await keyglass(['ca', 'crl', '--dir', dir], { env: CA_PW });
  const c2 = await keyglass(['ca', 'crl', '--dir', dir, '--out', join(work, 'crl2.pem'), '--days', '2'], {
    env: CA_PW,
  });
  t.regex(c1.stdout, /CRL number 1 \(1 revoked\)/);
  t.regex(c2.stdout, /CRL number 2 \(1 revoked\)/);
  const crl = JSON.parse((await keyglass(['ca', 'inspect', join(work, 'crl2.pem'), '--json'])).stdout) as {
    kind: string;
    crlNumber: string;
    revoked: { serial: string; reason: string; reasonCode: number }[];
  };
  t.is(crl.kind, 'crl');
  t.is(crl.crlNumber, '2');
  // By name as `ca list` shows it, and the code the CRL holds.
  t.deepEqual(
    crl.revoked.map((r) => [r.serial, r.reason, r.reasonCode]),
    [[list[1]?.serial, 'keyCompromise', 1]],
  );
  const crlText = await keyglass(['ca', 'inspect', join(work, 'crl2.pem')]);
  t.regex(crlText.stdout, new RegExp(`${list[1]?.serial}\\s+\\S+\\s+keyCompromise$`, 'm'));
  const text = await keyglass(['ca', 'inspect', `${out}.pem`]);
  t.regex(text.stdout, /identity:\s+g\/core\/core-1/);
  const after = JSON.parse((await keyglass(['ca', 'list', '--dir', dir, '--json'])).stdout) as {
    status: string;
    reason: string | null;
  }[];
  t.deepEqual(
    after.map((r) => [r.status, r.reason]),
    [
      ['active', null],
      ['revoked', 'keyCompromise'],
    ],
  );
});

test('issue from a CSR keeps the key with its owner; a CSR with a bad signature is refused', async (t) => {
  const { work, dir } = await newCa();
  const kp = generateKeyPair('ed25519');
  const subtle = webcrypto.subtle;
  const keys = {
    privateKey: await subtle.importKey(
      'pkcs8',
      kp.privateKey.export({ format: 'der', type: 'pkcs8' }),
      { name: 'Ed25519' },
      false,
      ['sign'],
    ),
    publicKey: await subtle.importKey(
      'spki',
      kp.publicKey.export({ format: 'der', type: 'spki' }),
      { name: 'Ed25519' },
      true,
      ['verify'],
    ),
  };
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: 'CN=ignored',
    keys,
    signingAlgorithm: { name: 'Ed25519' },
  });
  const good = join(work, 'good.csr');
  writeFileSync(good, csr.toString('pem'));
  const r = await keyglass(
    [...issueArgs(dir, 'leaf', 'remote-1'), '--csr', good, '--out', join(work, 'remote-1')],
    { env: CA_PW },
  );
  t.is(r.code, 0, r.stderr);
  t.false(existsSync(join(work, 'remote-1.key')));
  const cert = parseCertificatesPem(readFileSync(join(work, 'remote-1.pem'), 'utf8'))[0];
  t.true(
    cert?.publicKey
      .export({ format: 'der', type: 'spki' })
      .equals(kp.publicKey.export({ format: 'der', type: 'spki' })),
  );
  t.is(cert?.commonName, 'remote-1');

  const der = new Uint8Array(csr.rawData);
  der[der.length - 3] = (der[der.length - 3] as number) ^ 0xff; // corrupt the signature
  const bad = join(work, 'bad.csr');
  writeFileSync(bad, toPem('CERTIFICATE REQUEST', der));
  const before = snapshot(dir);
  const rb = await keyglass(
    [...issueArgs(dir, 'leaf', 'remote-2'), '--csr', bad, '--out', join(work, 'remote-2')],
    { env: CA_PW },
  );
  assertCleanFailure(t, rb, /CSR signature does not verify/);
  t.deepEqual(snapshot(dir), before);
  t.false(existsSync(join(work, 'remote-2.pem')));
});

test('bad input: one line on stderr, non-zero exit, nothing half-written', async (t) => {
  const { work, dir } = await newCa();
  const issue = (name: string, env: Record<string, string | undefined>, extra: string[] = []) =>
    keyglass([...issueArgs(dir, 'leaf', name), '--out', join(work, name), ...extra], { env });
  t.is((await issue('dup', CA_PW)).code, 0);
  const before = snapshot(dir);
  // Thunks, run one after another: commands that take the CA directory's lock must not race.
  const cases: [() => Promise<CliResult>, RegExp][] = [
    [() => issue('x1', { ...CA_PW, KEYGLASS_CA_PASSPHRASE: 'wrong' }), /wrong passphrase for CA key/],
    [() => issue('x2', { KEYGLASS_KEY_PASSPHRASE: 'k' }), /no CA key passphrase/],
    [() => issue('dup', CA_PW, ['--out', join(work, 'dup-again')]), /active certificate for g\/dup exists/],
    [() => issue('x3', CA_PW, ['--host', 'bad host!']), /neither a DNS name nor an IP/],
    [() => issue('x4', CA_PW, ['--csr', join(work, 'missing.csr')]), /cannot read CSR/],
    [() => issue('../evil', CA_PW), /name '..\/evil' must be/],
    [() => issue('x5', CA_PW, ['--days', '99999']), /--days must be/],
    [() => keyglass(['ca', 'revoke', '--dir', dir, '--serial', '0123abcd']), /unknown serial 123abcd/],
    [
      () => keyglass(['ca', 'revoke', '--dir', dir, '--name', 'nobody']),
      /no unrevoked certificate named 'nobody'/,
    ],
    [
      () => keyglass(['ca', 'revoke', '--dir', dir, '--name', 'dup', '--reason', 'bored']),
      /unknown revocation reason/,
    ],
    [
      () => keyglass(['ca', 'crl', '--dir', dir], { env: { KEYGLASS_CA_PASSPHRASE: 'nope' } }),
      /wrong passphrase/,
    ],
    [() => keyglass(['ca', 'list', '--dir', join(work, 'no-such-ca')]), /no CA in/],
    [() => keyglass(['ca', 'init', '--dir', dir, '--name', 'Again'], { env: CA_PW }), /already holds a CA/],
    [() => keyglass(issueArgs(dir, 'king', 'k')), /--role must be/],
    [() => keyglass(['ca', 'frobnicate']), /unknown subcommand/],
  ];
  for (const [run, re] of cases) assertCleanFailure(t, await run(), re);
  t.deepEqual(snapshot(dir), before, 'the CA directory is unchanged');
  for (const n of ['x1', 'x2', 'dup-again', 'x3', 'x4', 'x5']) t.false(existsSync(join(work, `${n}.pem`)), n);

  // unreadable, truncated and malformed PEM
  writeFileSync(join(work, 'trunc.pem'), readFileSync(join(work, 'dup.pem'), 'utf8').slice(0, 200));
  writeFileSync(
    join(work, 'junk.pem'),
    '-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n',
  );
  assertCleanFailure(t, await keyglass(['ca', 'inspect', join(work, 'trunc.pem')]), /truncated/);
  assertCleanFailure(t, await keyglass(['ca', 'inspect', join(work, 'junk.pem')]), /malformed CERTIFICATE/);
  assertCleanFailure(t, await keyglass(['ca', 'inspect', join(work, 'none.pem')]), /cannot read/);
  writeFileSync(join(dir, 'ca.pem'), readFileSync(join(dir, 'ca.pem'), 'utf8').slice(0, 100));
  assertCleanFailure(t, await issue('x6', CA_PW), /CA certificate .*truncated/);
  writeFileSync(join(dir, 'store.json'), '{"format":"keyglass-ca-store"');
  assertCleanFailure(t, await keyglass(['ca', 'list', '--dir', dir]), /.+/);
});

test('an expired CA refuses to issue or sign CRLs', async (t) => {
  const work = tempDir('kg-cli-exp-');
  const dir = join(work, 'ca');
  await CertificateAuthority.init({
    dir,
    name: 'Old CA',
    days: 1,
    passphrase: undefined,
    now: new Date(Date.now() - 3 * 86_400_000),
  });
  const before = snapshot(dir);
  assertCleanFailure(
    t,
    await keyglass([...issueArgs(dir, 'leaf', 'n'), '--out', join(work, 'n'), '--insecure-no-passphrase']),
    /CA certificate expired/,
  );
  assertCleanFailure(t, await keyglass(['ca', 'crl', '--dir', dir]), /CA certificate expired/);
  t.deepEqual(snapshot(dir), before);
});

test('a failure after staging records nothing: an unwritable output file', async (t) => {
  const { work, dir } = await newCa();
  const before = snapshot(dir);
  // A missing folder is now refused before any work (test/cli/conventions); a file name longer
  // than the file system allows (ENAMETOOLONG, even for root) still fails only when staging.
  const r = await keyglass(
    [...issueArgs(dir, 'leaf', 'n1'), '--out', join(work, 'n'.repeat(300)), '--insecure-no-passphrase'],
    { env: CA_PW },
  );
  assertCleanFailure(t, r, /cannot write output .*nothing was issued/);
  t.deepEqual(snapshot(dir), before);
});

test('issue --count: one transaction for many certificates; a clash anywhere issues none', async (t) => {
  const { work, dir } = await newCa();
  const out = join(work, 'edge');
  const r = await keyglass(
    [...issueArgs(dir, 'leaf', 'edge'), '--count', '5', '--out', out, '--insecure-no-passphrase'],
    {
      env: CA_PW,
    },
  );
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /issued 5 certificates keyglass:\/\/g\/leaf\/edge-0 … edge-4/);
  const ca = CertificateAuthority.open(dir);
  t.deepEqual(
    ca.records().map((c) => c.name),
    ['edge-0', 'edge-1', 'edge-2', 'edge-3', 'edge-4'],
  );
  for (let i = 0; i < 5; i++) {
    const cert = parseCertificatesPem(readFileSync(`${out}-${i}.pem`, 'utf8'))[0]!;
    t.is(cert.serial, ca.records()[i]!.serial);
    t.true(existsSync(join(dir, 'certs', `${cert.serial}.pem`)));
    t.is(statSync(`${out}-${i}.key`).mode & 0o777, 0o600);
  }
  // edge-3 is already active: a batch that includes it fails as a whole.
  const before = snapshot(dir);
  const clash = await keyglass(
    [
      ...issueArgs(dir, 'leaf', 'edge'),
      '--count',
      '6',
      '--out',
      join(work, 'again'),
      '--insecure-no-passphrase',
    ],
    { env: CA_PW },
  );
  assertCleanFailure(t, clash, /an active certificate for g\/edge-0 exists/);
  t.deepEqual(snapshot(dir), before, 'the CA directory is unchanged');
  t.false(existsSync(join(work, 'again-5.pem')));
  for (const bad of ['0', '10001', '1e3', 'ten']) {
    const b = await keyglass([...issueArgs(dir, 'leaf', 'x'), '--count', bad], { env: CA_PW });
    assertCleanFailure(t, b, /--count must be a whole number from 1 to 10000/);
  }
});

test('issueMany refuses a name twice in one batch and leaves the store as it was', async (t) => {
  const { dir } = await newCa();
  const ca = CertificateAuthority.open(dir);
  const key = ca.unlock('ca secret phrase');
  const before = snapshot(dir);
  const err = await t.throwsAsync(
    ca.issueMany(
      [
        { group: 'g', role: 'leaf', name: 'a' },
        { group: 'g', role: 'leaf', name: 'b' },
        { group: 'g', role: 'leaf', name: 'a' },
      ],
      key,
    ),
  );
  t.regex(err!.message, /g\/a appears twice in this batch; nothing was issued/);
  t.deepEqual(snapshot(dir), before);
  const ok = await ca.issueMany(
    Array.from({ length: 50 }, (_, i) => ({ group: 'g', role: 'leaf' as const, name: `m-${i}` })),
    key,
  );
  t.is(new Set(ok.map((r) => r.record.serial)).size, 50);
  t.is(ca.records().length, 50);
});
