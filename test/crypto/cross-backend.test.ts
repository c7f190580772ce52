/**
 * fast and noble must agree byte for byte on seeded random inputs, open each other's
 * ciphertexts, and give the same Ed25519 verdict even on crafted edge-case signatures
 * where libraries are known to disagree.
 */
import test from 'ava';
import { ED25519_TORSION_SUBGROUP, ed25519 } from '@noble/curves/ed25519.js';
import { sha512 } from '@noble/hashes/sha2.js';
import { SODIUM_AEAD_MAX_BYTES } from '../../crypto/index.js';
import { loadSuite, type CipherSuite } from '../../crypto/index.js';
import { allSuites, hex, SeededBytes } from './helpers.js';

const [fast, noble, nativeOnly, sodiumOnly] = (await allSuites()) as [
  CipherSuite,
  CipherSuite,
  CipherSuite,
  CipherSuite,
];
const aeadSuites = [fast, nativeOnly, sodiumOnly];

/** Sizes around every boundary that matters (empty, block, threshold) plus random ones. */
function messageSize(rng: SeededBytes, i: number): number {
  const edges = [
    0,
    1,
    15,
    16,
    17,
    63,
    64,
    65,
    SODIUM_AEAD_MAX_BYTES - 1,
    SODIUM_AEAD_MAX_BYTES,
    SODIUM_AEAD_MAX_BYTES + 1,
    70_000,
  ];
  return i < edges.length ? (edges[i] as number) : rng.int(3 * SODIUM_AEAD_MAX_BYTES);
}

test('AEADs: fast (every engine) and noble are byte-identical and open each other', (t) => {
  const rng = new SeededBytes(0x5eed_0001);
  for (let i = 0; i < 300; i++) {
    const key = rng.bytes(32);
    const xnonce = rng.bytes(24);
    const nonce = rng.bytes(12);
    const plaintext = rng.bytes(messageSize(rng, i));
    const aad = i % 3 === 0 ? undefined : rng.bytes(rng.int(80));
    const x = noble.aeadSeal(key, xnonce, plaintext, aad);
    const c = noble.chachaSeal(key, nonce, plaintext, aad);
    const g = noble.gcmSeal(key, nonce, plaintext, aad);
    for (const s of aeadSuites) {
      const label = `${s.name} #${i} (${plaintext.length} B)`;
      t.deepEqual(s.aeadSeal(key, xnonce, plaintext, aad), x, label);
      t.deepEqual(s.aeadOpen(key, xnonce, x, aad), plaintext, label);
      t.deepEqual(s.chachaSeal(key, nonce, plaintext, aad), c, label);
      t.deepEqual(s.chachaOpen(key, nonce, c, aad), plaintext, label);
      t.deepEqual(s.gcmSeal(key, nonce, plaintext, aad), g, label);
      t.deepEqual(s.gcmOpen(key, nonce, g, aad), plaintext, label);
    }
    t.deepEqual(noble.aeadOpen(key, xnonce, fast.aeadSeal(key, xnonce, plaintext, aad), aad), plaintext);
  }
});

test('key wrap, HKDF, HMAC, SHA-256: byte-identical on random inputs', (t) => {
  const rng = new SeededBytes(0x5eed_0002);
  for (let i = 0; i < 300; i++) {
    const kek = rng.bytes(32);
    const key = rng.bytes(8 * (2 + rng.int(8)));
    const wrapped = noble.wrapKey(kek, key);
    t.deepEqual(fast.wrapKey(kek, key), wrapped);
    t.deepEqual(fast.unwrapKey(kek, wrapped), key);
    t.deepEqual(noble.unwrapKey(kek, fast.wrapKey(kek, key)), key);

    const ikm = rng.bytes(rng.int(100));
    const salt = rng.bytes(rng.int(100));
    const info = rng.bytes(rng.int(100));
    const length = 1 + rng.int(200);
    t.deepEqual(fast.hkdf(ikm, salt, info, length), noble.hkdf(ikm, salt, info, length));
    const data = rng.bytes(rng.int(300));
    t.deepEqual(fast.hmacSha256(ikm, data), noble.hmacSha256(ikm, data));
    t.deepEqual(fast.sha256(data), noble.sha256(data));
  }
});

