/**
 * node:crypto KeyObjects for raw Ed25519/X25519 keys, imported once and cached.
 *
 * Measured here (ops/s): PKCS#8 DER private import 1.2–1.6 k, JWK private import (d + x)
 * 17 k, JWK public import 100 k, vs sign 20 k / X25519 22 k with loaded keys — so an uncached
 * DER import would cost 10× the operation. JWK needs the public half next to the private
 * one; libsodium derives it (15 k/s).
 *
 * Caches are bounded LRUs. Public keys are keyed by their hex encoding. Private keys are
 * keyed by a SHA-256 fingerprint, never by the secret itself. Trade-off, stated plainly: JWK
 * import passes the secret through a base64url string that JavaScript cannot wipe, and a
 * cached KeyObject keeps up to PRIVATE_CACHE_ENTRIES recently used secrets alive in
 * OpenSSL memory; both are the price of the measured 10× speed-up.
 */
import { createPrivateKey, createPublicKey, hash, type KeyObject } from 'node:crypto';
import sodium from 'libsodium-wrappers';
import { BoundedCache } from './bounded-cache.js';
import { wipe } from './bytes.js';

export const PRIVATE_CACHE_ENTRIES = 256;
export const PUBLIC_CACHE_ENTRIES = 2048;

type Curve = 'Ed25519' | 'X25519';

function b64url(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url');
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

/** One cache per curve so equal bytes on different curves can never alias. */
class KeyObjectCache {
  readonly #private = new BoundedCache<string, KeyObject>(PRIVATE_CACHE_ENTRIES);
  readonly #public = new BoundedCache<string, KeyObject>(PUBLIC_CACHE_ENTRIES);

  constructor(
    readonly curve: Curve,
    readonly derivePublic: (secret: Uint8Array) => Uint8Array,
  ) {}

  privateKey(secret: Uint8Array): KeyObject {
    const id = hash('sha256', secret, 'hex');
    let key = this.#private.get(id);
    if (key === undefined) {
      const publicKey = this.derivePublic(secret);
      key = createPrivateKey({
        key: { kty: 'OKP', crv: this.curve, d: b64url(secret), x: b64url(publicKey) },
        format: 'jwk',
      });
      this.#private.set(id, key);
    }
    return key;
  }

  publicKey(bytes: Uint8Array): KeyObject {
    const id = hex(bytes);
    let key = this.#public.get(id);
    if (key === undefined) {
      key = createPublicKey({ key: { kty: 'OKP', crv: this.curve, x: b64url(bytes) }, format: 'jwk' });
      this.#public.set(id, key);
    }
    return key;
  }

  clear(): void {
    this.#private.clear();
    this.#public.clear();
  }
}

/** Ed25519 public key from a seed via libsodium (the 64-byte secret it also returns is wiped). */
export function sodiumEd25519PublicKey(seed: Uint8Array): Uint8Array {
  const pair = sodium.crypto_sign_seed_keypair(seed);
  wipe(pair.privateKey);
  return pair.publicKey;
}

export function sodiumX25519PublicKey(secretKey: Uint8Array): Uint8Array {
  return sodium.crypto_scalarmult_base(secretKey);
}

export const ed25519Keys = new KeyObjectCache('Ed25519', sodiumEd25519PublicKey);
export const x25519Keys = new KeyObjectCache('X25519', sodiumX25519PublicKey);
