/**
 * What the demo measures. Every figure in the summary comes from here, and everything here is
 * fed by the protocol code as it runs (servers, leaves, the eavesdropper): nothing is estimated.
 *
 * Rekey latency of epoch e = (last current leaf installs the key of e) − (the coordinator
 * multicast the command that cut e). An epoch is complete when as many leaves hold its key as
 * the tree had members right after the cut; epochs some member never reached (it re-joined
 * with a fresh welcome instead, or left first) are counted, not hidden.
 */

export interface EpochRecord {
  readonly epoch: number;
  /** Virtual ms the cut (or the immediate revocation) was multicast; undefined if not seen. */
  issuedAt: number | undefined;
  /** Virtual ms the first replica produced the batch. */
  readonly producedAt: number;
  /** Tree members right after the cut: how many leaves must hold the key. */
  readonly members: number;
  readonly joins: number;
  readonly departures: number;
  /** Encoded full rekey message. */
  readonly rekeyBytes: number;
  /** Largest rekey push frame one leaf received for this epoch. */
  maxPushBytes: number;
  /** Leaves that hold this epoch's key (welcome or rekey part). */
  installed: number;
  /** Virtual ms the last of `members` installs happened; undefined while incomplete. */
  completedAt: number | undefined;
}

export interface ViewRecord {
  readonly t: number;
  readonly server: string;
  readonly id: string;
  readonly members: number;
  readonly primary: boolean;
}

export interface SniffStats {
  /** Envelopes of an epoch at or after the eviction that a departed leaf tried to open. */
  attempts: number;
  opened: number;
  /** Rekey messages after the eviction it tried to follow with the keys it held. */
  rekeyAttempts: number;
  rekeyFollowed: number;
  readonly reasons: Map<string, number>;
}

export class DemoRecorder {
  readonly epochs = new Map<number, EpochRecord>();
  private readonly issued = new Map<number, number>();
  readonly views: ViewRecord[] = [];
  /** One replica's CPU time to apply a cut, sign it and route its parts, per (replica, batch). */
  readonly serverCpuMs: number[] = [];
  published = 0;
  expectedDeliveries = 0;
  delivered = 0;
  /** Per published message (`sender/seq`): when, how many members should read it, how many did. */
  readonly messages = new Map<string, { t: number; expected: number; delivered: number }>();
  readonly undeliverable = new Map<string, number>();
  readonly sniff: SniffStats = {
    attempts: 0,
    opened: 0,
    rekeyAttempts: 0,
    rekeyFollowed: 0,
    reasons: new Map(),
  };
  readonly perSniffer = new Map<string, SniffStats>();
  coreBytes = 0;
  coreMessages = 0;
  leafBytes = 0;
  leafMessages = 0;
  stateTransfers = 0;
  catchUps = 0;
  rejoins = 0;
  failovers = 0;
  /** Leaves told they are evicted, by reason (terminal for a leaf session, as for LeafClient). */
  readonly evictions = new Map<string, number>();
  pushErrors = 0;

  /** The coordinator multicast the command that will cut `epoch` (first issue counts). */
  cutIssued(epoch: number, t: number): void {
    if (!this.issued.has(epoch)) this.issued.set(epoch, t);
  }

  batchProduced(b: {
    epoch: number;
    t: number;
    members: number;
    joins: number;
    departures: number;
    rekeyBytes: number;
  }): void {
    if (this.epochs.has(b.epoch)) return; // every replica produces it; the first one counts
    this.epochs.set(b.epoch, {
      epoch: b.epoch,
      issuedAt: this.issued.get(b.epoch),
      producedAt: b.t,
      members: b.members,
      joins: b.joins,
      departures: b.departures,
      rekeyBytes: b.rekeyBytes,
      maxPushBytes: 0,
      installed: 0,
      completedAt: b.members === 0 ? b.t : undefined,
    });
  }

  messagePublished(id: string, t: number, expected: number): void {
    this.published++;
    this.expectedDeliveries += expected;
    this.messages.set(id, { t, expected, delivered: 0 });
  }

  messageDelivered(id: string): void {
    this.delivered++;
    const m = this.messages.get(id);
    if (m !== undefined) m.delivered++;
  }

  pushSent(epoch: number, bytes: number): void {
    const e = this.epochs.get(epoch);
    if (e !== undefined && bytes > e.maxPushBytes) e.maxPushBytes = bytes;
  }

  keyInstalled(epoch: number, t: number): void {
    const e = this.epochs.get(epoch);
    if (e === undefined) return;
    e.installed++;
    if (e.installed === e.members) e.completedAt = t;
  }

  view(v: ViewRecord): void {
    this.views.push(v);
  }

  undelivered(reason: string): void {
    this.undeliverable.set(reason, (this.undeliverable.get(reason) ?? 0) + 1);
  }

  sniffed(name: string, kind: 'data' | 'rekey', success: boolean, reason: string | undefined): void {
    let s = this.perSniffer.get(name);
    if (s === undefined) {
      s = { attempts: 0, opened: 0, rekeyAttempts: 0, rekeyFollowed: 0, reasons: new Map() };
      this.perSniffer.set(name, s);
    }
    for (const t of [this.sniff, s]) {
      if (kind === 'data') {
        t.attempts++;
        if (success) t.opened++;
      } else {
        t.rekeyAttempts++;
        if (success) t.rekeyFollowed++;
      }
      if (reason !== undefined) t.reasons.set(reason, (t.reasons.get(reason) ?? 0) + 1);
    }
  }

  /** Rekey latencies (virtual ms) of complete epochs with a known issue time. */
  rekeyLatencies(): number[] {
    const out: number[] = [];
    for (const e of this.epochs.values())
      if (e.completedAt !== undefined && e.issuedAt !== undefined && e.members > 0)
        out.push(e.completedAt - e.issuedAt);
    return out;
  }

  /** Latency of the newest complete epoch, for the progress line. */
  lastLatency(): number | undefined {
    let best: EpochRecord | undefined;
    for (const e of this.epochs.values())
      if (e.completedAt !== undefined && e.issuedAt !== undefined && (!best || e.epoch > best.epoch))
        best = e;
    return best === undefined ? undefined : best.completedAt! - best.issuedAt!;
  }
}

/** Nearest-rank percentile of `xs` (p in [0, 100]); NaN when empty. */
export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const rank = Math.min(s.length, Math.max(1, Math.ceil((p / 100) * s.length)));
  return s[rank - 1]!;
}
