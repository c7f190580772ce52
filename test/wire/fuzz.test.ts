/**
 * Mutation fuzzing of every wire decoder: valid encodings, mutated by a seeded PRNG, must
 * either decode to a value that re-encodes to the very same bytes, or throw DecodeError.
 * Anything else (a TypeError, a RangeError, a non-canonical acceptance) is counted, and the
 * test fails printing the first offending input in hex with its seed, so it replays exactly.
 */
import test from 'ava';
import type { ExecutionContext } from 'ava';
import {
  DecodeError,
  StreamDeframer,
  decode,
  encode,
  frameForStream,
  peekFrameHeader,
  FRAME_HEADER_BYTES,
} from '../../wire/index.js';
import type { DecodeErrorCode } from '../../wire/index.js';
import { Prng, Sink, TestFrames, concat, genFrame, genSink, hex, mutate } from './kit.js';

const SEED = Number(process.env.KG_FUZZ_SEED ?? 0x5eed);
const PER_DECODER = Number(process.env.KG_FUZZ_INPUTS ?? 40_000);

class NotCanonical extends Error {}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

interface Outcome {
  accepted: number;
  codes: Partial<Record<DecodeErrorCode, number>>;
  unexpected: number;
  first: string | undefined;
}

function fuzz(
  t: ExecutionContext,
  name: string,
  seed: number,
  makeInput: (p: Prng) => Uint8Array,
  check: (input: Uint8Array, p: Prng) => void,
): Outcome {
  const p = new Prng(seed);
  const out: Outcome = { accepted: 0, codes: {}, unexpected: 0, first: undefined };
  for (let i = 0; i < PER_DECODER; i++) {
    const input = makeInput(p);
    try {
      check(input, p);
      out.accepted++;
    } catch (err) {
      if (err instanceof DecodeError) {
        out.codes[err.code] = (out.codes[err.code] ?? 0) + 1;
        continue;
      }
      out.unexpected++;
      out.first ??= `${name} seed=${seed} input #${i}: ${hex(input)}\n  ${String(err)}`;
    }
  }
  t.log(`${name}: ${PER_DECODER} inputs, ${out.accepted} accepted, rejected ${JSON.stringify(out.codes)}`);
  t.is(out.unexpected, 0, out.first);
  // The mutator must reach both outcomes, or the fuzzer is not exercising the decoder.
  t.true(out.accepted > PER_DECODER / 100, 'too few mutated inputs decode: mutations too coarse');
  t.true(Object.keys(out.codes).length >= 3, 'too few distinct rejection codes');
  return out;
}

test('fuzz: codec primitives and combinators (struct of every primitive)', (t) => {
  const pool = new Prng(SEED ^ 1);
  const valid = Array.from({ length: 64 }, () => encode(Sink, genSink(pool)));
  fuzz(
    t,
    'primitives',
    SEED,
    (p) => mutate(p, p.pick(valid), p.pick(valid)),
    (input) => {
      const v = decode(Sink, input);
      if (!sameBytes(encode(Sink, v), input)) throw new NotCanonical('re-encoding differs');
    },
  );
});

test('fuzz: frames (header, version, type, flags, length, body)', (t) => {
  const pool = new Prng(SEED ^ 2);
  const valid = Array.from({ length: 64 }, () => TestFrames.encodeFrame(genFrame(pool)));
  const out = fuzz(
    t,
    'frames',
    SEED + 1,
    (p) => mutate(p, p.pick(valid), p.pick(valid), [6]),
    (input) => {
      const f = TestFrames.decodeFrame(input);
      const h = peekFrameHeader(input, TestFrames.maxFrameBytes);
      if (h.bodyLength !== input.length - FRAME_HEADER_BYTES) throw new NotCanonical('header disagrees');
      if (!sameBytes(TestFrames.encodeFrame(f), input)) throw new NotCanonical('re-encoding differs');
    },
  );
  for (const code of ['bad-version', 'bad-tag', 'truncated', 'too-large'] as const) {
    t.true((out.codes[code] ?? 0) > 0, `mutations never produced ${code}`);
  }
});

test('fuzz: stream deframer under arbitrary chunking', (t) => {
  const cap = TestFrames.maxFrameBytes;
  const pool = new Prng(SEED ^ 3);
  const streams = Array.from({ length: 64 }, () => {
    const frames = Array.from({ length: 1 + pool.int(4) }, () => TestFrames.encodeFrame(genFrame(pool)));
    const prefixes: number[] = [];
    let at = 0;
    for (const f of frames) {
      prefixes.push(at);
      at += 4 + f.length;
    }
    return { bytes: concat(...frames.map((f) => frameForStream(f, cap))), prefixes };
  });
  fuzz(
    t,
    'deframer',
    SEED + 2,
    (p) => {
      const s = p.pick(streams);
      return mutate(p, s.bytes, p.pick(streams).bytes, s.prefixes);
    },
    (input, p) => {
      const d = new StreamDeframer(cap);
      const got: Uint8Array[] = [];
      for (let pos = 0; pos < input.length;) {
        const n = p.next() < 0.3 ? input.length : 1 + p.int(64);
        got.push(...d.push(input.subarray(pos, pos + n)));
        if (d.pending > 4 + cap) throw new Error(`deframer holds ${d.pending} bytes`);
        pos += n;
      }
      const consumed = input.length - d.pending;
      if (!sameBytes(concat(...got.map((f) => frameForStream(f, cap))), input.subarray(0, consumed))) {
        throw new NotCanonical('re-framing differs');
      }
      for (const f of got) TestFrames.decodeFrame(f); // frames out of a stream go to the frame decoder
      d.end();
    },
  );
});
