/**
 * What the real gossip tier carries as items, and how a leaf checks them before it stores or
 * relays anything (GossipHost.admit).
 *
 * - A rekey part of epoch E: id rekeyId(E, part position), scope = the part's slot range (for a
 *   part a compaction moved, the single OLD slot: the leaf is still addressed by it until it
 *   applies the part), payload = a leaf-protocol RekeyPush with that one part — the signed
 *   header, the signer's key and signature travel with every part, so each leaf verifies the
 *   core server's signature exactly as on the TLS path, and then that the labels are the part's
 *   own (`rekeyItemBound`): the id, epoch and scope are not signed, the part's position, subtree
 *   and epoch are (Merkle proof to the header's partsRoot).
 * - Sealed data envelopes (data-envelope.ts): id dataId(origin, seq) of the core server's data
 *   stream that injected it (each relay numbers what it injects densely under its own origin,
 *   so a leaf can see what it missed and pull it from its server), whole-group scope, payload =
 *   a StreamEntry: the envelopes the relay injected in one turn (one epoch), signed by that
 *   server over (origin, seq, envelopes), so the id is bound to its content and only a core
 *   server can fill a stream position. Copies injected by several servers carry different ids; a leaf whose
 *   overlay mixes servers' leaves (after failovers) gets both, and its data replay window takes
 *   the second for what it is (`LeafClient` stats `dataDuplicates`).
 */
import type { CipherSuite } from '../crypto/index.js';
import {
  KeytreeError,
  decodePart,
  span,
  verifyPartProof,
  type EpochHeader,
  type RekeyPart,
} from '../keytree/index.js';
import { DecodeError, decode, encode } from '../wire/index.js';
import { LIMITS } from './config.js';
import { decodeDataEnvelope, type DataEnvelopeHeader } from './data-envelope.js';
import { dataId, isRekeyId, originOf, rekeyEpochOf, rekeyId, seqOf } from './ids.js';
import {
  MAX_LEAF_FRAME_BYTES,
  MAX_STREAM_ENTRY_BYTES,
  RekeyPush,
  StreamEntry,
  streamSignedBytes,
} from './leaf-protocol.js';
import { WHOLE_GROUP_END, type Item } from './messages.js';
import type { AdmitVerdict } from './node.js';

/**
 * The slots a part is addressed to: its subtree's range, or for a part a compaction moved the one
 * old slot of the leaf it moved (its gossip id until it applies the part).
 */
export function partScope(part: RekeyPart, arity: number): { start: number; end: number } {
  if (part.movedFrom !== undefined) return { start: part.movedFrom, end: part.movedFrom + 1 };
  const width = span(arity, part.level);
  return { start: part.index * width, end: (part.index + 1) * width };
}

/**
 * The item for one part of a signed epoch (a push with exactly that part, encoded as `encoded`):
 * its id, epoch and scope are derived from the part itself, so a relay cannot label a part
 * otherwise than `rekeyItemBound` checks.
 */
export function rekeyItem(push: RekeyPush, part: RekeyPart, arity: number): Item {
  if (push.parts.length !== 1) throw new RangeError('a rekey item carries exactly one part');
  const payload = encode(RekeyPush, push, MAX_LEAF_FRAME_BYTES);
  const scope = partScope(part, arity);
  return {
    id: rekeyId(part.epoch, part.position),
    epoch: part.epoch,
    scopeStart: scope.start,
    scopeEnd: scope.end,
    bytes: payload.length,
    payload,
  };
}

/**
 * The labels a node sees before anything is verified agree with each other: a rekey id names the
 * item's epoch. (What the labels say is then checked against the signed content by the host:
 * `rekeyItemBound`, `judgeStreamItem`.)
 */
export function itemLabelsAgree(item: Item<unknown>): boolean {
  return !isRekeyId(item.id) || rekeyEpochOf(item.id) === item.epoch;
}

