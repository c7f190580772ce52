/** State shapes shared by the machine and its snapshot codec. */
import type { LeafKeyTree } from '../../keytree/index.js';
import type { EvictionReason } from '../../gossip-edge/index.js';
import type { LeaseBook } from './lease-book.js';

/** Hard cap on registry size any snapshot may declare. */
export const MAX_LEAVES_CAP = 1 << 22;

/** Departure reasons the machine produces (a subset of the protocol's eviction reasons). */
export type DepartureReason = Extract<EvictionReason, 'lease-expired' | 'revoked' | 'left' | 'replaced'>;
export const DEPARTURE_REASONS: readonly DepartureReason[] = ['lease-expired', 'revoked', 'left', 'replaced'];

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
}

export interface PendingDeparture {
  readonly name: string;
  readonly memberId: number;
  readonly slot: number;
  readonly reason: DepartureReason;
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
}
