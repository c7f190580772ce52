/** Input validation, bounds, helpers, and the loader. */
import test from 'ava';
import { ED25519_TORSION_SUBGROUP, ed25519 } from '@noble/curves/ed25519.js';
import { BoundedCache } from '../../crypto/bounded-cache.js';
import { ED25519_POLICY_CONSTANTS } from '../../crypto/ed25519-policy.js';
import {
  constantTimeEqual,
  CryptoError,
  HKDF_MAX_INFO_BYTES,
  HKDF_MAX_OUTPUT_BYTES,
  loadSuite,
  MAX_RANDOM_BYTES,
  randomBytes,
  randomXNonce,
  wipe,
  type Backend,
} from '../../crypto/index.js';
import { allSuites, hex, toHex } from './helpers.js';

const suites = await allSuites();
const bytes = (n: number) => new Uint8Array(n);

for (const s of suites) {
  test(`${s.name}: wrong key, nonce, seed and length arguments throw bad-length`, (t) => {
    const bad = (f: () => unknown, what: string) => {
      const err = t.throws(f, { instanceOf: CryptoError }, what);
      t.is(err?.code, 'bad-length', what);
    };
    for (const k of [0, 16, 31, 33]) {
      bad(() => s.aeadSeal(bytes(k), bytes(24), bytes(1)), `xchacha key ${k}`);
      bad(() => s.aeadOpen(bytes(k), bytes(24), bytes(16)), `xchacha open key ${k}`);
      bad(() => s.chachaSeal(bytes(k), bytes(12), bytes(1)), `chacha key ${k}`);
      bad(() => s.gcmSeal(bytes(k), bytes(12), bytes(1)), `gcm key ${k}`);
      bad(() => s.wrapKey(bytes(k), bytes(32)), `kek ${k}`);
      bad(() => s.unwrapKey(bytes(k), bytes(40)), `unwrap kek ${k}`);
      bad(() => s.ed25519Sign(bytes(k), bytes(1)), `seed ${k}`);
      bad(() => s.ed25519PublicKey(bytes(k)), `seed ${k}`);
      bad(() => s.x25519PublicKey(bytes(k)), `x25519 secret ${k}`);
      bad(() => s.x25519(bytes(k), bytes(32)), `x25519 secret ${k}`);
      bad(() => s.x25519(bytes(32), bytes(k)), `x25519 peer ${k}`);
    }
    for (const n of [0, 12, 23, 25]) bad(() => s.aeadSeal(bytes(32), bytes(n), bytes(1)), `xnonce ${n}`);
    for (const n of [0, 8, 11, 13, 24]) {
      bad(() => s.chachaOpen(bytes(32), bytes(n), bytes(16)), `chacha nonce ${n}`);
      bad(() => s.gcmOpen(bytes(32), bytes(n), bytes(16)), `gcm nonce ${n}`);
    }
    for (const n of [0, 8, 15, 20, 1032])
      bad(() => s.wrapKey(bytes(32), bytes(n)), `wrapped key length ${n}`);
    for (const n of [0, -1, 1.5, HKDF_MAX_OUTPUT_BYTES + 1, Number.NaN]) {
      bad(() => s.hkdf(bytes(1), bytes(0), bytes(0), n), `hkdf length ${n}`);
    }
    bad(() => s.hkdf(bytes(1), bytes(0), bytes(HKDF_MAX_INFO_BYTES + 1), 32), 'hkdf info too long');
    t.is(
      s.hkdf(bytes(1), bytes(0), bytes(HKDF_MAX_INFO_BYTES), HKDF_MAX_OUTPUT_BYTES).length,
      HKDF_MAX_OUTPUT_BYTES,
    );
    for (const n of [-1, 0.5, MAX_RANDOM_BYTES + 1]) bad(() => s.randomBytes(n), `random ${n}`);
    bad(() => s.sha256('abc' as unknown as Uint8Array), 'a string is not bytes');
  });

  test(`${s.name}: Ed25519 verify returns false, never throws, on malformed input`, (t) => {
    const seed = bytes(32).fill(1);
    const publicKey = s.ed25519PublicKey(seed);
    const message = bytes(10);
    const signature = s.ed25519Sign(seed, message);
    t.true(s.ed25519Verify(publicKey, message, signature));
    t.false(s.ed25519Verify(publicKey.subarray(0, 31), message, signature));
    t.false(s.ed25519Verify(publicKey, message, signature.subarray(0, 63)));
    t.false(s.ed25519Verify(publicKey, message, new Uint8Array([...signature, 0])));
    t.false(s.ed25519Verify(bytes(32).fill(0xff), message, signature));
    t.false(s.ed25519Verify(null as unknown as Uint8Array, message, signature));
    t.false(s.ed25519Verify(publicKey, 'text' as unknown as Uint8Array, signature));
  });

  test(`${s.name}: randomBytes gives fresh bytes of the asked length`, (t) => {
    t.is(s.randomBytes(0).length, 0);
    const a = s.randomBytes(32);
    t.is(a.length, 32);
    t.notDeepEqual(a, s.randomBytes(32));
    t.is(s.randomBytes(70_000).length, 70_000); // crosses getRandomValues' 64 KiB limit
  });

  test(`${s.name}: outputs are standalone Uint8Arrays, not views into shared pools`, (t) => {
    const outputs = [
      s.sha256(bytes(3)),
      s.hmacSha256(bytes(3), bytes(3)),
      s.ed25519Sign(bytes(32), bytes(3)),
      s.x25519(bytes(32).fill(5), s.x25519PublicKey(bytes(32).fill(6))),
      s.chachaOpen(bytes(32), bytes(12), s.chachaSeal(bytes(32), bytes(12), bytes(5000))),
    ];
    for (const out of outputs) {
      t.is(Object.getPrototypeOf(out), Uint8Array.prototype);
      t.is(out.byteOffset, 0);
      t.is(out.buffer.byteLength, out.length);
    }
  });
}

