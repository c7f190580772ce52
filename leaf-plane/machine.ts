/**
 * The replicated leaf state machine: the registry of admitted leaves, the LKH leaf key tree and
 * the revocation set, driven only by commands in total order (commands.ts).
 *
 * Determinism: `apply` reads nothing but its command and the current state — no clock, no
 * randomness, no iteration over unordered collections that could differ between replicas (the
 * only such orders are the command order and explicit sorts). Key material comes from keytree's
 * `derivedKeySource` keyed by a secret the core group supplies (`setKeySecret`): the core
 * derives it from the shared core key (see `leafTreeSecret`) and replaces it whenever the core
 * key changes, at the commit point of the core rekey, which is one position in the total order
 * on every replica. So equal command sequences give byte-identical trees, rekey messages and
 * welcomes on every replica, replication ships commands only, and any replica can emit a rekey.
 * Holding the secret lets one derive every tree key made under it — exactly what a core server
 * holds anyway. A new secret takes effect at the next cut.
 *
 * Batches: admissions, departures, lease expiries and revocations accumulate as pending changes;
 * `cutBatch(epoch, now)` — ordered by the coordinator every batch interval (default 100 ms) —
 * turns them into ONE keytree batch and one epoch. A revocation with `immediate` cuts at once.
 * A cut whose epoch is not the next one (a duplicate from a coordinator fail-over) or with
 * nothing pending changes nothing.
 *
 * Post-compromise recovery: `refreshLeafKeys` queues new own keys for linked leaves (made from
 * their TLS sessions, keytree/leaf-key-refresh.ts); the next cut turns each into a `rekey-leaf`
 * op, which refreshes that leaf's whole path. `revokeCore` starts a full refresh: every admitted
 * leaf is marked exposed (its own key was readable by the revoked server), refreshes queued before
 * it are dropped (the revoked server may have seen them), and at the first cut at or after the
 * deadline every leaf still exposed is evicted ('key-exposed'). The last refresh under a node
 * replaces that node after every leaf below it holds a fresh key, so once no leaf is exposed no
 * tree key is derivable from what the revoked server held (test/keytree/leaf-key-refresh.test.ts).
 * The server orders `revokeCore` only in a view without the revoked server, whose core key (and so
 * the leaf tree's secret) that server never had.
 *
 * Primary component: only a primary view may mutate. A replica told it is not primary refuses
 * every command (`NotPrimaryError`) and keeps serving its current keys and welcomes read-only;
 * it catches up by state transfer (`snapshot`/`restore`) when the partition heals.
 */
import type { CipherSuite } from '../crypto/index.js';
import {
  LeafKeyTree,
  derivedKeySource,
  encodeHeader,
  signedBytes,
  type BatchResult,
  type TreeOp,
  type Welcome,
} from '../keytree/index.js';
import type { LeafCommand } from './commands.js';
import { LeaseBook } from './lease-book.js';
import { decodeLeafState, encodeLeafState } from './snapshot.js';
import {
  MAX_LEAVES_CAP,
  MAX_CORE_REVOKED,
  type DepartureReason,
  type LeafEntry,
  type LeafStateParts,
  type PendingDeparture,
} from './types.js';

export const DEFAULT_LEASE_MS = 30_000;
export const DEFAULT_MAX_LEAVES = 1 << 20;
export const DEFAULT_MAX_REVOKED = 1 << 16;
export const DEFAULT_MAX_JOINS_PER_BATCH = 1024;
/** Own-key refreshes one cut takes (see `maxRekeysPerBatch`). */
export const DEFAULT_MAX_REKEYS_PER_BATCH = 4096;

