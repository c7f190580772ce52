import test from 'ava';
import fc from 'fast-check';
import {
  authenticatedBytes,
  dataId,
  decodeEnvelope,
  encodeEnvelope,
  envelopeCore,
  frameOf,
  GossipFrames,
  macInput,
  macInputOfFrame,
  GOSSIP_KINDS,
  gossipConfig,
  MAX_GOSSIP_FRAME_BYTES,
  LIMITS,
  MAC_BYTES,
  rekeyId,
  wireBytes,
  WHOLE_GROUP_END,
  type Envelope,
  type GossipBody,
} from '../../gossip-edge/index.js';
import { DecodeError } from '../../wire/index.js';

const item = {
  id: rekeyId(7, 3),
  epoch: 7,
  scopeStart: 64,
  scopeEnd: 128,
  bytes: 5,
  payload: Uint8Array.of(1, 2, 3, 4, 5),
};
const bodies: GossipBody[] = [
  { kind: 'push', hop: 3, items: [item] },
  {
    kind: 'push',
    hop: 0,
    items: [
      { ...item, id: dataId(9, 2 ** 32 - 1), scopeStart: 0, scopeEnd: WHOLE_GROUP_END },
      { ...item, id: dataId(9, 7), payload: new Uint8Array(300), bytes: 300 },
    ],
  },
  { kind: 'digest', reply: true, probe: false, epoch: 12, ids: [dataId(0, 1), rekeyId(3, 0), 2 ** 53 - 1] },
  { kind: 'digest', reply: false, probe: true, epoch: 0, ids: [] },
  { kind: 'pull', ids: [dataId(1, 1)] },
  { kind: 'neighbor', high: true },
  { kind: 'neighborReply', accept: false },
  { kind: 'disconnect' },
  { kind: 'shuffle', peers: [1, 2, 0xffffffff] },
  { kind: 'shuffleReply', peers: [] },
];

test('every message kind round-trips and wireBytes equals the encoded size', (t) => {
  t.deepEqual(new Set(bodies.map((b) => b.kind)), new Set(GOSSIP_KINDS));
  for (const body of bodies) {
    const env: Envelope = { epoch: 300, sender: 123456, body, tag: new Uint8Array(MAC_BYTES).fill(9) };
    const bytes = encodeEnvelope(env);
    t.is(wireBytes(env), bytes.length, body.kind);
    t.deepEqual(decodeEnvelope(bytes), env);
  }
});

test('one encoding serves frame and MAC: the frame equals the generic frame codec, its MAC input equals authenticatedBytes', (t) => {
  for (const body of bodies) {
    const env: Envelope = { epoch: 77, sender: 5, body, tag: new Uint8Array(MAC_BYTES).fill(3) };
    const frame = encodeEnvelope(env);
    t.deepEqual(frame, GossipFrames.encodeFrame({ type: 'msg', flags: 0, body: env }), body.kind);
    t.deepEqual(macInputOfFrame(frame), authenticatedBytes(env), body.kind);
    t.deepEqual(frameOf(envelopeCore(env), env.tag as Uint8Array), frame);
    t.deepEqual(macInput(envelopeCore(env)), authenticatedBytes(env));
  }
});

test('garbage, truncation and oversize counts decode to DecodeError only', (t) => {
  const good = encodeEnvelope({ epoch: 1, sender: 2, body: bodies[2]!, tag: new Uint8Array(MAC_BYTES) });
  for (let cut = 0; cut < good.length; cut++)
    t.throws(() => decodeEnvelope(good.subarray(0, cut)), { instanceOf: DecodeError });
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), (junk) => {
      try {
        decodeEnvelope(junk);
      } catch (e) {
        if (!(e instanceof DecodeError)) throw e;
      }
    }),
    { numRuns: 2000 },
  );
  // Flip every byte of a valid frame: either it still decodes or it is a DecodeError.
  for (let i = 0; i < good.length; i++) {
    const bad = good.slice();
    bad[i]! ^= 0xff;
    try {
      decodeEnvelope(bad);
    } catch (e) {
      t.true(e instanceof DecodeError);
    }
  }
});

test('a modelled numeric tag is refused on the wire', (t) => {
  t.throws(() => encodeEnvelope({ epoch: 1, sender: 2, body: { kind: 'disconnect' }, tag: 5 }), {
    instanceOf: RangeError,
  });
});

test('a push carries 1..maxPushItems items: an encoder refuses none or too many', (t) => {
  const tag = new Uint8Array(MAC_BYTES);
  t.throws(() => encodeEnvelope({ epoch: 1, sender: 2, body: { kind: 'push', hop: 1, items: [] }, tag }), {
    instanceOf: RangeError,
  });
  const one = encodeEnvelope({ epoch: 1, sender: 2, body: { kind: 'push', hop: 1, items: [item] }, tag });
  const env = decodeEnvelope(one);
  t.is(env.body.kind === 'push' ? env.body.items.length : -1, 1);
  const many = Array.from({ length: LIMITS.maxPushItems + 1 }, (_, k) => ({ ...item, id: dataId(1, k) }));
  t.throws(() => encodeEnvelope({ epoch: 1, sender: 2, body: { kind: 'push', hop: 1, items: many }, tag }));
});

test('a push may fill the largest gossip frame: maxPushBytes accepts MAX_GOSSIP_FRAME_BYTES', (t) => {
  t.is(gossipConfig({ maxPushBytes: MAX_GOSSIP_FRAME_BYTES }).maxPushBytes, MAX_GOSSIP_FRAME_BYTES);
  t.throws(() => gossipConfig({ maxPushBytes: MAX_GOSSIP_FRAME_BYTES + 1 }), { instanceOf: RangeError });
});
