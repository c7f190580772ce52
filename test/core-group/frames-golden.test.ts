/**
 * The core-group frame codec against golden bytes captured from the hand-written codec it
 * replaced (test/fixtures/core-group-frames.ts), and mutation fuzzing of the frame decoder.
 */
import test from 'ava';
import { decodeFrame, encodeFrame } from '../../core-group/index.js';
import type { DataMsg, Frame } from '../../core-group/index.js';
import { DecodeError } from '../../wire/index.js';
import type { DecodeErrorCode } from '../../wire/index.js';
import { GOLDEN_CORE_FRAMES } from '../fixtures/core-group-frames.js';
import { Prng, hex, mutate } from '../wire/kit.js';
import { FRAME_KINDS, frameFromJson, genCoreFrame } from './frame-gen.js';

/** A plain Uint8Array (a Buffer would decode to Buffer-typed payloads under the old codec). */
function fromHex(h: string): Uint8Array {
  return new Uint8Array(Buffer.from(h, 'hex'));
}

const golden = GOLDEN_CORE_FRAMES.map((g) => ({ frame: frameFromJson(g.frame), hex: g.hex }));

test('the fixture holds every frame kind', (t) => {
  t.deepEqual([...new Set(golden.map((g) => g.frame.t))].sort(), [...FRAME_KINDS].sort());
});

test('every golden frame encodes to exactly its captured bytes and decodes back', (t) => {
  for (const [i, g] of golden.entries()) {
    t.is(hex(encodeFrame(g.frame)), g.hex, `#${i} ${g.frame.t} encodes to the golden bytes`);
    t.deepEqual(decodeFrame(fromHex(g.hex)), g.frame, `#${i} ${g.frame.t} decodes to its value`);
  }
});

test('generated frames of every kind round-trip canonically', (t) => {
  const p = new Prng(0xfeed);
  for (let i = 0; i < 400; i++) {
    const f = genCoreFrame(p, p.pick(FRAME_KINDS));
    const bytes = encodeFrame(f);
    const back = decodeFrame(bytes);
    t.deepEqual(back, f);
    t.is(hex(encodeFrame(back)), hex(bytes));
  }
});

test('payloads decoded from a Buffer are plain copies that outlive the input', (t) => {
  // The hand-written codec returned Buffer views here (Buffer#slice does not copy).
  const g = golden.find((x) => x.frame.t === 'data' && x.frame.payload.length > 0)!;
  const input = Buffer.from(g.hex, 'hex');
  const f = decodeFrame(input) as DataMsg;
  t.false(Buffer.isBuffer(f.payload));
  input.fill(0);
  t.deepEqual(f, g.frame);
});

const SEED = Number(process.env.KG_FUZZ_SEED ?? 0x5eed);
const INPUTS = Number(process.env.KG_FUZZ_INPUTS ?? 40_000);

test('fuzz: mutated frames decode to a frame that re-encodes to the same bytes, or throw DecodeError', (t) => {
  const pool = new Prng(SEED ^ 0xc0);
  const valid = Array.from({ length: 128 }, () => encodeFrame(genCoreFrame(pool, pool.pick(FRAME_KINDS))));
  const p = new Prng(SEED);
  const codes: Partial<Record<DecodeErrorCode, number>> = {};
  const kinds = new Set<Frame['t']>();
  let accepted = 0;
  for (let i = 0; i < INPUTS; i++) {
    const input = mutate(p, p.pick(valid), p.pick(valid));
    let f: Frame;
    try {
      f = decodeFrame(input);
    } catch (err) {
      if (!(err instanceof DecodeError)) t.fail(`seed=${SEED} #${i} ${hex(input)}: ${String(err)}`);
      else codes[err.code] = (codes[err.code] ?? 0) + 1;
      continue;
    }
    accepted++;
    kinds.add(f.t);
    t.is(hex(encodeFrame(f)), hex(input), `seed=${SEED} #${i}: accepted a non-canonical encoding`);
  }
  t.log(`core-group frames: ${INPUTS} inputs, ${accepted} accepted, rejected ${JSON.stringify(codes)}`);
  // Both outcomes must be reached, over many kinds, or the fuzzer is not exercising the decoder.
  t.true(accepted > INPUTS / 100);
  t.true(kinds.size >= 10);
  t.true(Object.keys(codes).length >= 4);
});
