/**
 * One-way derivation of a parent key from a refreshed child key (the "LKH with one-way
 * function" optimisation of Canetti et al., 1999).
 *
 * In a batch, an internal node above level 1 that has a refreshed, non-empty child takes as
 * its new key K_parent = HMAC-SHA256(K_child, label ‖ u8 level ‖ u32 index ‖ u32 version)
 * of the most populous such child, instead of a fresh key wrapped under that child. Every member
 * under that child holds K_child after the batch and so derives K_parent with one HMAC instead
 * of an AES unwrap; the other children still receive a wrap. Secrecy is unchanged: K_child is
 * itself new in this batch (fresh or derived from a new key below it), so anyone who can
 * compute K_parent is a current member under that child; the derivation runs only upward, so
 * it reveals no sibling key and no earlier key. The (level, index, version) input makes every
 * derived key distinct even when derived from the same child key twice.
 */
import type { CipherSuite } from '../crypto/index.js';

const LABEL = new TextEncoder().encode('keyglass/keytree/derive-parent/v1');

export function deriveParentKey(
  suite: CipherSuite,
  childKey: Uint8Array,
  level: number,
  index: number,
  version: number,
): Uint8Array {
  const info = new Uint8Array(LABEL.length + 9);
  info.set(LABEL);
  const view = new DataView(info.buffer);
  view.setUint8(LABEL.length, level);
  view.setUint32(LABEL.length + 1, index);
  view.setUint32(LABEL.length + 5, version);
  return suite.hmacSha256(childKey, info);
}