/**
 * Is an item of `itemEpoch` too far ahead of a node at `epoch` to be stored or relayed? A leaf
 * applies one epoch at a time and asks its server for a gap, so an item more than
 * LIMITS.maxEpochsAhead ahead helps nobody near us; refused, its id stays unseen and can come again.
 */
export function farAhead(itemEpoch: number, epoch: number): boolean {
  return itemEpoch > epoch + LIMITS.maxEpochsAhead;
}

/**
 * A rekey item is bound to its signed content: its id is (header epoch, the part's position),
 * its epoch the header's, its scope the part's subtree (`partScope`), and the part is the one
 * the header signs at that position (Merkle proof). `header` must already be verified as
 * signed by a core server. A relabelled copy of a genuine part (another position, a wider or
 * other scope, a future epoch) fails here, so it is never stored under an id the real part needs.
 */
export function rekeyItemBound(
  suite: CipherSuite,
  item: Item,
  header: EpochHeader,
  part: RekeyPart,
): boolean {
  if (item.epoch !== header.epoch || part.epoch !== header.epoch) return false;
  if (item.id !== rekeyId(header.epoch, part.position)) return false;
  const scope = partScope(part, header.arity);
  if (item.scopeStart !== scope.start || item.scopeEnd !== scope.end) return false;
  try {
    verifyPartProof(suite, header, part);
    return true;
  } catch (e) {
    if (e instanceof KeytreeError) return false;
    throw e;
  }
}

/** The push inside a rekey item; throws DecodeError on garbage. */
export function openRekeyItem(item: Item): RekeyPush {
  const push = decode(RekeyPush, item.payload);
  if (push.parts.length !== 1) throw new RangeError('a rekey item carries exactly one part');
  return push;
}

/** Signs a core server's data stream entries (with its rekey-signing key). */
export interface StreamSigner {
  readonly publicKey: Uint8Array;
  sign(message: Uint8Array): Uint8Array;
}

/** The encoded StreamEntry of `envelopes` (one sealing epoch) at seq `seq` of the signer's stream `origin`. */
export function signStreamEntry(
  signer: StreamSigner,
  origin: number,
  seq: number,
  envelopes: readonly Uint8Array[],
): Uint8Array {
  const sig = signer.sign(streamSignedBytes(origin, seq, envelopes));
  return encode(
    StreamEntry,
    { signer: signer.publicKey, signature: sig, envelopes: [...envelopes] },
    MAX_STREAM_ENTRY_BYTES,
  );
}

function entryItem(entry: Uint8Array, origin: number, seq: number, epoch: number): Item {
  return {
    id: dataId(origin, seq),
    epoch,
    scopeStart: 0,
    scopeEnd: WHOLE_GROUP_END,
    bytes: entry.length,
    payload: entry,
  };
}

/** The item for an encoded StreamEntry at (origin, seq); throws DecodeError on garbage or no envelopes. */
export function streamItem(entry: Uint8Array, origin: number, seq: number): Item {
  const first = decode(StreamEntry, entry).envelopes[0];
  if (first === undefined) throw new DecodeError('bad-value', 'a stream entry without envelopes');
  return entryItem(entry, origin, seq, decodeDataEnvelope(first).header.epoch);
}

/** The relay's item for `envelopes`, all sealed in `epoch`: signed for (origin, seq), nothing decoded again. */
export function signedStreamItem(
  signer: StreamSigner,
  origin: number,
  seq: number,
  envelopes: readonly Uint8Array[],
  epoch: number,
): Item {
  return entryItem(signStreamEntry(signer, origin, seq, envelopes), origin, seq, epoch);
}

/** A data item opened: its entry and its envelopes' clear headers. */
export interface OpenedStreamItem extends StreamEntry {
  readonly headers: readonly DataEnvelopeHeader[];
}

/**
 * A data item's entry, if it holds envelopes and all of them are of the item's epoch (else
 * undefined); throws DecodeError on garbage. Says nothing of the signature: see
 * `judgeStreamItem`.
 */
