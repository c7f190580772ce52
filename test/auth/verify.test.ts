import test from 'ava';
import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  PeerVerifier,
  RevocationRegistry,
  CredentialError,
  credentialsFromPem,
  encodePrivateKey,
  loadCredentials,
  parseAdmissionPolicy,
  policyRefusal,
  globMatch,
  PolicyError,
  reasonFromNodeTlsCode,
  toPem,
  stageFile,
  writeFileDurable,
  withDirLock,
  DirLockedError,
  parseIdentityUri,
} from '../../auth/index.js';
import { buildCrl, generateKeyPair } from '../../ca-tools/index.js';
import { makeCa, makeMember } from './pki-helpers.js';

const HOUR = 3_600_000;
const leafExpect = { roles: ['leaf'] as const, peerSide: 'client' as const };

test('a truncated certificate is refused as malformed, at load and at verification', async (t) => {
  const ca = await makeCa('CA');
  const m = await makeMember(ca, 'm1');
  const pem = toPem('CERTIFICATE', m.der);
  const key = m.credentials.keyPem;
  const e = t.throws(() => credentialsFromPem(pem.slice(0, pem.length - 80), key), {
    instanceOf: CredentialError,
  });
  t.is(e?.kind, 'malformed');
  const v = new PeerVerifier({ anchors: [ca.info] });
  const r = v.verify([m.der.subarray(0, m.der.length - 20)], { roles: ['leaf'], peerSide: 'client' });
  t.deepEqual([r.ok, r.ok ? '' : r.reason], [false, 'malformed']);
});

test('encrypted keys load with the right passphrase only; files are checked against the certificate', async (t) => {
  const ca = await makeCa('CA');
  const m = await makeMember(ca, 'm1');
  const dir = mkdtempSync(join(tmpdir(), 'kg-auth-'));
  const certFile = join(dir, 'm.pem');
  const keyFile = join(dir, 'm.key');
  writeFileSync(certFile, m.credentials.certChainPem);
  writeFileSync(keyFile, encodePrivateKey(m.credentials.privateKey, 'a secret phrase'));
  t.is(loadCredentials({ certFile, keyFile, passphrase: 'a secret phrase' }).identity?.name, 'm1');
  t.is(
    t.throws(() => loadCredentials({ certFile, keyFile, passphrase: 'wrong' }), {
      instanceOf: CredentialError,
    })?.kind,
    'bad-passphrase',
  );
  t.is(
    t.throws(() => loadCredentials({ certFile, keyFile }), { instanceOf: CredentialError })?.kind,
    'bad-passphrase',
  );
  writeFileSync(keyFile, encodePrivateKey(generateKeyPair('ed25519').privateKey, undefined));
  t.is(
    t.throws(() => loadCredentials({ certFile, keyFile }), { instanceOf: CredentialError })?.kind,
    'key-mismatch',
  );
  t.is(
    t.throws(() => loadCredentials({ certFile: join(dir, 'nope'), keyFile }), { instanceOf: CredentialError })
      ?.kind,
    'unreadable',
  );
});

test('clock skew is bounded and configurable', async (t) => {
  const ca = await makeCa('CA');
  const now = Date.now();
  const m = await makeMember(ca, 'm1', { notBefore: new Date(now + 30_000) });
  t.true(new PeerVerifier({ anchors: [ca.info] }).verify([m.der], leafExpect).ok);
  const strict = new PeerVerifier({ anchors: [ca.info], clockSkewMs: 5_000 }).verify([m.der], leafExpect);
  t.is(strict.ok ? 'ok' : strict.reason, 'not-yet-valid');
  const later = new PeerVerifier({ anchors: [ca.info], now: () => now + 25 * HOUR }).verify(
    [m.der],
    leafExpect,
  );
  t.is(later.ok ? 'ok' : later.reason, 'expired');
  t.throws(() => new PeerVerifier({ anchors: [ca.info], clockSkewMs: 3_600_000 }), {
    instanceOf: RangeError,
  });
});

test('an expired CA makes its members expired; pathLength 0 forbids intermediates', async (t) => {
  const root = await makeCa('Root', { pathLength: 0 });
  const sub = await makeCa('Sub', { issuer: root });
  const m = await makeMember(sub, 'm1');
  const r = new PeerVerifier({ anchors: [root.info] }).verify([m.der, sub.der], leafExpect);
  t.is(r.ok ? 'ok' : r.reason, 'untrusted');
  const oldCa = await makeCa('Old', { notAfter: new Date(Date.now() - HOUR) });
  const m2 = await makeMember(oldCa, 'm2');
  const r2 = new PeerVerifier({ anchors: [oldCa.info] }).verify([m2.der], leafExpect);
  t.is(r2.ok ? 'ok' : r2.reason, 'expired');
});

