/**
 * What the system simulation observes while it runs — every batch a replica applies (its epoch,
 * the group key's id, admissions and evictions), every key, welcome and eviction a leaf's
 * session reports — and the checkers that judge it (issue 19 item 4):
 *   key-agreement  every leaf welcomed on an up server of the final primary view holds that
 *                  server's epoch and group key (at the end)
 *   secrecy        no leaf held a key of an epoch at or after the batch that evicted its
 *                  admission, nor of an epoch before that admission (forward/backward secrecy,
 *                  against the keys each leaf actually reported)
 *   fork           no epoch has two different group keys, among replicas and leaves (during)
 *   durability     every admission a leaf was welcomed to, every eviction a leaf was told of and
 *                  every revocation ordered is in the final registry (at the end)
 *   revocation     a revoke ordered for an admitted leaf evicts it in the very next batch (during)
 *   adversary      what adversarial leaves must not achieve (adversary.ts, run.ts): more catch-up
 *                  replies than their request budget, the attacked server out of the primary view,
 *                  a silent victim kept past its lease by replayed renewals
 */
import { concatBytes, type CipherSuite } from '../../crypto/index.js';
import type { LeafCommand, LeafStateMachine, ApplyResult } from '../../leaf-plane/index.js';

export type SystemProperty =
  'key-agreement' | 'secrecy' | 'fork' | 'durability' | 'revocation' | 'liveness' | 'adversary' | 'exception';

export interface SystemViolation {
  readonly property: SystemProperty;
  readonly detail: string;
}

/** The id LeafSession reports for a group key: 8 bytes of SHA-256("keyglass key id v1" ‖ key), hex. */
export function groupKeyId(suite: CipherSuite, groupKey: Uint8Array): string {
  const digest = suite.sha256(concatBytes(new TextEncoder().encode('keyglass key id v1'), groupKey));
  return Array.from(digest.subarray(0, 8), (b) => b.toString(16).padStart(2, '0')).join('');
}

/** A replica's leaf state as the ledger names it (SystemLedger.stateOf). */
export interface LedgerState {
  readonly epoch: number;
  /** The id of its group key (groupKeyId), '?' when it holds none. */
  readonly keyId: string;
}

interface LeafRecord {
  /** Admissions the leaf was welcomed to (their epochs), in order. */
  readonly admissions: number[];
  /** Keys the session reported, with the admission it held then. */
  readonly keys: { epoch: number; keyId: string; admission: number }[];
  /** Evictions the session was told of, with the admission it held. */
  readonly toldEvicted: { reason: string; admission: number | undefined; serial: string }[];
}

/** Violations kept per property (a broken run repeats itself). */
const MAX_PER_PROPERTY = 5;

export class SystemLedger {
  /**
   * Every batch any replica applied, by epoch and group key id ('?' when the commit cut a later
   * batch too and the key is not known), with its evictions. A replica may apply a batch that
   * never reaches a majority (it crashed before the others delivered the cut) and later adopt
   * another replica's state: that branch was never released to a leaf, so it is no fork; the
   * lineage is what the leaves were given, and where no leaf got an epoch, the batch the next epoch
   * leaves got descends from (see `parents`); failing that, what most replicas applied.
   */
  private readonly applied = new Map<
    number,
    Map<string, { servers: Set<string>; evicted: Set<string>; revoked: Set<string> }>
  >();
  /**
   * Each applied batch (`epoch:keyId`) → the states replicas applied it on (the replica's state
   * before the commit, or the batch the same commit cut before it). A state adopted by state
   * transfer or loaded at a restart is what the next batch is applied on, so the links follow the
   * lineage across them. Seed 1463: a discarded branch's epoch 11 (two replicas, applied first)
   * tied the lineage's (two replicas, one leaving leaf evicted) and won; no leaf got either.
   */
  private readonly parents = new Map<string, Set<string>>();
  /** The group key id of every epoch a leaf reported (fork check among what was released). */
  private readonly leafKeyAt = new Map<number, { keyId: string; who: string }>();
  /** Epochs of every batch any replica applied that evicted a leaf, by leaf name (candidates for evictedIn). */
  private readonly evictedAt = new Map<string, Set<number>>();
  private readonly leaves = new Map<string, LeafRecord>();
  /** Serials the harness revoked. */
  readonly revokedSerials = new Set<string>();
  private readonly counts = new Map<SystemProperty, number>();
  readonly violations: SystemViolation[] = [];
  batchesApplied = 0;
  revokesChecked = 0;

  constructor(private readonly suite: CipherSuite) {}

  violation(property: SystemProperty, detail: string): void {
    const n = (this.counts.get(property) ?? 0) + 1;
    this.counts.set(property, n);
    if (n <= MAX_PER_PROPERTY) this.violations.push({ property, detail });
  }

  /** A replica's state as the ledger names it: its epoch and the id of its group key ('?': none). */
  stateOf(machine: LeafStateMachine): LedgerState {
    const groupKey = machine.groupKey();
    return { epoch: machine.epoch, keyId: groupKey === undefined ? '?' : groupKeyId(this.suite, groupKey) };
  }

