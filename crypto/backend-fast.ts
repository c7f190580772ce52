/**
 * The default backend on Node: each operation runs on whichever library measured fastest on
 * this machine (figures: bench/results/crypto.json, `npm run bench -- crypto`).
 *
 *   AEAD (XChaCha20-Poly1305 and ChaCha20-Poly1305), by message size:
 *     ≤ SODIUM_AEAD_MAX_BYTES → libsodium (one WASM call beats node's per-message cipher
 *     object, ~3–5× at 64 B); larger → node's native ChaCha20-Poly1305 (XChaCha via an
 *     HChaCha20 subkey; ~4× at 64 KiB).
 *   HMAC, SHA-256 → node:crypto (~2× noble).
 *   AES-256-GCM, AES-KW, HKDF → node:crypto. KW and HKDF measure within noise of noble;
 *   node wins the tie because its AES runs on AES-NI in constant time, while noble's
 *   table-based AES does not promise that.
 *   Ed25519 sign/verify, X25519 → node:crypto with cached KeyObjects (node-keys.ts).
 *   Ed25519/X25519 public key from a secret → libsodium (node would first need a slow
 *   private-key import).
 *   Randomness → node's randomFillSync (libsodium's randombytes_buf is ~10 k/s here).
 */
import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  diffieHellman,
  hash,
  hkdfSync,
  randomFillSync,
  sign,
  verify,
} from 'node:crypto';
import sodium from 'libsodium-wrappers';
import { ownBytes, wipe } from './bytes.js';
import { checkedSuite } from './checked-suite.js';
import { ed25519Keys, sodiumEd25519PublicKey, sodiumX25519PublicKey, x25519Keys } from './node-keys.js';
import type { Primitives } from './primitives.js';
import { TAG_BYTES, type CipherSuite } from './suite.js';
import { SODIUM_AEAD_MAX_BYTES } from './tuning.js';
import { hchacha20, innerNonce } from './xchacha-subkey.js';

export interface FastSuiteOptions {
  /** Override the libsodium/node AEAD crossover (tests force each path with −1 and Infinity). */
  readonly sodiumAeadMaxBytes?: number;
}

type NodeAead = 'chacha20-poly1305' | 'aes-256-gcm';

function nodeSeal(
  alg: NodeAead,
  key: Uint8Array,
  nonce: Uint8Array,
  plaintext: Uint8Array,
  aad: Uint8Array,
): Uint8Array {
  const cipher = createCipheriv(alg as 'aes-256-gcm', key, nonce, { authTagLength: TAG_BYTES });
  if (aad.length > 0) cipher.setAAD(aad, { plaintextLength: plaintext.length });
  const body = cipher.update(plaintext);
  const tail = cipher.final();
  const out = new Uint8Array(body.length + tail.length + TAG_BYTES);
  out.set(body);
  out.set(tail, body.length);
  out.set(cipher.getAuthTag(), body.length + tail.length);
  return out;
}

function nodeOpen(
  alg: NodeAead,
  key: Uint8Array,
  nonce: Uint8Array,
  sealed: Uint8Array,
  aad: Uint8Array,
): Uint8Array | null {
  const bodyLength = sealed.length - TAG_BYTES;
  const decipher = createDecipheriv(alg as 'aes-256-gcm', key, nonce, { authTagLength: TAG_BYTES });
  decipher.setAuthTag(sealed.subarray(bodyLength));
  if (aad.length > 0) decipher.setAAD(aad, { plaintextLength: bodyLength });
  const body = decipher.update(sealed.subarray(0, bodyLength));
  try {
    decipher.final(); // throws when the tag does not verify
  } catch {
    wipe(body); // unauthenticated plaintext never leaves this function
    return null;
  }
  const plaintext = ownBytes(body);
  wipe(body);
  return plaintext;
}

function sodiumOpen(open: () => Uint8Array): Uint8Array | null {
  try {
    return open();
  } catch {
    return null; // libsodium throws only on a failed tag once lengths are valid
  }
}

const KW_IV = Buffer.from('a6a6a6a6a6a6a6a6', 'hex'); // RFC 3394 §2.2.3.1 default IV

function xchachaNode<T>(
  key: Uint8Array,
  nonce: Uint8Array,
  run: (subkey: Uint8Array, inner: Uint8Array) => T,
): T {
  const subkey = hchacha20(key, nonce);
  try {
    return run(subkey, innerNonce(nonce));
  } finally {
    wipe(subkey);
  }
}

