/**
 * What the real gossip tier carries as items, and how a leaf checks them before it stores or
 * relays anything (GossipHost.admit).
 *
 * - A rekey part of epoch E: id rekeyId(E, part), scope = the part's slot range (for a part a
 *   compaction moved, the single OLD slot: the leaf is still addressed by it until it applies
 *   the part), payload = a leaf-protocol RekeyPush with that one part — the signed header, the
 *   signer's key and signature travel with every part, so each leaf verifies the core server's
 *   signature exactly as on the TLS path.
 * - A sealed data envelope (data-envelope.ts): id dataId(origin, seq) of the core server's data
 *   stream that injected it (each relay numbers what it injects densely under its own origin,
 *   so a leaf can see what it missed and pull it from its server), whole-group scope, payload =
 *   the envelope bytes. Copies injected by several servers carry different ids; a leaf whose
 *   overlay mixes servers' leaves (after failovers) gets both, and its data replay window takes
 *   the second for what it is (`LeafClient` stats `dataDuplicates`).
 */
import { decode, encode } from '../wire/index.js';
import { decodeDataEnvelope, type DataEnvelopeHeader } from './data-envelope.js';
import { dataId, rekeyId } from './ids.js';
import { RekeyPush, MAX_LEAF_FRAME_BYTES } from './leaf-protocol.js';
import { WHOLE_GROUP_END, type Item } from './messages.js';

/** The item for one part of a signed epoch (a push with exactly that part). */
export function rekeyItem(
  push: RekeyPush,
  epoch: number,
  part: number,
  scope: { start: number; end: number },
): Item {
  if (push.parts.length !== 1) throw new RangeError('a rekey item carries exactly one part');
  const payload = encode(RekeyPush, push, MAX_LEAF_FRAME_BYTES);
  return {
    id: rekeyId(epoch, part),
    epoch,
    scopeStart: scope.start,
    scopeEnd: scope.end,
    bytes: payload.length,
    payload,
  };
}

/** The push inside a rekey item; throws DecodeError on garbage. */
export function openRekeyItem(item: Item): RekeyPush {
  const push = decode(RekeyPush, item.payload);
  if (push.parts.length !== 1) throw new RangeError('a rekey item carries exactly one part');
  return push;
}

/** The item for a sealed envelope, seq `seq` of the data stream `origin`; throws DecodeError on garbage. */
export function streamItem(envelope: Uint8Array, origin: number, seq: number): Item {
  const h = decodeDataEnvelope(envelope).header;
  return {
    id: dataId(origin, seq),
    epoch: h.epoch,
    scopeStart: 0,
    scopeEnd: WHOLE_GROUP_END,
    bytes: envelope.length,
    payload: envelope,
  };
}

/** The clear header of a data item, if the item's epoch agrees with it (else undefined). */
export function dataItemHeader(item: Item): DataEnvelopeHeader | undefined {
  const h = decodeDataEnvelope(item.payload).header;
  return item.epoch === h.epoch ? h : undefined;
}
