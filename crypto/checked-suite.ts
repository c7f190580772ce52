/**
 * Wraps a backend's raw `Primitives` into a `CipherSuite`: one place for input validation,
 * bounds, the Ed25519 acceptance policy and error mapping, so every backend fails the same
 * way on the same input.
 *
 * Error policy:
 *   - caller-supplied keys, nonces, seeds, lengths of the wrong size → `bad-length` (misuse);
 *   - anything an attacker can shape — a sealed box shorter than its tag, a wrapped key of an
 *     impossible size, a tag or integrity check that fails → `auth-failed`, so a receiver has
 *     a single "reject this message" path;
 *   - an X25519 peer key of low order → `bad-point`.
 */
import { passesEd25519Policy } from './ed25519-policy.js';
import type { Primitives } from './primitives.js';
import { checkRandomLength } from './random.js';
import {
  CryptoError,
  ED25519_SEED_BYTES,
  KEY_BYTES,
  NONCE_BYTES,
  TAG_BYTES,
  WRAP_OVERHEAD,
  X25519_BYTES,
  XNONCE_BYTES,
  type CipherSuite,
} from './suite.js';

/** Smallest and largest key `wrapKey` accepts (RFC 3394 needs ≥ 2 blocks; we wrap keys, not data). */
export const WRAP_MIN_KEY_BYTES = 16;
export const WRAP_MAX_KEY_BYTES = 1024;
/** HKDF output bound (RFC 5869: L ≤ 255·HashLen) and info bound (node:crypto's limit, applied everywhere). */
export const HKDF_MAX_OUTPUT_BYTES = 255 * 32;
export const HKDF_MAX_INFO_BYTES = 1024;

const EMPTY = new Uint8Array(0);

function checkLength(what: string, bytes: Uint8Array, expected: number): void {
  if (!(bytes instanceof Uint8Array)) throw new CryptoError('bad-length', `${what} must be a Uint8Array`);
  if (bytes.length !== expected) {
    throw new CryptoError('bad-length', `${what} must be ${expected} bytes, got ${bytes.length}`);
  }
}

function checkBytes(what: string, bytes: Uint8Array): void {
  if (!(bytes instanceof Uint8Array)) throw new CryptoError('bad-length', `${what} must be a Uint8Array`);
}

function checkSealed(sealed: Uint8Array): void {
  checkBytes('sealed', sealed);
  if (sealed.length < TAG_BYTES)
    throw new CryptoError('auth-failed', `sealed input shorter than its ${TAG_BYTES}-byte tag`);
}

function opened(plaintext: Uint8Array | null, what: string): Uint8Array {
  if (plaintext === null) throw new CryptoError('auth-failed', `${what} tag did not verify`);
  return plaintext;
}

function aeadInputs(
  nonceBytes: number,
  key: Uint8Array,
  nonce: Uint8Array,
  aad: Uint8Array | undefined,
): Uint8Array {
  checkLength('key', key, KEY_BYTES);
  checkLength('nonce', nonce, nonceBytes);
  if (aad === undefined) return EMPTY;
  checkBytes('aad', aad);
  return aad;
}