test('loadSuite memoizes per backend and rejects unknown backends', async (t) => {
  t.is(await loadSuite(), await loadSuite('fast'));
  t.is(await loadSuite('noble'), await loadSuite('noble'));
  t.not(await loadSuite('fast'), await loadSuite('noble'));
  t.is((await loadSuite('fast')).name, 'fast');
  await t.throwsAsync(() => loadSuite('openssl' as Backend), { instanceOf: TypeError });
});

test('constantTimeEqual and wipe', (t) => {
  t.true(constantTimeEqual(hex('00ff'), hex('00ff')));
  t.false(constantTimeEqual(hex('00ff'), hex('00fe')));
  t.false(constantTimeEqual(hex('00ff'), hex('00ff00')));
  t.true(constantTimeEqual(new Uint8Array(0), new Uint8Array(0)));
  const a = hex('0102');
  const b = Uint32Array.of(7);
  wipe(a, b, undefined);
  t.is(toHex(a), '0000');
  t.is(b[0], 0);
  t.is(randomBytes(5).length, 5);
  t.is(randomXNonce().length, 24);
});

test('BoundedCache keeps at most capacity entries and evicts the least recently used', (t) => {
  const cache = new BoundedCache<string, number>(2);
  cache.set('a', 1);
  cache.set('b', 2);
  t.is(cache.get('a'), 1); // a is now most recent
  cache.set('c', 3);
  t.is(cache.size, 2);
  t.is(cache.get('b'), undefined);
  t.is(cache.get('a'), 1);
  t.is(cache.get('c'), 3);
  t.throws(() => new BoundedCache(0), { instanceOf: RangeError });
});

test('Ed25519 policy constants match @noble/curves (group order, torsion subgroup)', (t) => {
  const { ORDER_L, SMALL_ORDER_Y } = ED25519_POLICY_CONSTANTS;
  let l = 0n;
  for (let i = 31; i >= 0; i--) l = (l << 8n) | BigInt(ORDER_L[i] as number);
  t.is(l, ed25519.Point.Fn.ORDER);
  const masked = ED25519_TORSION_SUBGROUP.map((h) => {
    const b = hex(h);
    b[31] = (b[31] as number) & 0x7f;
    return toHex(b);
  });
  t.deepEqual([...new Set(SMALL_ORDER_Y.map(toHex))].sort(), [...new Set(masked)].sort());
});
