import { CryptoError, XNONCE_BYTES } from './suite.js';

/** `getRandomValues` fills at most 65,536 bytes per call (WebCrypto limit). */
const GET_RANDOM_VALUES_MAX = 65_536;
/** Upper bound on one request: randomness is for keys, nonces and seeds, never bulk data. */
export const MAX_RANDOM_BYTES = 1 << 20;

/** Validates a randomness request size; shared by every backend so they agree on limits. */
export function checkRandomLength(n: number): void {
  if (!Number.isSafeInteger(n) || n < 0 || n > MAX_RANDOM_BYTES) {
    throw new CryptoError('bad-length', `random length ${n} outside 0..${MAX_RANDOM_BYTES}`);
  }
}

/**
 * Portable CSPRNG over WebCrypto `getRandomValues` (Node ≥ 19 and browsers have it on
 * `globalThis.crypto`), usable without loading a suite.
 */
export function randomBytes(n: number): Uint8Array {
  checkRandomLength(n);
  const out = new Uint8Array(n);
  for (let at = 0; at < n; at += GET_RANDOM_VALUES_MAX) {
    globalThis.crypto.getRandomValues(out.subarray(at, Math.min(n, at + GET_RANDOM_VALUES_MAX)));
  }
  return out;
}

/** A fresh random 24-byte XChaCha20-Poly1305 nonce; random nonces are safe at this size. */
export function randomXNonce(): Uint8Array {
  return randomBytes(XNONCE_BYTES);
}

/** Words drawn per refill of the uniform-integer pool (amortises the getRandomValues call). */
const INT_POOL_WORDS = 256;

/**
 * Uniform integers in [0, n) from the CSPRNG, for choices an observer should not predict
 * (which peers a live gossip node forwards to): `Math.random` is a xorshift whose state can be
 * recovered from a few outputs. Rejection sampling keeps every value equally likely.
 */
export class UniformInts {
  private readonly pool = new Uint32Array(INT_POOL_WORDS);
  private next = INT_POOL_WORDS;

  int(n: number): number {
    if (!(Number.isInteger(n) && n >= 1 && n <= 0x1_0000_0000))
      throw new CryptoError('bad-length', `uniform int bound ${n} outside 1..2^32`);
    // Largest multiple of n that fits in 32 bits: words at or above it would bias the result.
    const limit = 0x1_0000_0000 - (0x1_0000_0000 % n);
    for (;;) {
      if (this.next === INT_POOL_WORDS) {
        globalThis.crypto.getRandomValues(this.pool);
        this.next = 0;
      }
      const w = this.pool[this.next++]!;
      if (w < limit) return w % n;
    }
  }
}
