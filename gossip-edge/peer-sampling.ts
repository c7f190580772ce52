/**
 * Peer sampling (HyParView-style), over a node's slice of the GossipStore.
 *
 * - Active view: a small set of peers used for eager push and digests. Seeded by the core at
 *   join; joining sends NEIGHBOR(high) so the peer makes room (evicting a random member to its
 *   passive view), which keeps active views roughly symmetric and in-degrees even.
 * - Passive view: a larger reserve, refreshed by Cyclon-style shuffles with active peers.
 * - Repair: every round a short active view asks a random passive peer to become a neighbour;
 *   a peer that leaves `suspectAfterProbes` digests unanswered is dropped (the UDP analogue of
 *   HyParView's TCP failure detector).
 * - Subtree contacts: per key-tree level l, a few peers inside our own level-l subtree, so
 *   rekey parts (scoped to a subtree) can be relayed among exactly the leaves that need them.
 *   Seeded by the core; a lost contact is replaced by any authenticated sender that falls in
 *   the same subtree.
 */
import type { GossipConfig } from './config.js';
import type { PeerId } from './ids.js';
import type { GossipBody } from './messages.js';
import type { RandomSource } from './random.js';
import { H_ACTIVE_N, H_PASSIVE_N, H_SELF, type GossipStore } from './store.js';

export type SendFn = (to: PeerId, body: GossipBody<never>) => boolean;

/** Index of v in a[off, off+n), or −1. */
export function indexIn(a: Int32Array, off: number, n: number, v: number): number {
  for (let k = 0; k < n; k++) if (a[off + k] === v) return k;
  return -1;
}

/** Subtree index of `slot` at `level` in a d-ary tree (level 0 = the slot itself). */
export function subtreeOf(slot: number, arity: number, level: number): number {
  return Math.floor(slot / arity ** level);
}

export class PeerSampling {
  private readonly c: GossipConfig;
  private readonly ints: Int32Array;
  private readonly b: number;

  constructor(
    private readonly store: GossipStore<unknown>,
    index: number,
    private readonly rng: RandomSource,
    private readonly send: SendFn,
  ) {
    this.c = store.config;
    this.ints = store.ints;
    this.b = index * store.intStride;
  }

  get self(): PeerId {
    return this.ints[this.b + H_SELF]!;
  }

  get activeCount(): number {
    return this.ints[this.b + H_ACTIVE_N]!;
  }

  get passiveCount(): number {
    return this.ints[this.b + H_PASSIVE_N]!;
  }

  active(): PeerId[] {
    const o = this.b + this.store.oActive;
    return Array.from(this.ints.subarray(o, o + this.activeCount));
  }

  passive(): PeerId[] {
    const o = this.b + this.store.oPassive;
    return Array.from(this.ints.subarray(o, o + this.passiveCount));
  }

  /** Contacts at `level` (1-based: level 1 = siblings under the same parent). */
  contacts(level: number): PeerId[] {
    const out: PeerId[] = [];
    const o = this.b + this.store.oContacts + (level - 1) * this.c.contactsPerLevel;
    for (let k = 0; k < this.c.contactsPerLevel; k++) if (this.ints[o + k]! >= 0) out.push(this.ints[o + k]!);
    return out;
  }

  activeAt(k: number): PeerId {
    return this.ints[this.b + this.store.oActive + k]!;
  }

  randomActive(): PeerId {
    const n = this.activeCount;
    return n === 0 ? -1 : this.activeAt(this.rng.int(n));
  }

  isActive(p: PeerId): boolean {
    return indexIn(this.ints, this.b + this.store.oActive, this.activeCount, p) >= 0;
  }

  /** A random contact slot's peer (any level), or −1. */
  randomContact(): PeerId {
    const slots = this.store.contactSlots;
    if (slots === 0) return -1;
    const o = this.b + this.store.oContacts;
    const start = this.rng.int(slots);
    for (let k = 0; k < slots; k++) {
      const p = this.ints[o + ((start + k) % slots)]!;
      if (p >= 0) return p;
    }
    return -1;
  }

  /** Calls fn for every distinct known peer (active, then contacts) inside [start, end). */
  forEachInScope(start: number, end: number, fn: (p: PeerId) => void): void {
    const ints = this.ints;
    const oa = this.b + this.store.oActive;
    for (let k = 0; k < this.activeCount; k++) {
      const p = ints[oa + k]!;
      if (p >= start && p < end) fn(p);
    }
    const oc = this.b + this.store.oContacts;
    for (let k = 0; k < this.store.contactSlots; k++) {
      const p = ints[oc + k]!;
      if (p >= start && p < end && indexIn(ints, oa, this.activeCount, p) < 0 && indexIn(ints, oc, k, p) < 0)
        fn(p);
    }
  }

