/**
 * Identifiers of the gossip tier, all plain numbers so per-node state fits typed arrays.
 *
 * - A PeerId is a leaf's slot in the leaf key tree (uint32, assigned by the core at join). Using
 *   the slot as the gossip address lets a rekey part's slot range double as its routing scope.
 * - An ItemId names one disseminated item and is a safe integer in one of two disjoint ranges:
 *     data   origin·2^32 + seq               origin < 2^20, seq < 2^32   → [0, 2^52)
 *     rekey  2^52 + epoch·2^23 + part        epoch < 2^29, part < 2^23  → [2^52, 2^53)
 *   so duplicate suppression, digests and pulls need no per-kind tables.
 */

export type PeerId = number;
export type ItemId = number;

/** Origin of the core's own data stream (its seqs are dense: a leaf detects gaps in them). */
export const CORE_ORIGIN = 0;
export const MAX_PEER_ID = 0xffff_ffff;
/**
 * The sender id a core server's edge relay uses on the real network. It is no key-tree slot
 * (slots stay far below it), so it never falls inside a rekey part's scope or a subtree
 * contact level: leaves forward what it injects but never take it into their views.
 */
export const CORE_RELAY_PEER: PeerId = MAX_PEER_ID - 1;
export const MAX_ORIGIN = 2 ** 20 - 1;
export const MAX_SEQ = 2 ** 32 - 1;
/** Largest seq of a core data stream: a node keeps its cursor (seq + 1) in an int32. */
export const MAX_STREAM_SEQ = 2 ** 31 - 2;
export const MAX_REKEY_EPOCH = 2 ** 29 - 1;
export const MAX_REKEY_PART = 2 ** 23 - 1;

const TWO_32 = 2 ** 32;
const TWO_23 = 2 ** 23;
const REKEY_BASE = 2 ** 52;

function checkUint(v: number, max: number, what: string): void {
  if (!(Number.isInteger(v) && v >= 0 && v <= max)) throw new RangeError(`${what} ${v} not in [0, ${max}]`);
}

export function dataId(origin: number, seq: number): ItemId {
  checkUint(origin, MAX_ORIGIN, 'origin');
  checkUint(seq, MAX_SEQ, 'seq');
  return origin * TWO_32 + seq;
}

export function rekeyId(epoch: number, part: number): ItemId {
  checkUint(epoch, MAX_REKEY_EPOCH, 'rekey epoch');
  checkUint(part, MAX_REKEY_PART, 'rekey part');
  return REKEY_BASE + epoch * TWO_23 + part;
}

export function isRekeyId(id: ItemId): boolean {
  return id >= REKEY_BASE;
}

export function isValidItemId(id: number): boolean {
  return Number.isSafeInteger(id) && id >= 0;
}

/** origin of a data id. */
export function originOf(id: ItemId): number {
  return Math.floor(id / TWO_32);
}

/** seq of a data id. */
export function seqOf(id: ItemId): number {
  return id % TWO_32;
}

/** epoch of a rekey id. */
export function rekeyEpochOf(id: ItemId): number {
  return Math.floor((id - REKEY_BASE) / TWO_23);
}

/** part number of a rekey id. */
export function rekeyPartOf(id: ItemId): number {
  return (id - REKEY_BASE) % TWO_23;
}
