/**
 * 4-ary min-heap of simulator events keyed by (time, seq). Four children per node halve the
 * depth of a binary heap and keep siblings on adjacent cache lines: pops, which dominate a
 * simulation, touch about half as many lines.
 *
 * `seq` is a strictly increasing insertion counter, so equal-time events pop in insertion
 * order and the order never depends on heap internals: that is what makes runs replayable.
 * Entries are (time, seq, slot) triples interleaved in ONE Float64Array — no object per
 * entry, nothing for the GC to trace, and a parent's two children sit side by side in memory.
 * The event's own fields live in the simulator's slot pool.
 */

const INITIAL_CAPACITY = 1024;
const W = 3; // words per entry: time, seq, slot

export class EventHeap {
  private a = new Float64Array(INITIAL_CAPACITY * W);
  private n = 0;
  private nextSeq = 0;

  get size(): number {
    return this.n;
  }

  /** Time of the earliest event; only valid when size > 0. */
  peekTime(): number {
    return this.a[0]!;
  }

  push(time: number, slot: number): void {
    if (this.n * W === this.a.length) this.grow();
    const seq = this.nextSeq++;
    const a = this.a;
    // Sift up: move parents down until the new key's place is found, then write it once.
    let i = this.n++;
    while (i > 0) {
      const p = (i - 1) >> 2;
      const pi = p * W;
      const pt = a[pi]!;
      if (pt < time || (pt === time && a[pi + 1]! < seq)) break;
      const ii = i * W;
      a[ii] = pt;
      a[ii + 1] = a[pi + 1]!;
      a[ii + 2] = a[pi + 2]!;
      i = p;
    }
    const ii = i * W;
    a[ii] = time;
    a[ii + 1] = seq;
    a[ii + 2] = slot;
  }

  /** Removes the earliest event and returns its slot. Caller checks size > 0 first. */
  pop(): number {
    const a = this.a;
    const top = a[2]!;
    const n = --this.n;
    if (n === 0) return top;
    const last = n * W;
    const time = a[last]!;
    const seq = a[last + 1]!;
    const slot = a[last + 2]!;
    // Sift the last entry down from the root: find the least child, move it up if it is less.
    let i = 0;
    for (;;) {
      const first = 4 * i + 1;
      if (first >= n) break;
      const end = Math.min(first + 4, n);
      let c = first;
      let ci = c * W;
      let ct = a[ci]!;
      for (let k = first + 1; k < end; k++) {
        const ki = k * W;
        const kt = a[ki]!;
        if (kt < ct || (kt === ct && a[ki + 1]! < a[ci + 1]!)) {
          c = k;
          ci = ki;
          ct = kt;
        }
      }
      if (time < ct || (time === ct && seq < a[ci + 1]!)) break;
      const ii = i * W;
      a[ii] = ct;
      a[ii + 1] = a[ci + 1]!;
      a[ii + 2] = a[ci + 2]!;
      i = c;
    }
    const ii = i * W;
    a[ii] = time;
    a[ii + 1] = seq;
    a[ii + 2] = slot;
    return top;
  }

  private grow(): void {
    const a = new Float64Array(this.a.length * 2);
    a.set(this.a);
    this.a = a;
  }
}
