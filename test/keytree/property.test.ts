/**
 * Property tests: random operation sequences with random batch boundaries. After every batch
 * all current leaves agree on the group key and hold the tree's path versions (Harness), the
 * tree keeps its invariants and depth bound, departed leaves fail on the batch that removed
 * them; at the end the secrecy checker passes for departed members, late joiners and random
 * coalitions, and a snapshot restores a tree that continues identically.
 */
import test from 'ava';
import fc from 'fast-check';
import { DecodeError } from '../../wire/index.js';
import {
  KeytreeError,
  decodeSnapshot,
  derivedKeySource,
  encodeSnapshot,
  maxHeight,
  span,
  type BatchResult,
  type LeafKeyTree,
  type LeafKeys,
  type TreeOp,
} from '../../keytree/index.js';
import { GROUP, Harness, equal, makeTree, randomBatch, rng, secret, suite } from './harness.js';

function occupied(tree: LeafKeyTree): number[] {
  const out: number[] = [];
  const cap = span(tree.arity, tree.height);
  for (let slot = 0; slot < cap; slot++) if (tree.isOccupied(slot)) out.push(slot);
  return out;
}

/**
 * A departed leaf must fail on every part of the batch that removed it: always the part now
 * covering its old slot (the only one that could match its keys) and a bounded sample of others.
 */
function assertLockedOut(
  h: Harness,
  gone: readonly LeafKeys[],
  res: BatchResult,
  random: () => number,
): void {
  const sample =
    res.split.count <= 64
      ? [...Array(res.split.count).keys()]
      : Array.from({ length: 32 }, () => Math.floor(random() * res.split.count));
  for (const leaf of gone) {
    const own = res.split.partIdFor(leaf.slot);
    for (const id of own === undefined ? sample : [own, ...sample]) {
      let ok = false;
      try {
        leaf.processPart(h.suite, res.message.header, res.split.part(id));
        ok = true;
      } catch (e) {
        if (!(e instanceof KeytreeError)) throw e;
      }
      if (ok)
        throw new Error(`departed leaf at slot ${leaf.slot} processed part ${id} of epoch ${res.epoch}`);
    }
    let ok = false;
    try {
      leaf.processMessage(h.suite, res.message);
      ok = true;
    } catch (e) {
      if (!(e instanceof KeytreeError)) throw e;
    }
    if (ok) throw new Error(`departed leaf at slot ${leaf.slot} processed epoch ${res.epoch}`);
  }
}

async function runSequence(
  arity: number,
  initial: number,
  batches: readonly { size: number; joinBias: number }[],
  seed: number,
  checkAllUpTo: number,
): Promise<void> {
  const s = await suite();
  const random = rng(seed);
  const tree = makeTree(s, initial, arity, seed);
  const twin = makeTree(s, initial, arity, seed);
  const h = new Harness(s, tree, checkAllUpTo, rng(seed + 1));
  for (const b of batches) {
    const ops: TreeOp[] = randomBatch(random, tree, occupied(tree), b.size, b.joinBias);
    const departing = ops
      .flatMap((op) => (op.kind === 'leave' || op.kind === 'evict' ? [h.leaves.get(op.slot)] : []))
      .filter((l) => l !== undefined);
    const res = h.apply(ops);
    if (!equal(twin.applyBatch(ops).encoded, res.encoded)) throw new Error('replicas diverged');
    tree.checkInvariants();
    if (tree.height > maxHeight(arity, tree.members)) throw new Error('depth bound violated');
    assertLockedOut(h, departing.slice(0, 16), res, random);
  }
  // Secrecy. All members removed by one batch together learn nothing created from that batch
  // on; all members admitted by one batch together learn nothing created before it; a few
  // single members and mixed coalitions on top.
  const spans = h.checker.members();
  const byLeave = new Map<number, number[]>();
  const byJoin = new Map<number, number[]>();
  for (const m of spans) {
    if (m.leaveEpoch !== undefined) byLeave.set(m.leaveEpoch, [...(byLeave.get(m.leaveEpoch) ?? []), m.id]);
    if (m.joinEpoch > 0) byJoin.set(m.joinEpoch, [...(byJoin.get(m.joinEpoch) ?? []), m.id]);
  }
  for (const group of [...byLeave.values(), ...byJoin.values()]) h.checker.check(group);
  const pool = [...byLeave.values(), ...byJoin.values()].flat();
  for (let i = 0; i < 5 && pool.length > 0; i++) {
    h.checker.check(Array.from({ length: 1 + (i % 4) }, () => pool[Math.floor(random() * pool.length)]!));
  }
  // Snapshot round-trip, then identical continuation.
  const snap = encodeSnapshot(tree);
  const restored = decodeSnapshot(snap, {
    suite: s,
    keySource: derivedKeySource(s, secret(seed)),
    group: GROUP,
    arity,
  });
  if (!equal(encodeSnapshot(restored), snap)) throw new Error('snapshot did not round-trip');
  const next: TreeOp[] = [{ kind: 'join' }, { kind: 'refresh-root' }];
  if (!equal(tree.applyBatch(next).encoded, restored.applyBatch(next).encoded))
    throw new Error('restored tree diverged');
}