  // ─── seeding (from the core at join) ────────────────────────────────────────────────────

  /** Installs the core's seed and announces us to the active peers. */
  seed(
    active: readonly PeerId[],
    passive: readonly PeerId[],
    contacts: readonly (readonly PeerId[])[],
  ): void {
    for (const p of passive) this.addPassive(p);
    for (let l = 0; l < contacts.length && l < this.c.levels; l++) {
      for (const p of contacts[l]!) this.offerContact(p, l + 1);
    }
    for (const p of active) {
      if (this.activeCount >= this.c.activeSize) break;
      if (this.addActive(p)) this.send(p, { kind: 'neighbor', high: true });
    }
  }

  /** Installs a seed without messages (a simulation building a settled overlay at t = 0). */
  seedQuiet(
    active: readonly PeerId[],
    passive: readonly PeerId[],
    contacts: readonly (readonly PeerId[])[],
  ): void {
    for (const p of passive) this.addPassive(p);
    for (let l = 0; l < contacts.length && l < this.c.levels; l++) {
      for (const p of contacts[l]!) this.offerContact(p, l + 1);
    }
    for (const p of active) this.addActive(p);
  }

  // ─── view operations ────────────────────────────────────────────────────────────────────

  addActive(p: PeerId): boolean {
    const ints = this.ints;
    const n = this.activeCount;
    const oa = this.b + this.store.oActive;
    if (p < 0 || p === this.self || indexIn(ints, oa, n, p) >= 0 || n >= this.c.activeSize) return false;
    ints[oa + n] = p;
    ints[this.b + this.store.oMiss + n] = 0;
    ints[this.b + H_ACTIVE_N] = n + 1;
    this.removePassive(p);
    return true;
  }

  /** Removes p from the active view (to the passive view); true if it was there. */
  removeActive(p: PeerId, toPassive = true): boolean {
    const ints = this.ints;
    const n = this.activeCount;
    const oa = this.b + this.store.oActive;
    const k = indexIn(ints, oa, n, p);
    if (k < 0) return false;
    const om = this.b + this.store.oMiss;
    ints[oa + k] = ints[oa + n - 1]!;
    ints[om + k] = ints[om + n - 1]!;
    ints[oa + n - 1] = -1;
    ints[this.b + H_ACTIVE_N] = n - 1;
    if (toPassive) this.addPassive(p);
    return true;
  }

  addPassive(p: PeerId): void {
    const ints = this.ints;
    const op = this.b + this.store.oPassive;
    const n = this.passiveCount;
    if (this.c.passiveSize === 0 || p < 0 || p === this.self) return;
    if (indexIn(ints, op, n, p) >= 0 || this.isActive(p)) return;
    if (n < this.c.passiveSize) {
      ints[op + n] = p;
      ints[this.b + H_PASSIVE_N] = n + 1;
    } else {
      ints[op + this.rng.int(n)] = p;
    }
  }

  removePassive(p: PeerId): void {
    const ints = this.ints;
    const op = this.b + this.store.oPassive;
    const n = this.passiveCount;
    const k = indexIn(ints, op, n, p);
    if (k < 0) return;
    ints[op + k] = ints[op + n - 1]!;
    ints[op + n - 1] = -1;
    ints[this.b + H_PASSIVE_N] = n - 1;
  }

  /** Drops p from every view (active, passive, subtree contacts), without telling it. */
  forget(p: PeerId): void {
    this.removeActive(p, false);
    this.removePassive(p);
    const oc = this.b + this.store.oContacts;
    for (let s = 0; s < this.store.contactSlots; s++) {
      if (this.ints[oc + s] === p) {
        this.ints[oc + s] = -1;
        this.ints[this.b + this.store.oContactMiss + s] = 0;
      }
    }
  }

  /** Takes p as a contact at `level` if it lies in our level subtree and a slot is free. */
  offerContact(p: PeerId, level: number): boolean {
    if (p < 0 || p === this.self || level < 1 || level > this.c.levels) return false;
    if (subtreeOf(p, this.c.arity, level) !== subtreeOf(this.self, this.c.arity, level)) return false;
    const o = this.b + this.store.oContacts + (level - 1) * this.c.contactsPerLevel;
    if (indexIn(this.ints, o, this.c.contactsPerLevel, p) >= 0) return false;
    const free = indexIn(this.ints, o, this.c.contactsPerLevel, -1);
    if (free < 0) return false;
    this.ints[o + free] = p;
    this.ints[this.b + this.store.oContactMiss + (o - this.b - this.store.oContacts) + free] = 0;
    return true;
  }

