import test from 'ava';
import fc from 'fast-check';
import {
  DecodeError,
  MAX_MESSAGE_BYTES,
  Reader,
  Writer,
  bytes,
  decode,
  encode,
  list,
  option,
  refine,
  string,
  struct,
  taggedUnion,
  u64,
  u8,
  union,
  varuint,
} from '../../wire/index.js';
import { Inner, Sink, codeOf } from './kit.js';
import type { SinkValue } from './kit.js';

test('codec: varuint round-trips and rejects non-canonical encodings', (t) => {
  for (const v of [0, 1, 127, 128, 300, 2 ** 32, Number.MAX_SAFE_INTEGER]) {
    const bytes = new Writer().varuint(v).finish();
    const r = new Reader(bytes);
    t.is(r.varuint(), v);
    r.end();
  }
  t.is(
    codeOf(() => new Reader(Uint8Array.of(0x80, 0x00)).varuint()),
    'non-canonical',
  );
  t.is(
    codeOf(() => new Reader(Uint8Array.of(0x80)).varuint()),
    'truncated',
  );
  t.is(
    codeOf(() => new Reader(new Uint8Array(8).fill(0xff)).varuint()),
    'bad-value',
  );
  // 2^53 encodes in 8 bytes but exceeds the safe range.
  t.is(
    codeOf(() => new Reader(Uint8Array.of(0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10)).varuint()),
    'bad-value',
  );
});

test('codec: caps, booleans, options, UTF-8 and trailing bytes are enforced', (t) => {
  t.is(
    codeOf(() => decode(bytes(3), Uint8Array.of(4, 1, 2, 3, 4))),
    'too-large',
  );
  t.is(
    codeOf(() => decode(bytes(8), Uint8Array.of(4, 1, 2))),
    'truncated',
  );
  t.is(
    codeOf(() => new Reader(Uint8Array.of(2)).bool()),
    'non-canonical',
  );
  t.is(
    codeOf(() => decode(option(varuint), Uint8Array.of(2, 0))),
    'non-canonical',
  );
  t.is(
    codeOf(() => decode(string(8), Uint8Array.of(2, 0xc0, 0x80))),
    'bad-value',
    'overlong UTF-8',
  );
  t.is(
    codeOf(() => decode(string(8), Uint8Array.of(3, 0xed, 0xa0, 0x80))),
    'bad-value',
    'encoded surrogate',
  );
  t.is(
    codeOf(() => decode(list(2, varuint), Uint8Array.of(3, 1, 2, 3))),
    'too-large',
  );
  t.is(
    codeOf(() => decode(varuint, Uint8Array.of(1, 0))),
    'trailing-bytes',
  );
  t.is(
    codeOf(() => decode(varuint, new Uint8Array(MAX_MESSAGE_BYTES + 1))),
    'too-large',
  );
  t.is(
    codeOf(() => decode(union({ a: [1, varuint] }), Uint8Array.of(2, 0))),
    'bad-tag',
  );
  // Encoding past a cap is the caller's bug: RangeError, never a silently truncated value.
  t.throws(() => encode(bytes(3), Uint8Array.of(1, 2, 3, 4)), { instanceOf: RangeError });
  t.throws(() => encode(string(8), 'a\ud800b'), { instanceOf: RangeError });
  t.throws(() => encode(u64, -1n), { instanceOf: RangeError });
  t.throws(() => encode(varuint, 1, 0), { instanceOf: RangeError });
});

test('codec: bytes decode to copies that outlive the input, also from a Buffer', (t) => {
  const input = Buffer.from([2, 9, 9]);
  const out = decode(bytes(8), input);
  input.fill(0);
  t.deepEqual([...out], [9, 9]);
});

test('combinators refuse ambiguous definitions', (t) => {
  t.throws(() => union({ a: [1, varuint], b: [1, varuint] }), { instanceOf: RangeError });
  t.throws(() => union({ a: [0x10000, varuint] }), { instanceOf: RangeError });
  t.throws(() => struct({ 1: varuint }), { instanceOf: TypeError });
});

