import test from 'ava';
import fc from 'fast-check';
import {
  FRAME_HEADER_BYTES,
  MAX_MESSAGE_BYTES,
  StreamDeframer,
  WIRE_VERSION,
  defineFrames,
  frameForStream,
  frameTypeOwner,
  peekFrameHeader,
  struct,
  varuint,
} from '../../wire/index.js';
import { Prng, TestFrames, codeOf, concat, genFrame } from './kit.js';

test('frame: header layout and round trip', (t) => {
  const f = TestFrames.encodeFrame({ type: 'bye', flags: 1, body: {} });
  t.deepEqual([...f], [0x4b, 0x47, WIRE_VERSION, 0x01, 0x7f, 0x03, 0, 0, 0, 0]);
  t.deepEqual(TestFrames.decodeFrame(f), { type: 'bye', flags: 1, body: {} });
  const p = new Prng(1);
  for (let i = 0; i < 200; i++) {
    const frame = genFrame(p);
    const bytes = TestFrames.encodeFrame(frame);
    t.is(peekFrameHeader(bytes).bodyLength, bytes.length - FRAME_HEADER_BYTES);
    t.deepEqual(TestFrames.decodeFrame(bytes), frame);
  }
  t.is(TestFrames.typeOf('hello'), 0x7f02);
  t.true(TestFrames.owns(0x7f03));
  t.is(frameTypeOwner(0x7f01), 'test.frames');
});

test('frame: every header field is checked', (t) => {
  const good = TestFrames.encodeFrame({
    type: 'hello',
    flags: 0,
    body: { id: new Uint8Array(32), epoch: 5n },
  });
  const at = (i: number, v: number) => {
    const b = good.slice();
    b[i] = v;
    return b;
  };
  t.is(
    codeOf(() => TestFrames.decodeFrame(at(0, 0x00))),
    'bad-value',
    'magic',
  );
  t.is(
    codeOf(() => TestFrames.decodeFrame(at(2, WIRE_VERSION + 1))),
    'bad-version',
  );
  t.is(
    codeOf(() => TestFrames.decodeFrame(at(3, 0x02))),
    'bad-value',
    'undefined flag bit',
  );
  t.is(
    codeOf(() => TestFrames.decodeFrame(at(5, 0x09))),
    'bad-tag',
    'unknown frame type',
  );
  t.is(
    codeOf(() => TestFrames.decodeFrame(at(9, good[9]! + 1))),
    'truncated',
    'body length too long',
  );
  t.is(
    codeOf(() => TestFrames.decodeFrame(at(9, good[9]! - 1))),
    'truncated',
    'body codec overruns length',
  );
  t.is(
    codeOf(() => TestFrames.decodeFrame(concat(good, Uint8Array.of(0)))),
    'trailing-bytes',
  );
  t.is(
    codeOf(() => TestFrames.decodeFrame(at(6, 0x01))),
    'too-large',
    'declared body over the protocol cap',
  );
  t.is(
    codeOf(() => TestFrames.decodeFrame(good.subarray(0, 5))),
    'truncated',
  );
  t.is(
    codeOf(() => TestFrames.decodeFrame(new Uint8Array(4097))),
    'too-large',
  );
  // Trailing bytes inside the declared body are refused too (the body codec must consume it all).
  const padded = concat(good.slice(0, 10), good.slice(10), Uint8Array.of(0));
  new DataView(padded.buffer).setUint32(6, padded.length - FRAME_HEADER_BYTES);
  t.is(
    codeOf(() => TestFrames.decodeFrame(padded)),
    'trailing-bytes',
  );
  t.throws(() => TestFrames.encodeFrame({ type: 'bye', flags: 2, body: {} }), { instanceOf: RangeError });
});

test('frame registry: type numbers are unique process-wide and bounded', (t) => {
  t.throws(() => defineFrames('other', { x: [0x7f01, struct({})] }), { message: /claimed by both/ });
  t.throws(() => defineFrames('dup', { x: [0x7e01, varuint], y: [0x7e01, varuint] }), {
    instanceOf: RangeError,
  });
  t.throws(() => defineFrames('big', { x: [0x7e02, varuint] }, { maxFrameBytes: MAX_MESSAGE_BYTES + 1 }));
  t.is(frameTypeOwner(0x7e02), undefined, 'a failed definition claims nothing');
  const p = defineFrames('ok', { x: [0x7e03, varuint] }, { maxFrameBytes: 16 });
  t.is(p.decodeFrame(p.encodeFrame({ type: 'x', flags: 0, body: 300 })).body, 300);
  t.throws(() => p.encodeFrame({ type: 'x', flags: 0, body: Number.MAX_SAFE_INTEGER }), {
    instanceOf: RangeError,
  });
});

test('deframer: any chunking yields the same frames', (t) => {
  fc.assert(
    fc.property(
      fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 8 }),
      fc.array(fc.integer({ min: 1, max: 50 }), { minLength: 1, maxLength: 20 }),
      (msgs, cuts) => {
        const stream = concat(...msgs.map((m) => frameForStream(m, 300)));
        const d = new StreamDeframer(300);
        const got: Uint8Array[] = [];
        for (let pos = 0, i = 0; pos < stream.length; i++) {
          const n = cuts[i % cuts.length]!;
          got.push(...d.push(stream.subarray(pos, pos + n)));
          pos += n;
        }
        d.end();
        return got.length === msgs.length && got.every((g, i) => Buffer.compare(g, msgs[i]!) === 0);
      },
    ),
    { numRuns: 1000, seed: 3 },
  );
  t.pass();
});

test('deframer: an oversize length fails before allocating, and the stream stays failed', (t) => {
  const d = new StreamDeframer(1024);
  t.deepEqual(d.push(Uint8Array.of(0, 0)), []);
  t.is(d.pending, 2);
  t.is(
    codeOf(() => d.push(Uint8Array.of(0xff, 0xff))),
    'too-large',
  );
  t.is(
    codeOf(() => d.push(frameForStream(Uint8Array.of(1), 1024))),
    'too-large',
    'poisoned',
  );
  const e = new StreamDeframer(1024);
  t.is(
    codeOf(() => e.push(Uint8Array.of(0, 0, 4, 1))),
    'too-large',
    'cap + 1',
  );
  const cut = new StreamDeframer(1024);
  cut.push(frameForStream(Uint8Array.of(1, 2, 3), 1024).subarray(0, 5));
  t.is(
    codeOf(() => cut.end()),
    'truncated',
  );
  t.throws(() => frameForStream(new Uint8Array(1025), 1024), { instanceOf: RangeError });
  t.throws(() => new StreamDeframer(MAX_MESSAGE_BYTES + 1), { instanceOf: RangeError });
  // Zero-length frames are messages too, including at a chunk boundary.
  const z = new StreamDeframer(8);
  t.deepEqual(z.push(Uint8Array.of(0, 0, 0, 0)), [new Uint8Array(0)]);
  t.deepEqual(
    z.push(Uint8Array.of(0, 0, 0, 0, 0, 0, 0)).map((f) => f.length),
    [0],
  );
  t.deepEqual(
    z.push(Uint8Array.of(1, 9)).map((f) => [...f]),
    [[9]],
  );
});
