/**
 * The fast certificate path: the minimal DER reader must see exactly what @peculiar/x509 (the
 * general ASN.1 parser it replaced on the hot path) sees, fail only with CertificateParseError on
 * damaged bytes, and the verifier's path cache must never let a certificate through that the
 * uncached verifier would refuse (expiry and revocation are checked on every call).
 */
import test from 'ava';
import fc from 'fast-check';
import {
  CertificateParseError,
  PeerVerifier,
  RevocationRegistry,
  parseCertificate,
  toPem,
  type CertInfo,
} from '../../auth/index.js';
import { LruMap } from '../../auth/lru.js';
import { buildCrl, x509 } from '../../ca-tools/index.js';
import { makeCa, makeMember } from './pki-helpers.js';

const HOUR = 3_600_000;
const leafExpect = { roles: ['leaf'] as const, peerSide: 'client' as const };

/** The verification fields as @peculiar/x509 reads them (the reference). */
function reference(der: Uint8Array): Record<string, unknown> {
  const pc = new x509.X509Certificate(der);
  const bc = pc.getExtension(x509.BasicConstraintsExtension);
  const ku = pc.getExtension(x509.KeyUsagesExtension);
  const eku = pc.getExtension(x509.ExtendedKeyUsageExtension);
  const san = pc.getExtension(x509.SubjectAlternativeNameExtension);
  const names = san ? san.names.items : [];
  return {
    serial: pc.serialNumber.toLowerCase().replace(/^0+(?=.)/, ''),
    subject: pc.subject,
    issuer: pc.issuer,
    commonName: pc.subjectName.getField('CN')[0],
    notBefore: pc.notBefore.getTime(),
    notAfter: pc.notAfter.getTime(),
    isCa: bc?.ca === true,
    pathLength: bc?.ca === true ? bc.pathLength : undefined,
    keyUsage: ku?.usages,
    extKeyUsage: eku ? Array.from(eku.usages, String) : undefined,
    sanUris: names.filter((n) => n.type === 'url').map((n) => n.value),
    dnsNames: names.filter((n) => n.type === 'dns').map((n) => n.value),
    ipAddresses: names.filter((n) => n.type === 'ip').map((n) => n.value),
    selfIssued: pc.subject === pc.issuer,
  };
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a).equals(Buffer.from(b));
}

function fast(c: CertInfo): Record<string, unknown> {
  return {
    serial: c.serial,
    subject: c.subject,
    issuer: c.issuer,
    commonName: c.commonName,
    notBefore: c.notBefore.getTime(),
    notAfter: c.notAfter.getTime(),
    isCa: c.isCa,
    pathLength: c.pathLength,
    keyUsage: c.keyUsage,
    extKeyUsage: c.extKeyUsage,
    sanUris: c.sanUris,
    dnsNames: c.dnsNames,
    ipAddresses: c.ipAddresses,
    selfIssued: c.selfIssued,
  };
}

test('the DER reader sees what @peculiar/x509 sees (display names too), for every certificate shape we issue or accept', async (t) => {
  const root = await makeCa('Root CA', { pathLength: 1 });
  const sub = await makeCa('Sub CA', { issuer: root, alg: 'p256' });
  const rsaCa = await makeCa('RSA CA', { alg: 'rsa3072' });
  const members = await Promise.all([
    makeMember(root, 'leaf-1'),
    makeMember(sub, 'core-1', { role: 'core', group: 'grp.a' }),
    makeMember(rsaCa, 'rsa-1', { alg: 'rsa3072' }),
    makeMember(root, 'no-eku', { extKeyUsage: [] }),
    makeMember(root, 'two-uris', { sanUris: ['keyglass://g/leaf/a', 'https://example.org/x'] }),
    makeMember(root, 'no-uri', { sanUris: [] }),
    makeMember(root, 'ku-only-cert-sign', { keyUsage: 32 }),
    makeMember(root, 'selfie', { selfSigned: true }),
    makeMember(root, 'hosts', { hosts: ['localhost', '::1', '2001:db8::1:0:0:1', 'fe80:0:1::', '10.1.2.3'] }),
    makeMember(root, 'old', {
      notBefore: new Date(Date.UTC(1999, 0, 2)),
      notAfter: new Date(Date.UTC(2051, 5, 7)),
    }),
  ]);
  for (const der of [root.der, sub.der, rsaCa.der, ...members.map((m) => m.der)]) {
    t.deepEqual(fast(parseCertificate(der)), reference(der));
  }
});