export interface LeafStateOptions {
  readonly suite: CipherSuite;
  /** Leaf group id bound into every rekey header and welcome (≤ 64 bytes). */
  readonly group: Uint8Array;
  /** Key-derivation secret (≥ 32 bytes) and its generation; see `setKeySecret`. */
  readonly secret: Uint8Array;
  readonly secretGeneration?: number;
  readonly arity?: number;
  readonly leaseMs?: number;
  readonly maxLeaves?: number;
  readonly maxRevoked?: number;
  /** Run the O(n) invariant check after every cut (tests and simulation). Cheap checks always run. */
  readonly checkInvariants?: boolean;
  /**
   * Admissions one cut takes (default 1024); the rest wait, in order, for the next cuts. Bounds
   * the work and the rekey size of a batch (a mass reconnect must not stall the server for
   * seconds). Departures are never deferred: they are what forward secrecy waits on.
   */
  readonly maxJoinsPerBatch?: number;
  /**
   * Own-key refreshes one cut takes (default 4096), lowest slots first; the rest wait for the
   * next cuts. Bounds a full refresh's batches like `maxJoinsPerBatch` bounds a mass reconnect:
   * at 10^6 leaves an unbounded cut of every pending refresh held the main thread for seconds.
   */
  readonly maxRekeysPerBatch?: number;
}

export interface AdmittedLeaf {
  readonly name: string;
  readonly memberId: number;
  readonly slot: number;
  readonly admittedEpoch: number;
  /** Its certificate's serial (the audit line names it). */
  readonly serial: string;
  /** Path keys for the new epoch: send over the leaf's TLS session only. */
  readonly welcome: Welcome;
}

export interface BatchOutput {
  readonly epoch: number;
  /** The keytree batch: rekey message, its encoding, the split into parts, moves. */
  readonly rekey: BatchResult;
  /** keytree encodeHeader of the rekey header. */
  readonly headerBytes: Uint8Array;
  /** What a core server signs (Ed25519) before sending the rekey out. */
  readonly toSign: Uint8Array;
  readonly admitted: readonly AdmittedLeaf[];
  readonly evicted: readonly PendingDeparture[];
  /** Leaves whose own key this batch replaced (refreshLeafKeys). */
  readonly rekeyed: readonly string[];
}

export type Refusal = { readonly name: string; readonly reason: 'revoked' | 'full' | 'unknown' };

export interface ApplyResult {
  /** A new epoch, when the command cut a batch. */
  readonly batch?: BatchOutput;
  /** Why an admit, leave or revoke was not taken (the registry is unchanged by it). */
  readonly refused?: Refusal;
}

export class NotPrimaryError extends Error {
  override readonly name = 'NotPrimaryError';
}

export class LeafStateMachine {
  readonly suite: CipherSuite;
  readonly leaseMs: number;
  readonly maxLeaves: number;
  readonly maxRevoked: number;
  readonly maxJoinsPerBatch: number;
  readonly maxRekeysPerBatch: number;
  private primary = false;
  private readonly deepChecks: boolean;
  private s: LeafStateParts;
  private readonly bySlot = new Map<number, string>();
  private readonly bySerial = new Map<string, string>();
  /** Entries with `exposed` set (kept with every change; recomputed on restore). */
  private exposedCount = 0;

  constructor(readonly opts: LeafStateOptions) {
    this.suite = opts.suite;
    this.leaseMs = opts.leaseMs ?? DEFAULT_LEASE_MS;
    this.maxLeaves = opts.maxLeaves ?? DEFAULT_MAX_LEAVES;
    this.maxRevoked = opts.maxRevoked ?? DEFAULT_MAX_REVOKED;
    this.maxJoinsPerBatch = opts.maxJoinsPerBatch ?? DEFAULT_MAX_JOINS_PER_BATCH;
    if (!(Number.isInteger(this.maxJoinsPerBatch) && this.maxJoinsPerBatch >= 1))
      throw new RangeError('maxJoinsPerBatch must be ≥ 1');
    this.maxRekeysPerBatch = opts.maxRekeysPerBatch ?? DEFAULT_MAX_REKEYS_PER_BATCH;
    if (!(Number.isInteger(this.maxRekeysPerBatch) && this.maxRekeysPerBatch >= 1))
      throw new RangeError('maxRekeysPerBatch must be ≥ 1');
    this.deepChecks = opts.checkInvariants ?? false;
    if (!(this.leaseMs > 0 && Number.isSafeInteger(this.leaseMs)))
      throw new RangeError('leaseMs must be > 0');
    if (!(this.maxLeaves >= 1 && this.maxLeaves <= MAX_LEAVES_CAP))
      throw new RangeError('maxLeaves out of range');
    const tree = LeafKeyTree.create(this.treeOptions(opts.secret), 0);
    this.s = {
      tree,
      now: 0,
      nextMemberId: 1,
      secret: opts.secret.slice(),
      secretGeneration: opts.secretGeneration ?? 0,
      entries: new Map(),
      leases: new LeaseBook(),
      pendingJoins: [],
      pendingDepartures: [],
      revoked: new Set(),
      pendingRekeys: new Map(),
      fullRefresh: undefined,
      coreRevoked: [],
    };
  }