export function checkedSuite(raw: Primitives): CipherSuite {
  return {
    name: raw.name,

    aeadSeal(key, nonce, plaintext, aad) {
      const a = aeadInputs(XNONCE_BYTES, key, nonce, aad);
      checkBytes('plaintext', plaintext);
      return raw.xchachaSeal(key, nonce, plaintext, a);
    },
    aeadOpen(key, nonce, sealed, aad) {
      const a = aeadInputs(XNONCE_BYTES, key, nonce, aad);
      checkSealed(sealed);
      return opened(raw.xchachaOpen(key, nonce, sealed, a), 'XChaCha20-Poly1305');
    },
    chachaSeal(key, nonce, plaintext, aad) {
      const a = aeadInputs(NONCE_BYTES, key, nonce, aad);
      checkBytes('plaintext', plaintext);
      return raw.chachaSeal(key, nonce, plaintext, a);
    },
    chachaOpen(key, nonce, sealed, aad) {
      const a = aeadInputs(NONCE_BYTES, key, nonce, aad);
      checkSealed(sealed);
      return opened(raw.chachaOpen(key, nonce, sealed, a), 'ChaCha20-Poly1305');
    },
    gcmSeal(key, nonce, plaintext, aad) {
      const a = aeadInputs(NONCE_BYTES, key, nonce, aad);
      checkBytes('plaintext', plaintext);
      return raw.gcmSeal(key, nonce, plaintext, a);
    },
    gcmOpen(key, nonce, sealed, aad) {
      const a = aeadInputs(NONCE_BYTES, key, nonce, aad);
      checkSealed(sealed);
      return opened(raw.gcmOpen(key, nonce, sealed, a), 'AES-256-GCM');
    },

    wrapKey(kek, key) {
      checkLength('kek', kek, KEY_BYTES);
      checkBytes('key', key);
      if (key.length % 8 !== 0 || key.length < WRAP_MIN_KEY_BYTES || key.length > WRAP_MAX_KEY_BYTES) {
        throw new CryptoError(
          'bad-length',
          `key to wrap must be a multiple of 8 in ${WRAP_MIN_KEY_BYTES}..${WRAP_MAX_KEY_BYTES} bytes, got ${key.length}`,
        );
      }
      return raw.wrapKey(kek, key);
    },
    unwrapKey(kek, wrapped) {
      checkLength('kek', kek, KEY_BYTES);
      checkBytes('wrapped', wrapped);
      const n = wrapped.length;
      if (n % 8 !== 0 || n < WRAP_MIN_KEY_BYTES + WRAP_OVERHEAD || n > WRAP_MAX_KEY_BYTES + WRAP_OVERHEAD) {
        throw new CryptoError('auth-failed', `wrapped key of impossible length ${n}`);
      }
      const key = raw.unwrapKey(kek, wrapped);
      if (key === null) throw new CryptoError('auth-failed', 'key wrap integrity check failed');
      return key;
    },

    ed25519PublicKey(seed) {
      checkLength('Ed25519 seed', seed, ED25519_SEED_BYTES);
      return raw.ed25519PublicKey(seed);
    },
    ed25519Sign(seed, message) {
      checkLength('Ed25519 seed', seed, ED25519_SEED_BYTES);
      checkBytes('message', message);
      return raw.ed25519Sign(seed, message);
    },
    ed25519Verify(publicKey, message, signature) {
      if (!(
        publicKey instanceof Uint8Array &&
        message instanceof Uint8Array &&
        signature instanceof Uint8Array
      )) {
        return false;
      }
      if (!passesEd25519Policy(publicKey, signature)) return false;
      return raw.ed25519Verify(publicKey, message, signature);
    },

    x25519PublicKey(secretKey) {
      checkLength('X25519 secret key', secretKey, X25519_BYTES);
      return raw.x25519PublicKey(secretKey);
    },
    x25519(secretKey, peerPublicKey) {
      checkLength('X25519 secret key', secretKey, X25519_BYTES);
      checkLength('X25519 peer public key', peerPublicKey, X25519_BYTES);
      const shared = raw.x25519(secretKey, peerPublicKey);
      if (shared === null) throw new CryptoError('bad-point', 'X25519 peer key is of low order');
      return shared;
    },

    hkdf(ikm, salt, info, length) {
      checkBytes('ikm', ikm);
      checkBytes('salt', salt);
      checkBytes('info', info);
      if (info.length > HKDF_MAX_INFO_BYTES) {
        throw new CryptoError('bad-length', `HKDF info longer than ${HKDF_MAX_INFO_BYTES} bytes`);
      }
      if (!Number.isSafeInteger(length) || length < 1 || length > HKDF_MAX_OUTPUT_BYTES) {
        throw new CryptoError('bad-length', `HKDF length ${length} outside 1..${HKDF_MAX_OUTPUT_BYTES}`);
      }
      return raw.hkdf(ikm, salt, info, length);
    },
    hmacSha256(key, data) {
      checkBytes('key', key);
      checkBytes('data', data);
      return raw.hmacSha256(key, data);
    },
    sha256(data) {
      checkBytes('data', data);
      return raw.sha256(data);
    },
    randomBytes(n) {
      checkRandomLength(n);
      return raw.randomBytes(n);
    },
  };
}
