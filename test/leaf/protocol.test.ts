/** Leaf protocol frames: round trip of every frame type, bounds, and fuzzing (DecodeError only). */
import test from 'ava';
import fc from 'fast-check';
import { DecodeError } from '../../wire/index.js';
import {
  LeafFrames,
  MAX_LEAF_FRAME_BYTES,
  MAX_PARTS_PER_PUSH,
  decodeLeafFrame,
  encodeLeafFrame,
  EVICTION_REASONS,
  LEAF_ERROR_CODES,
  MAX_IN_BAND_CRLS,
  MAX_IN_BAND_CRL_BYTES,
  MAX_SIGNERS,
  MAX_WELCOME_BYTES,
  PUBLISH_RESULTS,
  type LeafFrame,
} from '../../gossip-edge/index.js';

const bytes = (max: number): fc.Arbitrary<Uint8Array> => fc.uint8Array({ maxLength: max });
const fixed = (n: number): fc.Arbitrary<Uint8Array> => fc.uint8Array({ minLength: n, maxLength: n });
const uint = fc.nat({ max: Number.MAX_SAFE_INTEGER });
const stream = fc.record({ origin: uint, next: uint });
const push = fc.record({
  header: bytes(200),
  signer: fixed(32),
  signature: fixed(64),
  parts: fc.array(bytes(300), { maxLength: MAX_PARTS_PER_PUSH }),
});

const signer = fc.record({
  name: fc.string({ maxLength: 16 }),
  publicKey: fixed(32),
  serial: fc.stringMatching(/^[0-9a-f]{0,40}$/),
});

const frame: fc.Arbitrary<LeafFrame> = fc.oneof(
  fc.record({
    type: fc.constant('join' as const),
    flags: fc.constant(0),
    body: fc.record({
      resume: fc.option(fc.record({ admittedEpoch: uint, epoch: uint }), { nil: undefined }),
      crlNumber: fc.option(fc.stringMatching(/^[0-9]{1,40}$/), { nil: undefined }),
    }),
  }),
  fc.record({
    type: fc.constant('welcome' as const),
    flags: fc.constant(0),
    body: fc.record({
      welcome: bytes(500),
      epoch: uint,
      admittedEpoch: uint,
      memberId: uint,
      leaseMs: uint,
      signers: fc.array(signer, { maxLength: 5 }),
      crls: fc.array(bytes(600), { maxLength: 2 }),
    }),
  }),
  fc.record({
    type: fc.constant('crlUpdate' as const),
    flags: fc.constant(0),
    body: fc.record({
      crls: fc.array(bytes(600), { maxLength: 2 }),
      signers: fc.array(signer, { maxLength: 5 }),
    }),
  }),
  fc.record({ type: fc.constant('rekeyPush' as const), flags: fc.constant(0), body: push }),
  fc.record({
    type: fc.constant('dataPublish' as const),
    flags: fc.constant(0),
    body: fc.record({ envelope: bytes(2000) }),
  }),
  fc.record({
    type: fc.constant('dataDeliver' as const),
    flags: fc.constant(0),
    body: fc.record({ envelope: bytes(2000) }),
  }),
  fc.record({
    type: fc.constant('leaseRenew' as const),
    flags: fc.constant(0),
    body: fc.record({ seq: uint }),
  }),
  fc.record({
    type: fc.constant('leaseAck' as const),
    flags: fc.constant(0),
    body: fc.record({ seq: uint, leaseMs: uint, stream: fc.option(stream, { nil: undefined }) }),
  }),
  fc.record({
    type: fc.constant('dataPull' as const),
    flags: fc.constant(0),
    body: fc.record({ origin: uint, fromSeq: uint }),
  }),
  fc.record({
    type: fc.constant('dataPullReply' as const),
    flags: fc.constant(0),
    body: fc.record({
      origin: uint,
      next: uint,
      head: uint,
      items: fc.array(fc.record({ seq: uint, entry: bytes(300) }), { maxLength: 5 }),
    }),
  }),
  fc.record({
    type: fc.constant('leave' as const),
    flags: fc.constant(0),
    body: fc.record({ admittedEpoch: fc.option(uint, { nil: undefined }) }),
  }),
  fc.record({
    type: fc.constant('leafKeyRefresh' as const),
    flags: fc.constant(0),
    body: fc.record({ admittedEpoch: uint, counter: uint }),
  }),
  fc.record({
    type: fc.constant('evicted' as const),
    flags: fc.constant(0),
    body: fc.record({ reason: fc.constantFrom(...EVICTION_REASONS), epoch: uint }),
  }),
  fc.record({
    type: fc.constant('catchUpRequest' as const),
    flags: fc.constant(0),
    body: fc.record({ fromEpoch: uint, slot: uint }),
  }),
  fc.record({
    type: fc.constant('catchUpReply' as const),
    flags: fc.constant(0),
    body: fc.record({ pushes: fc.array(push, { maxLength: 3 }), rejoin: fc.boolean() }),
  }),
  fc.record({
    type: fc.constant('error' as const),
    flags: fc.constant(0),
    body: fc.record({ code: fc.constantFrom(...LEAF_ERROR_CODES), detail: fc.string({ maxLength: 60 }) }),
  }),
  fc.record({
    type: fc.constant('publishAck' as const),
    flags: fc.constant(0),
    body: fc.record({ result: fc.constantFrom(...PUBLISH_RESULTS) }),
  }),
);

