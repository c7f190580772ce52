/**
 * Snapshot of a leaf key tree, for state transfer between core replicas. It holds every key, so
 * it travels only inside the core, encrypted under the core key.
 *
 *   u8 format(=1) ‖ bytes(≤64) group ‖ u8 arity ‖ u8 height ‖ u8 allocatedHeight ‖ varuint epoch
 *   ‖ fixed(⌈d^height / 8⌉) occupancy bitmap of the leaf slots (bit i of byte i>>3, LSB first)
 *   ‖ for each level l = 0..allocatedHeight: d^(allocatedHeight − l) × varuint version
 *   ‖ for each non-empty node of the current tree, level by level, index ascending: fixed32 key
 *
 * Versions of nodes outside the current tree are kept (they never go back), so a restored tree
 * names keys exactly as the original does; subtree counts are recomputed from the bitmap.
 */
import { KEY_BYTES } from '../crypto/index.js';
import { DecodeError, Reader, Writer } from '../wire/index.js';
import { MAX_HEIGHT, MAX_SLOTS, MAX_ARITY, MIN_ARITY, maxHeight, span } from './geometry.js';
import { FORMAT_VERSION, MAX_GROUP_BYTES } from './messages.js';
import { LeafKeyTree, type Level, type TreeOptions } from './tree.js';

export const MAX_SNAPSHOT_BYTES = 1024 * 1024 * 1024;

export function encodeSnapshot(tree: LeafKeyTree): Uint8Array {
  const d = tree.arity;
  const levels = tree.storage();
  const allocated = levels.length - 1;
  const capacity = span(d, tree.height);
  let estimate = 64 + capacity / 8;
  for (const lv of levels) estimate += lv.versions.length * 3 + lv.counts.length * (KEY_BYTES / 2);
  const w = new Writer(MAX_SNAPSHOT_BYTES, Math.min(MAX_SNAPSHOT_BYTES, Math.ceil(estimate)));
  w.u8(FORMAT_VERSION)
    .bytes(tree.group, MAX_GROUP_BYTES)
    .u8(d)
    .u8(tree.height)
    .u8(allocated)
    .varuint(tree.epoch);

  const bitmap = new Uint8Array(Math.ceil(capacity / 8));
  const leaves = levels[0]!.counts;
  for (let slot = 0; slot < capacity; slot++) if (leaves[slot]! > 0) bitmap[slot >> 3]! |= 1 << (slot & 7);
  w.fixed(bitmap, bitmap.length);

  for (const lv of levels) for (const v of lv.versions) w.varuint(v);
  for (let l = 0; l <= tree.height; l++) {
    const lv = levels[l]!;
    const size = span(d, tree.height - l);
    for (let i = 0; i < size; i++) {
      if (lv.counts[i]! > 0) w.fixed(lv.keys.subarray(i * KEY_BYTES, (i + 1) * KEY_BYTES), KEY_BYTES);
    }
  }
  return w.finish();
}

/** Restores a tree; `opts.group` and `opts.arity` must match the snapshot. Throws `DecodeError` on bad input. */
export function decodeSnapshot(bytes: Uint8Array, opts: TreeOptions): LeafKeyTree {
  if (bytes.length > MAX_SNAPSHOT_BYTES) throw new DecodeError('too-large', `${bytes.length} bytes`);
  const r = new Reader(bytes);
  const format = r.u8();
  if (format !== FORMAT_VERSION) throw new DecodeError('bad-version', `snapshot format ${format}`);
  const group = r.bytes(MAX_GROUP_BYTES);
  const d = r.u8();
  if (d < MIN_ARITY || d > MAX_ARITY) throw new DecodeError('bad-value', `arity ${d}`);
  const height = r.u8();
  const allocated = r.u8();
  if (height < 1 || allocated < height || allocated > MAX_HEIGHT || span(d, allocated) > MAX_SLOTS) {
    throw new DecodeError('bad-value', `height ${height} / allocated ${allocated} for arity ${d}`);
  }
  if (!sameBytes(group, opts.group) || d !== (opts.arity ?? 4))
    throw new DecodeError('bad-value', 'snapshot of another group or arity');
  const epoch = r.varuint();

  const capacity = span(d, height);
  // Every node needs ≥ 1 byte of version: reject sizes the input cannot hold before allocating.
  const nodes = Math.ceil((span(d, allocated + 1) - 1) / (d - 1));
  if (nodes > r.remaining) throw new DecodeError('truncated', `snapshot claims ${nodes} nodes`);
  const bitmap = r.fixed(Math.ceil(capacity / 8));

  const levels: Level[] = [];
  for (let l = 0; l <= allocated; l++) {
    const size = span(d, allocated - l);
    const versions = new Uint32Array(size);
    for (let i = 0; i < size; i++) versions[i] = r.bounded(0xffffffff, 'version');
    levels.push({ keys: new Uint8Array(size * KEY_BYTES), versions, counts: new Uint32Array(size) });
  }
  let members = 0;
  for (let slot = 0; slot < capacity; slot++) {
    if ((bitmap[slot >> 3]! & (1 << (slot & 7))) === 0) continue;
    members++;
    for (let l = 0; l <= height; l++) levels[l]!.counts[Math.floor(slot / span(d, l))]!++;
  }
  const tailBits = capacity % 8;
  if (tailBits !== 0 && bitmap[bitmap.length - 1]! >> tailBits !== 0) {
    throw new DecodeError('non-canonical', 'occupancy bits set past the capacity');
  }
  if (height > maxHeight(d, members))
    throw new DecodeError('bad-value', `height ${height} too deep for ${members} members`);
  for (let l = 0; l <= height; l++) {
    const lv = levels[l]!;
    const size = span(d, height - l);
    for (let i = 0; i < size; i++) {
      if (lv.counts[i]! > 0) lv.keys.set(r.fixed(KEY_BYTES), i * KEY_BYTES);
    }
  }
  r.end();
  return LeafKeyTree.fromParts(opts, epoch, height, levels);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}
