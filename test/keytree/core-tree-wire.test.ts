import test from 'ava';
import { CryptoError, loadSuite } from '../../crypto/index.js';
import { DecodeError } from '../../wire/index.js';
import {
  CoreTreeError,
  ExporterPairwise,
  PairwiseError,
  X25519Pairwise,
  decodeCoreRekey,
  decodeOffer,
  encodeCoreRekey,
  encodeOffer,
  openWrap,
  type CoreRekeyEffect,
} from '../../keytree/index.js';
import { CoreCluster } from '../../sim/core-tree-driver.js';

test('pairwise X25519: both sides derive one key; renewal keeps the previous one; forgeries refused', async (t) => {
  const suite = await loadSuite();
  const seeds = new Map(['a', 'b', 'c'].map((m) => [m, suite.randomBytes(32)]));
  const pub = (m: string): Uint8Array | undefined =>
    seeds.has(m) ? suite.ed25519PublicKey(seeds.get(m)!) : undefined;
  const make = (me: string): X25519Pairwise =>
    new X25519Pairwise({
      suite,
      me,
      sign: (x) => suite.ed25519Sign(seeds.get(me)!, x),
      verifyKeyOf: pub,
      random: () => 0.5,
      lifetimeMs: 1000,
      renewBeforeMs: 200,
      jitterMs: 100,
    });
  const a = make('a');
  const b = make('b');
  const offerA = a.tick(0)!;
  const offerB = b.tick(0)!;
  // both open at once: each receives the other's offer (through the codec)
  t.is(a.receive(decodeOffer(encodeOffer(offerB)), 1), 'accepted');
  t.is(b.receive(decodeOffer(encodeOffer(offerA)), 1), 'accepted');
  const kab = a.current('b')!;
  t.deepEqual(kab.key, b.current('a')!.key);
  t.deepEqual(kab.id, b.current('a')!.id);
  t.is(a.receive(offerB, 2), 'stale');
  t.is(a.tick(500), undefined, 'not yet due');
  const renewed = a.tick(800)!; // 1000 − 200 − 50 = 750
  t.is(renewed.epoch, 2);
  t.is(b.receive(renewed, 801), 'accepted');
  t.deepEqual(a.current('b')!.key, b.current('a')!.key);
  t.notDeepEqual(a.current('b')!.key, kab.key);
  t.deepEqual(b.byId('a', kab.id)?.key, kab.key, 'previous key still found by id');
  const forged = { ...renewed, epoch: 9 };
  t.throws(() => b.receive(forged, 802), { instanceOf: PairwiseError });
  t.throws(() => b.receive({ ...offerA, member: 'z' }, 802), { instanceOf: PairwiseError });
  t.is(b.receive(make('c').tick(0)!, 5000), 'expired');
  b.tick(1200); // b's copy of a's renewed offer is valid until 1800; b's own offer renews
  t.truthy(b.current('a'));
  b.tick(1900);
  t.is(b.current('a'), undefined, 'expired peer offers drop their keys');
  t.throws(() => decodeOffer(encodeOffer(offerA).subarray(1)), { instanceOf: DecodeError });
});

test('pairwise from a TLS exporter secret is symmetric', async (t) => {
  const suite = await loadSuite();
  const secret = suite.randomBytes(32);
  const a = new ExporterPairwise(suite, 'a');
  const b = new ExporterPairwise(suite, 'b');
  t.deepEqual(a.installExporter('b', secret, 1), { ...b.installExporter('a', secret, 1), peer: 'b' });
  t.notDeepEqual(a.installExporter('b', secret, 2).key, b.current('a')!.key);
  t.throws(() => a.installExporter('b', new Uint8Array(8), 3), { instanceOf: CryptoError });
});

test('malformed rekey messages are DecodeErrors; a wrong key is a CryptoError', async (t) => {
  const suite = await loadSuite();
  const c = new CoreCluster(suite);
  const members = ['a', 'b', 'c', 'd'];
  for (const m of members) c.addNode(m);
  c.viewChange(members);
  c.viewChange(['a', 'b', 'c']);
  const w = c.wraps.at(-1)!;
  t.throws(() => openWrap(suite, w.session, w.wrap, suite.randomBytes(32)), { instanceOf: CryptoError });
  const otherSession = w.session.slice();
  otherSession[15] = (otherSession[15] ?? 0) ^ 1;
  t.throws(() => openWrap(suite, otherSession, w.wrap, suite.randomBytes(32)), { instanceOf: CryptoError });
  // capture a real bundle by running a view change by hand
  const session = new Uint8Array(16).fill(7);
  const view = {
    session,
    leader: 'a',
    members: ['a', 'b', 'c'],
    lineages: new Map(['a', 'b', 'c'].map((m) => [m, c.node(m).member.lineageTag()])),
    fullRefresh: true,
  };
  // a full refresh makes every piece a singleton: the bundle follows the announce at once
  const out: CoreRekeyEffect[] = [];
  for (const m of view.members) out.push(...c.node(m).member.start(view));
  const announce = out.find((e) => e.type === 'multicast')!;
  t.is(announce.type, 'multicast');
  const bytes = (announce as { message: Uint8Array }).message;
  t.is(decodeCoreRekey(bytes).type, 'announce');
  t.deepEqual(encodeCoreRekey(decodeCoreRekey(bytes)), bytes);
  for (let cut = 0; cut < bytes.length; cut++)
    t.throws(() => c.node('b').member.receive('a', bytes.subarray(0, cut)), { instanceOf: DecodeError });
  const extra = new Uint8Array(bytes.length + 1);
  extra.set(bytes);
  t.throws(() => decodeCoreRekey(extra), { instanceOf: DecodeError });
  const badVersion = bytes.slice();
  badVersion[0] = 9;
  t.throws(() => decodeCoreRekey(badVersion), { instanceOf: DecodeError, message: /bad-version/ });
  // an announce from a non-leader is refused
  t.throws(() => c.node('b').member.receive('c', bytes), {
    instanceOf: CoreTreeError,
    message: /not-leader/,
  });
  // a bundle whose wraps were tampered with fails authentication at the member
  const b = c.node('b').member;
  b.receive('a', bytes);
  const multicasts = out.filter((e) => e.type === 'multicast');
  t.is(multicasts.length, 2);
  const m = decodeCoreRekey((multicasts[1] as { message: Uint8Array }).message);
  if (m.type !== 'bundle') return t.fail('second multicast is not the bundle');
  const tampered = {
    ...m,
    wraps: m.wraps.map((x) => ({ ...x, sealed: x.sealed.map((v, i) => (i === 30 ? v ^ 1 : v)) })),
  };
  t.throws(() => b.receive('a', encodeCoreRekey(tampered)), { instanceOf: CryptoError });
});
