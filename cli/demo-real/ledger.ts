/**
 * What the demo measured: rekey latencies per membership action, the publish stream's
 * expected/delivered accounting, and the view ids seen on the servers' /status.
 */

/** Published messages remembered (the stream is a few per second, runs are bounded). */
const MAX_MESSAGES = 100_000;
/** A recipient that leaves within this long after a publish is not counted as expected to get it. */
export const DEPARTURE_GRACE_MS = 1000;

/** `join-wave`: JOIN_WAVE leaves joining at once (first phase); `join`: one leaf (churn). */
export type ActionKind = 'join-wave' | 'join' | 'leave' | 'revoke' | 'failover' | 'restart';

export interface RekeySample {
  readonly kind: ActionKind;
  /** From the action to the last current leaf receiving the resulting key; undefined: timed out. */
  readonly ms: number | undefined;
  readonly epoch: number;
}

interface Published {
  readonly at: number;
  readonly sender: string;
  readonly recipients: readonly string[];
  readonly got: Set<string>;
}

export const percentile = (xs: readonly number[], p: number): number | undefined => {
  if (xs.length === 0) return undefined;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
};

export class DemoLedger {
  readonly samples: RekeySample[] = [];
  readonly viewIds = new Set<string>();
  private readonly published = new Map<number, Published>();
  private readonly departedAt = new Map<string, number>();
  private nextId = 0;

  rekey(sample: RekeySample): void {
    this.samples.push(sample);
  }

  latencies(kind?: ActionKind): number[] {
    return this.samples.flatMap((s) =>
      s.ms !== undefined && (kind === undefined || s.kind === kind) ? [s.ms] : [],
    );
  }

  timeouts(): number {
    return this.samples.filter((s) => s.ms === undefined).length;
  }

  /** Registers a publish; returns the id to put in the payload. */
  publish(sender: string, recipients: readonly string[], at = Date.now()): number {
    if (this.published.size >= MAX_MESSAGES) throw new RangeError('DemoLedger: message bound reached');
    const id = this.nextId++;
    this.published.set(id, { at, sender, recipients, got: new Set() });
    return id;
  }

  /** A leaf read message `id`; false when it is unknown (not ours or garbled). */
  delivered(id: number, to: string): boolean {
    const m = this.published.get(id);
    if (m === undefined) return false;
    m.got.add(to);
    return true;
  }

  /** Forgets a publish whose send failed. */
  cancel(id: number): void {
    this.published.delete(id);
  }

  departedAtOf(name: string): number | undefined {
    return this.departedAt.get(name);
  }

  departed(name: string, at = Date.now()): void {
    if (!this.departedAt.has(name)) this.departedAt.set(name, at);
  }

  /** Messages published strictly after `t` that `name` read. */
  readAfter(name: string, t: number): { published: number; read: number } {
    let published = 0;
    let read = 0;
    for (const m of this.published.values()) {
      if (m.at <= t) continue;
      published++;
      if (m.got.has(name)) read++;
    }
    return { published, read };
  }

  /** Expected = recipients current at publish time that stayed at least DEPARTURE_GRACE_MS. */
  deliveries(): { messages: number; expected: number; delivered: number } {
    let expected = 0;
    let delivered = 0;
    for (const m of this.published.values()) {
      for (const r of m.recipients) {
        const gone = this.departedAt.get(r);
        if (gone !== undefined && gone < m.at + DEPARTURE_GRACE_MS) continue;
        expected++;
        if (m.got.has(r)) delivered++;
      }
    }
    return { messages: this.published.size, expected, delivered };
  }
}
