/**
 * The contract a backend implements: raw, unchecked primitives. `checkedSuite` (checked-suite.ts)
 * validates every input before calling them and turns their `null` results into `CryptoError`s,
 * so validation and error semantics are written once and identical across backends.
 *
 * Preconditions the wrapper guarantees: keys, nonces and seeds have their exact lengths;
 * sealed inputs hold at least a tag; wrapped inputs are whole 64-bit blocks of a legal size;
 * Ed25519 public keys and signatures passed the shared encoding policy (ed25519-policy.ts).
 */
export interface Primitives {
  readonly name: string;

  /** XChaCha20-Poly1305; `open*` returns `null` when the tag does not verify (never partial plaintext). */
  xchachaSeal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): Uint8Array;
  xchachaOpen(key: Uint8Array, nonce: Uint8Array, sealed: Uint8Array, aad: Uint8Array): Uint8Array | null;
  chachaSeal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): Uint8Array;
  chachaOpen(key: Uint8Array, nonce: Uint8Array, sealed: Uint8Array, aad: Uint8Array): Uint8Array | null;
  gcmSeal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): Uint8Array;
  gcmOpen(key: Uint8Array, nonce: Uint8Array, sealed: Uint8Array, aad: Uint8Array): Uint8Array | null;

  /** RFC 3394 with the default IV; `unwrapKey` returns `null` on an integrity failure. */
  wrapKey(kek: Uint8Array, key: Uint8Array): Uint8Array;
  unwrapKey(kek: Uint8Array, wrapped: Uint8Array): Uint8Array | null;

  ed25519PublicKey(seed: Uint8Array): Uint8Array;
  ed25519Sign(seed: Uint8Array, message: Uint8Array): Uint8Array;
  /** Cofactorless RFC 8032 check `[S]B = R + [k]A` with R compared by its encoding; never throws. */
  ed25519Verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean;

  x25519PublicKey(secretKey: Uint8Array): Uint8Array;
  /** `null` when the peer key is of low order (the shared secret would be all zero). */
  x25519(secretKey: Uint8Array, peerPublicKey: Uint8Array): Uint8Array | null;

  hkdf(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Uint8Array;
  hmacSha256(key: Uint8Array, data: Uint8Array): Uint8Array;
  sha256(data: Uint8Array): Uint8Array;
  randomBytes(n: number): Uint8Array;
}
