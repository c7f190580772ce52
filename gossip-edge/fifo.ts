/**
 * Per-sender FIFO delivery for applications that ask for it: data items of one origin are
 * delivered in seq order; a later item waits (bounded) until the gap fills, or until it has
 * waited `maxWaitRounds` (the gap is then declared lost and skipped — gossip retention is
 * over, so it would never come). The first item seen from an origin sets where its stream starts.
 */
import { originOf, seqOf } from './ids.js';
import type { Item } from './messages.js';

interface Stream<P> {
  next: number;
  readonly held: Map<number, { item: Item<P>; since: number }>;
}

export class FifoDelivery<P> {
  private readonly streams = new Map<number, Stream<P>>();
  gapsSkipped = 0;

  constructor(
    private readonly maxHeld: number,
    private readonly maxWaitRounds: number,
    private readonly deliver: (item: Item<P>) => void,
  ) {}

  offer(item: Item<P>, round: number): void {
    const origin = originOf(item.id);
    const seq = seqOf(item.id);
    let s = this.streams.get(origin);
    if (s === undefined) this.streams.set(origin, (s = { next: seq, held: new Map() }));
    if (seq < s.next) return; // its gap was already skipped
    if (seq > s.next) {
      if (s.held.size >= this.maxHeld) this.skip(s);
      if (seq >= s.next) s.held.set(seq, { item, since: round });
      else return;
      this.flush(s);
      return;
    }
    this.deliver(item);
    s.next++;
    this.flush(s);
  }

  /** Skips gaps whose oldest waiting item has waited too long. */
  tick(round: number): void {
    for (const s of this.streams.values()) {
      let oldest = Infinity;
      for (const h of s.held.values()) oldest = Math.min(oldest, h.since);
      if (round - oldest > this.maxWaitRounds) this.skip(s);
    }
  }

  private skip(s: Stream<P>): void {
    let min = Infinity;
    for (const seq of s.held.keys()) min = Math.min(min, seq);
    if (min === Infinity) return;
    this.gapsSkipped++;
    s.next = min;
    this.flush(s);
  }

  private flush(s: Stream<P>): void {
    for (let h = s.held.get(s.next); h !== undefined; h = s.held.get(s.next)) {
      s.held.delete(s.next);
      this.deliver(h.item);
      s.next++;
    }
  }
}
