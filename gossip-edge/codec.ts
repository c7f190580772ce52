/**
 * Wire format of gossip messages: one frame type (0x0601, protocol 'gossip') whose body is
 *   epoch varuint ‖ sender u32 ‖ body (tagged union) ‖ mac[16]
 * Every count and size is capped (config.ts LIMITS); garbage decodes to DecodeError only.
 * The MAC covers `authenticatedBytes` = domain ‖ epoch ‖ sender ‖ body, i.e. everything but itself.
 */
import {
  bool,
  defineFrames,
  DecodeError,
  encode,
  FRAME_HEADER_BYTES,
  FRAME_MAGIC,
  WIRE_VERSION,
  fixedBytes,
  list,
  struct,
  u32,
  u8,
  union,
  varuint,
  type Codec,
  type Reader,
} from '../wire/index.js';
import { isValidItemId, MAX_PEER_ID } from './ids.js';
import { LIMITS } from './config.js';
import { MAC_BYTES, type Envelope, type GossipBody, type Item } from './messages.js';

export const GOSSIP_FRAME_TYPE = 0x0601;
/**
 * Largest gossip frame: one item of the largest size plus headers, well under a UDP datagram's
 * 64 KiB (a push of several items is held to config.maxPushBytes ≤ this by its sender).
 */
export const MAX_GOSSIP_FRAME_BYTES = LIMITS.maxItemBytes + 512;

const itemId: Codec<number> = {
  encode: (w, v) => {
    if (!isValidItemId(v)) throw new RangeError(`bad item id ${v}`);
    w.varuint(v);
  },
  decode: (r) => r.varuint(),
};

const ids = list(LIMITS.maxDigestIds, itemId);
const peers = list(LIMITS.maxShuffle, u32);

const itemCodec: Codec<Item> = {
  encode: (w, v) => {
    if (v.bytes !== v.payload.length) throw new RangeError('item.bytes differs from payload length');
    if (v.scopeStart > v.scopeEnd) throw new RangeError('item scope start after end');
    itemId.encode(w, v.id);
    w.varuint(v.epoch);
    w.u32(v.scopeStart).u32(v.scopeEnd);
    w.bytes(v.payload, LIMITS.maxItemBytes);
  },
  decode: (r: Reader) => {
    const id = itemId.decode(r);
    const epoch = r.varuint();
    const scopeStart = r.u32();
    const scopeEnd = r.u32();
    if (scopeStart > scopeEnd) throw new DecodeError('bad-value', 'item scope start after end');
    const payload = new Uint8Array(r.bytes(LIMITS.maxItemBytes));
    return { id, epoch, scopeStart, scopeEnd, bytes: payload.length, payload };
  },
};

/** A push carries 1..maxPushItems items (an empty push would be a MAC'd no-op). */
const pushItems: Codec<Item[]> = {
  encode: (w, v) => {
    if (v.length === 0) throw new RangeError('a push carries at least one item');
    list(LIMITS.maxPushItems, itemCodec).encode(w, v);
  },
  decode: (r) => {
    const items = list(LIMITS.maxPushItems, itemCodec).decode(r);
    if (items.length === 0) throw new DecodeError('bad-value', 'push of no items');
    return items;
  },
};

const hop: Codec<number> = {
  encode: (w, v) => void w.u8(v),
  decode: (r) => u8.decode(r),
};

const bodyUnion = union({
  push: [1, struct({ hop, items: pushItems })],
  digest: [2, struct({ reply: bool, probe: bool, epoch: varuint, ids })],
  pull: [3, struct({ ids })],
  neighbor: [4, struct({ high: bool })],
  neighborReply: [5, struct({ accept: bool })],
  disconnect: [6, struct({})],
  shuffle: [7, struct({ peers })],
  shuffleReply: [8, struct({ peers })],
});

/** The body codec over the GossipBody shape ({kind, …fields} instead of {kind, value}). */
const bodyCodec: Codec<GossipBody> = {
  encode: (w, b) => {
    const { kind, ...value } = b;
    bodyUnion.encode(w, { kind, value } as never);
  },
  decode: (r) => {
    const { kind, value } = bodyUnion.decode(r);
    return { kind, ...(value as object) } as GossipBody;
  },
};