  /**
   * The key id of `epoch` in the lineage: the one leaves got; else the one the next epoch leaves
   * got descends from (when the parent links name exactly one); else the one most replicas applied.
   */
  private lineageKeyOf(epoch: number): string | undefined {
    const leaf = this.leafKeyAt.get(epoch)?.keyId;
    if (leaf !== undefined) return leaf;
    const traced = this.tracedKeyOf(epoch);
    if (traced !== undefined) return traced;
    let best: string | undefined;
    let most = 0;
    for (const [keyId, a] of this.applied.get(epoch) ?? [])
      if (keyId !== '?' && a.servers.size > most) [best, most] = [keyId, a.servers.size];
    return best;
  }

  /** The key id of `epoch` on the parent links back from the first later epoch a leaf got, if only one. */
  private tracedKeyOf(epoch: number): string | undefined {
    let next: number | undefined;
    for (const e of this.leafKeyAt.keys()) if (e > epoch && (next === undefined || e < next)) next = e;
    if (next === undefined) return undefined;
    const anchor = `${next}:${this.leafKeyAt.get(next)!.keyId}`;
    const found = new Set<string>();
    const seen = new Set<string>([anchor]);
    const queue = [anchor];
    while (queue.length > 0)
      for (const p of this.parents.get(queue.shift()!) ?? []) {
        if (seen.has(p)) continue;
        seen.add(p);
        const [e, keyId] = p.split(':') as [string, string];
        if (Number(e) === epoch) found.add(keyId);
        else if (Number(e) > epoch) queue.push(p);
      }
    return found.size === 1 ? [...found][0] : undefined;
  }

  /** Whether the lineage's batch of `epoch` evicted `name`. */
  private evictedIn(epoch: number, name: string): boolean {
    const byKey = this.applied.get(epoch);
    if (byKey === undefined) return false;
    const keyId = this.lineageKeyOf(epoch);
    return (
      (keyId !== undefined && byKey.get(keyId)?.evicted.has(name) === true) ||
      byKey.get('?')?.evicted.has(name) === true
    );
  }

  /**
   * Replica `server` made `commands` durable and applied them (PlaneStore.commit) with `results`;
   * `revoked[i]` names the leaf admitted (in the tree) under command i's revoked serial before the
   * commit, `before` the replica's state then (stateOf). An immediate revoke cuts a batch itself:
   * the revocation rule is checked on the spot.
   */
  committed(
    server: string,
    machine: LeafStateMachine,
    commands: readonly LeafCommand[],
    results: readonly ApplyResult[],
    revoked: readonly (string | undefined)[],
    before: LedgerState,
  ): void {
    let parent = `${before.epoch}:${before.keyId}`;
    commands.forEach((cmd, i) => {
      const batch = results[i]?.batch;
      const target = revoked[i];
      if (cmd.kind === 'revoke' && target !== undefined) {
        this.revokesChecked++;
        // Also when an earlier command of the same commit dropped the target already (a tick that
        // expired its lease): the revocation still cuts at once (seed 45 with --revoke-server found
        // it cutting nothing, the leaf keeping the key one batch interval longer).
        if (batch?.evicted.some((d) => d.name === target && d.reason === 'revoked') !== true)
          this.violation(
            'revocation',
            `${server}: revoke of admitted ${target} did not evict it in its batch (${batch === undefined ? 'no batch' : `epoch ${batch.epoch}`})`,
          );
      }
      if (batch === undefined) return;
      this.batchesApplied++;
      // The machine holds only its newest key: a commit that cut two batches shows the last one's.
      const groupKey = batch.epoch === machine.epoch ? machine.groupKey() : undefined;
      const keyId = groupKey === undefined ? '?' : groupKeyId(this.suite, groupKey);
      let byKey = this.applied.get(batch.epoch);
      if (byKey === undefined) this.applied.set(batch.epoch, (byKey = new Map()));
      let a = byKey.get(keyId);
      if (a === undefined)
        byKey.set(keyId, (a = { servers: new Set(), evicted: new Set(), revoked: new Set() }));
      a.servers.add(server);
      const applied = `${batch.epoch}:${keyId}`;
      let from = this.parents.get(applied);
      if (from === undefined) this.parents.set(applied, (from = new Set()));
      from.add(parent);
      parent = applied;
      for (const d of batch.evicted) {
        a.evicted.add(d.name);
        if (d.reason === 'revoked' && d.serial !== '') a.revoked.add(d.serial);
        let at = this.evictedAt.get(d.name);
        if (at === undefined) this.evictedAt.set(d.name, (at = new Set()));
        at.add(batch.epoch);
      }
    });
  }

