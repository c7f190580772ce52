/** State shapes shared by the machine and its snapshot codec. */
import type { LeafKeyTree } from '../keytree/index.js';
import type { EvictionReason } from '../gossip-edge/index.js';
import type { LeaseBook } from './lease-book.js';

/** Hard cap on registry size any snapshot may declare. */
export const MAX_LEAVES_CAP = 1 << 22;

/** Departure reasons the machine produces (a subset of the protocol's eviction reasons). */
export type DepartureReason = Extract<
  EvictionReason,
  'lease-expired' | 'revoked' | 'left' | 'replaced' | 'key-exposed'
>;
export const DEPARTURE_REASONS: readonly DepartureReason[] = [
  'lease-expired',
  'revoked',
  'left',
  'replaced',
  'key-exposed',
];
/** Core serials whose revocation already started a full refresh that replicas remember. */
export const MAX_CORE_REVOKED = 256;

export interface LeafEntry {
  readonly name: string;
  readonly serial: string;
  readonly fingerprint: Uint8Array;
  /** Stable id of this admission (data envelope sender id); never reused. */
  readonly memberId: number;
  /** Slot in the tree, or −1 while the admission waits for its batch. */
  slot: number;
  /** Epoch of the batch that admitted the leaf (its resume token), −1 while pending. */
  admittedEpoch: number;
  /**
   * Its own key may be known to a revoked core server: admitted before that revocation's full
   * refresh began and not refreshed since (machine.ts, "Post-compromise recovery").
   */
  exposed: boolean;
}

/** A full refresh after a core server's revocation: leaves still exposed at `deadline` are evicted. */
export interface FullRefresh {
  /** Replicated time (ms) after which exposed leaves are evicted. */
  readonly deadline: number;
  /** The tree epoch when it began. */
  readonly epoch: number;
}

export interface PendingDeparture {
  readonly name: string;
  readonly memberId: number;
  readonly slot: number;
  readonly reason: DepartureReason;
  /** The departing certificate's serial, for the audit line of the batch ('' when restored from a v1/v2 snapshot). */
  readonly serial: string;
}

/** The mutable state, shared with the snapshot codec (snapshot.ts). */
export interface LeafStateParts {
  tree: LeafKeyTree;
  now: number;
  nextMemberId: number;
  secret: Uint8Array;
  secretGeneration: number;
  entries: Map<string, LeafEntry>;
  leases: LeaseBook;
  pendingJoins: string[];
  pendingDepartures: PendingDeparture[];
  revoked: Set<string>;
  /** Own-key refreshes waiting for the next cut, by leaf name (`refreshLeafKeys`). */
  pendingRekeys: Map<string, Uint8Array>;
  fullRefresh: FullRefresh | undefined;
  /** Serials of revoked core servers already handled, oldest first (≤ MAX_CORE_REVOKED). */
  coreRevoked: string[];
}