  /** Tree options for a given secret (the snapshot codec rebuilds the tree with these). */
  treeOptions(secret: Uint8Array): {
    suite: CipherSuite;
    group: Uint8Array;
    arity: number;
    keySource: ReturnType<typeof derivedKeySource>;
  } {
    return {
      suite: this.suite,
      group: this.opts.group,
      arity: this.opts.arity ?? 4,
      keySource: derivedKeySource(this.suite, secret),
    };
  }

  // ── read-only views (served in any component) ───────────────────────────────────────────

  get isPrimary(): boolean {
    return this.primary;
  }

  get epoch(): number {
    return this.s.tree.epoch;
  }

  get members(): number {
    return this.s.tree.members;
  }

  get now(): number {
    return this.s.now;
  }

  get secretGeneration(): number {
    return this.s.secretGeneration;
  }

  get pendingChanges(): number {
    return this.s.pendingJoins.length + this.s.pendingDepartures.length + this.s.pendingRekeys.size;
  }

  /** Admitted leaves whose own key a revoked core server may know (see Post-compromise recovery). */
  get exposedLeaves(): number {
    return this.exposedCount;
  }

  /** The full refresh in progress, if any. */
  get fullRefresh(): Readonly<{ deadline: number; epoch: number }> | undefined {
    return this.s.fullRefresh;
  }

  groupKey(): Uint8Array | undefined {
    return this.s.tree.groupKey();
  }

  entry(name: string): Readonly<LeafEntry> | undefined {
    return this.s.entries.get(name);
  }

  nameAt(slot: number): string | undefined {
    return this.bySlot.get(slot);
  }

  isRevoked(serial: string): boolean {
    return this.s.revoked.has(serial);
  }

  /** Whether a registered leaf (admitted or pending) holds a certificate of this serial. */
  hasSerial(serial: string): boolean {
    return this.bySerial.has(serial);
  }

  leaseUntil(name: string): number | undefined {
    return this.s.leases.get(name);
  }

  /** Current path keys of an admitted leaf (for a resumed session); undefined while pending. */
  welcomeFor(name: string): Welcome | undefined {
    const e = this.s.entries.get(name);
    return e === undefined || e.slot < 0 ? undefined : this.s.tree.welcome(e.slot);
  }

  /** Set by the core group on every view installation. */
  setPrimary(primary: boolean): void {
    this.primary = primary;
  }

  // ── commands ─────────────────────────────────────────────────────────────────────────────