const sender: Codec<number> = {
  encode: (w, v) => {
    if (!(Number.isInteger(v) && v >= 0 && v <= MAX_PEER_ID)) throw new RangeError(`bad sender ${v}`);
    w.u32(v);
  },
  decode: (r) => r.u32(),
};

const mac = fixedBytes(MAC_BYTES);

const coreCodec: Codec<Omit<Envelope, 'tag'>> = {
  encode: (w, e) => {
    w.varuint(e.epoch);
    sender.encode(w, e.sender);
    bodyCodec.encode(w, e.body);
  },
  decode: () => {
    throw new Error('an envelope core is never decoded alone');
  },
};

const envelopeCodec: Codec<Envelope> = {
  encode: (w, e) => {
    if (typeof e.tag === 'number') throw new RangeError('a modelled (numeric) MAC tag cannot go on the wire');
    coreCodec.encode(w, e);
    mac.encode(w, e.tag);
  },
  decode: (r) => {
    const epoch = r.varuint();
    const from = sender.decode(r);
    const body = bodyCodec.decode(r);
    const tag = mac.decode(r);
    return { epoch, sender: from, body, tag };
  },
};

export const GossipFrames = defineFrames(
  'gossip',
  { msg: [GOSSIP_FRAME_TYPE, envelopeCodec] },
  { maxFrameBytes: MAX_GOSSIP_FRAME_BYTES },
);

/**
 * The part of a frame a MAC covers, without the domain: epoch ‖ sender ‖ body. A sender encodes
 * it once and builds both the MAC input (`macInput`) and the frame (`frameOf`) from it.
 */
export function envelopeCore(e: Omit<Envelope, 'tag'>): Uint8Array {
  return encode(coreCodec, e, MAX_GOSSIP_FRAME_BYTES - FRAME_HEADER_BYTES - MAC_BYTES);
}

/** The frame of an envelope whose core is `core` and MAC is `tag` (= encodeEnvelope). */
export function frameOf(core: Uint8Array, tag: Uint8Array): Uint8Array {
  if (tag.length !== MAC_BYTES) throw new RangeError(`a MAC tag is ${MAC_BYTES} bytes`);
  const bodyLength = core.length + MAC_BYTES;
  const out = new Uint8Array(FRAME_HEADER_BYTES + bodyLength);
  const v = new DataView(out.buffer);
  v.setUint16(0, FRAME_MAGIC);
  v.setUint8(2, WIRE_VERSION);
  v.setUint8(3, 0); // flags
  v.setUint16(4, GOSSIP_FRAME_TYPE);
  v.setUint32(6, bodyLength);
  out.set(core, FRAME_HEADER_BYTES);
  out.set(tag, FRAME_HEADER_BYTES + core.length);
  return out;
}

export function encodeEnvelope(e: Envelope): Uint8Array {
  if (typeof e.tag === 'number') throw new RangeError('a modelled (numeric) MAC tag cannot go on the wire');
  return frameOf(envelopeCore(e), e.tag);
}

/** Decodes one datagram; throws DecodeError only. */
export function decodeEnvelope(bytes: Uint8Array): Envelope {
  return GossipFrames.decodeFrame(bytes).body;
}

const DOMAIN = new TextEncoder().encode('keyglass gossip v1');

/** The bytes a MAC covers: domain ‖ core (domain-separated, canonical). */
export function macInput(core: Uint8Array): Uint8Array {
  const out = new Uint8Array(DOMAIN.length + core.length);
  out.set(DOMAIN);
  out.set(core, DOMAIN.length);
  return out;
}

/**
 * The MAC input of a received frame, read from its bytes (no re-encoding): domain ‖ the frame
 * between its header and its tag. Only for a frame that decoded (so the layout holds).
 */
export function macInputOfFrame(frame: Uint8Array): Uint8Array {
  return macInput(frame.subarray(FRAME_HEADER_BYTES, frame.length - MAC_BYTES));
}

/** The bytes a MAC covers for `e` (domain-separated, canonical). */
export function authenticatedBytes(e: Omit<Envelope, 'tag'>): Uint8Array {
  return macInput(envelopeCore(e));
}
