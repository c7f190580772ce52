/**
 * Lease expiry index: names bucketed by the second their lease ends, so a tick finds the expired
 * leases in O(expired + elapsed buckets) instead of scanning a million-leaf registry every
 * 100 ms. Renewal moves a name between buckets. Iteration order of the result is sorted, so every
 * replica (including one restored from a snapshot, whose insertion order differs) evicts in the
 * same order.
 */
const BUCKET_MS = 1000;

export class LeaseBook {
  private readonly buckets = new Map<number, Set<string>>();
  private readonly until = new Map<string, number>();

  get size(): number {
    return this.until.size;
  }

  set(name: string, until: number): void {
    this.remove(name);
    this.until.set(name, until);
    const b = Math.floor(until / BUCKET_MS);
    let set = this.buckets.get(b);
    if (set === undefined) this.buckets.set(b, (set = new Set()));
    set.add(name);
  }

  get(name: string): number | undefined {
    return this.until.get(name);
  }

  remove(name: string): void {
    const until = this.until.get(name);
    if (until === undefined) return;
    this.until.delete(name);
    const b = Math.floor(until / BUCKET_MS);
    const set = this.buckets.get(b)!;
    set.delete(name);
    if (set.size === 0) this.buckets.delete(b);
  }

  /** Names whose lease ended strictly before `now`, sorted; they stay in the book until removed. */
  expired(now: number): string[] {
    const last = Math.floor(now / BUCKET_MS);
    const out: string[] = [];
    for (const [b, set] of this.buckets) {
      if (b > last) continue;
      for (const name of set) if (this.until.get(name)! < now) out.push(name);
    }
    return out.sort();
  }
}
