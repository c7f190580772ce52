/**
 * Address hints: the endpoints of the peers a shuffle names, sent next to the shuffle so the
 * receiver can reach the peers it just learned (PeerIds alone are not addresses on a real
 * network). Frame type 0x0602 (protocol 'gossip-addr'), one datagram:
 *   epoch varuint ‖ sender u32 ‖ list(≤ LIMITS.maxShuffle) (id u32 ‖ host string ‖ port u16) ‖ mac[16]
 * The MAC is HMAC-SHA256 under the same epoch key as envelopes (auth.ts), over
 *   "keyglass gossip addr v1" ‖ the encoded fields before the mac
 * — a domain of its own, so no envelope tag verifies as a hint tag or back. Only a holder of the
 * group key can make us store an address, and hints never overwrite a directly learned one
 * (address-book.ts).
 */
import {
  defineFrames,
  fixedBytes,
  list,
  string,
  struct,
  u16,
  u32,
  varuint,
  type CodecValue,
} from '../wire/index.js';
import type { MacAuthenticator } from './auth.js';
import { sideMac } from './side-mac.js';
import { LIMITS } from './config.js';
import { MAC_BYTES } from './messages.js';

export const ADDR_FRAME_TYPE = 0x0602;
/** Longest host literal (an IPv6 text form is ≤ 45 characters). */
export const MAX_HOST_CHARS = 64;

export const PeerEndpoint = struct({ id: u32, host: string(MAX_HOST_CHARS), port: u16 });
export type PeerEndpoint = CodecValue<typeof PeerEndpoint>;

const fields = {
  epoch: varuint,
  sender: u32,
  entries: list(LIMITS.maxShuffle, PeerEndpoint),
};
const unsigned = struct(fields);
const AddrHints = struct({ ...fields, tag: fixedBytes(MAC_BYTES) });
export type AddrHints = CodecValue<typeof AddrHints>;

export const MAX_ADDR_FRAME_BYTES = 64 + LIMITS.maxShuffle * (4 + 2 + MAX_HOST_CHARS + 2) + MAC_BYTES;
export const AddrFrames = defineFrames(
  'gossip-addr',
  { hints: [ADDR_FRAME_TYPE, AddrHints] },
  { maxFrameBytes: MAX_ADDR_FRAME_BYTES },
);

const MAC = sideMac('keyglass gossip addr v1', unsigned, MAX_ADDR_FRAME_BYTES);

/** The hint datagram, or undefined when we no longer hold the epoch's key. */
export function encodeAddrHints(auth: MacAuthenticator, h: Omit<AddrHints, 'tag'>): Uint8Array | undefined {
  const tag = MAC.tag(auth, h);
  if (tag === undefined) return undefined;
  return AddrFrames.encodeFrame({ type: 'hints', flags: 0, body: { ...h, tag } });
}

/** Decodes (DecodeError on garbage) and verifies; undefined when the MAC does not verify. */
export function openAddrHints(auth: MacAuthenticator, bytes: Uint8Array): AddrHints | undefined {
  const h = AddrFrames.decodeFrame(bytes).body;
  return MAC.verify(auth, h, h.tag) ? h : undefined;
}
