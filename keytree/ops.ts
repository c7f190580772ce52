/**
 * Tree operations and their canonical encoding: the core group orders these in its total
 * order and every replica applies the same list as one batch.
 *
 *   ops  list(≤ 2^22) op;  op = u8 0 ‖ option(varuint ref)   join
 *                              | u8 1 ‖ varuint slot        leave
 *                              | u8 2 ‖ varuint slot        evict
 *                              | u8 3                       refresh-root
 *                              | u8 4 ‖ varuint slot        refresh-path
 *                              | u8 5 ‖ varuint slot ‖ fixed32 key   rekey-leaf
 *
 * `rekey-leaf` replaces a member's own (leaf) key with one made from entropy outside the tree
 * (post-compromise recovery, leaf-key-refresh.ts) and refreshes its path. Its key is part of
 * the encoding on purpose: the batch binding (tree.ts) hashes the ops, so a holder of an old
 * tree and of the key-derivation secret can no longer predict the batch's derived keys either.
 */
import { DecodeError, Reader, Writer } from '../wire/index.js';
import { KEY_BYTES } from '../crypto/index.js';
import { MAX_SLOTS } from './geometry.js';

export type TreeOp =
  | { readonly kind: 'join'; readonly ref?: number }
  | { readonly kind: 'leave'; readonly slot: number }
  | { readonly kind: 'evict'; readonly slot: number }
  | { readonly kind: 'refresh-root' }
  | { readonly kind: 'refresh-path'; readonly slot: number }
  | { readonly kind: 'rekey-leaf'; readonly slot: number; readonly key: Uint8Array };

export const MAX_BATCH_OPS = 1 << 22;

export function encodeOps(ops: readonly TreeOp[]): Uint8Array {
  const w = new Writer(undefined, 16 + ops.length * 6);
  w.list(ops, MAX_BATCH_OPS, (w, op) => {
    switch (op.kind) {
      case 'join':
        w.u8(0).option(op.ref, (w, v) => w.varuint(v));
        break;
      case 'leave':
        w.u8(1).varuint(op.slot);
        break;
      case 'evict':
        w.u8(2).varuint(op.slot);
        break;
      case 'refresh-root':
        w.u8(3);
        break;
      case 'refresh-path':
        w.u8(4).varuint(op.slot);
        break;
      case 'rekey-leaf':
        w.u8(5).varuint(op.slot).fixed(op.key, KEY_BYTES);
        break;
    }
  });
  return w.finish();
}

export function decodeOps(bytes: Uint8Array): TreeOp[] {
  const r = new Reader(bytes);
  const ops = r.list(MAX_BATCH_OPS, (r): TreeOp => {
    const tag = r.u8();
    switch (tag) {
      case 0: {
        const ref = r.option((r) => r.varuint());
        return ref === undefined ? { kind: 'join' } : { kind: 'join', ref };
      }
      case 1:
        return { kind: 'leave', slot: r.bounded(MAX_SLOTS - 1, 'slot') };
      case 2:
        return { kind: 'evict', slot: r.bounded(MAX_SLOTS - 1, 'slot') };
      case 3:
        return { kind: 'refresh-root' };
      case 4:
        return { kind: 'refresh-path', slot: r.bounded(MAX_SLOTS - 1, 'slot') };
      case 5:
        return {
          kind: 'rekey-leaf',
          slot: r.bounded(MAX_SLOTS - 1, 'slot'),
          key: r.fixed(KEY_BYTES).slice(),
        };
      default:
        throw new DecodeError('bad-tag', `tree op ${tag}`);
    }
  });
  r.end();
  return ops;
}
