/**
 * Seeded, forkable pseudo-random numbers for deterministic simulation.
 *
 * Generator: xoshiro128** (Blackman & Vigna), 128-bit state, 32-bit output, period 2^128 − 1;
 * fast in JS because it needs only 32-bit shifts, xors and `Math.imul`. NOT cryptographic:
 * simulation only. Protocol code that needs secrets takes them from crypto/.
 *
 * Forking: every stream carries a 128-bit *key* (its identity) besides its running state.
 * `fork(label)` derives the child key from the parent KEY and the label only, never from the
 * parent's running state, so a fork gives the same stream no matter how many numbers the
 * parent (or any sibling) has drawn. Node `i`'s stream therefore does not change when node
 * `j` is added or draws more numbers. Key derivation runs four murmur3-finalizer chains (one
 * per output word) over (parent key, label tag, label words); the finalizer is a bijection,
 * so distinct labels give distinct chains and collisions are ~2^-128, not ~2^-32.
 */

const TWO_32 = 4294967296;
const TWO_53 = 9007199254740992;
const GOLDEN = 0x9e3779b9;

/** Label tags keep the numeric label 5 and the string label "5" apart. */
const TAG_SEED = 0x5eed;
const TAG_NUMBER = 0x4e;
const TAG_STRING = 0x53;

/** murmur3's 32-bit finalizer: a bijection on uint32 with full avalanche. */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/**
 * One xoshiro128** step on the 4-word state at `s[o..o+3]`; returns a uint32.
 * Exported so the simulator can keep many streams in one flat Uint32Array (one per node)
 * without one object per stream; `Rng` uses the same function on its own state.
 */
export function xoshiroNext(s: Uint32Array, o: number): number {
  const s0 = s[o]!;
  const s1 = s[o + 1]!;
  const s2 = s[o + 2]!;
  const s3 = s[o + 3]!;
  const result = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
  const t = s1 << 9;
  let n2 = s2 ^ s0;
  let n3 = s3 ^ s1;
  const n1 = s1 ^ n2;
  const n0 = s0 ^ n3;
  n2 ^= t;
  n3 = rotl(n3, 11);
  s[o] = n0;
  s[o + 1] = n1;
  s[o + 2] = n2;
  s[o + 3] = n3;
  return result;
}

/** The two 32-bit words and tag of a fork label. */
function labelWords(label: string | number): [tag: number, l0: number, l1: number] {
  if (typeof label === 'number') {
    if (!Number.isSafeInteger(label) || label < 0) {
      throw new RangeError(`rng label must be a non-negative safe integer or a string, got ${label}`);
    }
    return [TAG_NUMBER, label >>> 0, Math.floor(label / TWO_32) >>> 0];
  }
  // Two independent 32-bit hashes of the UTF-16 code units (FNV-1a and a murmur-style chain).
  let a = 0x811c9dc5;
  let b = label.length ^ GOLDEN;
  for (let i = 0; i < label.length; i++) {
    const c = label.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(rotl(b ^ c, 15), 0x5bd1e995);
  }
  return [TAG_STRING, fmix32(a), fmix32(b)];
}

/**
 * Derives a child key from `parent[po..po+3]` and a label into `out[oo..oo+3]`, and seeds the
 * xoshiro state at `state[so..so+3]` from it.
 */
export function deriveStream(
  parent: Uint32Array,
  po: number,
  label: string | number,
  out: Uint32Array,
  oo: number,
  state: Uint32Array,
  so: number,
): void {
  const [tag, l0, l1] = labelWords(label);
  deriveWords(parent[po]!, parent[po + 1]!, parent[po + 2]!, parent[po + 3]!, tag, l0, l1, out, oo);
  seedState(out, oo, state, so);
}

function deriveWords(
  k0: number,
  k1: number,
  k2: number,
  k3: number,
  tag: number,
  l0: number,
  l1: number,
  out: Uint32Array,
  oo: number,
): void {
  for (let lane = 0; lane < 4; lane++) {
    let h = fmix32(Math.imul(GOLDEN, lane + 1) ^ tag);
    h = fmix32((h ^ k0) + GOLDEN);
    h = fmix32((h ^ k1) + GOLDEN);
    h = fmix32((h ^ k2) + GOLDEN);
    h = fmix32((h ^ k3) + GOLDEN);
    h = fmix32((h ^ l0) + GOLDEN);
    h = fmix32((h ^ l1) + GOLDEN);
    out[oo + lane] = h;
  }
}

function seedState(key: Uint32Array, ko: number, state: Uint32Array, so: number): void {
  let zero = true;
  for (let i = 0; i < 4; i++) {
    const w = fmix32(key[ko + i]! ^ 0x2545f491);
    state[so + i] = w;
    if (w !== 0) zero = false;
  }
  if (zero) state[so] = 1; // xoshiro's only forbidden state; probability 2^-128
}

/** A deterministic random stream. Not cryptographic. */
export class Rng {
  /**
   * Words o..o+3: running xoshiro state; o+4..o+7: the stream's key (its identity, fixed).
   * Usually a private 8-word array; the simulator places node streams in its node table
   * instead (see `Rng.view`), so a million nodes do not cost a million typed arrays.
   */
  private w: Uint32Array;
  private o: number;

