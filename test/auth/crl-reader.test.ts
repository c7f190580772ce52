/**
 * auth/ reads and verifies CRLs itself (DER reader + node's crypto), so that leaf applications
 * never load @peculiar/x509. These tests hold it to what @peculiar/x509 (the CA's writer and the
 * reader it replaced) sees, for every signature algorithm a CA may use, and make sure damaged or
 * forged CRLs fail with CrlError only.
 */
import test from 'ava';
import fc from 'fast-check';
import { webcrypto } from 'node:crypto';
import { CrlError, crlReasonName, parseCrl, verifyCrl, CRL_REASON_NAMES } from '../../auth/index.js';
import { buildCrl, REVOCATION_REASONS, x509, type KeyAlgorithm } from '../../ca-tools/index.js';
import { makeCa, type TestCa } from './pki-helpers.js';

const HOUR = 3_600_000;

/** A CRL of `ca` revoking one serial per reason `ca revoke` takes, by the production builder. */
async function crlOf(ca: TestCa, number: bigint): Promise<Uint8Array> {
  const now = Math.floor(Date.now() / 1000) * 1000;
  return buildCrl({
    caCertificateDer: ca.der,
    caPrivateKey: ca.key,
    crlNumber: number,
    thisUpdate: new Date(now - 60_000),
    nextUpdate: new Date(now + HOUR),
    entries: REVOCATION_REASONS.map((reason, i) => ({
      serial: (0xa0 + i).toString(16) + '0102030405060708',
      revokedAt: new Date(now - 1000 * (i + 1)),
      reason,
    })),
  });
}

/** The CRL as @peculiar/x509 reads it (the reference). */
function reference(der: Uint8Array): Record<string, unknown> {
  const crl = new x509.X509Crl(der);
  const num = crl.extensions.find((e) => e.type === '2.5.29.20');
  return {
    issuer: crl.issuer,
    thisUpdate: crl.thisUpdate.getTime(),
    nextUpdate: crl.nextUpdate?.getTime(),
    crlNumber: num ? BigInt(`0x${Buffer.from(num.value).subarray(2).toString('hex')}`) : undefined,
    entries: crl.entries.map((e) => [
      e.serialNumber.toLowerCase().replace(/^0+(?=.)/, ''),
      e.revocationDate.getTime(),
      e.reason ?? 0,
    ]),
  };
}

function ours(der: Uint8Array): Record<string, unknown> {
  const crl = parseCrl(der);
  return {
    issuer: crl.issuer,
    thisUpdate: crl.thisUpdate.getTime(),
    nextUpdate: crl.nextUpdate?.getTime(),
    crlNumber: crl.crlNumber,
    entries: crl.entries.map((e) => [e.serial, e.revokedAt.getTime(), e.reasonCode]),
  };
}

for (const alg of ['ed25519', 'p256', 'rsa3072'] as KeyAlgorithm[]) {
  test(`a ${alg} CA's CRL reads as @peculiar/x509 reads it and verifies; every reason keeps its name`, async (t) => {
    const ca = await makeCa(`CRL CA ${alg}`, { alg });
    const der = await crlOf(ca, 77n);
    t.deepEqual(ours(der), reference(der));
    const v = await verifyCrl(der, [ca.info]);
    t.is(v.crlNumber, 77n);
    // The reason `ca revoke --reason X` wrote comes back as X (caCompromise used to be lost).
    t.deepEqual(
      [...v.revoked.values()].map((e) => e.reason),
      [...REVOCATION_REASONS],
    );
    const other = await makeCa(`CRL CA ${alg}`, { alg }); // same name, another key
    await t.throwsAsync(verifyCrl(der, [other.info]), { instanceOf: CrlError, message: /does not verify/ });
  });
}

test('an RSASSA-PSS CRL (as another CA may sign) verifies; its parameters are checked', async (t) => {
  const ca = await makeCa('PSS CA', { alg: 'rsa3072' });
  const pkcs8 = ca.key.export({ format: 'der', type: 'pkcs8' });
  const signingKey = await webcrypto.subtle.importKey(
    'pkcs8',
    pkcs8,
    { name: 'RSA-PSS', hash: 'SHA-256' },
    false,
    ['sign'],
  );
  const crl = await x509.X509CrlGenerator.create({
    issuer: ca.info.subject,
    thisUpdate: new Date(Date.now() - 60_000),
    nextUpdate: new Date(Date.now() + HOUR),
    signingAlgorithm: { name: 'RSA-PSS', hash: 'SHA-256', saltLength: 32 } as Parameters<
      typeof x509.X509CrlGenerator.create
    >[0]['signingAlgorithm'],
    signingKey,
    entries: [{ serialNumber: '0a0b', revocationDate: new Date(), reason: x509.X509CrlReason.superseded }],
  });
  const der = new Uint8Array(crl.rawData);
  const v = await verifyCrl(der, [ca.info]);
  t.is(v.revoked.get('a0b')?.reason, 'superseded');
});

test('damaged CRLs fail with CrlError only, and never verify', async (t) => {
  const ca = await makeCa('CA');
  const der = await crlOf(ca, 5n);
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 0, max: der.length - 1 }),
      fc.integer({ min: 1, max: 255 }),
      fc.integer({ min: 0, max: der.length - 1 }),
      async (at, flip, cut) => {
        for (const bytes of [
          Uint8Array.from(der, (b, i) => (i === at ? b ^ flip : b)),
          der.subarray(0, cut),
        ]) {
          try {
            await verifyCrl(bytes, [ca.info]);
            return false; // any change to signed bytes, signature or structure must be refused
          } catch (e) {
            if (!(e instanceof CrlError)) return false;
          }
        }
        return true;
      },
    ),
    { numRuns: 300 },
  );
  t.is(crlReasonName(7), 'reason 7');
  t.is(CRL_REASON_NAMES[1], 'keyCompromise');
});