function onlyDecodeError(t: { true(v: boolean, m?: string): void }, input: Uint8Array): void {
  try {
    decodeLeafFrame(input);
  } catch (e) {
    t.true(e instanceof DecodeError, `non-DecodeError: ${String(e)}`);
  }
}

test('every frame type round-trips canonically', (t) => {
  fc.assert(
    fc.property(frame, (f) => {
      const enc = LeafFrames.encodeFrame(f);
      const dec = decodeLeafFrame(enc);
      t.deepEqual(dec, f);
      t.deepEqual(LeafFrames.encodeFrame(dec), enc);
    }),
    { numRuns: 400 },
  );
});

test('fuzz: random bytes and mutated frames decode or throw DecodeError, nothing else', (t) => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 600 }), (b) => onlyDecodeError(t, b)),
    { numRuns: 1000 },
  );
  fc.assert(
    fc.property(
      frame,
      fc.array(fc.tuple(fc.nat(), fc.nat(255)), { minLength: 1, maxLength: 6 }),
      fc.nat(),
      (f, flips, cutAt) => {
        const enc = LeafFrames.encodeFrame(f);
        const bad = enc.slice();
        for (const [at, v] of flips) bad[at % bad.length] = v;
        onlyDecodeError(t, bad);
        onlyDecodeError(t, enc.subarray(0, cutAt % enc.length));
      },
    ),
    { numRuns: 1000 },
  );
});

test('bounds: oversize fields refuse to encode; oversize frames and unknown enums refuse to decode', (t) => {
  t.throws(() => encodeLeafFrame('dataPublish', { envelope: new Uint8Array(200 * 1024) }), {
    instanceOf: RangeError,
  });
  t.throws(() =>
    encodeLeafFrame('rekeyPush', {
      header: new Uint8Array(10),
      signer: new Uint8Array(32),
      signature: new Uint8Array(64),
      parts: Array.from({ length: MAX_PARTS_PER_PUSH + 1 }, () => new Uint8Array(1)),
    }),
  );
  t.throws(() => decodeLeafFrame(new Uint8Array(MAX_LEAF_FRAME_BYTES + 1)), { instanceOf: DecodeError });
  const ev = encodeLeafFrame('evicted', { reason: 'revoked', epoch: 3 });
  const bad = ev.slice();
  bad[10] = 0xff; // reason index high byte: no such reason
  t.throws(() => decodeLeafFrame(bad), { instanceOf: DecodeError });
  // Frame types 0x0701.. belong to this protocol alone.
  t.true(LeafFrames.owns(0x0701) && LeafFrames.owns(0x070c) && LeafFrames.owns(0x0713));
});

test('revocation in band: the largest welcome and crlUpdate fit a frame; more CRLs or larger ones do not encode', (t) => {
  const signers = Array.from({ length: MAX_SIGNERS }, (_, i) => ({
    name: `core-${i}`.padEnd(64, 'x'),
    publicKey: new Uint8Array(32),
    serial: 'f'.repeat(64),
  }));
  const crls = Array.from({ length: MAX_IN_BAND_CRLS }, () => new Uint8Array(MAX_IN_BAND_CRL_BYTES));
  const welcome = {
    welcome: new Uint8Array(MAX_WELCOME_BYTES),
    epoch: Number.MAX_SAFE_INTEGER,
    admittedEpoch: Number.MAX_SAFE_INTEGER,
    memberId: Number.MAX_SAFE_INTEGER,
    leaseMs: Number.MAX_SAFE_INTEGER,
    signers,
    crls,
  };
  const w = decodeLeafFrame(encodeLeafFrame('welcome', welcome));
  t.is(w.type === 'welcome' ? w.body.crls.length : -1, MAX_IN_BAND_CRLS);
  t.true(encodeLeafFrame('crlUpdate', { crls, signers }).length <= MAX_LEAF_FRAME_BYTES);
  t.throws(() => encodeLeafFrame('crlUpdate', { crls: [...crls, new Uint8Array(1)], signers }), {
    instanceOf: RangeError,
  });
  t.throws(
    () => encodeLeafFrame('crlUpdate', { crls: [new Uint8Array(MAX_IN_BAND_CRL_BYTES + 1)], signers }),
    {
      instanceOf: RangeError,
    },
  );
  t.throws(() => encodeLeafFrame('join', { resume: undefined, crlNumber: '1'.repeat(49) }), {
    instanceOf: RangeError,
  });
});