  /** For each command: the name of the leaf in the tree under the serial it revokes (before it applies). */
  static revokeTargets(machine: LeafStateMachine, commands: readonly LeafCommand[]): (string | undefined)[] {
    const taken = new Set<string>(); // a second revoke of one serial in the same commit finds it gone
    return commands.map((cmd) => {
      if (cmd.kind !== 'revoke' || cmd.value.target.kind !== 'serial' || !cmd.value.immediate)
        return undefined;
      const serial = cmd.value.target.value;
      for (const e of machine.parts().entries.values())
        if (e.serial === serial && e.slot >= 0 && !taken.has(e.name)) {
          taken.add(e.name);
          return e.name;
        }
      return undefined;
    });
  }

  private leaf(name: string): LeafRecord {
    let r = this.leaves.get(name);
    if (r === undefined) this.leaves.set(name, (r = { admissions: [], keys: [], toldEvicted: [] }));
    return r;
  }

  welcomed(name: string, admission: number): void {
    const r = this.leaf(name);
    if (r.admissions.at(-1) !== admission) r.admissions.push(admission);
  }

  leafKey(name: string, epoch: number, keyId: string, admission: number | undefined): void {
    const known = this.leafKeyAt.get(epoch);
    if (known === undefined) this.leafKeyAt.set(epoch, { keyId, who: name });
    else if (known.keyId !== keyId)
      this.violation('fork', `epoch ${epoch}: key ${known.keyId} at ${known.who}, ${keyId} at ${name}`);
    if (admission === undefined)
      return this.violation('secrecy', `${name} got key ${epoch} with no admission`);
    this.leaf(name).keys.push({ epoch, keyId, admission });
  }

  /** The id of the group key of `epoch` that leaves reported (undefined: none did). */
  keyIdAt(epoch: number): string | undefined {
    return this.leafKeyAt.get(epoch)?.keyId;
  }

  /** The newest key `name` reported. */
  lastKeyOf(name: string): { epoch: number; keyId: string } | undefined {
    return this.leaves.get(name)?.keys.at(-1);
  }

  toldEvicted(name: string, serial: string, reason: string, admission: number | undefined): void {
    this.leaf(name).toldEvicted.push({ reason, admission, serial });
  }

  /** The epoch of the batch that evicted admission `admission` of `name`: the first eviction after it. */
  evictionOf(name: string, admission: number): number | undefined {
    let first: number | undefined;
    for (const e of this.evictedAt.get(name) ?? [])
      if (e > admission && (first === undefined || e < first) && this.evictedIn(e, name)) first = e;
    return first;
  }

  /** Secrecy against the keys each leaf reported; durability against `registry`, the final primary state. */
  checkEnd(registry: LeafStateMachine | undefined): void {
    for (const [name, r] of this.leaves) {
      for (const k of r.keys) {
        if (k.epoch < k.admission)
          this.violation(
            'secrecy',
            `${name} held key of epoch ${k.epoch}, before its admission at ${k.admission}`,
          );
        const evicted = this.evictionOf(name, k.admission);
        if (evicted !== undefined && k.epoch >= evicted)
          this.violation(
            'secrecy',
            `${name} held key of epoch ${k.epoch}; its admission ${k.admission} was evicted at ${evicted}`,
          );
      }
    }
    if (registry === undefined) return;
    // A revocation the lineage applied (a batch evicted the leaf as revoked) stays in the registry's
    // revoked set. (The edge tells a linked leaf 'revoked' as soon as its server loads the CRL;
    // that is the CRL's enforcement, not the registry's, so it is not counted here.)
    for (const [epoch, byKey] of this.applied) {
      const keyId = this.lineageKeyOf(epoch);
      for (const [k, a] of byKey)
        if (k === keyId || k === '?')
          for (const serial of a.revoked)
            if (!registry.isRevoked(serial))
              this.violation(
                'durability',
                `revocation of ${serial} (epoch ${epoch}) is not in the final registry`,
              );
    }
    const departing = new Set(registry.parts().pendingDepartures.map((d) => d.name));
    for (const [name, r] of this.leaves) {
      const entry = registry.entry(name);
      for (const admission of r.admissions) {
        if (this.evictionOf(name, admission) !== undefined) continue;
        // Departed from the registry (a leave, a revoke), its eviction waiting for the next cut.
        if (entry === undefined && departing.has(name)) continue;
        if (entry?.admittedEpoch !== admission)
          this.violation(
            'durability',
            `${name} was welcomed at ${admission}, never evicted, but the final registry holds ${entry === undefined ? 'nothing' : `admission ${entry.admittedEpoch}`}`,
          );
      }
      for (const told of r.toldEvicted) {
        if (told.admission !== undefined && entry?.admittedEpoch === told.admission)
          this.violation(
            'durability',
            `${name} was told evicted (${told.reason}) but admission ${told.admission} is registered`,
          );
      }
    }
  }

  get leafKeysSeen(): number {
    let n = 0;
    for (const r of this.leaves.values()) n += r.keys.length;
    return n;
  }

  get admissionsSeen(): number {
    let n = 0;
    for (const r of this.leaves.values()) n += r.admissions.length;
    return n;
  }

  get evictionsTold(): number {
    let n = 0;
    for (const r of this.leaves.values()) n += r.toldEvicted.length;
    return n;
  }
}