export function openStreamItem(item: Item): OpenedStreamItem | undefined {
  const entry = decode(StreamEntry, item.payload);
  const headers = entry.envelopes.map((e) => decodeDataEnvelope(e).header);
  if (headers.length === 0 || headers.some((h) => h.epoch !== item.epoch)) return undefined;
  return { ...entry, headers };
}

/** How a leaf judges a data item before storing, relaying or marking it seen. */
export type StreamItemVerdict = 'ok' | 'later' | 'foreign' | 'refused';

/**
 * `later`: sealed under an epoch newer than `heldEpoch` (not stored: the id stays unseen and
 * anti-entropy offers it again once the rekey is in). `foreign`: signed by a key that is not one
 * of our core servers (`isSigner`) — refused, but perhaps a server newer than our welcome, so no
 * relaying peer is blamed. `refused`: garbage, an epoch that is not its envelope's, or a
 * signature that does not bind the envelope to the item's stream position. Refused items stay
 * unseen, so the real entry can still come. Else `ok`.
 */
export function judgeStreamItem(
  item: Item,
  heldEpoch: number,
  isSigner: (publicKey: Uint8Array) => boolean,
  verify: (publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array) => boolean,
): StreamItemVerdict {
  let entry: OpenedStreamItem | undefined;
  try {
    entry = openStreamItem(item);
  } catch (e) {
    if (e instanceof DecodeError) return 'refused';
    throw e;
  }
  if (entry === undefined) return 'refused';
  if (item.epoch > heldEpoch) return 'later';
  if (!isSigner(entry.signer)) return 'foreign';
  const message = streamSignedBytes(originOf(item.id), seqOf(item.id), entry.envelopes);
  return verify(entry.signer, message, entry.signature) ? 'ok' : 'refused';
}

/** What a leaf's admission of gossip items asks of its host (LeafClient; the gossip simulation). */
export interface ItemAdmissionHost {
  readonly suite: CipherSuite;
  /** The epoch of the group keys we hold; undefined while (re-)joining. */
  heldEpoch(): number | undefined;
  /** Is `publicKey` one of our core servers' signing keys? */
  isSigner(publicKey: Uint8Array): boolean;
  /** Ed25519 verification (a data stream entry's signature). */
  verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean;
  /**
   * The push's header if its signer (already known to be ours) signed it, else undefined; may
   * throw DecodeError on a garbled header.
   */
  verifiedHeader(push: RekeyPush): EpochHeader | undefined;
}

/**
 * A leaf's word on a gossip item before its node stores or relays it (GossipHost.admit). A rekey
 * part must carry a signature of a core server we know over its header (an insider holding the
 * MAC key still cannot forge keys), and its id, epoch and scope must be those of the part the
 * header signs at that position (`rekeyItemBound`: a relabelled genuine part never takes the id
 * the real one needs). A data item goes by `judgeStreamItem`: unseen unless 'ok', so a later one
 * comes again once its rekey is in, and the real entry of a position an insider tried to squat
 * still gets through. A signer we do not know may be a core server newer than our welcome:
 * 'foreign', nobody blamed. While re-joining (no keys): 'later', the item comes again.
 */
export function admitGossipItem(item: Item, host: ItemAdmissionHost): AdmitVerdict {
  const held = host.heldEpoch();
  if (held === undefined) return 'later';
  try {
    if (!isRekeyId(item.id)) {
      const verdict = judgeStreamItem(
        item,
        held,
        (key) => host.isSigner(key),
        (key, message, sig) => host.verify(key, message, sig),
      );
      return verdict === 'ok' ? true : verdict === 'refused' ? false : verdict;
    }
    const push = openRekeyItem(item);
    if (!host.isSigner(push.signer)) return 'foreign';
    const header = host.verifiedHeader(push);
    if (header === undefined) return false;
    return rekeyItemBound(host.suite, item, header, decodePart(push.parts[0]!));
  } catch (e) {
    if (e instanceof DecodeError || e instanceof RangeError || e instanceof KeytreeError) return false;
    throw e;
  }
}
