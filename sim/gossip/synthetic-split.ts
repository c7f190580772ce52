/**
 * The geometry of an LKH batch rekey without the keys: given the departed slots of a batch in
 * a d-ary tree of height h, the refreshed nodes are their ancestors and the parts are the
 * frontier — every child of a refreshed node that is not itself refreshed (keytree/split.ts).
 * Part sizes follow keytree's format: one wrapped key (40 B) + versions per level from the
 * frontier up to the root, a Merkle proof of ⌈log2 parts⌉ hashes, a fixed signed header.
 * The million-leaf simulation routes these; the real split is tested in test/keytree.
 */
import type { RoutedSplit } from './world.js';

const WRAP_BYTES = 40 + 8; // AES-KW of a 32-byte key + two versions
const HASH_BYTES = 32;
const HEADER_BYTES = 120 + 64; // epoch header + Ed25519 signature

export class SyntheticSplit implements RoutedSplit {
  private readonly starts: number[] = [];
  private readonly ends: number[] = [];
  private readonly levels: number[] = [];

  constructor(
    readonly arity: number,
    readonly height: number,
    departed: readonly number[],
  ) {
    const refreshed = new Set<number>(); // key = level·2^32 + index
    for (const slot of departed) {
      for (let l = 1, idx = Math.floor(slot / arity); l <= height; l++, idx = Math.floor(idx / arity)) {
        refreshed.add(l * 2 ** 32 + idx);
      }
    }
    const gone = new Set(departed);
    const parts: [number, number, number][] = [];
    for (const key of refreshed) {
      const level = Math.floor(key / 2 ** 32);
      const index = key % 2 ** 32;
      for (let c = 0; c < arity; c++) {
        const child = index * arity + c;
        if (level - 1 > 0 && refreshed.has((level - 1) * 2 ** 32 + child)) continue;
        if (level - 1 === 0 && gone.has(child)) continue;
        const span = arity ** (level - 1);
        parts.push([child * span, (child + 1) * span, level - 1]);
      }
    }
    parts.sort((a, b) => a[0] - b[0]);
    for (const [s, e, l] of parts) {
      this.starts.push(s);
      this.ends.push(e);
      this.levels.push(l);
    }
  }

  get count(): number {
    return this.starts.length;
  }

  range(id: number): { start: number; end: number } {
    return { start: this.starts[id]!, end: this.ends[id]! };
  }

  /** Encoded size of part `id`: wraps from its level to the root, proof, header. */
  partBytes(id: number): number {
    const wraps = this.height - this.levels[id]!;
    return HEADER_BYTES + wraps * WRAP_BYTES + Math.ceil(Math.log2(Math.max(2, this.count))) * HASH_BYTES;
  }

  /** Zero bytes of the part's encoded size (only its length matters to the simulation). */
  payload(id: number): Uint8Array {
    return new Uint8Array(this.partBytes(id));
  }

  /** The part covering `slot`, or −1. */
  partFor(slot: number): number {
    let lo = 0;
    let hi = this.starts.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (slot < this.starts[mid]!) hi = mid - 1;
      else if (slot >= this.ends[mid]!) lo = mid + 1;
      else return mid;
    }
    return -1;
  }
}