test('damaged certificates fail with CertificateParseError only (never another exception)', async (t) => {
  const ca = await makeCa('CA');
  const { der } = await makeMember(ca, 'm1');
  const v = new PeerVerifier({ anchors: [ca.info] });
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: der.length - 1 }),
      fc.integer({ min: 1, max: 255 }),
      fc.integer({ min: 1, max: der.length }),
      (at, flip, cut) => {
        for (const bytes of [
          Uint8Array.from(der, (b, i) => (i === at ? b ^ flip : b)),
          der.subarray(0, cut),
        ]) {
          try {
            parseCertificate(bytes);
          } catch (e) {
            if (!(e instanceof CertificateParseError)) return false;
          }
          // The verifier answers with a verdict, never an exception (it runs in TLS callbacks).
          const r = v.verify([bytes], leafExpect);
          if (r.ok && !bytesEqual(bytes, der)) return false;
        }
        return true;
      },
    ),
    { numRuns: 300 },
  );
  t.throws(() => parseCertificate(new Uint8Array(0)), { instanceOf: CertificateParseError });
});

test('a cached path still refuses once the certificate expires or its serial is revoked', async (t) => {
  const ca = await makeCa('CA');
  const m = await makeMember(ca, 'm1');
  const reg = new RevocationRegistry();
  let now = Date.now();
  const v = new PeerVerifier({ anchors: [ca.info], revocation: reg, now: () => now });
  t.true(v.verify([m.der], leafExpect).ok);
  t.true(v.verify([m.der], leafExpect).ok); // from the cache
  now += 25 * HOUR;
  const late = v.verify([m.der], leafExpect);
  t.is(late.ok ? 'ok' : late.reason, 'expired');
  now = Date.now();
  const crl = await buildCrl({
    caCertificateDer: ca.der,
    caPrivateKey: ca.key,
    crlNumber: 1n,
    thisUpdate: new Date(now - HOUR),
    nextUpdate: new Date(now + HOUR),
    entries: [{ serial: m.info.serial, revokedAt: new Date(now - 1000), reason: 'keyCompromise' }],
  });
  await reg.load(toPem('X509 CRL', crl), [ca.info]);
  const revoked = v.verify([m.der], leafExpect);
  t.is(revoked.ok ? 'ok' : revoked.reason, 'revoked');
  // Purpose is not cached either: the same chain for another role is refused.
  const asCore = v.verify([m.der], { roles: ['core'], peerSide: 'client' });
  t.false(asCore.ok);
});

test('a refused chain is not remembered as good; the path cache is bounded (least recently used goes)', async (t) => {
  const ca = await makeCa('CA');
  const other = await makeCa('Other');
  const foreign = await makeMember(other, 'm1');
  const v = new PeerVerifier({ anchors: [ca.info], pathCacheSize: 2 });
  for (let i = 0; i < 2; i++) {
    const r = v.verify([foreign.der], leafExpect);
    t.is(r.ok ? 'ok' : r.reason, 'untrusted');
  }
  const lru = new LruMap<string, number>(2);
  lru.set('a', 1);
  lru.set('b', 2);
  t.is(lru.get('a'), 1); // a is now the young one
  lru.set('c', 3);
  t.deepEqual([lru.get('a'), lru.get('b'), lru.get('c'), lru.size], [1, undefined, 3, 2]);
  t.throws(() => new LruMap(-1), { instanceOf: RangeError });
});
