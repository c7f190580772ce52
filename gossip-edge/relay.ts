/**
 * Rekey routing by subtree, sans-IO: the one function that turns a signed, split epoch into the
 * items the edge relay hands to which of its gossip leaves. The server's EdgeRelay runs it (and
 * keeps the sockets, MACs and stats); the gossip simulation and the benchmark run the same code.
 *
 * Each part goes to `fanout` + log2(m) of the m targets inside the part's scope — its subtree's
 * slot range, or for a part a compaction moved the one leaf's old slot, its gossip id until it
 * applies the part — who relay it inside the subtree. A leaf thus receives the one part on its
 * path (O(height) wraps), never the whole batch: per-leaf rekey bytes do not grow with batch size.
 * A part that cannot travel in a datagram (the caller's `fits`) goes over TLS instead.
 */
import { decodeHeader, encodePart, type RekeySplit } from '../keytree/index.js';
import { rekeyItem } from './gossip-items.js';
import type { Item } from './messages.js';
import type { RandomSource } from './random.js';

/** The signed epoch as the leaf edge records it. */
export interface SignedEpochParts {
  readonly epoch: number;
  readonly header: Uint8Array;
  readonly signer: Uint8Array;
  readonly signature: Uint8Array;
  readonly split: RekeySplit;
}

/** What `routeEpochParts` decided for one epoch. */
export interface EpochRoute {
  /** Per target (its index in the sorted slots), the items it is handed, in part order. */
  readonly outbox: Map<number, Item[]>;
  /** Ids of the parts that must go over TLS instead (to the leaves under them). */
  readonly fallback: number[];
  /** Parts handed to gossip leaves. */
  readonly routed: number;
  /** Parts no target is under (another server's leaves are, or nobody live). */
  readonly withoutTarget: number;
}

/** First index in sorted `slots` with value ≥ x. */
export function lowerBound(slots: ArrayLike<number>, x: number): number {
  let lo = 0;
  let hi = slots.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (slots[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Leaves an item is handed to: the fan-out plus log2 of the m leaves that should get it (a bigger
 * subtree needs more seeds for its epidemic to finish in the same rounds), never more than m. The
 * log term also keeps a server's leaves from missing an item because every entry point was dead:
 * a leaf process just killed is still a target until its TLS close reaches the server. With
 * `fanout` = 3 entry points and a fifth of the leaves just killed (test/server/gossip-swarm.test.ts)
 * that is 0.2³ per injection, ~11 % over the test's 15; the test failed at about that rate with a
 * third of the survivors (one server's leaves) missing one message.
 */
export function entryFanout(fanout: number, m: number): number {
  return Math.min(m, fanout + Math.floor(Math.log2(Math.max(1, m))));
}

/** Up to k distinct random indices in [lo, hi), skipping `skip`. */
export function pick(rng: RandomSource, lo: number, hi: number, k: number, skip = -1): number[] {
  const out: number[] = [];
  const m = hi - lo;
  if (m <= 0) return out;
  if (m <= 2 * k) {
    // Small range: a partial shuffle of all of it.
    const all = Array.from({ length: m }, (_, i) => lo + i).filter((i) => i !== skip);
    for (let i = 0; i < all.length && out.length < k; i++) {
      const j = i + rng.int(all.length - i);
      [all[i], all[j]] = [all[j]!, all[i]!];
      out.push(all[i]!);
    }
    return out;
  }
  while (out.length < k) {
    const i = lo + rng.int(m);
    if (i !== skip && !out.includes(i)) out.push(i);
  }
  return out;
}

/**
 * The gossip item of part `id` of a signed epoch: a push with exactly that part, its id, epoch
 * and scope derived from the part itself (what every leaf checks them against).
 */
export function epochPartItem(signed: SignedEpochParts, id: number, arity: number): Item {
  const part = signed.split.part(id);
  return rekeyItem(
    { header: signed.header, signer: signed.signer, signature: signed.signature, parts: [encodePart(part)] },
    part,
    arity,
  );
}

/**
 * Routes every part of `signed`. `slots` are the gossip ids of the caller's targets sorted
 * ascending — their slots BEFORE the epoch (a leaf keeps its old id until it applies the part).
 * `fits`: can this item travel in one datagram (false also when there is no key to MAC under)?
 */
export function routeEpochParts(
  signed: SignedEpochParts,
  slots: ArrayLike<number>,
  fanout: number,
  rng: RandomSource,
  fits: (item: Item) => boolean,
): EpochRoute {
  if (!(Number.isInteger(fanout) && fanout >= 1)) throw new RangeError('fanout must be ≥ 1');
  const { split } = signed;
  const arity = decodeHeader(signed.header).arity;
  // Every part a leaf is handed travels in the same datagrams: one push per leaf (or a few).
  const outbox = new Map<number, Item[]>();
  const fallback: number[] = [];
  let routed = 0;
  let withoutTarget = 0;
  for (let id = 0; id < split.count; id++) {
    const { start, end } = split.range(id);
    let lo = lowerBound(slots, start);
    let hi = lowerBound(slots, end);
    // Skip building a part nobody is under — unless it is a level-0 part, which may be a moved
    // leaf's: then it is addressed to the leaf's old slot, known only from the part.
    if (hi === lo && end - start !== 1) {
      withoutTarget++;
      continue;
    }
    const item = epochPartItem(signed, id, arity);
    if (item.scopeStart !== start || item.scopeEnd !== end) {
      lo = lowerBound(slots, item.scopeStart);
      hi = lowerBound(slots, item.scopeEnd);
    }
    if (hi === lo) {
      withoutTarget++;
      continue;
    }
    if (!fits(item)) {
      fallback.push(id);
      continue;
    }
    for (const i of pick(rng, lo, hi, entryFanout(fanout, hi - lo))) {
      const queued = outbox.get(i);
      if (queued === undefined) outbox.set(i, [item]);
      else queued.push(item);
    }
    routed++;
  }
  return { outbox, fallback, routed, withoutTarget };
}
