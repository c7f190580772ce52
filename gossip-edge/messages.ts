/**
 * What gossip nodes say to each other. Messages are plain immutable objects: the simulator
 * passes them by reference, the UDP host encodes them with codec.ts. `wireBytes` gives the
 * exact encoded size without encoding (tests hold it equal to the codec), so the simulator
 * can account bytes at a million nodes without serializing.
 */
import { varuintBytes } from '../wire/index.js';
import type { ItemId, PeerId } from './ids.js';

/** Scope end of an item addressed to every leaf. */
export const WHOLE_GROUP_END = 0xffff_ffff;

/**
 * One disseminated item: application data (scope = the whole group) or one rekey part (scope
 * = the slot range of its subtree, so it is relayed only among the leaves that need it).
 * `payload` is opaque to gossip (sealed data or a signed rekey part); `bytes` is its size.
 */
export interface Item<P = Uint8Array> {
  readonly id: ItemId;
  /** Key epoch the item belongs to (data: sealed under it; rekey: the epoch it installs). */
  readonly epoch: number;
  readonly scopeStart: number;
  readonly scopeEnd: number;
  readonly bytes: number;
  readonly payload: P;
}

export type GossipBody<P = Uint8Array> =
  /**
   * Eager push (hop > 0) or an anti-entropy answer (hop = 0) of one or more items (at most
   * config.maxItemsPerPush, within config.maxPushBytes): the per-round budget counts messages,
   * so items that travel to the same peer together share one.
   */
  | { readonly kind: 'push'; readonly hop: number; readonly items: readonly Item<P>[] }
  /**
   * Anti-entropy: the ids the sender retains that concern the receiver, and the sender's key
   * epoch. `reply` marks the answer to a digest (push-pull: it is not answered again). A
   * request with `probe` must be answered (it doubles as the liveness probe); one without is
   * answered only when the answer has news — ids the asker did not list, or a newer epoch —
   * which halves the idle anti-entropy traffic.
   */
  | {
      readonly kind: 'digest';
      readonly reply: boolean;
      readonly probe: boolean;
      readonly epoch: number;
      readonly ids: readonly ItemId[];
    }
  /** Ids the sender lacks and asks the receiver for. */
  | { readonly kind: 'pull'; readonly ids: readonly ItemId[] }
  /** HyParView: "add me to your active view" (high priority when the sender has none). */
  | { readonly kind: 'neighbor'; readonly high: boolean }
  | { readonly kind: 'neighborReply'; readonly accept: boolean }
  | { readonly kind: 'disconnect' }
  /** Cyclon-style passive-view exchange. */
  | { readonly kind: 'shuffle'; readonly peers: readonly PeerId[] }
  | { readonly kind: 'shuffleReply'; readonly peers: readonly PeerId[] };

export type GossipKind = GossipBody['kind'];
export const GOSSIP_KINDS: readonly GossipKind[] = [
  'push',
  'digest',
  'pull',
  'neighbor',
  'neighborReply',
  'disconnect',
  'shuffle',
  'shuffleReply',
];

/**
 * A MAC tag: 16 bytes of HMAC-SHA256 on the real path, or a number where the large simulation
 * models the MAC as "holds the epoch's key" (see auth.ts ModelAuthenticator).
 */
export type MacTag = Uint8Array | number;

/** The unit on the wire: body + sender + the key epoch its MAC is under + the MAC. */
export interface Envelope<P = Uint8Array> {
  readonly epoch: number;
  readonly sender: PeerId;
  readonly body: GossipBody<P>;
  readonly tag: MacTag;
}

export const MAC_BYTES = 16;
const FRAME_HEADER = 10;

function idsBytes(ids: readonly number[]): number {
  let n = varuintBytes(ids.length);
  for (const id of ids) n += varuintBytes(id);
  return n;
}

function peersBytes(peers: readonly number[]): number {
  return varuintBytes(peers.length) + 4 * peers.length;
}

export function itemBytes(item: Item<unknown>): number {
  return varuintBytes(item.id) + varuintBytes(item.epoch) + 8 + varuintBytes(item.bytes) + item.bytes;
}

function bodyBytes(b: GossipBody<unknown>): number {
  switch (b.kind) {
    case 'push': {
      let n = 1 + 1 + varuintBytes(b.items.length);
      for (const item of b.items) n += itemBytes(item);
      return n;
    }
    case 'digest':
      return 1 + 2 + varuintBytes(b.epoch) + idsBytes(b.ids);
    case 'pull':
      return 1 + idsBytes(b.ids);
    case 'neighbor':
    case 'neighborReply':
      return 2;
    case 'disconnect':
      return 1;
    case 'shuffle':
    case 'shuffleReply':
      return 1 + peersBytes(b.peers);
  }
}

/** Encoded frame size of a push of no items (add itemBytes of each item; < 128 items). */
export function emptyPushBytes(epoch: number): number {
  return FRAME_HEADER + varuintBytes(epoch) + 4 + 1 + 1 + 1 + MAC_BYTES;
}

/**
 * Where the push message starting at `items[start]` ends: as many items as `maxItems` and
 * `maxBytes` (encoded frame size under `epoch`) allow, and always at least one (a single larger
 * item goes alone; its sender decides whether it may go at all).
 */
export function pushChunkEnd(
  items: readonly Item<unknown>[],
  start: number,
  epoch: number,
  maxItems: number,
  maxBytes: number,
): number {
  let end = start + 1;
  let bytes = emptyPushBytes(epoch) + itemBytes(items[start]!);
  while (end < items.length && end - start < maxItems) {
    const more = itemBytes(items[end]!);
    if (bytes + more > maxBytes) break;
    bytes += more;
    end++;
  }
  return end;
}

/** Does a push of one item of `itemSize` encoded bytes under `epoch` fit in `maxBytes`? */
export function pushFits(epoch: number, itemSize: number, maxBytes: number): boolean {
  return emptyPushBytes(epoch) + itemSize <= maxBytes;
}

/** `items` cut into the pushes they travel in (`pushChunkEnd` after `pushChunkEnd`). */
export function pushChunks<P>(
  items: readonly Item<P>[],
  epoch: number,
  maxItems: number,
  maxBytes: number,
): Item<P>[][] {
  const out: Item<P>[][] = [];
  for (let k = 0; k < items.length;) {
    const end = pushChunkEnd(items, k, epoch, maxItems, maxBytes);
    out.push(items.slice(k, end));
    k = end;
  }
  return out;
}

/** Exact size of the encoded frame of `env` (codec.ts), computed without encoding. */
export function wireBytes(env: Envelope<unknown>): number {
  return FRAME_HEADER + varuintBytes(env.epoch) + 4 + bodyBytes(env.body) + MAC_BYTES;
}
