/**
 * Tree operations and their canonical encoding: the core group orders these in its total
 * order and every replica applies the same list as one batch.
 *
 *   ops  list(≤ 2^22) op;  op = u8 0 ‖ option(varuint ref)   join
 *                              | u8 1 ‖ varuint slot        leave
 *                              | u8 2 ‖ varuint slot        evict
 *                              | u8 3                       refresh-root
 *                              | u8 4 ‖ varuint slot        refresh-path
 */
import { DecodeError, Reader, Writer } from '../wire/index.js';
import { MAX_SLOTS } from './geometry.js';

export type TreeOp =
  | { readonly kind: 'join'; readonly ref?: number }
  | { readonly kind: 'leave'; readonly slot: number }
  | { readonly kind: 'evict'; readonly slot: number }
  | { readonly kind: 'refresh-root' }
  | { readonly kind: 'refresh-path'; readonly slot: number };

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
      default:
        throw new DecodeError('bad-tag', `tree op ${tag}`);
    }
  });
  r.end();
  return ops;
}