  apply(cmd: LeafCommand): ApplyResult {
    if (!this.primary) throw new NotPrimaryError(`not a primary replica: ${cmd.kind} refused`);
    switch (cmd.kind) {
      case 'admit':
        return this.admit(cmd.value.name, cmd.value.serial, cmd.value.fingerprint, cmd.value.now);
      case 'leave':
        return this.leave(cmd.value.name);
      case 'revoke':
        return this.revoke(cmd.value.target, cmd.value.immediate);
      case 'renewLeases':
        for (const r of cmd.value.renewals) {
          const until = this.s.leases.get(r.name);
          if (until !== undefined && r.until > until) this.s.leases.set(r.name, r.until);
        }
        return {};
      case 'tick':
        this.advance(cmd.value.now);
        this.expireLeases();
        return {};
      case 'cutBatch':
        if (cmd.value.epoch !== this.epoch + 1) return {}; // duplicate or stale cut
        this.advance(cmd.value.now);
        return this.cut();
      case 'setKeySecret':
        if (cmd.value.generation <= this.s.secretGeneration) return {}; // late or repeated rotation
        this.s.secret.fill(0);
        this.s.secret = cmd.value.secret.slice();
        this.s.secretGeneration = cmd.value.generation;
        this.s.tree.setKeySource(derivedKeySource(this.suite, this.s.secret));
        return {};
      case 'refreshLeafKeys':
        for (const r of cmd.value.refreshes) {
          const e = this.s.entries.get(r.name);
          // Only for the admission the leaf's server saw: a re-admission has another key.
          if (e === undefined || e.slot < 0 || e.admittedEpoch !== r.admittedEpoch) continue;
          this.s.pendingRekeys.get(r.name)?.fill(0);
          this.s.pendingRekeys.set(r.name, r.key.slice());
        }
        return {};
      case 'revokeCore':
        this.advance(cmd.value.now);
        return this.revokeCore(cmd.value.serial, cmd.value.windowMs);
    }
  }

  private revokeCore(serial: string, windowMs: number): ApplyResult {
    if (this.s.coreRevoked.includes(serial)) return {}; // ordered by several servers
    this.s.coreRevoked.push(serial);
    if (this.s.coreRevoked.length > MAX_CORE_REVOKED) this.s.coreRevoked.shift();
    // The revoked server was in the core when these were ordered: it may know them.
    for (const key of this.s.pendingRekeys.values()) key.fill(0);
    this.s.pendingRekeys.clear();
    for (const e of this.s.entries.values()) {
      if (e.slot < 0 || e.exposed) continue;
      e.exposed = true;
      this.exposedCount++;
    }
    // A second revocation during a refresh restarts the window: refreshes done so far were
    // readable by that server too.
    this.s.fullRefresh =
      this.exposedCount > 0 ? { deadline: this.s.now + windowMs, epoch: this.s.tree.epoch } : undefined;
    return {};
  }

  private advance(now: number): void {
    // The replicated clock never runs backwards, whatever server ordered the command.
    if (now > this.s.now) this.s.now = now;
  }

  private admit(name: string, serial: string, fingerprint: Uint8Array, now: number): ApplyResult {
    this.advance(now);
    if (this.s.revoked.has(serial)) return { refused: { name, reason: 'revoked' } };
    const existing = this.s.entries.get(name);
    const occupied = this.s.entries.size - (existing === undefined ? 0 : 1);
    if (occupied >= this.maxLeaves) return { refused: { name, reason: 'full' } };
    // A new admission of a present name (a reconnect with a new session or certificate)
    // replaces the old one: its slot leaves in the same batch the new one joins.
    if (existing !== undefined) this.drop(existing, 'replaced');
    const entry: LeafEntry = {
      name,
      serial,
      fingerprint: fingerprint.slice(),
      memberId: this.s.nextMemberId++,
      slot: -1,
      admittedEpoch: -1,
      exposed: false,
    };
    this.s.entries.set(name, entry);
    this.bySerial.set(serial, name);
    this.s.leases.set(name, this.s.now + this.leaseMs);
    this.s.pendingJoins.push(name);
    return {};
  }

  private leave(name: string): ApplyResult {
    const e = this.s.entries.get(name);
    if (e === undefined) return { refused: { name, reason: 'unknown' } };
    this.drop(e, 'left');
    return {};
  }

