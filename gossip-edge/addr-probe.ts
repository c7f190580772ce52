/**
 * Address probes: how a leaf checks a claim that a peer now sends from another address before it
 * sends that peer's traffic there. Frame type 0x0603 (protocol 'gossip-probe'), one datagram:
 *   answer bool ‖ epoch varuint ‖ sender u32 ‖ nonce[16] ‖ mac[16]
 * The MAC is HMAC-SHA256 under the epoch's group key (auth.ts) over
 *   "keyglass gossip probe v1" ‖ the encoded fields before the mac
 * — a domain of its own, so neither an envelope nor a hint tag verifies as a probe tag. A
 * challenge (answer = false) carries a fresh random nonce; whoever receives it at that address
 * and holds the key echoes the nonce in an answer from there. Every member holds the group key,
 * so an answer proves only "a member receives at this address", never "this is peer P": the
 * address book therefore asks the address it already holds (see address-book.ts AddressClaims).
 */
import { bool, defineFrames, fixedBytes, struct, u32, varuint, type CodecValue } from '../wire/index.js';
import type { MacAuthenticator } from './auth.js';
import { sideMac } from './side-mac.js';
import { MAC_BYTES } from './messages.js';

export const PROBE_FRAME_TYPE = 0x0603;
export const PROBE_NONCE_BYTES = 16;

const fields = { answer: bool, epoch: varuint, sender: u32, nonce: fixedBytes(PROBE_NONCE_BYTES) };
const unsigned = struct(fields);
const AddrProbe = struct({ ...fields, tag: fixedBytes(MAC_BYTES) });
export type AddrProbe = CodecValue<typeof AddrProbe>;

export const MAX_PROBE_FRAME_BYTES = 64 + PROBE_NONCE_BYTES + MAC_BYTES;
export const ProbeFrames = defineFrames(
  'gossip-probe',
  { probe: [PROBE_FRAME_TYPE, AddrProbe] },
  { maxFrameBytes: MAX_PROBE_FRAME_BYTES },
);

const MAC = sideMac('keyglass gossip probe v1', unsigned, MAX_PROBE_FRAME_BYTES);

/** The probe datagram, or undefined when we no longer hold the epoch's key. */
export function encodeAddrProbe(auth: MacAuthenticator, p: Omit<AddrProbe, 'tag'>): Uint8Array | undefined {
  const tag = MAC.tag(auth, p);
  if (tag === undefined) return undefined;
  return ProbeFrames.encodeFrame({ type: 'probe', flags: 0, body: { ...p, tag } });
}

/** Decodes (DecodeError on garbage) and verifies; undefined when the MAC does not verify. */
export function openAddrProbe(auth: MacAuthenticator, bytes: Uint8Array): AddrProbe | undefined {
  const p = ProbeFrames.decodeFrame(bytes).body;
  return MAC.verify(auth, p, p.tag) ? p : undefined;
}
