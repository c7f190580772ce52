/**
 * The host-side address book of the real gossip tier: PeerId (a leaf's key-tree slot) → UDP
 * endpoint ("host:port", net/udp's address form).
 *
 * Sources: `seed` — a list the core server sent over the leaf's TLS link; `direct` — the source
 * address of a datagram whose MAC verified; `hint` — an address hint frame whose MAC verified (a
 * member vouches for a third peer's endpoint). The MAC proves only that the sender holds the
 * group key, which every member does: a `direct` or `hint` address is a member's claim, not the
 * peer's. So a claim fills only what we do not know (or a hint), a seed from our server
 * replaces anything, and an endpoint held from a seed or from earlier traffic is replaced by
 * traffic only through `AddressClaims`: the address we hold
 * must stop answering and the new one must answer (NAT rebinding), so a member cannot redirect
 * traffic meant for a peer that is still where we reach it.
 *
 * Bounded: at most `capacity` entries; inserting past it forgets the least recently used one
 * (Map insertion order, refreshed on use). A slot that moves (compaction) is simply learned
 * again under its new id; the stale id ages out.
 */
import type { PeerId } from './ids.js';

export type AddressSource = 'direct' | 'seed' | 'hint';
/** Above `hint`, an entry is kept against a member's claim (see `observe`). */
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

  /** Where the address we hold for `peer` came from (diagnostics; no recency refresh). */
  sourceOf(peer: PeerId): AddressSource | undefined {
    const rank = this.entries.get(peer)?.rank;
    return rank === undefined
      ? undefined
      : rank === RANK.direct
        ? 'direct'
        : rank === RANK.seed
          ? 'seed'
          : 'hint';
  }

  /**
   * Records `endpoint` for `peer`: a seed always (our own server's word, over TLS: it also undoes
   * a member's claim on an id we had not heard of yet), a hint only where we know nothing, a
   * direct address over a seed or hint (callers learn traffic through `observe` instead).
   */
  learn(peer: PeerId, endpoint: string, source: AddressSource): void {
    const rank = RANK[source];
    const old = this.entries.get(peer);
    if (old !== undefined) {
      if (old.endpoint === endpoint && old.rank >= rank) return void this.get(peer);
      if (source !== 'seed' && old.rank > rank) return;
      if (source === 'hint') return;
    }
    this.put(peer, endpoint, rank);
  }

  /**
   * A datagram from `endpoint` verified as `peer`'s. `held`: that is where we reach it;
   * `learned`: we had nothing better (none, or a hint) and take it; `contested`: a seed or an
   * earlier direct address names another endpoint, which stays (see AddressClaims).
   */
  observe(peer: PeerId, endpoint: string): 'held' | 'learned' | 'contested' {
    const old = this.entries.get(peer);
    if (old?.endpoint === endpoint) {
      if (old.rank < RANK.direct) this.put(peer, endpoint, RANK.direct);
      else this.get(peer);
      return 'held';
    }
    if (old !== undefined && old.rank > RANK.hint) return 'contested';
    this.put(peer, endpoint, RANK.direct);
    return 'learned';
  }

  /** `peer` proved it moved to `endpoint` (AddressClaims): reach it there from now on. */
  rebind(peer: PeerId, endpoint: string): void {
    this.put(peer, endpoint, RANK.direct);
  }

  private put(peer: PeerId, endpoint: string, rank: number): void {
    this.entries.delete(peer);
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

/** Timer periods a claim check runs (answers are awaited that long; probes are sent again once). */
export const CLAIM_PERIODS = 5;
const CLAIM_RETRY_PERIOD = 2;
/** Checks running at once: a flood of claims costs at most this many × 2 probes per check. */
export const MAX_CLAIM_CHECKS = 16;

/** A probe to send: a challenge carrying `nonce` to `to`. */
export interface ProbeOut {
  readonly to: string;
  readonly nonce: Uint8Array;
}

export interface ClaimStats {
  /** Checks started: a verified datagram named a peer we reach elsewhere. */
  started: number;
  /** Claims not checked: a check for that peer was already running, or the table was full. */
  ignored: number;
  /** The address we held answered: the claim was refused (an address takeover, or a stray copy). */
  refused: number;
  /** Neither proven nor refused in time (the claimed address did not answer): nothing changed. */
  unproven: number;
  /** The held address fell silent and the claimed one answered: the peer is reached there now. */
  rebinds: number;
}

interface Check {
  readonly peer: PeerId;
  readonly held: string;
  readonly claimed: string;
  readonly heldNonce: Uint8Array;
  readonly claimedNonce: Uint8Array;
  readonly started: number;
  heldAnswered: boolean;
  claimedAnswered: boolean;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i]! ^ b[i]!;
  return d === 0;
}