  private revoke(
    target: { kind: 'serial'; value: string } | { kind: 'name'; value: string },
    immediate: boolean,
  ): ApplyResult {
    const name = target.kind === 'name' ? target.value : this.bySerial.get(target.value);
    const e = name === undefined ? undefined : this.s.entries.get(name);
    const serial = target.kind === 'serial' ? target.value : e?.serial;
    if (serial !== undefined) this.addRevoked(serial);
    if (e === undefined && target.kind === 'name')
      return { refused: { name: target.value, reason: 'unknown' } };
    // The certificate may already be leaving at the next cut under an earlier admission (its
    // lease lapsed, a new session replaced it): the revocation still takes that key at once, and
    // the batch says why it went.
    let leaving = false;
    if (serial !== undefined && serial !== '')
      this.s.pendingDepartures = this.s.pendingDepartures.map((d) => {
        if (d.serial !== serial) return d;
        leaving = true;
        return { ...d, reason: 'revoked' };
      });
    if (e !== undefined) this.drop(e, 'revoked');
    else if (!leaving) return {};
    return immediate ? this.cut() : {};
  }

  private addRevoked(serial: string): void {
    if (this.s.revoked.has(serial)) return;
    // Bounded: the oldest revocation is forgotten first. The TLS layer refuses revoked
    // certificates from the CRL too, so this set is a second line, not the only one.
    if (this.s.revoked.size >= this.maxRevoked) {
      const oldest = this.s.revoked.values().next().value as string;
      this.s.revoked.delete(oldest);
    }
    this.s.revoked.add(serial);
  }

  /** Removes an entry from the registry now; an admitted one leaves the tree at the next cut. */
  private drop(e: LeafEntry, reason: DepartureReason): void {
    this.s.entries.delete(e.name);
    this.s.pendingRekeys.get(e.name)?.fill(0);
    this.s.pendingRekeys.delete(e.name);
    if (e.exposed) {
      e.exposed = false;
      this.exposedCount--;
    }
    this.s.leases.remove(e.name);
    if (this.bySerial.get(e.serial) === e.name) this.bySerial.delete(e.serial);
    if (e.slot < 0) {
      const i = this.s.pendingJoins.indexOf(e.name);
      assert(i >= 0, () => `pending entry ${e.name} missing from the join queue`);
      this.s.pendingJoins.splice(i, 1);
      return;
    }
    this.s.pendingDepartures.push({
      name: e.name,
      memberId: e.memberId,
      slot: e.slot,
      reason,
      serial: e.serial,
    });
  }

  private expireLeases(): void {
    for (const name of this.s.leases.expired(this.s.now))
      this.drop(this.s.entries.get(name)!, 'lease-expired');
  }

