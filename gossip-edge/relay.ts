/**
 * The edge relay a core server runs: it turns one signed, split rekey message into gossip items
 * and hands each part to a few live leaves INSIDE the part's subtree, who relay it among
 * themselves through their subtree contacts. A leaf thus receives the one part on its path
 * (O(height) wraps), never the whole batch: per-leaf rekey bytes do not grow with batch size.
 */
import { rekeyId, type PeerId } from './ids.js';
import type { Item } from './messages.js';
import type { RandomSource } from './random.js';

/** What the relay needs of a split rekey (keytree's RekeySplit satisfies it). */
export interface RekeyPartSource {
  readonly count: number;
  range(id: number): { start: number; end: number };
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
 * Routes every part of `split` (epoch `epoch`) to up to `fanout` distinct random live leaves in
 * its slot range. `liveSlots` is sorted ascending. Returns how many parts had no live leaf.
 */
export function routeRekeyParts<P>(
  split: RekeyPartSource,
  epoch: number,
  liveSlots: ArrayLike<number>,
  fanout: number,
  rng: RandomSource,
  payloadOf: (part: number) => { payload: P; bytes: number },
  emit: (leaf: PeerId, item: Item<P>) => void,
): number {
  let orphans = 0;
  for (let part = 0; part < split.count; part++) {
    const { start, end } = split.range(part);
    const lo = lowerBound(liveSlots, start);
    const hi = lowerBound(liveSlots, end);
    const m = hi - lo;
    if (m === 0) {
      orphans++;
      continue;
    }
    const { payload, bytes } = payloadOf(part);
    const item: Item<P> = {
      id: rekeyId(epoch, part),
      epoch,
      scopeStart: start,
      scopeEnd: end,
      bytes,
      payload,
    };
    const k = Math.min(fanout, m);
    const picked: number[] = [];
    while (picked.length < k) {
      const idx = lo + rng.int(m);
      if (!picked.includes(idx)) picked.push(idx);
    }
    for (const idx of picked) emit(liveSlots[idx]!, item);
  }
  return orphans;
}
