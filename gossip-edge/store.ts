/**
 * Per-node gossip state laid out as struct-of-arrays over a fixed capacity of nodes.
 *
 * Why: a million simulated leaves with a few small typed arrays each cost seconds to allocate
 * and gigabytes of backing stores (measured: 6 arrays/node → 22 s, 2.5 GB RSS); one slab per
 * field costs one allocation. A real leaf uses a store of capacity 1. Node `i` owns
 *   ints[i·intStride …]   header words (H_*), active view, probe misses, passive view,
 *                         subtree contacts and their misses, retired-epoch rounds, retained rounds
 *   ids[i·idStride …]     retained item ids, then the ring of recently seen ids
 *   items[i·retained …]   retained item references
 * Views hold −1 in empty slots; counts live in the header, so no field ever grows.
 */
import type { GossipConfig } from './config.js';
import { CORE_ORIGIN } from './ids.js';
import type { Item } from './messages.js';

export const H_ROUND = 0;
export const H_EPOCH = 1;
export const H_ACTIVE_N = 2;
export const H_PASSIVE_N = 3;
export const H_RETAINED_N = 4;
export const H_SEEN_HEAD = 5;
export const H_SENT = 6; // messages sent this round
export const H_PROBE = 7; // peer probed by this round's digest, −1 if none or answered
export const H_BEHIND_SINCE = 8; // round we first heard of a newer epoch, −1 if not behind
export const H_NEWEST_EPOCH = 9; // newest epoch heard of (unauthenticated hint)
export const H_SELF = 10;
export const H_FLAGS = 11;
export const H_LAST_HEARD = 12; // round of the last authenticated message received
export const H_EMPTY_SINCE = 13; // round the active view became empty, −1 if it is not
export const H_CORE_NEXT = 14; // next core-stream seq not yet had, −1 until the core told us
export const H_CORE_HEARD = 15; // 1 + highest core-stream seq heard of (items or digests)
export const H_GAP_SINCE = 16; // round a core-stream gap was first noticed, −1 if none
export const H_LAST_PULL = 17; // round of our last pull from the core, −(large) if never
export const H_LAST_RESEED = 18; // round we last asked the core for a fresh seed
export const H_EAGER_SENT = 19; // eager pushes sent this round (also counted in H_SENT)
export const H_CORE_ORIGIN = 20; // origin of the core stream tracked (CORE_ORIGIN until a seed names one)
const HEADER = 21;

export const FLAG_JOINED = 1;

export class GossipStore<P = Uint8Array> {
  readonly ints: Int32Array;
  readonly ids: Float64Array;
  readonly items: (Item<P> | undefined)[];
  readonly intStride: number;
  readonly idStride: number;
  // Offsets inside a node's int record.
  readonly oActive: number;
  readonly oMiss: number;
  readonly oPassive: number;
  readonly oContacts: number;
  readonly oContactMiss: number;
  readonly oRetired: number;
  readonly oRetRound: number;
  readonly contactSlots: number;

  constructor(
    readonly config: GossipConfig,
    readonly capacity: number,
  ) {
    if (!(Number.isInteger(capacity) && capacity >= 1))
      throw new RangeError(`bad store capacity ${capacity}`);
    const c = config;
    this.contactSlots = c.levels * c.contactsPerLevel;
    this.oActive = HEADER;
    this.oMiss = this.oActive + c.activeSize;
    this.oPassive = this.oMiss + c.activeSize;
    this.oContacts = this.oPassive + c.passiveSize;
    this.oContactMiss = this.oContacts + this.contactSlots;
    this.oRetired = this.oContactMiss + this.contactSlots;
    this.oRetRound = this.oRetired + c.epochWindow;
    this.intStride = this.oRetRound + c.retainedItems;
    this.idStride = c.retainedItems + c.seenIds;
    const words = this.intStride * capacity;
    if (words > 2 ** 31 - 1)
      throw new RangeError(`gossip store of ${capacity} nodes exceeds one typed array`);
    this.ints = new Int32Array(words);
    this.ids = new Float64Array(this.idStride * capacity).fill(-1);
    this.items = new Array<Item<P> | undefined>(c.retainedItems * capacity).fill(undefined);
    for (let i = 0; i < capacity; i++) this.reset(i, -1);
  }

  /** Fresh state for node slot `i` (a new incarnation): empty views, nothing retained. */
  reset(i: number, self: number): void {
    const b = i * this.intStride;
    this.ints.fill(-1, b + HEADER, b + this.intStride);
    this.ints.fill(0, b + this.oMiss, b + this.oMiss + this.config.activeSize);
    this.ints.fill(0, b + this.oContactMiss, b + this.oContactMiss + this.contactSlots);
    this.ints.fill(0, b, b + HEADER);
    this.ints[b + H_PROBE] = -1;
    this.ints[b + H_BEHIND_SINCE] = -1;
    this.ints[b + H_SELF] = self;
    this.ints[b + H_EMPTY_SINCE] = -1;
    this.ints[b + H_CORE_NEXT] = -1;
    this.ints[b + H_CORE_ORIGIN] = CORE_ORIGIN;
    this.ints[b + H_GAP_SINCE] = -1;
    this.ints[b + H_LAST_PULL] = -(1 << 30);
    this.ints[b + H_LAST_RESEED] = -(1 << 30);
    this.ids.fill(-1, i * this.idStride, (i + 1) * this.idStride);
    this.items.fill(undefined, i * this.config.retainedItems, (i + 1) * this.config.retainedItems);
  }
}