function fastPrimitives(sodiumMax: number): Primitives {
  return {
    name: 'fast',
    xchachaSeal: (key, nonce, plaintext, aad) =>
      plaintext.length <= sodiumMax
        ? sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext, aad, null, nonce, key)
        : xchachaNode(key, nonce, (k, n) => nodeSeal('chacha20-poly1305', k, n, plaintext, aad)),
    xchachaOpen: (key, nonce, sealed, aad) =>
      sealed.length - TAG_BYTES <= sodiumMax
        ? sodiumOpen(() => sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(null, sealed, aad, nonce, key))
        : xchachaNode(key, nonce, (k, n) => nodeOpen('chacha20-poly1305', k, n, sealed, aad)),
    chachaSeal: (key, nonce, plaintext, aad) =>
      plaintext.length <= sodiumMax
        ? sodium.crypto_aead_chacha20poly1305_ietf_encrypt(plaintext, aad, null, nonce, key)
        : nodeSeal('chacha20-poly1305', key, nonce, plaintext, aad),
    chachaOpen: (key, nonce, sealed, aad) =>
      sealed.length - TAG_BYTES <= sodiumMax
        ? sodiumOpen(() => sodium.crypto_aead_chacha20poly1305_ietf_decrypt(null, sealed, aad, nonce, key))
        : nodeOpen('chacha20-poly1305', key, nonce, sealed, aad),
    gcmSeal: (key, nonce, plaintext, aad) => nodeSeal('aes-256-gcm', key, nonce, plaintext, aad),
    gcmOpen: (key, nonce, sealed, aad) => nodeOpen('aes-256-gcm', key, nonce, sealed, aad),

    wrapKey(kek, key) {
      const cipher = createCipheriv('id-aes256-wrap', kek, KW_IV);
      const body = cipher.update(key);
      const tail = cipher.final();
      const out = new Uint8Array(body.length + tail.length);
      out.set(body);
      out.set(tail, body.length);
      return out;
    },
    unwrapKey(kek, wrapped) {
      const decipher = createDecipheriv('id-aes256-wrap', kek, KW_IV);
      let body: Buffer | undefined;
      try {
        body = decipher.update(wrapped);
        const tail = decipher.final(); // throws when the integrity check value does not match
        const out = new Uint8Array(body.length + tail.length);
        out.set(body);
        out.set(tail, body.length);
        return out;
      } catch {
        return null;
      } finally {
        wipe(body);
      }
    },

    ed25519PublicKey: sodiumEd25519PublicKey,
    ed25519Sign: (seed, message) => ownBytes(sign(null, message, ed25519Keys.privateKey(seed))),
    ed25519Verify(publicKey, message, signature) {
      try {
        return verify(null, message, ed25519Keys.publicKey(publicKey), signature);
      } catch {
        return false;
      }
    },
    x25519PublicKey: sodiumX25519PublicKey,
    x25519(secretKey, peerPublicKey) {
      const privateKey = x25519Keys.privateKey(secretKey);
      const publicKey = x25519Keys.publicKey(peerPublicKey);
      let shared: Buffer;
      try {
        shared = diffieHellman({ privateKey, publicKey });
      } catch {
        return null; // OpenSSL refuses to return the all-zero secret of a low-order peer key
      }
      const out = ownBytes(shared);
      wipe(shared);
      return out;
    },

    hkdf: (ikm, salt, info, length) => new Uint8Array(hkdfSync('sha256', ikm, salt, info, length)),
    hmacSha256: (key, data) => ownBytes(createHmac('sha256', key).update(data).digest()),
    sha256: (data) => ownBytes(hash('sha256', data, 'buffer')),
    randomBytes: (n) => randomFillSync(new Uint8Array(n)),
  };
}

/** Builds the fast suite; awaits libsodium's WASM instantiation (once per process). */
export async function createFastSuite(options: FastSuiteOptions = {}): Promise<CipherSuite> {
  await sodium.ready;
  const sodiumMax = options.sodiumAeadMaxBytes ?? SODIUM_AEAD_MAX_BYTES;
  if (Number.isNaN(sodiumMax)) throw new RangeError('sodiumAeadMaxBytes is NaN');
  const primitives = fastPrimitives(sodiumMax);
  const name = options.sodiumAeadMaxBytes === undefined ? 'fast' : `fast(sodium≤${sodiumMax})`;
  return checkedSuite({ ...primitives, name });
}