test('CRLs: stale CRLs refuse (or not, if configured), foreign or tampered CRLs are rejected', async (t) => {
  const ca = await makeCa('CA');
  const other = await makeCa('Other');
  const m = await makeMember(ca, 'm1');
  const now = Date.now();
  const crl = await buildCrl({
    caCertificateDer: ca.der,
    caPrivateKey: ca.key,
    crlNumber: 5n,
    thisUpdate: new Date(now - 2 * HOUR),
    nextUpdate: new Date(now - HOUR),
    entries: [],
  });
  const reg = new RevocationRegistry();
  await reg.load(toPem('X509 CRL', crl), [ca.info]);
  const r = new PeerVerifier({ anchors: [ca.info], revocation: reg }).verify([m.der], leafExpect);
  t.is(r.ok ? 'ok' : r.reason, 'crl-stale');
  t.true(
    new PeerVerifier({ anchors: [ca.info], revocation: reg, refuseStaleCrl: false }).verify(
      [m.der],
      leafExpect,
    ).ok,
  );
  const r2 = new PeerVerifier({
    anchors: [ca.info],
    revocation: new RevocationRegistry(),
    requireCrl: true,
  }).verify([m.der], leafExpect);
  t.is(r2.ok ? 'ok' : r2.reason, 'crl-stale');
  await t.throwsAsync(new RevocationRegistry().load(toPem('X509 CRL', crl), [other.info]), {
    message: /not a trusted CA/,
  });
  const tampered = Uint8Array.from(crl);
  tampered[tampered.length - 5] = (tampered[tampered.length - 5] as number) ^ 1;
  await t.throwsAsync(new RevocationRegistry().load(toPem('X509 CRL', tampered), [ca.info]), {
    message: /does not verify|parse/,
  });
});

test('admission policy: roles per group, deny beats allow, globs are linear', (t) => {
  const p = parseAdmissionPolicy({
    groups: {
      prod: { roles: ['leaf'], allow: ['edge-*'], deny: ['edge-old-?'] },
      '*': { roles: ['operator'] },
    },
  });
  t.is(policyRefusal(p, { group: 'prod', role: 'leaf', name: 'edge-1' }), undefined);
  t.regex(policyRefusal(p, { group: 'prod', role: 'leaf', name: 'edge-old-1' }) ?? '', /deny/);
  t.regex(policyRefusal(p, { group: 'prod', role: 'leaf', name: 'web-1' }) ?? '', /allow/);
  t.regex(policyRefusal(p, { group: 'prod', role: 'core', name: 'edge-1' }) ?? '', /role/);
  t.is(policyRefusal(p, { group: 'dev', role: 'operator', name: 'alice' }), undefined);
  t.throws(() => parseAdmissionPolicy({ groups: { g: { roles: ['king'] } } }), { instanceOf: PolicyError });
  t.true(globMatch('a*b*c', 'axxbyyc'));
  t.false(globMatch('a*a*a*a*a*b', 'a'.repeat(5000)));
});

test('identity URIs and node TLS codes', (t) => {
  t.deepEqual(parseIdentityUri('keyglass://g/leaf/n-1'), { group: 'g', role: 'leaf', name: 'n-1' });
  t.is(parseIdentityUri('keyglass://g/king/n'), undefined);
  t.is(parseIdentityUri('keyglass://g/leaf/../x'), undefined);
  t.is(reasonFromNodeTlsCode('CERT_HAS_EXPIRED'), 'expired');
  t.is(reasonFromNodeTlsCode('DEPTH_ZERO_SELF_SIGNED_CERT'), 'self-signed');
  t.is(reasonFromNodeTlsCode('KEYGLASS_PEER_WRONG_ROLE'), 'wrong-role');
  t.is(reasonFromNodeTlsCode('SOMETHING_NEW'), 'untrusted');
});

test('durable writes: atomic replace, 0600 secrets, aborted stages leave nothing; the dir lock excludes', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kg-durable-'));
  const f = join(dir, 'secret');
  writeFileDurable(f, 'one', 0o600);
  writeFileDurable(f, 'two', 0o600);
  t.is(readFileSync(f, 'utf8'), 'two');
  t.is(statSync(f).mode & 0o777, 0o600);
  const s = stageFile(join(dir, 'other'), 'x');
  s.abort();
  t.deepEqual(readdirSync(dir), ['secret']);
  await withDirLock(dir, async () => {
    await t.throwsAsync(
      withDirLock(dir, () => 1),
      { instanceOf: DirLockedError },
    );
  });
  writeFileSync(join(dir, '.lock'), '999999999\n'); // a dead owner's lock is taken over
  t.is(await withDirLock(dir, () => 7), 7);
});
