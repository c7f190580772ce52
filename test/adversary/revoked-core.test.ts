/**
 * Issue 17, finding 1: a core server whose certificate the CA revoked (its key stolen) keeps
 * running — a malicious build, or one that never loaded the CRL. Leaves must refuse it: at the
 * TLS handshake once they hold a CRL that lists it (given as `trust.crlPem`, or learned in band
 * from a good server), by dropping a live link when a newer CRL revokes their server, and by
 * refusing rekeys and data-stream entries signed with its key. An older CRL offered in band (a
 * rollback) changes nothing. Real mutual TLS and real UDP on 127.0.0.1 (see revoked-core-kit.ts).
 */
import test from 'ava';
import { coreWorld, crlOf, RogueRelay, settle } from './revoked-core-kit.js';

const id = (name: string): string => `g/core/${name}`;

test('a leaf holding a CRL (trust.crlPem) refuses a revoked core server at the handshake', async (t) => {
  const w = await coreWorld(t, ['evil', 'good']);
  const evil = w.server('evil');
  const crl = await crlOf(w.ca, [evil.serial], 2n);
  const leaf = await w.leaf('l1', ['evil', 'good'], { crlPem: crl.pem });
  t.is(leaf.client.server, id('good'), 'the leaf linked to the good server, not the revoked one');
  t.false(evil.received.includes('join'), 'the revoked server never saw a join');
  t.true(leaf.client.stats.serversRevoked >= 1);
});

test('a CRL learned in band from a good server’s welcome: failover skips the revoked server', async (t) => {
  const w = await coreWorld(t, ['good-1', 'evil', 'good-2']);
  const evil = w.server('evil');
  const crl = await crlOf(w.ca, [evil.serial], 5n);
  w.server('good-1').crls = [crl.der];
  const leaf = await w.leaf('l1', ['good-1', 'evil', 'good-2']);
  await settle(() => leaf.client.stats.crlsApplied === 1, 2000);
  await w.server('good-1').stop(); // fail over: 'evil' is next in the list
  await settle(() => leaf.connected.length >= 2, 8000);
  t.deepEqual(leaf.connected, [id('good-1'), id('good-2')], 'resumed on good-2; the revoked server skipped');
  t.false(evil.received.includes('join'), 'the revoked server never saw a join');
  t.is(leaf.client.stats.crlsApplied, 1);
  t.true(leaf.client.stats.serversRevoked >= 1);
  t.false(
    leaf.client.trustedSigners.some((s) => s.name === 'evil'),
    'its signing key is no longer accepted',
  );
});

test('a server revoked while linked: the link is dropped and the leaf fails over', async (t) => {
  const w = await coreWorld(t, ['evil', 'good']);
  const evil = w.server('evil');
  const leaf = await w.leaf('l1', ['evil', 'good']);
  t.is(leaf.client.server, id('evil'));
  const crl = await crlOf(w.ca, [evil.serial], 7n);
  t.deepEqual(await leaf.client.updateCrl(crl.pem), { applied: 1, ignored: 0 });
  t.deepEqual(leaf.client.trustedSigners, [], 'nothing the revoked server listed is trusted meanwhile');
  await settle(() => leaf.client.server === id('good'), 8000);
  t.is(leaf.client.server, id('good'), 'failed over to the good server');
  t.deepEqual(leaf.connected, [id('evil'), id('good')]);
  t.deepEqual(
    leaf.client.trustedSigners.map((s) => s.name),
    ['good'],
    'the good server’s list, filtered through the CRL',
  );
  t.true(leaf.client.stats.serversRevoked >= 1);
});

