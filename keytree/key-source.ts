/**
 * Where new node keys come from.
 *
 * The core group replicates the leaf tree by applying the same operations in the same total
 * order on every replica. With `derivedKeySource`, every replica derives the same fresh keys
 * from a core secret it already shares (it rotates with the core key), so replication ships
 * operations only — never key material — and any replica can emit the rekey message. With
 * `randomKeySource` (a CSPRNG), a single proposer generates keys and must ship them inside the
 * core under the core key; use it where replicas do not share a secret (tests, a single server).
 *
 * Security of the derived source: the keys of epoch e are a ChaCha20 keystream under the seed
 * HMAC-SHA256(secret, label ‖ u64 e ‖ binding) (HMAC as a PRF), where the binding commits to
 * the previous root key and the batch's ops; knowing them reveals nothing about the secret or
 * other batches' keys, even another batch for the same epoch (e.g. after a restore from backup). Anyone
 * holding the core secret can derive every key made under it, which equals what a core server
 * holds anyway (it stores the whole tree).
 */
import { KEY_BYTES, type CipherSuite } from '../crypto/index.js';

export interface KeySource {
  /**
   * `count` fresh 32-byte keys for the batch that produces `epoch`, concatenated. The tree
   * assigns them in a canonical node order, so equal inputs give equal trees. `binding` (32
   * bytes) commits to the tree's current root key and the batch's ops: a deterministic source
   * must mix it in so that two different batches for one epoch never share key material.
   */
  keys(epoch: number, count: number, binding: Uint8Array): Uint8Array;
}

const SEED_LABEL = new TextEncoder().encode('keyglass/keytree/node-keys/v2');
const ZERO_NONCE = new Uint8Array(12);

export function derivedKeySource(suite: CipherSuite, secret: Uint8Array): KeySource {
  if (secret.length < KEY_BYTES) throw new RangeError(`key source secret must be ≥ ${KEY_BYTES} bytes`);
  const own = secret.slice();
  return {
    keys(epoch, count, binding) {
      if (binding.length !== 32) throw new RangeError('key source binding must be 32 bytes');
      const input = new Uint8Array(SEED_LABEL.length + 8 + 32);
      input.set(SEED_LABEL);
      new DataView(input.buffer).setBigUint64(SEED_LABEL.length, BigInt(epoch));
      input.set(binding, SEED_LABEL.length + 8);
      const seed = suite.hmacSha256(own, input);
      // ChaCha20-Poly1305 over zeros yields the raw ChaCha20 keystream followed by a tag; the
      // nonce is fixed because every seed is used for exactly one stream.
      const stream = suite.chachaSeal(seed, ZERO_NONCE, new Uint8Array(count * KEY_BYTES));
      seed.fill(0);
      return stream.subarray(0, count * KEY_BYTES);
    },
  };
}

/** The CSPRNG draws at most this many bytes per call; larger batches are filled in chunks. */
const RANDOM_CHUNK = 1 << 20;

export function randomKeySource(suite: CipherSuite): KeySource {
  return {
    keys(_epoch, count, _binding) {
      const out = new Uint8Array(count * KEY_BYTES);
      for (let at = 0; at < out.length; at += RANDOM_CHUNK) {
        out.set(suite.randomBytes(Math.min(RANDOM_CHUNK, out.length - at)), at);
      }
      return out;
    },
  };
}