/**
 * Claims that a peer now sends from another address (sans-IO: the caller passes its timer
 * period and sends the probes). A claim starts a check: a challenge with a fresh nonce to the
 * address we hold and one to the claimed address. If the held address answers, the peer is
 * still there and the claim is refused — a member that claims another's id from its own address
 * never gets that peer's traffic. If the held address stays silent for CLAIM_PERIODS and the
 * claimed one echoes its nonce (it receives there and holds the key), the peer moved (NAT
 * rebinding) and is reached at the new address. One check per peer at a time, and it runs its
 * full CLAIM_PERIODS even once refused (so a stream of claims costs two probes per check, not
 * two per datagram); at most MAX_CLAIM_CHECKS at once.
 */
export class AddressClaims {
  readonly stats: ClaimStats = { started: 0, ignored: 0, refused: 0, unproven: 0, rebinds: 0 };
  private readonly checks = new Map<PeerId, Check>();

  constructor(
    private readonly book: AddressBook,
    private readonly nonce: () => Uint8Array,
  ) {}

  get running(): number {
    return this.checks.size;
  }

  /** A datagram from `endpoint` verified as `peer`'s at timer period `period`: probes to send. */
  observe(peer: PeerId, endpoint: string, period: number): readonly ProbeOut[] {
    if (this.book.observe(peer, endpoint) !== 'contested') return [];
    const held = this.book.peek(peer)!;
    if (this.checks.has(peer) || this.checks.size >= MAX_CLAIM_CHECKS) {
      if (this.checks.get(peer)?.claimed !== endpoint) this.stats.ignored++;
      return [];
    }
    const check: Check = {
      peer,
      held,
      claimed: endpoint,
      heldNonce: this.nonce(),
      claimedNonce: this.nonce(),
      started: period,
      heldAnswered: false,
      claimedAnswered: false,
    };
    this.checks.set(peer, check);
    this.stats.started++;
    return this.probes(check);
  }

  /** An answer from `from`, by `sender`, echoing `nonce`. */
  answered(sender: PeerId, from: string, nonce: Uint8Array): void {
    const c = this.checks.get(sender);
    if (c === undefined) return;
    if (from === c.held && sameBytes(nonce, c.heldNonce)) c.heldAnswered = true;
    else if (from === c.claimed && sameBytes(nonce, c.claimedNonce)) c.claimedAnswered = true;
  }

  /** Once per timer period: settles checks that ran their course; probes to send again. */
  tick(period: number): readonly ProbeOut[] {
    let out: ProbeOut[] | undefined;
    for (const c of this.checks.values()) {
      const age = period - c.started;
      if (age === CLAIM_RETRY_PERIOD) (out ??= []).push(...this.probes(c));
      if (age < CLAIM_PERIODS) continue;
      this.checks.delete(c.peer);
      if (c.heldAnswered) this.stats.refused++;
      else if (!c.claimedAnswered) this.stats.unproven++;
      else if (this.book.peek(c.peer) === c.held) {
        this.book.rebind(c.peer, c.claimed);
        this.stats.rebinds++;
      }
    }
    return out ?? [];
  }

  private probes(c: Check): ProbeOut[] {
    const out: ProbeOut[] = [];
    if (!c.heldAnswered) out.push({ to: c.held, nonce: c.heldNonce });
    if (!c.claimedAnswered) out.push({ to: c.claimed, nonce: c.claimedNonce });
    return out;
  }
}