  /** Opportunistic contact repair: an authenticated sender fills a free slot of the lowest level it fits. */
  noteSender(p: PeerId): void {
    if (this.store.contactSlots === 0) return;
    // Lowest level whose subtree holds both: divide both slots by d until they meet
    // (integer steps; this runs on every received message).
    const d = this.c.arity;
    let x = p;
    let y = this.self;
    for (let l = 1; l <= this.c.levels; l++) {
      x = (x - (x % d)) / d;
      y = (y - (y % d)) / d;
      if (x === y) {
        this.offerContact(p, l);
        return;
      }
    }
  }

  // ─── liveness (probes = digests that expect an answer) ──────────────────────────────────

  /** p answered: clear its miss counters. */
  heard(p: PeerId): void {
    const ints = this.ints;
    const k = indexIn(ints, this.b + this.store.oActive, this.activeCount, p);
    if (k >= 0) ints[this.b + this.store.oMiss + k] = 0;
    const oc = this.b + this.store.oContacts;
    for (let s = 0; s < this.store.contactSlots; s++) {
      if (ints[oc + s] === p) ints[this.b + this.store.oContactMiss + s] = 0;
    }
  }

  /** p left a probe unanswered: count it, and drop p where it reached the limit. */
  missed(p: PeerId): void {
    const ints = this.ints;
    const limit = this.c.suspectAfterProbes;
    const k = indexIn(ints, this.b + this.store.oActive, this.activeCount, p);
    if (k >= 0 && ++ints[this.b + this.store.oMiss + k]! >= limit) {
      this.removeActive(p, false);
      this.removePassive(p);
    }
    const oc = this.b + this.store.oContacts;
    const om = this.b + this.store.oContactMiss;
    for (let s = 0; s < this.store.contactSlots; s++) {
      if (ints[oc + s] === p && ++ints[om + s]! >= limit) {
        ints[oc + s] = -1;
        ints[om + s] = 0;
      }
    }
  }

  // ─── round work and messages ────────────────────────────────────────────────────────────

  /** Once per round: repair a short active view, and shuffle periodically. */
  tick(round: number): void {
    if (this.activeCount < this.c.activeSize && this.passiveCount > 0) {
      const op = this.b + this.store.oPassive;
      const p = this.ints[op + this.rng.int(this.passiveCount)]!;
      this.removePassive(p);
      this.send(p, { kind: 'neighbor', high: this.activeCount === 0 });
    }
    if (round % this.c.shuffleEveryRounds === 0 && this.activeCount > 0) {
      this.send(this.randomActive(), { kind: 'shuffle', peers: this.sample(this.c.shuffleLength, true) });
    }
  }

  onNeighbor(from: PeerId, high: boolean): void {
    if (this.isActive(from)) {
      this.send(from, { kind: 'neighborReply', accept: true });
      return;
    }
    if (this.activeCount >= this.c.activeSize && high) {
      const victim = this.randomActive();
      this.removeActive(victim);
      this.send(victim, { kind: 'disconnect' });
    }
    const accept = this.addActive(from);
    if (!accept) this.addPassive(from);
    this.send(from, { kind: 'neighborReply', accept });
  }

  onNeighborReply(from: PeerId, accept: boolean): void {
    if (accept) {
      if (!this.addActive(from) && !this.isActive(from)) this.send(from, { kind: 'disconnect' });
    } else this.addPassive(from);
  }

  onDisconnect(from: PeerId): void {
    this.removeActive(from);
  }

  onShuffle(from: PeerId, peers: readonly PeerId[]): void {
    this.send(from, { kind: 'shuffleReply', peers: this.sample(peers.length, false) });
    for (const p of peers) this.addPassive(p);
  }

  onShuffleReply(peers: readonly PeerId[]): void {
    for (const p of peers) this.addPassive(p);
  }

  /** Up to n distinct random peers from the passive view (plus ourselves if `withSelf`). */
  private sample(n: number, withSelf: boolean): PeerId[] {
    const out: PeerId[] = withSelf ? [this.self] : [];
    const op = this.b + this.store.oPassive;
    const np = this.passiveCount;
    for (let tries = 0; out.length < n && tries < 2 * n && np > 0; tries++) {
      const p = this.ints[op + this.rng.int(np)]!;
      if (!out.includes(p)) out.push(p);
    }
    return out;
  }
}