  /** One batch: pending changes → one keytree batch → one epoch. */
  private cut(): ApplyResult {
    this.expireLeases();
    const full = this.s.fullRefresh;
    if (full !== undefined && this.s.now >= full.deadline) {
      // The window is over: whoever was not refreshed leaves (it re-joins with a fresh key).
      for (const e of [...this.s.entries.values()]) if (e.exposed) this.drop(e, 'key-exposed');
      this.s.fullRefresh = undefined;
    }
    const joins = this.s.pendingJoins.slice(0, this.maxJoinsPerBatch);
    const deferred = this.s.pendingJoins.slice(joins.length);
    const departures = [...this.s.pendingDepartures].sort((a, b) => a.slot - b.slot);
    // drop() removed the refreshes of departing leaves: every one left is of an admitted leaf.
    // Lowest slots first, whatever the map's order (a restored replica's differs).
    const rekeys = [...this.s.pendingRekeys]
      .map(([name, key]) => ({ e: this.s.entries.get(name)!, key }))
      .sort((a, b) => a.e.slot - b.e.slot)
      .slice(0, this.maxRekeysPerBatch);
    if (joins.length === 0 && departures.length === 0 && rekeys.length === 0) return {};
    const ops: TreeOp[] = departures.map((d) => ({
      kind: d.reason === 'left' ? 'leave' : 'evict',
      slot: d.slot,
    }));
    for (const name of joins) ops.push({ kind: 'join', ref: this.s.entries.get(name)!.memberId });
    for (const { e, key } of rekeys) {
      assert(e.slot >= 0, () => `refresh queued for ${e.name}, which holds no slot`);
      ops.push({ kind: 'rekey-leaf', slot: e.slot, key });
    }
    const rekey = this.s.tree.applyBatch(ops);
    for (const { e, key } of rekeys) {
      key.fill(0);
      this.s.pendingRekeys.delete(e.name);
      if (e.exposed) {
        e.exposed = false;
        this.exposedCount--;
      }
    }
    if (this.s.fullRefresh !== undefined && this.exposedCount === 0) this.s.fullRefresh = undefined;

    for (const d of departures) {
      assert(this.bySlot.get(d.slot) === d.name, () => `departed slot ${d.slot} was not ${d.name}'s`);
      this.bySlot.delete(d.slot);
    }
    const movedNames = rekey.moves.map((m) => this.bySlot.get(m.from));
    rekey.moves.forEach((m, i) => {
      const name = movedNames[i];
      assert(name !== undefined, () => `moved slot ${m.from} has no member`);
      this.bySlot.delete(m.from);
    });
    rekey.moves.forEach((m, i) => {
      const name = movedNames[i]!;
      this.s.entries.get(name)!.slot = m.to;
      this.bySlot.set(m.to, name);
    });
    const byMemberId = new Map<number, string>();
    for (const name of joins) byMemberId.set(this.s.entries.get(name)!.memberId, name);
    const admitted: AdmittedLeaf[] = [];
    for (const j of rekey.joined) {
      const name = byMemberId.get(j.ref!);
      assert(name !== undefined, () => `joined slot ${j.slot} has an unknown ref`);
      assert(!this.bySlot.has(j.slot), () => `joined slot ${j.slot} already taken`);
      const e = this.s.entries.get(name)!;
      e.slot = j.slot;
      e.admittedEpoch = rekey.epoch;
      this.bySlot.set(j.slot, name);
      admitted.push({
        name,
        memberId: e.memberId,
        slot: j.slot,
        admittedEpoch: rekey.epoch,
        serial: e.serial,
        welcome: this.s.tree.welcome(j.slot),
      });
    }
    assert(admitted.length === joins.length, 'every pending join got a slot');
    this.s.pendingJoins = deferred;
    this.s.pendingDepartures = [];
    assert(this.s.tree.members === this.bySlot.size, 'tree members equal admitted leaves');
    assert(
      this.s.entries.size === this.bySlot.size + deferred.length,
      'only deferred admissions stay pending after a cut',
    );
    if (this.deepChecks) this.checkInvariants();
    const header = rekey.message.header;
    return {
      batch: {
        epoch: rekey.epoch,
        rekey,
        headerBytes: encodeHeader(header),
        toSign: signedBytes(header),
        admitted,
        evicted: departures,
        rekeyed: rekeys.map(({ e }) => e.name),
      },
    };
  }

  // ── invariants and state transfer ────────────────────────────────────────────────────────

  /** Full consistency check of registry against tree (O(n)). Throws on any violation. */
  checkInvariants(): void {
    const s = this.s;
    s.tree.checkInvariants();
    let active = 0;
    const queued = new Set(s.pendingJoins);
    assert(queued.size === s.pendingJoins.length, 'a join is queued twice');
    for (const [name, e] of s.entries) {
      assert(e.name === name, () => `entry keyed ${name} is named ${e.name}`);
      assert(s.leases.get(name) !== undefined, () => `${name} has no lease`);
      assert(e.memberId < s.nextMemberId, () => `${name} member id from the future`);
      if (e.slot >= 0) {
        active++;
        assert(s.tree.isOccupied(e.slot), () => `${name}'s slot ${e.slot} is empty in the tree`);
        assert(this.bySlot.get(e.slot) === name, () => `slot index disagrees for ${name}`);
        assert(
          e.admittedEpoch >= 0 && e.admittedEpoch <= s.tree.epoch,
          () => `${name} admitted in a bad epoch`,
        );
      } else {
        assert(queued.has(name), () => `pending ${name} not queued`);
      }
    }
    const departing = new Set(s.pendingDepartures.map((d) => d.slot));
    assert(departing.size === s.pendingDepartures.length, 'a slot departs twice');
    for (const d of s.pendingDepartures)
      assert(s.tree.isOccupied(d.slot), () => `departing slot ${d.slot} is empty`);
    assert(active + departing.size === s.tree.members, 'tree members equal active plus departing leaves');
    assert(s.leases.size === s.entries.size, 'one lease per entry');
    let exposed = 0;
    for (const e of s.entries.values()) if (e.exposed) exposed++;
    assert(exposed === this.exposedCount, 'exposed count matches the registry');
    for (const name of s.pendingRekeys.keys())
      assert((s.entries.get(name)?.slot ?? -1) >= 0, () => `refresh queued for ${name}, not admitted`);
    assert(s.fullRefresh === undefined || exposed > 0, 'a full refresh waits on exposed leaves');
  }