  private constructor(w: Uint32Array, o: number) {
    this.w = w;
    this.o = o;
  }

  /**
   * A stream living in caller-owned memory at `w[o..o+7]` (state, then key), e.g. written by
   * `forkInto(label, w, o + 4, w, o)`. The caller must not reuse that memory while the stream
   * is in use, or must `detach()` it first.
   */
  static view(w: Uint32Array, o: number): Rng {
    if (!(o >= 0 && o + 8 <= w.length)) throw new RangeError('rng view out of bounds');
    return new Rng(w, o);
  }

  /** Moves a view's state and key into private memory; the stream continues unchanged. */
  detach(): void {
    this.w = this.w.slice(this.o, this.o + 8);
    this.o = 0;
  }

  /** The root stream of a run. `seed` is any non-negative safe integer, e.g. from `--seed`. */
  static seeded(seed: number): Rng {
    if (!Number.isSafeInteger(seed) || seed < 0) {
      throw new RangeError(`seed must be a non-negative safe integer, got ${seed}`);
    }
    const w = new Uint32Array(8);
    deriveWords(0, 0, 0, 0, TAG_SEED, seed >>> 0, Math.floor(seed / TWO_32) >>> 0, w, 4);
    seedState(w, 4, w, 0);
    return new Rng(w, 0);
  }

  /**
   * An independent stream derived from this stream's key and `label` only (not from how much
   * has been drawn). Same parent + same label → same stream; any other label → unrelated stream.
   */
  fork(label: string | number): Rng {
    const w = new Uint32Array(8);
    deriveStream(this.w, this.o + 4, label, w, 4, w, 0);
    return new Rng(w, 0);
  }

  /** Writes the key and initial state of `fork(label)` into caller-owned arrays (no allocation). */
  forkInto(label: string | number, key: Uint32Array, ko: number, state: Uint32Array, so: number): void {
    deriveStream(this.w, this.o + 4, label, key, ko, state, so);
  }

  /** A uniform uint32. */
  uint32(): number {
    return xoshiroNext(this.w, this.o);
  }

  /** A uniform float in [0, 1) with 53 random bits. */
  next(): number {
    const hi = xoshiroNext(this.w, this.o) >>> 5; // 27 bits
    const lo = xoshiroNext(this.w, this.o) >>> 6; // 26 bits
    return (hi * 67108864 + lo) / TWO_53;
  }

  /** A uniform integer in [0, n), without modulo bias; 1 ≤ n ≤ 2^53. */
  int(n: number): number {
    if (!Number.isSafeInteger(n) && n !== TWO_53) throw new RangeError(`int(n) needs an integer n, got ${n}`);
    if (n < 1) throw new RangeError(`int(n) needs n ≥ 1, got ${n}`);
    if (n <= TWO_32) {
      const limit = TWO_32 - (TWO_32 % n); // largest multiple of n ≤ 2^32
      for (;;) {
        const u = xoshiroNext(this.w, this.o);
        if (u < limit) return u % n;
      }
    }
    const limit = TWO_53 - (TWO_53 % n);
    for (;;) {
      const u = (xoshiroNext(this.w, this.o) >>> 11) * TWO_32 + xoshiroNext(this.w, this.o);
      if (u < limit) return u % n;
    }
  }

  /** A uniform integer in [lo, hi). */
  range(lo: number, hi: number): number {
    if (!(hi > lo)) throw new RangeError(`range(${lo}, ${hi}) is empty`);
    return lo + this.int(hi - lo);
  }

  /** A uniform float in [lo, hi). */
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }

  /** True with probability `p` (resolution 2^-32); p ≤ 0 never, p ≥ 1 always. */
  bool(p = 0.5): boolean {
    return xoshiroNext(this.w, this.o) < p * TWO_32;
  }

  /** A uniform element of a non-empty array. */
  pick<T>(arr: readonly T[]): T {
    if (arr.length === 0) throw new RangeError('pick from an empty array');
    return arr[this.int(arr.length)]!;
  }

  /** Fisher–Yates shuffle in place; returns `arr`. */
  shuffle<T>(arr: T[]): T[] {
    for (let i = arr.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const x = arr[i]!;
      arr[i] = arr[j]!;
      arr[j] = x;
    }
    return arr;
  }

  /** `n` random bytes. */
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    let i = 0;
    for (; i + 4 <= n; i += 4) {
      const u = xoshiroNext(this.w, this.o);
      out[i] = u;
      out[i + 1] = u >>> 8;
      out[i + 2] = u >>> 16;
      out[i + 3] = u >>> 24;
    }
    if (i < n) {
      let u = xoshiroNext(this.w, this.o);
      for (; i < n; i++, u >>>= 8) out[i] = u;
    }
    return out;
  }

  /** Exponentially distributed with the given mean (tail capped at ~22.9 means by 32-bit draws). */
  exp(mean: number): number {
    return expFromU32(xoshiroNext(this.w, this.o), mean);
  }
}

/** Maps a uint32 to an exponential variate: u ∈ (0,1) → −mean·ln(u). Shared by Rng and the network. */
export function expFromU32(u32: number, mean: number): number {
  return -mean * Math.log((u32 + 0.5) / TWO_32);
}
