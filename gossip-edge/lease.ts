/**
 * Leaf leases, sans-IO. A leaf renews its lease with its core server every `renewEveryMs`
 * (through its TLS session or its gossip path); the core's LeaseTable reports leaves silent
 * for longer than `leaseMs`, and the core evicts them in the next rekey batch.
 */
import type { PeerId } from './ids.js';

export class LeaseClient {
  private lastAck = -Infinity;
  private lastSent = -Infinity;

  constructor(
    readonly leaseMs: number,
    readonly renewEveryMs: number,
  ) {
    if (!(renewEveryMs > 0 && leaseMs > renewEveryMs))
      throw new RangeError('lease must outlast the renew interval');
  }

  /** True when a renewal should be sent now (and records it as sent). */
  due(now: number): boolean {
    if (now - this.lastSent < this.renewEveryMs) return false;
    this.lastSent = now;
    return true;
  }

  acked(now: number): void {
    this.lastAck = now;
  }

  /** The leaf's own view: has its lease (probably) lapsed? Then it must re-join. */
  lapsed(now: number): boolean {
    return now - this.lastAck > this.leaseMs;
  }
}

/** The core server's lease book: expiry time per leaf, bounded by the number of registered leaves. */
export class LeaseTable {
  private readonly expiry = new Map<PeerId, number>();

  constructor(readonly leaseMs: number) {
    if (!(leaseMs > 0)) throw new RangeError('leaseMs must be > 0');
  }

  renew(leaf: PeerId, now: number): void {
    this.expiry.set(leaf, now + this.leaseMs);
  }

  remove(leaf: PeerId): void {
    this.expiry.delete(leaf);
  }

  get size(): number {
    return this.expiry.size;
  }

  /** Leaves whose lease ran out by `now` (removed from the table; the caller evicts them). */
  expire(now: number): PeerId[] {
    const out: PeerId[] = [];
    for (const [leaf, t] of this.expiry) if (t <= now) out.push(leaf);
    for (const leaf of out) this.expiry.delete(leaf);
    return out;
  }
}