test('rekeys and stream entries signed by a revoked server’s key are refused', async (t) => {
  const w = await coreWorld(t, ['good', 'evil']);
  const evil = w.server('evil');
  // The good server's welcome carries the CRL; the signer list it sends still names 'evil' (a
  // server that has not filtered it yet): the leaf must filter it through the CRL itself.
  w.server('good').crls = [(await crlOf(w.ca, [evil.serial], 3n)).der];
  const leaf = await w.leaf('l1', ['good']);
  await settle(() => leaf.client.stats.crlsApplied === 1, 2000);
  t.true(await settle(() => leaf.client.gossip?.self !== undefined, 3000), 'gossip link started');
  const epoch = leaf.client.epoch!;
  const groupKey = w.group.groupKeys.get(epoch)!;
  t.truthy(groupKey);

  const rogue = await RogueRelay.open(w.suite, evil);
  t.teardown(() => rogue.close());
  const refusedBefore = leaf.client.stats.gossipRefused;
  const forged = rogue.forgeRekey(leaf.client, groupKey);
  rogue.injectData(leaf.client, epoch, groupKey, 'from a revoked server');
  await settle(() => leaf.keys.some((k) => k.epoch === forged) || leaf.messages.length > 0, 1500);
  t.false(
    leaf.keys.some((k) => k.epoch === forged),
    `the forged epoch ${forged} signed by the revoked key was applied`,
  );
  t.is(leaf.messages.length, 0, 'a data entry signed by the revoked key was delivered');
  t.is(leaf.client.epoch, epoch);
  t.true(
    await settle(() => leaf.client.stats.gossipRefused >= refusedBefore + 2, 1500),
    'both items refused',
  );
  t.false(leaf.client.trustedSigners.some((s) => s.name === 'evil'));
});

test('CRL rollback: an older CRL offered in band or by the application is ignored', async (t) => {
  const w = await coreWorld(t, ['good-1', 'evil', 'good-2']);
  const evil = w.server('evil');
  const newer = await crlOf(w.ca, [evil.serial], 9n);
  const older = await crlOf(w.ca, [], 8n); // from before the revocation: would un-revoke 'evil'
  w.server('good-1').crls = [older.der];
  const leaf = await w.leaf('l1', ['good-1', 'evil', 'good-2'], { crlPem: newer.pem });
  await settle(() => leaf.client.stats.crlsIgnored === 1, 2000);
  await w.server('good-1').stop();
  await settle(() => leaf.connected.length >= 2, 8000);
  t.deepEqual(leaf.connected, [id('good-1'), id('good-2')], 'the revoked server stays refused');
  t.false(evil.received.includes('join'));
  t.is(leaf.client.stats.crlsIgnored, 1, 'the welcome’s older CRL was ignored');
  t.deepEqual(await leaf.client.updateCrl(older.pem), { applied: 0, ignored: 1 });
  t.deepEqual(
    leaf.client.crls.map((c) => c.crlNumber),
    [9n],
  );
});

test('requireFreshCrl: a CRL past its nextUpdate refuses every server', async (t) => {
  const w = await coreWorld(t, ['good']);
  const stale = await crlOf(w.ca, [], 4n, { nextUpdate: new Date(Date.now() - 60_000) });
  const err = await t.throwsAsync(
    w.leaf('l1', ['good'], { crlPem: stale.pem, options: { requireFreshCrl: true, maxAttempts: 2 } }),
  );
  t.regex(err!.message, /no core server welcomed us/);
  // Without the option a stale CRL still revokes what it lists, and servers are accepted.
  const leaf = await w.leaf('l2', ['good'], { crlPem: stale.pem });
  t.is(leaf.client.server, id('good'));
});

test('requireFreshCrl: a linked server is left when the CRL held goes stale', async (t) => {
  const w = await coreWorld(t, ['good']);
  const soon = await crlOf(w.ca, [], 6n, { nextUpdate: new Date(Date.now() + 1500) });
  const leaf = await w.leaf('l1', ['good'], {
    crlPem: soon.pem,
    options: { requireFreshCrl: true, maxAttempts: 1 },
  });
  t.is(leaf.client.server, id('good'));
  t.true(
    await settle(() => leaf.errors.some((e) => /stale-crl/.test(e.message)), 5000),
    'the link ended when the CRL went past nextUpdate',
  );
  t.true(await settle(() => leaf.client.server === undefined, 3000), 'and no server takes it back');
});
