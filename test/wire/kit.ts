/**
 * Shared pieces for the wire tests: a codec that exercises every primitive, a frame protocol
 * built on it, a seeded PRNG, a value generator, and a mutator over valid encodings.
 */
import {
  DecodeError,
  bool,
  bytes,
  bytes32,
  defineFrames,
  epoch,
  fixedBytes,
  list,
  option,
  string,
  struct,
  u16,
  u32,
  u8,
  union,
  varuint,
} from '../../wire/index.js';
import type { CodecValue } from '../../wire/index.js';

export const Inner = union({
  ping: [1, struct({ seq: varuint })],
  note: [2, struct({ text: string(32), urgent: bool })],
  empty: [300, struct({})],
});

/** Every primitive and combinator at least once. */
export const Sink = struct({
  a: u8,
  b: u16,
  c: u32,
  epoch,
  n: varuint,
  flag: bool,
  tag4: fixedBytes(4),
  blob: bytes(64),
  name: string(64),
  nums: list(8, u16),
  key: option(bytes32),
  inner: list(4, Inner),
});
export type SinkValue = CodecValue<typeof Sink>;

export const TestFrames = defineFrames(
  'test.frames',
  {
    sink: [0x7f01, Sink],
    hello: [0x7f02, struct({ id: bytes32, epoch })],
    bye: [0x7f03, struct({})],
  },
  { maxFrameBytes: 4096, flagsMask: 0x01 },
);
export type TestFrame = CodecValue<typeof TestFrames>;

/** mulberry32: tiny, fast, good enough to drive a fuzzer reproducibly. */
export class Prng {
  constructor(private s: number) {}
  next(): number {
    this.s = (this.s + 0x6d2b79f5) | 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  bytes(n: number): Uint8Array {
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i++) b[i] = this.int(256);
    return b;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }
}

const WORDS = ['', 'a', 'key', 'épo', '鍵', '🔑x', 'Keyglass'];

export function genSink(p: Prng): SinkValue {
  const varuints = [0, 1, 127, 128, 16383, 16384, 2 ** 31, Number.MAX_SAFE_INTEGER];
  return {
    a: p.int(256),
    b: p.int(65536),
    c: p.int(2 ** 32),
    epoch: (BigInt(p.int(2 ** 32)) << 32n) | BigInt(p.int(2 ** 32)),
    n: p.next() < 0.5 ? p.pick(varuints) : p.int(2 ** 40),
    flag: p.next() < 0.5,
    tag4: p.bytes(4),
    blob: p.bytes(p.int(65)),
    name: Array.from({ length: p.int(5) }, () => p.pick(WORDS)).join(''),
    nums: Array.from({ length: p.int(9) }, () => p.int(65536)),
    key: p.next() < 0.5 ? undefined : p.bytes(32),
    inner: Array.from({ length: p.int(5) }, () => {
      const k = p.int(3);
      if (k === 0) return { kind: 'ping' as const, value: { seq: p.int(1e6) } };
      if (k === 1) return { kind: 'note' as const, value: { text: p.pick(WORDS), urgent: p.next() < 0.5 } };
      return { kind: 'empty' as const, value: {} };
    }),
  };
}

export function genFrame(p: Prng): TestFrame {
  const flags = p.int(2);
  const k = p.int(3);
  if (k === 0) return { type: 'sink', flags, body: genSink(p) };
  if (k === 1) return { type: 'hello', flags, body: { id: p.bytes(32), epoch: BigInt(p.int(1e9)) } };
  return { type: 'bye', flags, body: {} };
}

const BOUNDARY_U32 = [0, 1, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xffffffff];

/**
 * One to three stacked mutations of `input`: bit flips, byte overwrites, truncation,
 * extension, insertion, deletion, duplication, splicing with `other`, and overwriting a
 * 4-byte big-endian length field at `lengthAt` (or anywhere) with boundary or nearby values.
 */
export function mutate(
  p: Prng,
  input: Uint8Array,
  other: Uint8Array,
  lengthAt: readonly number[] = [],
): Uint8Array {
  let b: Uint8Array = input.slice();
  const rounds = 1 + p.int(3);
  for (let r = 0; r < rounds; r++) {
    const at = p.int(b.length + 1);
    switch (p.int(9)) {
      case 0: {
        if (b.length === 0) break;
        const i = p.int(b.length);
        b[i] = b[i]! ^ (1 << p.int(8));
        break;
      }
      case 1:
        if (b.length > 0) b[p.int(b.length)] = p.int(256);
        break;
      case 2:
        b = b.slice(0, at);
        break;
      case 3:
        b = concat(b, p.bytes(1 + p.int(16)));
        break;
      case 4:
        b = concat(b.slice(0, at), p.bytes(1 + p.int(8)), b.slice(at));
        break;
      case 5:
        b = concat(b.slice(0, at), b.slice(at + 1 + p.int(8)));
        break;
      case 6: {
        const len = 1 + p.int(16);
        b = concat(b.slice(0, at + len), b.slice(at, at + len), b.slice(at + len));
        break;
      }
      case 7:
        b = concat(b.slice(0, at), other.slice(p.int(other.length + 1)));
        break;
      case 8: {
        const pos =
          lengthAt.length > 0 && p.next() < 0.8 ? p.pick(lengthAt) : p.int(Math.max(1, b.length - 3));
        if (pos + 4 > b.length) break;
        const old = new DataView(b.buffer, b.byteOffset).getUint32(pos);
        const v = p.next() < 0.5 ? p.pick(BOUNDARY_U32) : (old + p.int(9) - 4) >>> 0;
        new DataView(b.buffer, b.byteOffset).setUint32(pos, v);
        break;
      }
    }
  }
  return b;
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, x) => n + x.length, 0));
  let o = 0;
  for (const x of parts) {
    out.set(x, o);
    o += x.length;
  }
  return out;
}

export function hex(b: Uint8Array): string {
  return Buffer.from(b).toString('hex');
}

/** The `DecodeError` code `fn` throws, or undefined if it returns; any other error propagates. */
export function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    if (err instanceof DecodeError) return err.code;
    throw err;
  }
  return undefined;
}
