/**
 * How parts are authenticated by the signed header.
 *
 * Path digests chain from the root down the replaced nodes, so the digest of a part — a whole
 * path of wraps — costs the server one hash per replaced node instead of one per wrap per part:
 *
 *   PD(root)   = H(0x01 ‖ u8 |group| ‖ group ‖ u64 epoch ‖ u8 height ‖ u32 rootVersion)
 *   PD(A)      = H(0x02 ‖ PD(parent A) ‖ u8 level ‖ u32 index ‖ w)      w = step from parent(A) to A
 *   part(C)    = H(0x03 ‖ PD(parent C) ‖ u8 level ‖ u32 index ‖ w ‖ (u8 0 | u8 1 ‖ u32 movedFrom))
 *   w          = u32 parentVersion ‖ u32 childVersion ‖ (u8 0 ‖ 40-byte wrap | u8 1 "derived") A leaf holding one part
 * recomputes this chain from the part's own wraps. Part digests are the leaves of a Merkle tree
 * (node = H(0x04 ‖ left ‖ right); an odd last node moves up unchanged); the header carries
 * partsRoot = H(0x05 ‖ u64 partCount ‖ tree root), binding the count the proof shape
 * depends on (an empty tree's root is 32 zero bytes). Leaves need no extra hashing: a part digest's preimage starts with 0x03 and
 * a node's with 0x04, so no leaf can pass for an inner node or the reverse.
 */
import type { CipherSuite } from '../crypto/index.js';
import { constantTimeEqual } from '../crypto/index.js';
import { DIGEST_BYTES, type PathWrap } from './messages.js';

const TAG_ROOT = 1;
const TAG_PATH = 2;
const TAG_PART = 3;
const TAG_MERKLE_NODE = 4;
const TAG_PARTS_ROOT = 5;

/**
 * Hash inputs are laid out in one reused buffer with fixed-width fields (u8 tag, u8 level,
 * u32 index/versions/epoch, u8 flags), so hashing allocates nothing but the digest; the layout
 * is internal to the digest and independent of the wire encoding.
 */
const scratch = new Uint8Array(256);
const view = new DataView(scratch.buffer);
let at = 0;

function u8(v: number): void {
  scratch[at++] = v;
}
function u32(v: number): void {
  view.setUint32(at, v);
  at += 4;
}
function raw(b: Uint8Array): void {
  scratch.set(b, at);
  at += b.length;
}
function digest(suite: CipherSuite): Uint8Array {
  const out = suite.sha256(scratch.subarray(0, at));
  at = 0;
  return out;
}

function step(tag: number, parent: Uint8Array, level: number, index: number, wrap: PathWrap): void {
  at = 0;
  u8(tag);
  raw(parent);
  u8(level);
  u32(index);
  u32(wrap.parentVersion);
  u32(wrap.childVersion);
  if (wrap.wrapped === undefined) u8(1);
  else {
    u8(0);
    raw(wrap.wrapped);
  }
}

export function rootDigest(
  suite: CipherSuite,
  group: Uint8Array,
  epoch: number,
  height: number,
  rootVersion: number,
): Uint8Array {
  at = 0;
  u8(TAG_ROOT);
  u8(group.length);
  raw(group);
  view.setBigUint64(at, BigInt(epoch));
  at += 8;
  u8(height);
  u32(rootVersion);
  return digest(suite);
}

export function pathDigest(
  suite: CipherSuite,
  parent: Uint8Array,
  level: number,
  index: number,
  wrap: PathWrap,
): Uint8Array {
  step(TAG_PATH, parent, level, index, wrap);
  return digest(suite);
}

export function partDigest(
  suite: CipherSuite,
  parent: Uint8Array,
  level: number,
  index: number,
  movedFrom: number | undefined,
  wrap: PathWrap,
): Uint8Array {
  step(TAG_PART, parent, level, index, wrap);
  if (movedFrom === undefined) u8(0);
  else {
    u8(1);
    u32(movedFrom);
  }
  return digest(suite);
}

function merkleNode(suite: CipherSuite, left: Uint8Array, right: Uint8Array): Uint8Array {
  at = 0;
  u8(TAG_MERKLE_NODE);
  raw(left);
  raw(right);
  return digest(suite);
}

/** The header's partsRoot for a Merkle tree of `count` leaves with root `treeRoot`. */
export function partsRoot(suite: CipherSuite, count: number, treeRoot: Uint8Array): Uint8Array {
  at = 0;
  u8(TAG_PARTS_ROOT);
  view.setBigUint64(at, BigInt(count));
  at += 8;
  raw(treeRoot);
  return digest(suite);
}

/** Merkle levels, leaves first; the last level holds the tree root (32 zero bytes when empty). */
export function merkleLevels(suite: CipherSuite, digests: readonly Uint8Array[]): Uint8Array[][] {
  if (digests.length === 0) return [[new Uint8Array(DIGEST_BYTES)]];
  let level = digests.slice();
  const levels = [level];
  while (level.length > 1) {
    const next: Uint8Array[] = [];
    for (let i = 0; i < level.length; i += 2) {
      const left = level[i]!;
      const right = level[i + 1];
      next.push(right === undefined ? left : merkleNode(suite, left, right));
    }
    levels.push(next);
    level = next;
  }
  return levels;
}

export function merkleProof(levels: readonly Uint8Array[][], position: number): Uint8Array[] {
  const proof: Uint8Array[] = [];
  let i = position;
  for (let l = 0; l < levels.length - 1; l++) {
    const sibling = levels[l]![i ^ 1];
    if (sibling !== undefined) proof.push(sibling);
    i >>= 1;
  }
  return proof;
}

/** Whether `digest` sits at `position` of a Merkle tree of `count` leaves whose partsRoot is `root`. */
export function verifyMerkle(
  suite: CipherSuite,
  digest: Uint8Array,
  position: number,
  count: number,
  proof: readonly Uint8Array[],
  root: Uint8Array,
): boolean {
  if (!Number.isInteger(position) || position < 0 || position >= count) return false;
  let node = digest;
  let i = position;
  let width = count;
  let used = 0;
  while (width > 1) {
    const hasSibling = (i ^ 1) < width;
    if (hasSibling) {
      const sibling = proof[used++];
      if (sibling === undefined) return false;
      node = i % 2 === 0 ? merkleNode(suite, node, sibling) : merkleNode(suite, sibling, node);
    }
    i >>= 1;
    width = Math.ceil(width / 2);
  }
  return used === proof.length && constantTimeEqual(partsRoot(suite, count, node), root);
}
