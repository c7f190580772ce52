/**
 * The portable backend: pure JavaScript (@noble/ciphers, @noble/curves, @noble/hashes) and
 * WebCrypto randomness. Runs anywhere (browser SDK), ~10–40× slower than `fast` on
 * asymmetric operations; byte-identical to it everywhere.
 */
import { gcm, aeskw } from '@noble/ciphers/aes.js';
import { chacha20poly1305, xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { ed25519, x25519 } from '@noble/curves/ed25519.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256, sha512 } from '@noble/hashes/sha2.js';
import { constantTimeEqual } from './bytes.js';
import { checkedSuite } from './checked-suite.js';
import type { Primitives } from './primitives.js';
import { randomBytes } from './random.js';
import type { CipherSuite } from './suite.js';

interface NobleCipher {
  encrypt(data: Uint8Array): Uint8Array;
  decrypt(data: Uint8Array): Uint8Array;
}

/** noble signals a failed tag or integrity check by throwing; after our validation nothing else can throw. */
function openOrNull(cipher: NobleCipher, sealed: Uint8Array): Uint8Array | null {
  try {
    return cipher.decrypt(sealed);
  } catch {
    return null;
  }
}

function bytesToNumberLE(bytes: Uint8Array): bigint {
  let n = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(bytes[i] as number);
  return n;
}

const Point = ed25519.Point;
const Fn = Point.Fn;

/**
 * Cofactorless RFC 8032 verification, matching OpenSSL and libsodium: recompute
 * R' = [S]B − [k]A and compare its encoding with R. (noble's own `verify` is cofactored,
 * which accepts some crafted signatures the other backends reject.) The policy pre-check
 * already guaranteed S < L and a canonical, non-small-order A encoding.
 */
function verifyCofactorless(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  try {
    const A = Point.fromBytes(publicKey, false);
    const r = signature.subarray(0, 32);
    const s = bytesToNumberLE(signature.subarray(32, 64));
    const h = sha512.create().update(r).update(publicKey).update(message).digest();
    const k = Fn.create(bytesToNumberLE(h));
    const rPrime = Point.BASE.multiplyUnsafe(s).subtract(A.multiplyUnsafe(k));
    return constantTimeEqual(rPrime.toBytes(), r);
  } catch {
    return false; // A does not decode to a curve point
  }
}

const noblePrimitives: Primitives = {
  name: 'noble',
  xchachaSeal: (key, nonce, plaintext, aad) => xchacha20poly1305(key, nonce, aad).encrypt(plaintext),
  xchachaOpen: (key, nonce, sealed, aad) => openOrNull(xchacha20poly1305(key, nonce, aad), sealed),
  chachaSeal: (key, nonce, plaintext, aad) => chacha20poly1305(key, nonce, aad).encrypt(plaintext),
  chachaOpen: (key, nonce, sealed, aad) => openOrNull(chacha20poly1305(key, nonce, aad), sealed),
  gcmSeal: (key, nonce, plaintext, aad) => gcm(key, nonce, aad).encrypt(plaintext),
  gcmOpen: (key, nonce, sealed, aad) => openOrNull(gcm(key, nonce, aad), sealed),
  wrapKey: (kek, key) => aeskw(kek).encrypt(key),
  unwrapKey: (kek, wrapped) => openOrNull(aeskw(kek), wrapped),
  ed25519PublicKey: (seed) => ed25519.getPublicKey(seed),
  ed25519Sign: (seed, message) => ed25519.sign(message, seed),
  ed25519Verify: verifyCofactorless,
  x25519PublicKey: (secretKey) => x25519.getPublicKey(secretKey),
  x25519(secretKey, peerPublicKey) {
    // noble rejects the known low-order u-coordinates before the ladder (no timing oracle on
    // the secret) — exactly the inputs whose RFC 7748 §6.1 output would be all zero.
    try {
      return x25519.getSharedSecret(secretKey, peerPublicKey);
    } catch {
      return null;
    }
  },
  hkdf: (ikm, salt, info, length) => hkdf(sha256, ikm, salt, info, length),
  hmacSha256: (key, data) => hmac(sha256, key, data),
  sha256: (data) => sha256(data),
  randomBytes,
};

export function createNobleSuite(): CipherSuite {
  return checkedSuite(noblePrimitives);
}
