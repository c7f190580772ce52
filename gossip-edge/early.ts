/**
 * Early arrivals, sans-IO: a message under an epoch the receiver is a few milliseconds from
 * holding. The part of epoch E is MAC'd under E − 1, and a data entry under its own epoch; a leaf
 * still an epoch behind (its part is a few milliseconds behind on another path) cannot verify such
 * an envelope yet. Arrivals at most `EARLY_EPOCHS` ahead are kept in a small FIFO (`MAX_EARLY`,
 * oldest dropped) and handed back once the receiver installs that epoch's key, instead of waiting
 * for anti-entropy or a catch-up from the core. Unauthenticated until then, so the queue is
 * bounded and only costs a re-verification. GossipLink holds gossip envelopes for its UDP socket,
 * the gossip simulation for its simulated leaves, and LeafSession data envelopes (from its server
 * or from gossip) sealed under the epoch its push has not brought yet.
 */
import type { Envelope } from './messages.js';

/** Arrivals kept for an epoch we do not hold yet, and how far ahead they may be. */
export const MAX_EARLY = 32;
export const EARLY_EPOCHS = 2;

export class EarlyHold<T extends { readonly epoch: number }, From> {
  private held: { readonly env: T; readonly from: From }[] = [];

  constructor(private readonly capacity = MAX_EARLY) {
    if (!(Number.isInteger(capacity) && capacity > 0)) throw new RangeError(`capacity ${capacity}`);
  }

  get size(): number {
    return this.held.length;
  }

  /** Keeps `env` if it is ahead of `epoch` (the receiver's) by at most EARLY_EPOCHS; true if kept. */
  hold(env: T, from: From, epoch: number): boolean {
    if (!(env.epoch > epoch && env.epoch <= epoch + EARLY_EPOCHS)) return false;
    if (this.held.length >= this.capacity) this.held.shift();
    this.held.push({ env, from });
    return true;
  }

  /** The receiver is at `epoch` now: the held arrivals of exactly that epoch (those older are stale and dropped). */
  ready(epoch: number): { readonly env: T; readonly from: From }[] {
    if (this.held.length === 0) return [];
    const out = this.held.filter((x) => x.env.epoch === epoch);
    this.held = this.held.filter((x) => x.env.epoch > epoch);
    return out;
  }

  clear(): void {
    this.held = [];
  }
}

/** Gossip envelopes a node cannot verify yet. */
export class EarlyEnvelopes<From, P = Uint8Array> extends EarlyHold<Envelope<P>, From> {}
