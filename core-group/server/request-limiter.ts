/**
 * Per-leaf budget for the requests a leaf can make cheaply and a server pays for (a catch-up
 * reply of up to 64 signed epochs, a seed, a welcome or an ordered admission): a token bucket per
 * leaf identity (certificate name), not per link, so that linking again does not refill it.
 *
 * A request finds a token (`ok`), or is refused (`refused`: the leaf is told, and may retry
 * later); a leaf that keeps asking through a whole burst's worth of refusals without waiting for
 * a token is flooding (`abusive`: its link is closed). Honest leaves hold one catch-up in flight
 * at a time and join rarely, far below the defaults. Pure: the caller passes `now`.
 */
export interface RequestLimits {
  /** Tokens added per second. */
  readonly perSec: number;
  /** Bucket size: the requests a leaf may make back to back. */
  readonly burst: number;
}

export const DEFAULT_LEAF_REQUEST_LIMITS: RequestLimits = { perSec: 20, burst: 40 };
/** Buckets kept; beyond, the least recently used goes (it comes back full: a bounded gift). */
export const MAX_LIMITED_LEAVES = 8192;

export type RequestVerdict = 'ok' | 'refused' | 'abusive';

interface Bucket {
  tokens: number;
  at: number;
  /** Refusals since the last request served. */
  refusedInRow: number;
}

export class RequestLimiter {
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    readonly limits: RequestLimits = DEFAULT_LEAF_REQUEST_LIMITS,
    private readonly maxLeaves = MAX_LIMITED_LEAVES,
  ) {
    if (!(limits.perSec > 0 && Number.isFinite(limits.perSec)))
      throw new RangeError('RequestLimiter: perSec must be > 0');
    if (!(Number.isInteger(limits.burst) && limits.burst >= 1))
      throw new RangeError('RequestLimiter: burst must be a whole number ≥ 1');
    if (!(Number.isInteger(maxLeaves) && maxLeaves >= 1))
      throw new RangeError('RequestLimiter: maxLeaves ≥ 1');
  }

  get size(): number {
    return this.buckets.size;
  }

  /** One request by `leaf` at `now` (ms, monotonic enough: a clock step back only delays refills). */
  take(leaf: string, now: number): RequestVerdict {
    const { perSec, burst } = this.limits;
    let b = this.buckets.get(leaf);
    if (b === undefined) {
      b = { tokens: burst, at: now, refusedInRow: 0 };
      if (this.buckets.size >= this.maxLeaves) this.buckets.delete(this.buckets.keys().next().value!);
    } else this.buckets.delete(leaf); // re-inserted below: most recently used last
    this.buckets.set(leaf, b);
    if (now > b.at) b.tokens = Math.min(burst, b.tokens + ((now - b.at) * perSec) / 1000);
    b.at = Math.max(b.at, now);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      b.refusedInRow = 0;
      return 'ok';
    }
    b.refusedInRow++;
    return b.refusedInRow > burst ? 'abusive' : 'refused';
  }
}
