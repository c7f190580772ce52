/**
 * Shape of the d-ary tree. Nodes are named by (level, index): level 0 holds the leaf slots,
 * level `height` holds the single root (index 0), and node (l, i) has children
 * (l − 1, d·i) … (l − 1, d·i + d − 1). Names stay stable when the tree grows a level on top
 * (the old root (h, 0) becomes the first child of the new root (h + 1, 0)), so leaves keep
 * their keys across growth.
 */

export const MIN_ARITY = 2;
/** Arity is bounded by the 16-bit child mask of a node record. */
export const MAX_ARITY = 16;
/** Slots are 32-bit, so no tree is deeper than 32 levels (reached at d = 2). */
export const MAX_HEIGHT = 32;
export const MAX_SLOTS = 2 ** 32;

export function assertArity(arity: number): void {
  if (!Number.isInteger(arity) || arity < MIN_ARITY || arity > MAX_ARITY) {
    throw new RangeError(`arity must be an integer in [${MIN_ARITY}, ${MAX_ARITY}], got ${arity}`);
  }
}

/** d^l for every arity and level, so hot loops never call Math.pow. */
const SPANS: readonly Float64Array[] = Array.from({ length: MAX_ARITY + 1 }, (_, d) =>
  Float64Array.from({ length: MAX_HEIGHT + 2 }, (_, l) => d ** l),
);

/** Slots covered by one node at `level`: d^level. */
export function span(arity: number, level: number): number {
  const v = SPANS[arity]?.[level];
  return v ?? arity ** level;
}

/** The smallest height that holds `members` leaves (at least 1, so the root is never a leaf). */
export function minHeight(arity: number, members: number): number {
  let h = 1;
  while (span(arity, h) < members) h++;
  return h;
}

/** The balance bound the tree keeps after every batch: depth ≤ ⌈log_d n⌉ + 1. */
export function maxHeight(arity: number, members: number): number {
  return minHeight(arity, members) + 1;
}

/** Index of the ancestor at `level` of leaf `slot`. */
export function ancestor(arity: number, slot: number, level: number): number {
  return Math.floor(slot / span(arity, level));
}

/** A single number naming node (level, index); index < 2^32 and level ≤ 32 keep it exact. */
export function nodeKey(level: number, index: number): number {
  return level * MAX_SLOTS + index;
}
