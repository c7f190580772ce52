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
/**
 * Catch-up reply bytes a server sends per second over all its leaves: ~650 full replies (64
 * epochs at 4,096 leaves, 25 KB each, ~35–75 µs of the main thread: a few % of a core).
 */
export const DEFAULT_CATCH_UP_BYTES_PER_SEC = 16 * 1024 * 1024;
/** Buckets kept; beyond, the least recently used goes (it comes back full: a bounded gift). */
export const MAX_LIMITED_LEAVES = 8192;

export type RequestVerdict = 'ok' | 'refused' | 'abusive';

/**
 * A token bucket: `perSec` tokens a second up to `capacity`, starting full. `spend` may take it
 * below zero (a cost known only afterwards, e.g. a reply's bytes): it then refills from the debt.
 * Pure: the caller passes `now` (ms); a clock step back refills nothing.
 */
export class TokenBucket {
  private level: number;
  private at: number;

  constructor(
    readonly perSec: number,
    readonly capacity: number,
    now: number,
  ) {
    if (!(perSec > 0 && Number.isFinite(perSec))) throw new RangeError('TokenBucket: perSec must be > 0');
    if (!(capacity >= 1 && Number.isFinite(capacity)))
      throw new RangeError('TokenBucket: capacity must be ≥ 1');
    this.level = capacity;
    this.at = now;
  }

  /** Tokens available at `now`. */
  tokens(now: number): number {
    if (now > this.at) {
      this.level = Math.min(this.capacity, this.level + ((now - this.at) * this.perSec) / 1000);
      this.at = now;
    }
    return this.level;
  }

  /** Takes `n` tokens if there are that many. */
  take(n: number, now: number): boolean {
    if (this.tokens(now) < n) return false;
    this.level -= n;
    return true;
  }

  /** Spends `n` tokens whatever the level (a cost known after the fact). */
  spend(n: number, now: number): void {
    this.level = this.tokens(now) - n;
  }
}

interface Bucket {
  readonly tokens: TokenBucket;
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
      b = { tokens: new TokenBucket(perSec, burst, now), refusedInRow: 0 };
      if (this.buckets.size >= this.maxLeaves) this.buckets.delete(this.buckets.keys().next().value!);
    } else this.buckets.delete(leaf); // re-inserted below: most recently used last
    this.buckets.set(leaf, b);
    if (b.tokens.take(1, now)) {
      b.refusedInRow = 0;
      return 'ok';
    }
    b.refusedInRow++;
    return b.refusedInRow > burst ? 'abusive' : 'refused';
  }
}
