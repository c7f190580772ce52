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
