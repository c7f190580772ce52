/** Any change to ciphertext, tag, AAD, nonce or key, and any truncation, fails with 'auth-failed'. */
import test from 'ava';
import { CryptoError, type CipherSuite } from '../../crypto/index.js';
import { allSuites, SeededBytes } from './helpers.js';

const suites = await allSuites();

interface Aead {
  name: string;
  nonceBytes: number;
  seal: (s: CipherSuite, k: Uint8Array, n: Uint8Array, p: Uint8Array, a: Uint8Array) => Uint8Array;
  open: (s: CipherSuite, k: Uint8Array, n: Uint8Array, c: Uint8Array, a: Uint8Array) => Uint8Array;
}

const AEADS: Aead[] = [
  {
    name: 'XChaCha20-Poly1305',
    nonceBytes: 24,
    seal: (s, k, n, p, a) => s.aeadSeal(k, n, p, a),
    open: (s, k, n, c, a) => s.aeadOpen(k, n, c, a),
  },
  {
    name: 'ChaCha20-Poly1305',
    nonceBytes: 12,
    seal: (s, k, n, p, a) => s.chachaSeal(k, n, p, a),
    open: (s, k, n, c, a) => s.chachaOpen(k, n, c, a),
  },
  {
    name: 'AES-256-GCM',
    nonceBytes: 12,
    seal: (s, k, n, p, a) => s.gcmSeal(k, n, p, a),
    open: (s, k, n, c, a) => s.gcmOpen(k, n, c, a),
  },
];

function flipped(bytes: Uint8Array, bit: number): Uint8Array {
  const out = bytes.slice();
  out[bit >> 3] = (out[bit >> 3] as number) ^ (1 << (bit & 7));
  return out;
}

/** Bit positions to flip: all of them for short inputs, a spread (ends + random) for long ones. */
function positions(rng: SeededBytes, bits: number): number[] {
  if (bits <= 8 * 160) return Array.from({ length: bits }, (_, i) => i);
  const picked = [0, 7, 8, bits - 1, bits - 8, bits - 9];
  for (let i = 0; i < 120; i++) picked.push(rng.int(bits));
  return picked;
}

for (const s of suites) {
  for (const aead of AEADS) {
    test(`${s.name}: ${aead.name} rejects every tampering with auth-failed`, (t) => {
      const rng = new SeededBytes(0x7a3b);
      const fails = (f: () => unknown, what: string) => {
        const err = t.throws(f, { instanceOf: CryptoError }, what);
        t.is(err?.code, 'auth-failed', what);
      };
      for (const size of [0, 1, 100, 5000]) {
        const key = rng.bytes(32);
        const nonce = rng.bytes(aead.nonceBytes);
        const aad = rng.bytes(13);
        const plaintext = rng.bytes(size);
        const sealed = aead.seal(s, key, nonce, plaintext, aad);
        t.deepEqual(aead.open(s, key, nonce, sealed, aad), plaintext);

        // Ciphertext and tag: every bit (or a spread of them for the 5000-byte message).
        for (const bit of positions(rng, sealed.length * 8)) {
          fails(() => aead.open(s, key, nonce, flipped(sealed, bit), aad), `${size} B, sealed bit ${bit}`);
        }
        for (let bit = 0; bit < aad.length * 8; bit++) {
          fails(() => aead.open(s, key, nonce, sealed, flipped(aad, bit)), `${size} B, aad bit ${bit}`);
        }
        fails(() => aead.open(s, key, nonce, sealed, new Uint8Array(0)), `${size} B, aad dropped`);
        for (let bit = 0; bit < nonce.length * 8; bit++) {
          fails(() => aead.open(s, key, flipped(nonce, bit), sealed, aad), `${size} B, nonce bit ${bit}`);
        }
        for (const bit of [0, 100, 255])
          fails(() => aead.open(s, flipped(key, bit), nonce, sealed, aad), `key bit ${bit}`);
        fails(() => aead.open(s, key, nonce, sealed.subarray(0, sealed.length - 1), aad), 'truncated by one');
        fails(() => aead.open(s, key, nonce, new Uint8Array([...sealed, 0]), aad), 'extended by one');
        fails(() => aead.open(s, key, nonce, sealed.subarray(0, 15), aad), 'shorter than a tag');
      }
    });
  }

  test(`${s.name}: AES key unwrap rejects tampering, wrong KEKs and impossible lengths`, (t) => {
    const rng = new SeededBytes(0x3394);
    const fails = (f: () => unknown, what: string) => {
      const err = t.throws(f, { instanceOf: CryptoError }, what);
      t.is(err?.code, 'auth-failed', what);
    };
    const kek = rng.bytes(32);
    const wrapped = s.wrapKey(kek, rng.bytes(32));
    for (let bit = 0; bit < wrapped.length * 8; bit++)
      fails(() => s.unwrapKey(kek, flipped(wrapped, bit)), `bit ${bit}`);
    fails(() => s.unwrapKey(flipped(kek, 3), wrapped), 'wrong kek');
    for (const n of [0, 8, 16, 23, 39, 41]) fails(() => s.unwrapKey(kek, new Uint8Array(n)), `length ${n}`);
  });
}
