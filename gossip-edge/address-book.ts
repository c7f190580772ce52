/**
 * The host-side address book of the real gossip tier: PeerId (a leaf's key-tree slot) → UDP
 * endpoint ("host:port", net/udp's address form).
 *
 * Sources, strongest first: `direct` — the source address of a datagram whose MAC verified (the
 * sender holds the epoch's group key and really sent from there); `seed` — a list the core server
 * sent over the leaf's TLS link; `hint` — an address hint frame whose MAC verified (a member
 * vouches for a third peer's endpoint). A weaker source never overwrites a stronger, fresh entry,
 * so a member cannot redirect traffic meant for a peer we heard from directly.
 *
 * Bounded: at most `capacity` entries; inserting past it forgets the least recently used one
 * (Map insertion order, refreshed on use). A slot that moves (compaction) is simply learned
 * again under its new id; the stale id ages out.
 */
import type { PeerId } from './ids.js';

export type AddressSource = 'direct' | 'seed' | 'hint';
const RANK: Record<AddressSource, number> = { direct: 3, seed: 2, hint: 1 };

interface Entry {
  readonly endpoint: string;
  readonly rank: number;
}

export const DEFAULT_ADDRESS_BOOK_SIZE = 1024;

export class AddressBook {
  private readonly entries = new Map<PeerId, Entry>();

  constructor(readonly capacity = DEFAULT_ADDRESS_BOOK_SIZE) {
    if (!(Number.isInteger(capacity) && capacity >= 1)) throw new RangeError('address book capacity ≥ 1');
  }

  get size(): number {
    return this.entries.size;
  }

  /** The endpoint of `peer` (refreshes its recency), or undefined. */
  get(peer: PeerId): string | undefined {
    const e = this.entries.get(peer);
    if (e === undefined) return undefined;
    this.entries.delete(peer);
    this.entries.set(peer, e);
    return e.endpoint;
  }

  /** Peek without refreshing recency (for building hints). */
  peek(peer: PeerId): string | undefined {
    return this.entries.get(peer)?.endpoint;
  }

  /** Records `endpoint` for `peer` unless a stronger source already named another one. */
  learn(peer: PeerId, endpoint: string, source: AddressSource): void {
    const rank = RANK[source];
    const old = this.entries.get(peer);
    if (old !== undefined) {
      if (old.endpoint === endpoint && old.rank >= rank) return void this.get(peer);
      if (old.rank > rank) return;
      this.entries.delete(peer);
    }
    this.entries.set(peer, { endpoint, rank });
    if (this.entries.size > this.capacity) {
      const oldest = this.entries.keys().next().value as PeerId;
      this.entries.delete(oldest);
    }
  }

  forget(peer: PeerId): void {
    this.entries.delete(peer);
  }
}
