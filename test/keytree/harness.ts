/**
 * Test harness: a tree, every member's leaf state, and the secrecy checker, driven batch by
 * batch. Each batch routes every leaf its own part through the encoder and decoder, as the
 * gossip tier would, and checks that all members end on the tree's group key.
 */
import { loadSuite, type CipherSuite } from '../../crypto/index.js';
import {
  LeafKeyTree,
  LeafKeys,
  SecrecyChecker,
  decodeHeader,
  decodePart,
  decodeWelcome,
  derivedKeySource,
  encodeHeader,
  encodePart,
  encodeWelcome,
  type BatchResult,
  type TreeOp,
} from '../../keytree/index.js';

export const GROUP = new TextEncoder().encode('test-group');

/** Small deterministic PRNG (mulberry32) for op sequences. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function secret(seed: number): Uint8Array {
  const s = new Uint8Array(32);
  new DataView(s.buffer).setUint32(0, seed);
  s[31] = 0x5a;
  return s;
}

export async function suite(): Promise<CipherSuite> {
  return loadSuite('fast');
}

export function makeTree(s: CipherSuite, members: number, arity = 4, seed = 1): LeafKeyTree {
  return LeafKeyTree.create(
    { suite: s, keySource: derivedKeySource(s, secret(seed)), group: GROUP, arity },
    members,
  );
}

export class Harness {
  /** Current members' leaf states by slot. */
  readonly leaves = new Map<number, LeafKeys>();
  readonly checker: SecrecyChecker;
  /** Leaf states of departed members, frozen at their last epoch. */
  readonly departed: LeafKeys[] = [];
  readonly results: BatchResult[] = [];

  constructor(
    readonly suite: CipherSuite,
    readonly tree: LeafKeyTree,
    /** Check every leaf when members ≤ this, else a sample of this many plus every moved leaf. */
    private readonly checkAllUpTo = 2000,
    private readonly random: () => number = rng(7),
  ) {
    this.checker = new SecrecyChecker(suite);
    const welcomes = [];
    for (let slot = 0; slot < tree.members; slot++) {
      const w = tree.welcome(slot);
      welcomes.push(w);
      this.leaves.set(slot, LeafKeys.fromWelcome(decodeWelcome(encodeWelcome(w))));
    }
    this.checker.record({ epoch: 0, welcomes, departed: [] });
  }

  apply(ops: readonly TreeOp[]): BatchResult {
    // Own-key refreshes: the version each rekeyed slot gets, read before the batch changes it.
    const rekeyed = ops.flatMap((op) =>
      op.kind === 'rekey-leaf'
        ? [{ slot: op.slot, version: this.tree.welcome(op.slot).keys[0]!.version + 1, key: op.key }]
        : [],
    );
    const res = this.tree.applyBatch(ops);
    // Each refreshed member computed its new own key itself (leaf-key-refresh.ts): pending.
    for (const r of rekeyed) {
      const leaf = this.leaves.get(r.slot);
      if (leaf !== undefined) this.leaves.set(r.slot, leaf.withPendingOwnKey(r.key));
    }
    this.results.push(res);
    const header = decodeHeader(encodeHeader(res.message.header));
    for (const d of res.departed) {
      const gone = this.leaves.get(d.slot);
      if (gone !== undefined) this.departed.push(gone);
      this.leaves.delete(d.slot);
    }
    const movedFrom = new Set(res.moves.map((m) => m.from));
    const sample = this.sampleSlots(movedFrom);
    const next = new Map<number, LeafKeys>();
    for (const [slot, leaf] of this.leaves) {
      if (!sample.has(slot)) {
        next.set(slot, leaf); // not checked this batch: dropped from the tracked set below
        continue;
      }
      const id = res.split.partIdFor(slot);
      if (id === undefined) throw new Error(`no part for member at slot ${slot}`);
      const part = decodePart(encodePart(res.split.part(id)));
      const after = leaf.processPart(this.suite, header, part);
      next.set(after.slot, after);
    }
    this.leaves.clear();
    for (const [slot, leaf] of next) if (leaf.epoch === res.epoch) this.leaves.set(slot, leaf);
    const welcomes = res.joined.map((j) => this.tree.welcome(j.slot));
    for (const w of welcomes) this.leaves.set(w.slot, LeafKeys.fromWelcome(decodeWelcome(encodeWelcome(w))));
    this.checker.record({
      epoch: res.epoch,
      message: res.message,
      welcomes,
      departed: res.departed.map((d) => d.slot),
      rekeyed,
    });
    this.assertAgreement();
    return res;
  }

  private sampleSlots(always: Set<number>): Set<number> {
    const slots = [...this.leaves.keys()];
    if (slots.length <= this.checkAllUpTo) return new Set(slots);
    const out = new Set([...always].filter((s) => this.leaves.has(s)));
    while (out.size < this.checkAllUpTo + always.size)
      out.add(slots[Math.floor(this.random() * slots.length)]!);
    return out;
  }

  /** Every tracked leaf holds the tree's group key and the tree's path versions. */
  assertAgreement(): void {
    const gk = this.tree.groupKey();
    for (const [slot, leaf] of this.leaves) {
      if (!this.tree.isOccupied(slot)) throw new Error(`leaf at empty slot ${slot}`);
      if (gk === undefined || !equal(leaf.groupKey(), gk))
        throw new Error(`leaf at slot ${slot} disagrees on the group key`);
      const w = this.tree.welcome(slot);
      w.keys.forEach((k, l) => {
        if (leaf.versionAt(l) !== k.version)
          throw new Error(`leaf ${slot} holds version ${leaf.versionAt(l)} at level ${l}, tree ${k.version}`);
      });
    }
  }
}

export function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/** A random batch: joins, leaves, evictions and refreshes over the current members. */
export function randomBatch(
  random: () => number,
  tree: LeafKeyTree,
  members: number[],
  size: number,
  joinBias = 0.5,
): TreeOp[] {
  const ops: TreeOp[] = [];
  const pool = members.slice();
  for (let i = 0; i < size; i++) {
    const r = random();
    if (r < joinBias || pool.length === 0) ops.push({ kind: 'join', ref: i });
    else {
      const at = Math.floor(random() * pool.length);
      const slot = pool[at]!;
      pool[at] = pool[pool.length - 1]!;
      pool.pop();
      const kind =
        r < joinBias + (1 - joinBias) * 0.6
          ? 'leave'
          : r < joinBias + (1 - joinBias) * 0.9
            ? 'evict'
            : 'refresh-path';
      if (kind === 'refresh-path' && tree.isOccupied(slot)) ops.push({ kind, slot });
      else ops.push({ kind: kind === 'refresh-path' ? 'leave' : kind, slot });
    }
  }
  if (random() < 0.1) ops.push({ kind: 'refresh-root' });
  return ops;
}