test('random batches on small trees of every arity', async (t) => {
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom(2, 3, 4, 5, 16),
      fc.integer({ min: 0, max: 150 }),
      fc.array(
        fc.record({
          size: fc.integer({ min: 0, max: 60 }),
          joinBias: fc.double({ min: 0.05, max: 0.95, noNaN: true }),
        }),
        {
          minLength: 1,
          maxLength: 6,
        },
      ),
      fc.integer({ min: 1, max: 1 << 30 }),
      async (arity, initial, batches, seed) => runSequence(arity, initial, batches, seed, 10_000),
    ),
    { numRuns: 30, seed: 20261122 },
  );
  t.pass();
});

test('mass departures force compaction; growth back from almost empty', async (t) => {
  await runSequence(
    4,
    300,
    [
      { size: 280, joinBias: 0.02 },
      { size: 40, joinBias: 0.1 },
      { size: 200, joinBias: 0.95 },
    ],
    99,
    10_000,
  );
  t.pass();
});

test('10^4 leaves, random batch boundaries (sampled leaves)', async (t) => {
  await runSequence(
    4,
    10_000,
    [
      { size: 1, joinBias: 0 },
      { size: 100, joinBias: 0.5 },
      { size: 1000, joinBias: 0.5 },
      { size: 2500, joinBias: 0.3 },
    ],
    4242,
    400,
  );
  t.pass();
});

test('every mutation of a part or a message is a typed rejection', async (t) => {
  const s = await suite();
  const tree = makeTree(s, 100);
  const h = new Harness(s, tree);
  const leaf = h.leaves.get(17)!;
  const res = tree.applyBatch([{ kind: 'leave', slot: 18 }, { kind: 'join' }, { kind: 'evict', slot: 90 }]);
  const { decodePart, encodePart, decodeRekey } = await import('../../keytree/index.js');
  const partBytes = encodePart(res.split.part(res.split.partIdFor(17)!));
  const typed = (f: () => unknown): boolean => {
    try {
      f();
      return false;
    } catch (e) {
      if (e instanceof DecodeError || e instanceof KeytreeError) return true;
      throw e;
    }
  };
  for (let i = 0; i < partBytes.length; i++) {
    for (const flip of [0x01, 0x80]) {
      const bad = partBytes.slice();
      bad[i]! ^= flip;
      t.true(
        typed(() => leaf.processPart(s, res.message.header, decodePart(bad))),
        `part byte ${i} ^ ${flip}`,
      );
    }
  }
  for (let cut = 0; cut < partBytes.length; cut++)
    t.true(typed(() => decodePart(partBytes.subarray(0, cut))));
  const random = rng(5);
  for (let i = 0; i < 300; i++) {
    const bad = res.encoded.slice();
    const at = Math.floor(random() * bad.length);
    bad[at]! ^= 1 << Math.floor(random() * 8);
    t.true(
      typed(() => leaf.processMessage(s, decodeRekey(bad))),
      `message byte ${at}`,
    );
  }
});
