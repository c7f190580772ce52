/**
 * The one cipher suite all of Keyglass uses. Every backend implements exactly this interface
 * and must agree byte for byte with every other backend (tests check it on random inputs).
 *
 * All operations are synchronous once the backend is loaded (`loadSuite()` awaits libsodium's
 * WASM once). Keys and outputs are plain `Uint8Array`s. Failures that depend on input — a tag
 * that does not verify, a wrapped key whose integrity check fails, a low-order X25519 point —
 * throw `CryptoError` with a stable `code`; misuse (wrong key length) throws `CryptoError`
 * with code `bad-length`.
 */

export const KEY_BYTES = 32;
export const XNONCE_BYTES = 24; // XChaCha20-Poly1305 nonce
export const NONCE_BYTES = 12; // ChaCha20-Poly1305 (IETF) and AES-256-GCM nonce
export const TAG_BYTES = 16;
export const ED25519_PUBLIC_BYTES = 32;
export const ED25519_SEED_BYTES = 32;
export const ED25519_SIGNATURE_BYTES = 64;
export const X25519_BYTES = 32;
export const WRAP_OVERHEAD = 8; // AES-KW adds one 64-bit block

export type CryptoErrorCode =
  | 'auth-failed' // AEAD tag or key-wrap integrity check did not verify
  | 'bad-length' // a key, nonce or input has the wrong length
  | 'bad-point' // X25519 produced the all-zero shared secret (low-order peer key)
  | 'bad-key'; // a key that cannot be loaded

export class CryptoError extends Error {
  override readonly name = 'CryptoError';
  constructor(
    readonly code: CryptoErrorCode,
    message: string,
  ) {
    super(`${code}: ${message}`);
  }
}

export interface Ed25519KeyPair {
  /** 32-byte RFC 8032 private seed. */
  readonly seed: Uint8Array;
  readonly publicKey: Uint8Array;
}

export interface X25519KeyPair {
  readonly secretKey: Uint8Array;
  readonly publicKey: Uint8Array;
}

export interface CipherSuite {
  /** Which backend serves this suite, e.g. 'fast' or 'noble'. */
  readonly name: string;

  /** XChaCha20-Poly1305 (draft-irtf-cfrg-xchacha): 32-byte key, 24-byte nonce; output = ciphertext ‖ tag. */
  aeadSeal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aad?: Uint8Array): Uint8Array;
  aeadOpen(key: Uint8Array, nonce: Uint8Array, sealed: Uint8Array, aad?: Uint8Array): Uint8Array;

  /** ChaCha20-Poly1305 (RFC 8439), 12-byte nonce. The XChaCha construction builds on it. */
  chachaSeal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aad?: Uint8Array): Uint8Array;
  chachaOpen(key: Uint8Array, nonce: Uint8Array, sealed: Uint8Array, aad?: Uint8Array): Uint8Array;

  /** AES-256-GCM, 12-byte nonce; used where interop with hardware AES matters (large payloads). */
  gcmSeal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aad?: Uint8Array): Uint8Array;
  gcmOpen(key: Uint8Array, nonce: Uint8Array, sealed: Uint8Array, aad?: Uint8Array): Uint8Array;

  /** AES-256 key wrap (RFC 3394) of a key whose length is a multiple of 8 (≥ 16): LKH key encryption. */
  wrapKey(kek: Uint8Array, key: Uint8Array): Uint8Array;
  unwrapKey(kek: Uint8Array, wrapped: Uint8Array): Uint8Array;

  /** Ed25519 (RFC 8032, pure). */
  ed25519PublicKey(seed: Uint8Array): Uint8Array;
  ed25519Sign(seed: Uint8Array, message: Uint8Array): Uint8Array;
  ed25519Verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean;

  /** X25519 (RFC 7748); throws `bad-point` on an all-zero shared secret. */
  x25519PublicKey(secretKey: Uint8Array): Uint8Array;
  x25519(secretKey: Uint8Array, peerPublicKey: Uint8Array): Uint8Array;

  /** HKDF-SHA256 (RFC 5869) and its parts. */
  hkdf(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Uint8Array;
  hmacSha256(key: Uint8Array, data: Uint8Array): Uint8Array;
  sha256(data: Uint8Array): Uint8Array;

  /** CSPRNG. */
  randomBytes(n: number): Uint8Array;
}
