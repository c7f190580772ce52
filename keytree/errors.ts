/**
 * Semantic failures of leaf-side rekey processing. Malformed bytes are `DecodeError`s from the
 * wire codec; a `KeytreeError` means the bytes parsed but cannot be applied to this leaf's state.
 */

export type KeytreeErrorCode =
  | 'stale-epoch' // the message is older than the leaf's epoch
  | 'replay' // the message is for the epoch the leaf already holds
  | 'out-of-order' // the message skips one or more epochs: catch up first
  | 'missing' // the leaf lacks a part or a key version the message builds on (see `missing`)
  | 'unwrap-failed' // a wrapped key did not unwrap under the key the leaf holds
  | 'not-addressed' // the part does not cover this leaf
  | 'bad-proof' // the part does not hash to the signed header's part root
  | 'wrong-group'; // header or welcome belongs to another group or tree shape

/** Exactly what a leaf would need to make progress. */
export type MissingItem =
  | { readonly kind: 'part'; readonly epoch: number; readonly slot: number }
  | { readonly kind: 'key'; readonly level: number; readonly index: number; readonly version: number };

export class KeytreeError extends Error {
  override readonly name = 'KeytreeError';
  constructor(
    readonly code: KeytreeErrorCode,
    message: string,
    readonly missing: readonly MissingItem[] = [],
  ) {
    super(`${code}: ${message}`);
  }
}
