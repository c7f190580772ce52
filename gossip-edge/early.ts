/**
 * Early envelopes, sans-IO: the part of epoch E is MAC'd under E − 1, and a data entry under its
 * own epoch; a leaf still an epoch behind (its part is a few milliseconds behind on another path)
 * cannot verify such an envelope yet. Envelopes at most `EARLY_EPOCHS` ahead are kept in a small
 * FIFO (`MAX_EARLY`, oldest dropped) and handed to the node again once the leaf installs that
 * epoch's key, instead of waiting for anti-entropy or a catch-up from the core. Unauthenticated
 * until then, so the queue is bounded and only costs a re-verification. GossipLink holds them for
 * its UDP socket; the gossip simulation for its simulated leaves.
 */
import type { Envelope } from './messages.js';

/** Envelopes kept for an epoch we do not hold yet, and how far ahead they may be. */
export const MAX_EARLY = 32;
export const EARLY_EPOCHS = 2;

export class EarlyEnvelopes<From, P = Uint8Array> {
  private held: { readonly env: Envelope<P>; readonly from: From }[] = [];

  get size(): number {
    return this.held.length;
  }

  /** Keeps `env` if it is ahead of `epoch` (the node's) by at most EARLY_EPOCHS; true if kept. */
  hold(env: Envelope<P>, from: From, epoch: number): boolean {
    if (!(env.epoch > epoch && env.epoch <= epoch + EARLY_EPOCHS)) return false;
    if (this.held.length >= MAX_EARLY) this.held.shift();
    this.held.push({ env, from });
    return true;
  }

  /** The node is at `epoch` now: the held envelopes of exactly that epoch (those older are stale and dropped). */
  ready(epoch: number): { readonly env: Envelope<P>; readonly from: From }[] {
    if (this.held.length === 0) return [];
    const out = this.held.filter((x) => x.env.epoch === epoch);
    this.held = this.held.filter((x) => x.env.epoch > epoch);
    return out;
  }
}
