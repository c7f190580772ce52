/**
 * RevocationRegistry pieces the leaf plane uses: installing verified CRLs all-or-none, the CRL
 * number never going backwards (isOlder / isNewer), lookups by serial alone, the DER kept.
 */
import test from 'ava';
import { CrlError, RevocationRegistry, verifyCrl } from '../../auth/index.js';
import { makeCa, makeCrl } from './pki-helpers.js';

test('verified CRLs install only forward; serial lookups span every issuer', async (t) => {
  const ca = await makeCa('Registry CA');
  const other = await makeCa('Other CA');
  const reg = new RevocationRegistry();
  const v2 = await verifyCrl((await makeCrl(ca, ['0a'], 2n)).der, [ca.info]);
  const v3 = await verifyCrl((await makeCrl(ca, ['0a', '0b'], 3n)).der, [ca.info]);
  const o1 = await verifyCrl((await makeCrl(other, ['0c'], 1n)).der, [other.info]);
  t.true(reg.isNewer(v2));
  t.false(reg.isOlder(v2));
  t.deepEqual(
    reg.install([v2]).map((r) => r.serial),
    ['a'],
  );
  t.deepEqual(
    reg.install([v3]).map((r) => r.serial),
    ['b'],
  );
  t.true(reg.isOlder(v2), 'number 2 after 3 is a rollback');
  t.false(reg.isNewer(v3), 'the same number is not newer');
  t.throws(() => reg.install([o1, v2]), { instanceOf: CrlError, message: /older than the installed 3/ });
  t.false(reg.isRevokedSerial('c'), 'a refused batch installs nothing');
  reg.install([o1]);
  t.true(reg.isRevokedSerial('a') && reg.isRevokedSerial('b') && reg.isRevokedSerial('c'));
  t.false(reg.isRevokedSerial('d'));
  t.deepEqual(
    reg.installed().map((c) => c.crlNumber),
    [3n, 1n],
  );
  t.deepEqual(reg.crlFor(ca.info)!.der, v3.der);
});
