/**
 * Tunables of a gossip node. Every per-node structure is sized from these at construction and
 * never grows: a node's memory and its work per round are bounded by the config alone.
 */

export interface GossipConfig {
  /** Active view size (HyParView: log n + c). Push fan-out picks from it. */
  readonly activeSize: number;
  /** Passive view size: repair candidates, refreshed by shuffles. */
  readonly passiveSize: number;
  /** Eager-push fan-out on first receipt of an item (≤ activeSize). */
  readonly fanout: number;
  /** Arity of the leaf key tree (subtree scopes are d-ary). */
  readonly arity: number;
  /** Levels of subtree contacts kept (tree height; level l = the subtree of span d^l around us). */
  readonly levels: number;
  /** Contacts kept per level. */
  readonly contactsPerLevel: number;
  /** Items kept for anti-entropy; older or excess ones are evicted (their ids stay in the seen ring). */
  readonly retainedItems: number;
  /** Rounds an item stays retained (and advertised in digests). */
  readonly retentionRounds: number;
  /** Ids remembered after eviction, for duplicate suppression of late copies. */
  readonly seenIds: number;
  /** Hop limit of the eager push (anti-entropy is not hop-limited). */
  readonly maxHops: number;
  /**
   * Messages a node may send per round (pushes, digests, pulls, replies, views). Default
   * fan-out + 2: one item's eager push plus the round's digest exchange. Over budget an eager
   * push waits (deferredPushes), anything else is dropped and counted.
   */
  readonly maxSendsPerRound: number;
  /**
   * Eager push messages that may wait for a later round's budget (0 = drop them; anti-entropy
   * repairs). Items for the same peer merge into one waiting message while they wait.
   */
  readonly deferredPushes: number;
  /** Items one push message may carry (eager pushes and pull answers). */
  readonly maxItemsPerPush: number;
  /** Encoded size a push of several items stays within (a single larger item goes alone). */
  readonly maxPushBytes: number;
  /** Items a node answers per pull / per digest reply (backpressure on anti-entropy). */
  readonly maxItemsPerReply: number;
  /** Every this many rounds our digest is a probe that must be answered (others are answered only with news). */
  readonly probeEveryRounds: number;
  /** A peer silent for this many of our probes (digests that got no answer) is dropped from the active view. */
  readonly suspectAfterProbes: number;
  /** Shuffle the passive view with a random active peer every this many rounds. */
  readonly shuffleEveryRounds: number;
  /** Peers exchanged per shuffle. */
  readonly shuffleLength: number;
  /** Previous key epochs whose MAC is still accepted … */
  readonly epochWindow: number;
  /** … but only for this many rounds after the node moved past them (so an evicted leaf is locked out). */
  readonly epochGraceRounds: number;
  /** Rounds a node may lag behind a newer epoch it has heard of before it pulls from its core server. */
  readonly catchupRounds: number;
  /**
   * A node that heard no authenticated message for this many rounds, or whose active view
   * stayed empty that long, is cut off: it asks its core server for a fresh seed and pulls
   * what it missed from the core's bounded history (rate-limited to once per this many rounds).
   */
  readonly isolationRounds: number;
  /** Deliver data per origin in seq order (holding later items until the gap fills or ages out). */
  readonly fifo: boolean;
  /** Out-of-order data items held for FIFO per node. */
  readonly fifoHold: number;
}

export const DEFAULT_GOSSIP_CONFIG: GossipConfig = Object.freeze({
  activeSize: 5,
  passiveSize: 15,
  fanout: 4,
  arity: 4,
  levels: 10,
  contactsPerLevel: 2,
  retainedItems: 16,
  retentionRounds: 24,
  seenIds: 32,
  maxHops: 32,
  maxSendsPerRound: 6,
  deferredPushes: 16,
  maxItemsPerPush: 16,
  maxPushBytes: 8192,
  maxItemsPerReply: 4,
  probeEveryRounds: 2,
  suspectAfterProbes: 2,
  shuffleEveryRounds: 8,
  shuffleLength: 4,
  epochWindow: 2,
  epochGraceRounds: 8,
  catchupRounds: 6,
  isolationRounds: 5,
  fifo: false,
  fifoHold: 16,
});

/** Hard caps shared with the wire codec: a config may not exceed what a frame can carry. */
export const LIMITS = Object.freeze({
  maxActive: 32,
  maxPassive: 256,
  maxLevels: 32,
  maxContactsPerLevel: 8,
  maxRetained: 1024,
  maxDigestIds: 1024,
  maxPushItems: 64,
  maxShuffle: 64,
  maxItemBytes: 64 * 1024,
  /**
   * How far ahead of a node's epoch an item may be to be stored or relayed. A leaf applies one
   * epoch at a time; parts of the next few epochs reach it legitimately when the core signs
   * batches back to back (the relay MACs epoch E's parts under E − 1, peers answer pulls under
   * the asker's epoch), but one more than 4 ahead means the leaf is `behind` and catches up from
   * its core server anyway — so refusing it loses nothing (its id stays unseen), while an insider
   * can no longer park items under ids of epochs far in the future. An honest peer never sends
   * one: what reaches us is MAC'd under an epoch we hold, so the sender is at most
   * MacAuthenticator's key window (4) − 1 epochs ahead, and so are its data items; its rekey parts
   * are MAC'd under min(its epoch, part epoch − 1). Keep this ≥ that window − 1, since a node
   * distrusts a peer that sends an item this far ahead.
   */
  maxEpochsAhead: 4,
});

export function gossipConfig(patch: Partial<GossipConfig> = {}): GossipConfig {
  const c: GossipConfig = Object.freeze({ ...DEFAULT_GOSSIP_CONFIG, ...patch });
  const int = (name: keyof GossipConfig, lo: number, hi: number): void => {
    const v = c[name] as number;
    if (!(Number.isInteger(v) && v >= lo && v <= hi))
      throw new RangeError(`gossip config ${name}=${v} not in [${lo}, ${hi}]`);
  };
  int('activeSize', 1, LIMITS.maxActive);
  int('passiveSize', 0, LIMITS.maxPassive);
  int('fanout', 1, c.activeSize);
  int('arity', 2, 256);
  int('levels', 0, LIMITS.maxLevels);
  int('contactsPerLevel', 0, LIMITS.maxContactsPerLevel);
  int('retainedItems', 1, LIMITS.maxRetained);
  int('retentionRounds', 1, 1 << 20);
  int('seenIds', 1, 1 << 16);
  int('maxHops', 1, 255);
  int('maxSendsPerRound', 2, 1 << 16);
  int('deferredPushes', 0, LIMITS.maxRetained);
  int('maxItemsPerPush', 1, LIMITS.maxPushItems);
  // Up to the largest gossip frame (codec.ts MAX_GOSSIP_FRAME_BYTES = maxItemBytes + 512).
  int('maxPushBytes', 512, LIMITS.maxItemBytes + 512);
  int('maxItemsPerReply', 1, LIMITS.maxDigestIds);
  int('probeEveryRounds', 1, 1 << 10);
  int('suspectAfterProbes', 1, 1 << 10);
  int('shuffleEveryRounds', 1, 1 << 20);
  int('shuffleLength', 1, LIMITS.maxShuffle);
  int('epochWindow', 0, 64);
  int('epochGraceRounds', 0, 1 << 20);
  int('catchupRounds', 1, 1 << 20);
  int('isolationRounds', 1, 1 << 20);
  int('fifoHold', 1, LIMITS.maxRetained);
  return c;
}
