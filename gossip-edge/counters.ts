/**
 * Counters of a gossip node or of a whole simulated population (one object shared by many
 * nodes keeps a million-node run cheap). Plain numbers, read by metrics exporters and the sim.
 */
import { GOSSIP_KINDS, type GossipKind } from './messages.js';

export type DropReason =
  | 'bad-mac' // tag did not verify under an epoch we hold
  | 'unknown-epoch' // MAC under an epoch we do not (yet, or any longer) hold
  | 'stale-epoch' // a previous epoch past its grace period
  | 'rate-limited' // our own send budget for the round was exhausted (and no deferral room)
  | 'out-of-scope' // an item for a subtree we are not in
  | 'rejected' // the host refused the item (bad signature, not bound to its content, garbage)
  | 'stale-item' // an item of an epoch we already moved past
  | 'mislabelled' // a rekey id that names another epoch than the item's
  | 'far-future' // an item more than LIMITS.maxEpochsAhead epochs ahead of ours
  | 'later' // the host cannot check it yet (sealed under an epoch we do not hold yet)
  | 'foreign'; // signed by a key we do not know (no core server of our welcome)

export const DROP_REASONS: readonly DropReason[] = [
  'bad-mac',
  'unknown-epoch',
  'stale-epoch',
  'rate-limited',
  'out-of-scope',
  'rejected',
  'stale-item',
  'mislabelled',
  'far-future',
  'later',
  'foreign',
];

/** Per-round send counts above this share the last histogram bucket. */
export const SEND_HISTOGRAM_MAX = 63;

export class GossipCounters {
  readonly sent: Record<GossipKind, number>;
  readonly dropped: Record<DropReason, number>;
  bytesSent = 0;
  received = 0;
  duplicates = 0;
  delivered = 0;
  pullsFromCore = 0;
  /** Fresh seeds asked of the core by cut-off nodes. */
  reseeds = 0;
  /** Peers dropped from every view for sending an invalid item (see GossipNode.distrust). */
  peersDistrusted = 0;
  /** Eager pushes that waited for a later round's budget (see GossipConfig.deferredPushes). */
  deferred = 0;
  /** histogram[k] = node-rounds in which a node sent k messages (k ≥ 63 in the last bucket). */
  readonly sendsPerRound = new Float64Array(SEND_HISTOGRAM_MAX + 1);
  maxSendsInRound = 0;

  constructor(readonly countBytes = true) {
    this.sent = Object.fromEntries(GOSSIP_KINDS.map((k) => [k, 0])) as Record<GossipKind, number>;
    this.dropped = Object.fromEntries(DROP_REASONS.map((r) => [r, 0])) as Record<DropReason, number>;
  }

  totalSent(): number {
    let s = 0;
    for (const k of GOSSIP_KINDS) s += this.sent[k];
    return s;
  }

  recordRound(sends: number): void {
    this.sendsPerRound[Math.min(sends, SEND_HISTOGRAM_MAX)]!++;
    if (sends > this.maxSendsInRound) this.maxSendsInRound = sends;
  }

  /** Mean messages a node sent per round, over the node-rounds recorded. */
  meanSendsPerRound(): number {
    let rounds = 0;
    let sends = 0;
    this.sendsPerRound.forEach((c, k) => {
      rounds += c;
      sends += c * k;
    });
    return rounds === 0 ? 0 : sends / rounds;
  }
}