  /** Internal state for the snapshot codec. */
  parts(): Readonly<LeafStateParts> {
    return this.s;
  }

  /**
   * Replaces the whole state (snapshot restore) and rebuilds the derived indexes. If the new
   * state fails the invariant check, the old state stays and the error is thrown.
   */
  replaceParts(parts: LeafStateParts): void {
    const old = { s: this.s, bySlot: new Map(this.bySlot), bySerial: new Map(this.bySerial) };
    this.s = parts;
    this.rebuildIndexes();
    try {
      this.checkInvariants();
    } catch (e) {
      this.s = old.s;
      this.rebuildIndexes();
      throw e;
    }
    if (old.s.secret !== parts.secret) old.s.secret.fill(0);
  }

  private rebuildIndexes(): void {
    this.bySlot.clear();
    this.bySerial.clear();
    this.exposedCount = 0;
    for (const [name, e] of this.s.entries) {
      if (e.exposed) this.exposedCount++;
      if (e.slot >= 0) {
        assert(!this.bySlot.has(e.slot), () => `slot ${e.slot} held twice`);
        this.bySlot.set(e.slot, name);
      }
      this.bySerial.set(e.serial, name);
    }
    for (const d of this.s.pendingDepartures) {
      assert(!this.bySlot.has(d.slot), () => `departing slot ${d.slot} is also held`);
      this.bySlot.set(d.slot, d.name);
    }
  }

  /** The whole replicated state as bytes (snapshot.ts): confidential, bounded, versioned. */
  snapshot(): Uint8Array {
    return encodeLeafState(this.s);
  }

  /** Replaces the state with a snapshot's (state transfer); DecodeError on bad bytes, state unchanged. */
  restore(bytes: Uint8Array): void {
    this.replaceParts(decodeLeafState(bytes, (secret) => this.treeOptions(secret)));
  }
}

/** Invariant check that stays on in production: a violation means replicas may diverge. */
export function assert(cond: boolean, what: string | (() => string)): asserts cond {
  if (!cond) throw new Error(`leaf-state invariant violated: ${typeof what === 'string' ? what : what()}`);
}

const SECRET_INFO = new TextEncoder().encode('keyglass leaf tree secret v1');

/**
 * The key-derivation secret of the leaf tree for core key epoch `coreEpoch`:
 * HKDF-SHA256(ikm = core key, salt = ∅, info = label ‖ u64be(coreEpoch)). Every core member holds
 * the core key, so every replica computes the same secret and feeds it as
 * `setKeySecret(coreEpoch, secret)` at the commit point of the core rekey.
 */
export function leafTreeSecret(suite: CipherSuite, coreKey: Uint8Array, coreEpoch: number): Uint8Array {
  const info = new Uint8Array(SECRET_INFO.length + 8);
  info.set(SECRET_INFO);
  new DataView(info.buffer).setBigUint64(SECRET_INFO.length, BigInt(coreEpoch));
  return suite.hkdf(coreKey, new Uint8Array(0), info, 32);
}
