/**
 * Which Ed25519 encodings Keyglass accepts, enforced identically in front of every backend.
 *
 * Ed25519 libraries disagree on edge cases (non-canonical encodings, small-order keys,
 * cofactored vs cofactorless equations — "Taming the many EdDSAs", Chalkias et al. 2020).
 * Keyglass wants one answer everywhere, so a signature is accepted only if
 *   - S is canonical (S < L), which RFC 8032 §5.1.7 requires and makes signatures non-malleable;
 *   - A is canonically encoded (y < p) and not of small order, so no key verifies
 *     "everything" (the identity key accepts (R = identity, S = 0) for every message);
 *   - and the backend's cofactorless check `[S]B = R + [k]A`, R compared by encoding, holds
 *     (what OpenSSL and libsodium do; the noble backend implements the same equation).
 * Honest signatures always pass; only crafted ones are affected.
 */
import { ED25519_PUBLIC_BYTES, ED25519_SIGNATURE_BYTES } from './suite.js';

/** Group order L = 2^252 + 27742317777372353535851937790883648493, little-endian. */
const ORDER_L = hex('edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010');

/**
 * y-coordinates (sign bit cleared) of the eight points of the 8-torsion subgroup: 1, 0, p − 1
 * and the two order-8 values. Comparing with the sign bit cleared also rejects the
 * non-canonical "negative zero" encodings of (0, ±1).
 */
const SMALL_ORDER_Y = [
  hex('0100000000000000000000000000000000000000000000000000000000000000'),
  hex('0000000000000000000000000000000000000000000000000000000000000000'),
  hex('ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f'),
  hex('26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05'),
  hex('c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a'),
];

function hex(s: string): Uint8Array {
  return Uint8Array.from(s.match(/../g) ?? [], (b) => parseInt(b, 16));
}

/** True when the little-endian 32-byte scalar `s` is < L. */
export function isCanonicalScalar(s: Uint8Array): boolean {
  for (let i = 31; i >= 0; i--) {
    const a = s[i] as number;
    const l = ORDER_L[i] as number;
    if (a !== l) return a < l;
  }
  return false; // s == L
}

/** True when the point encoding's y (sign bit cleared) is < p = 2^255 − 19. */
export function isCanonicalY(point: Uint8Array): boolean {
  if (((point[31] as number) & 0x7f) !== 0x7f) return true;
  for (let i = 30; i >= 1; i--) if (point[i] !== 0xff) return true;
  return (point[0] as number) < 0xed;
}

/** True when the encoding (sign bit ignored) is one of the small-order points. */
export function isSmallOrderEncoding(point: Uint8Array): boolean {
  return SMALL_ORDER_Y.some((y) => {
    for (let i = 0; i < 31; i++) if (point[i] !== y[i]) return false;
    return ((point[31] as number) & 0x7f) === y[31];
  });
}

/** The shared pre-check: lengths, canonical S, canonical non-small-order A. Public data only, so variable time is fine. */
export function passesEd25519Policy(publicKey: Uint8Array, signature: Uint8Array): boolean {
  if (publicKey.length !== ED25519_PUBLIC_BYTES || signature.length !== ED25519_SIGNATURE_BYTES) return false;
  if (!isCanonicalScalar(signature.subarray(32))) return false;
  return isCanonicalY(publicKey) && !isSmallOrderEncoding(publicKey);
}

/** Exposed for tests that check these constants against an independent source. */
export const ED25519_POLICY_CONSTANTS = { ORDER_L, SMALL_ORDER_Y } as const;
