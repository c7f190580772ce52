import test from 'ava';
import fc from 'fast-check';
import { Channel, decodeFrame, encodeFrame, MAX_PAYLOAD_BYTES } from '../../core-group/index.js';
import type { Frame, PrimaryRef } from '../../core-group/index.js';
import { DecodeError } from '../../wire/index.js';

const a = 'alpha#1';
const b = 'beta.2#7';
const vid = { epoch: 9, coord: a };
const lp: PrimaryRef = { step: 3, id: vid, members: [a, b] };
const msg = { sender: b, seq: 4, ch: Channel.Ordered, payload: Uint8Array.of(1, 2, 3) };

const samples: Frame[] = [
  { t: 'data', from: a, view: vid, seq: 1, ch: Channel.Fifo, payload: new Uint8Array(10) },
  { t: 'status', from: a, view: vid, contig: [3, 0] },
  { t: 'nak', from: a, to: b, view: vid, sender: b, lo: 2, hi: 5 },
  { t: 'hb', from: a, to: b, view: vid },
  { t: 'excluded', from: a, to: b, view: vid },
  { t: 'ucast', from: a, to: b, view: vid, seq: 1, payload: Uint8Array.of(9) },
  { t: 'uack', from: a, to: b, view: vid, ack: 0 },
  { t: 'suspect', from: a, to: b, view: vid, suspects: [b] },
  { t: 'hello', from: a, view: vid, members: [a, b], primary: true, lpStep: 3, version: [1, 4, 9] },
  { t: 'propose', from: a, to: b, id: vid, members: [a, b] },
  {
    t: 'flushok',
    from: b,
    to: a,
    id: vid,
    oldView: { epoch: 0, coord: b },
    oldMembers: [b],
    oldPrimary: false,
    contig: [4],
    msgs: [msg],
    lastPrimary: { step: 0, id: { epoch: 0, coord: '' }, members: [a] },
    attempts: [lp],
    version: [0, 2, 17],
  },
  {
    t: 'prepare',
    from: a,
    to: b,
    id: vid,
    members: [a, b],
    primary: true,
    lastPrimary: lp,
    attempts: [],
    cut: [4],
    msgs: [msg],
    resendUnordered: true,
  },
  { t: 'ready', from: b, to: a, id: vid },
  { t: 'commit', from: a, to: b, id: vid, state: Uint8Array.of(7, 7), version: [1, 3, 2 ** 40] },
  { t: 'commit', from: a, to: b, id: vid, state: undefined, version: [] },
  { t: 'installed', from: b, to: a, id: vid },
];

test('every frame kind round-trips canonically', (t) => {
  for (const f of samples) {
    const bytes = encodeFrame(f);
    const back = decodeFrame(bytes);
    t.deepEqual(back, f, f.t);
    t.deepEqual(encodeFrame(back), bytes, `${f.t} re-encodes identically`);
  }
});

test('truncated frames, bad versions, tags and keys are DecodeErrors', (t) => {
  for (const f of samples) {
    const bytes = encodeFrame(f);
    for (let cut = 0; cut < bytes.length; cut++) {
      t.throws(() => decodeFrame(bytes.subarray(0, cut)), { instanceOf: DecodeError });
    }
    t.throws(() => decodeFrame(Uint8Array.of(...bytes, 0)), { instanceOf: DecodeError });
  }
  const hb = encodeFrame(samples[3]!);
  t.is(
    t.throws(() => decodeFrame(Uint8Array.of(2, ...hb.subarray(1))), { instanceOf: DecodeError })?.code,
    'bad-version',
  );
  t.is(
    t.throws(() => decodeFrame(Uint8Array.of(1, 200, ...hb.subarray(2))), { instanceOf: DecodeError })?.code,
    'bad-tag',
  );
  const badKey = encodeFrame({ t: 'hb', from: 'x#1', to: b, view: vid });
  badKey[3] = '#'.charCodeAt(0); // "##1": not a member key
  t.throws(() => decodeFrame(badKey), { instanceOf: DecodeError });
});

test('oversize payloads cannot be encoded and zero seqs are refused', (t) => {
  t.throws(() =>
    encodeFrame({
      t: 'data',
      from: a,
      view: vid,
      seq: 1,
      ch: Channel.Fifo,
      payload: new Uint8Array(MAX_PAYLOAD_BYTES + 1),
    }),
  );
  const bytes = encodeFrame({
    t: 'data',
    from: a,
    view: vid,
    seq: 1,
    ch: Channel.Fifo,
    payload: new Uint8Array(1),
  });
  const i = bytes.length - 4; // seq byte: …‖ seq(1) ‖ ch ‖ len ‖ payload
  bytes[i] = 0;
  t.throws(() => decodeFrame(bytes), { instanceOf: DecodeError });
});

test('random bytes decode to a frame or a DecodeError, never anything else', (t) => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
      try {
        decodeFrame(Uint8Array.of(1, bytes[0] ?? 0 % 15, ...bytes));
      } catch (e) {
        if (!(e instanceof DecodeError)) throw e;
      }
    }),
    { numRuns: 2000 },
  );
  t.pass();
});