test('Ed25519 and X25519: byte-identical keys, signatures and shared secrets', (t) => {
  const rng = new SeededBytes(0x5eed_0003);
  for (let i = 0; i < 120; i++) {
    const seed = rng.bytes(32);
    const message = rng.bytes(rng.int(200));
    const publicKey = noble.ed25519PublicKey(seed);
    t.deepEqual(fast.ed25519PublicKey(seed), publicKey);
    const signature = noble.ed25519Sign(seed, message);
    t.deepEqual(fast.ed25519Sign(seed, message), signature);
    t.true(fast.ed25519Verify(publicKey, message, signature));
    t.true(noble.ed25519Verify(publicKey, message, signature));
    const forged = signature.slice();
    const at = rng.int(64);
    forged[at] = (forged[at] as number) ^ (1 << rng.int(8));
    t.is(fast.ed25519Verify(publicKey, message, forged), noble.ed25519Verify(publicKey, message, forged));
    t.false(fast.ed25519Verify(publicKey, message, forged));

    // Random secrets and random peer bytes (high bit set half the time, possibly non-canonical).
    const secret = rng.bytes(32);
    const peer = rng.bytes(32);
    t.deepEqual(fast.x25519PublicKey(secret), noble.x25519PublicKey(secret));
    t.deepEqual(fast.x25519(secret, peer), noble.x25519(secret, peer));
  }
});

const L = ed25519.Point.Fn.ORDER;
const Point = ed25519.Point;

function leBytes(n: bigint, length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++, n >>= 8n) out[i] = Number(n & 0xffn);
  return out;
}

function leNumber(bytes: Uint8Array): bigint {
  let n = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(bytes[i] as number);
  return n;
}

/** Signs with an arbitrary (possibly mixed-order) encoded public key, as a malicious signer could. */
function craftSignature(
  a: bigint,
  publicEncoding: Uint8Array,
  r: bigint,
  message: Uint8Array,
  tweakR = Point.ZERO,
) {
  const R = Point.BASE.multiply(r).add(tweakR).toBytes();
  const k = leNumber(sha512(new Uint8Array([...R, ...publicEncoding, ...message]))) % L;
  const S = (r + k * a) % L;
  return { signature: new Uint8Array([...R, ...leBytes(S, 32)]), k };
}

test('Ed25519 edge cases: every backend gives the same verdict', async (t) => {
  const suites = [await loadSuite('fast'), await loadSuite('noble')];
  const message = new TextEncoder().encode('edge');
  const verdicts = (publicKey: Uint8Array, sig: Uint8Array, m = message) =>
    suites.map((s) => s.ed25519Verify(publicKey, m, sig));

  // 1. Identity public key with (R = identity, S = 0): satisfies the equation for every message.
  const identity = hex('0100000000000000000000000000000000000000000000000000000000000000');
  const trivial = new Uint8Array(64);
  trivial[0] = 1;
  t.deepEqual(verdicts(identity, trivial), [false, false]);
  for (const torsion of ED25519_TORSION_SUBGROUP)
    t.deepEqual(verdicts(hex(torsion), trivial), [false, false]);

  // 2. Malleated S + L of a valid signature.
  const seed = new Uint8Array(32).fill(9);
  const publicKey = suites[0]!.ed25519PublicKey(seed);
  const valid = suites[0]!.ed25519Sign(seed, message);
  const malleated = valid.slice();
  malleated.set(leBytes(leNumber(valid.subarray(32)) + L, 32), 32);
  t.deepEqual(verdicts(publicKey, valid), [true, true]);
  t.deepEqual(verdicts(publicKey, malleated), [false, false]);

  // 3. Mixed-order public key A' = [a]B + T8: the cofactored equation (noble's default verify)
  //    accepts, the cofactorless one (OpenSSL, libsodium, our noble path) rejects unless 8 | k.
  const T8 = Point.fromBytes(hex(ED25519_TORSION_SUBGROUP[3] as string));
  t.false(T8.isSmallOrder() && T8.multiply(4n).is0(), 'T8 has order 8');
  const a = 0x1234567890abcdefn;
  const mixed = Point.BASE.multiply(a).add(T8).toBytes();
  let divergent = 0;
  for (let r = 1000n; divergent < 4; r++) {
    const { signature, k } = craftSignature(a, mixed, r, message);
    if (k % 8n === 0n) continue;
    divergent++;
    t.true(ed25519.verify(signature, message, mixed, { zip215: false }), 'the case really is divergent');
    t.deepEqual(verdicts(mixed, signature), [false, false]);
  }

  // 4. R with a torsion component, honest key: all reject.
  const { signature: torsionR } = craftSignature(a, Point.BASE.multiply(a).toBytes(), 777n, message, T8);
  t.deepEqual(verdicts(Point.BASE.multiply(a).toBytes(), torsionR), [false, false]);

  // 5. Non-canonical public key encoding (y ≥ p) and a non-point.
  const nonCanonical = hex('edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f');
  t.deepEqual(verdicts(nonCanonical, valid), [false, false]);
  let offCurve = 2;
  const candidate = new Uint8Array(32);
  for (; ; offCurve++) {
    candidate[0] = offCurve;
    try {
      Point.fromBytes(candidate);
    } catch {
      break; // found a y with no x on the curve
    }
  }
  t.deepEqual(verdicts(candidate, valid), [false, false]);
});