/** Plain objects, like the decoder builds (fast-check defaults to null-prototype records). */
const NP = { noNullPrototype: true } as const;
const arbSink: fc.Arbitrary<SinkValue> = fc.record(
  {
    a: fc.integer({ min: 0, max: 0xff }),
    b: fc.integer({ min: 0, max: 0xffff }),
    c: fc.integer({ min: 0, max: 0xffffffff }),
    epoch: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
    n: fc.maxSafeNat(),
    flag: fc.boolean(),
    tag4: fc.uint8Array({ minLength: 4, maxLength: 4 }),
    blob: fc.uint8Array({ maxLength: 64 }),
    name: fc.string({ unit: 'binary', maxLength: 16 }), // ≤ 16 code points × 4 bytes = 64 bytes
    nums: fc.array(fc.integer({ min: 0, max: 0xffff }), { maxLength: 8 }),
    key: fc.option(fc.uint8Array({ minLength: 32, maxLength: 32 }), { nil: undefined }),
    inner: fc.array(
      fc.oneof(
        fc.record({ kind: fc.constant('ping' as const), value: fc.record({ seq: fc.maxSafeNat() }, NP) }, NP),
        fc.record(
          {
            kind: fc.constant('note' as const),
            value: fc.record(
              { text: fc.string({ unit: 'grapheme-ascii', maxLength: 32 }), urgent: fc.boolean() },
              NP,
            ),
          },
          NP,
        ),
        fc.record({ kind: fc.constant('empty' as const), value: fc.constant({}) }, NP),
      ),
      { maxLength: 4 },
    ),
  },
  NP,
);

test('refine: values outside the domain are refused on both sides, with the chosen code', (t) => {
  const even = refine(varuint, (n) => n % 2 === 0, 'odd');
  t.deepEqual(encode(even, 300), Uint8Array.of(0xac, 0x02)); // the inner codec's bytes, unchanged
  t.is(decode(even, Uint8Array.of(0xac, 0x02)), 300);
  t.throws(() => encode(even, 3), { instanceOf: RangeError });
  t.is(
    codeOf(() => decode(even, Uint8Array.of(3))),
    'bad-value',
  );
  const small = refine(u8, (n): n is 0 | 1 => n <= 1, 'not a bit', 'bad-tag');
  t.is(
    codeOf(() => decode(small, Uint8Array.of(2))),
    'bad-tag',
  );
  t.is(
    codeOf(() => decode(small, Uint8Array.of())),
    'truncated',
  ); // the inner codec's errors pass through
});

test('taggedUnion: the kind is a field of the record; tag ‖ fields; unknown tags and kinds refused', (t) => {
  const Msg = taggedUnion('t', {
    ping: [1, struct({ n: varuint })],
    note: [200, struct({ text: string(8), n: varuint })],
    bye: [3, struct({})],
  });
  t.deepEqual(encode(Msg, { t: 'ping', n: 7 }), Uint8Array.of(1, 7));
  t.deepEqual(encode(Msg, { t: 'note', text: 'hi', n: 1 }), Uint8Array.of(0xc8, 0x01, 2, 0x68, 0x69, 1));
  t.deepEqual(decode(Msg, Uint8Array.of(0xc8, 0x01, 2, 0x68, 0x69, 1)), { t: 'note', text: 'hi', n: 1 });
  t.deepEqual(decode(Msg, Uint8Array.of(3)), { t: 'bye' });
  t.is(
    codeOf(() => decode(Msg, Uint8Array.of(2, 7))),
    'bad-tag',
  );
  t.is(
    codeOf(() => decode(Msg, Uint8Array.of(1))),
    'truncated',
  );
  t.throws(() => encode(Msg, { t: 'nope' } as never), { instanceOf: RangeError });
  t.throws(() => taggedUnion('t', { a: [1, struct({})], b: [1, struct({})] }), { instanceOf: RangeError });
  t.throws(() => taggedUnion('t', { a: [0x10000, struct({})] }), { instanceOf: RangeError });
});

test('property: decode ∘ encode is identity on generated values', (t) => {
  fc.assert(
    fc.property(arbSink, (v) => {
      const b = encode(Sink, v);
      const back = decode(Sink, b);
      return fc.stringify(back) === fc.stringify(v) && Buffer.compare(encode(Sink, back), b) === 0;
    }),
    { numRuns: 2000, seed: 42 },
  );
  t.pass();
});

test('property: any bytes either decode canonically or throw DecodeError', (t) => {
  for (const codec of [Sink, Inner]) {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 256 }), (input) => {
        let v: unknown;
        try {
          v = decode(codec as typeof Sink, input);
        } catch (err) {
          return err instanceof DecodeError;
        }
        return Buffer.compare(encode(codec as typeof Sink, v as SinkValue), input) === 0;
      }),
      { numRuns: 5000, seed: 7 },
    );
  }
  t.pass();
});
