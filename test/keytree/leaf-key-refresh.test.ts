/**
 * Post-compromise recovery at the tree level: own-key refreshes (`rekey-leaf`) and the
 * compromise adversary of the secrecy checker (an adversary handed every key of the tree at
 * epoch E plus every later rekey message).
 */
import test from 'ava';
import {
  LeafKeys,
  MAX_PENDING_OWN_KEYS,
  decodeOps,
  encodeOps,
  keyId,
  refreshedLeafKey,
  treeKeys,
  type LeafKeyTree,
  type TreeOp,
} from '../../keytree/index.js';
import type { CipherSuite } from '../../crypto/index.js';
import { GROUP, Harness, equal, makeTree, randomBatch, rng, suite } from './harness.js';

function freshKey(s: CipherSuite, n: number): Uint8Array {
  return refreshedLeafKey(s, s.sha256(Uint8Array.of(n & 0xff, (n >> 8) & 0xff, 0x42)), {
    group: GROUP,
    admittedEpoch: 1,
    counter: 1 + (n % 7),
  });
}

/** The root key id of the tree's current epoch. */
function rootId(tree: LeafKeyTree): string {
  return keyId(tree.height, 0, tree.rootVersion());
}

function occupied(tree: LeafKeyTree): number[] {
  const out: number[] = [];
  for (let slot = 0; slot < tree.arity ** tree.height; slot++) if (tree.isOccupied(slot)) out.push(slot);
  return out;
}

test('rekey-leaf round-trips through the op codec, and a bad one is refused before any change', async (t) => {
  const s = await suite();
  const key = freshKey(s, 1);
  const ops: TreeOp[] = [{ kind: 'rekey-leaf', slot: 9, key }, { kind: 'join' }];
  t.deepEqual(decodeOps(encodeOps(ops)), ops);
  const tree = makeTree(s, 16);
  const epoch = tree.epoch;
  t.throws(() => tree.applyBatch([{ kind: 'rekey-leaf', slot: 40, key }]), { message: /not a member/ });
  t.throws(
    () =>
      tree.applyBatch([
        { kind: 'rekey-leaf', slot: 3, key },
        { kind: 'rekey-leaf', slot: 3, key },
      ]),
    { message: /twice/ },
  );
  t.throws(
    () =>
      tree.applyBatch([
        { kind: 'leave', slot: 3 },
        { kind: 'rekey-leaf', slot: 3, key },
      ]),
    {
      message: /not a member/,
    },
  );
  t.throws(() => tree.applyBatch([{ kind: 'rekey-leaf', slot: 3, key: key.subarray(0, 16) }]), {
    message: /16 bytes/,
  });
  t.is(tree.epoch, epoch);
});

test('a refreshed leaf follows its rekey under the pending own key; the others are unaffected', async (t) => {
  const s = await suite();
  const tree = makeTree(s, 40);
  const h = new Harness(s, tree);
  const before = h.leaves.get(5)!;
  const key = freshKey(s, 5);
  h.apply([{ kind: 'rekey-leaf', slot: 5, key }, { kind: 'join' }]); // asserts every leaf agrees
  const after = h.leaves.get(5)!;
  t.is(after.versionAt(0), before.versionAt(0)! + 1);
  t.is(after.pendingOwnKeys, 0);
  t.true(equal(tree.welcome(5).keys[0]!.key, key));
  // Without the pending key the part cannot be followed: the leaf asks for what it lacks.
  const h2 = new Harness(s, makeTree(s, 40));
  const stale = h2.leaves.get(5)!;
  const res = h2.tree.applyBatch([{ kind: 'rekey-leaf', slot: 5, key }]);
  const part = res.split.part(res.split.partIdFor(5)!);
  t.throws(() => stale.processPart(s, res.message.header, part), { message: /leaf holds/ });
  // A wrong pending key fails the unwrap, not silently.
  t.throws(() => stale.withPendingOwnKey(freshKey(s, 6)).processPart(s, res.message.header, part), {
    message: /did not unwrap/,
  });
});

test('pending own keys are bounded, tried in order, and older ones dropped once one is used', async (t) => {
  const s = await suite();
  const tree = makeTree(s, 16);
  let leaf = LeafKeys.fromWelcome(tree.welcome(2));
  const keys = Array.from({ length: MAX_PENDING_OWN_KEYS + 2 }, (_, i) => freshKey(s, 100 + i));
  for (const k of keys) leaf = leaf.withPendingOwnKey(k);
  t.is(leaf.pendingOwnKeys, MAX_PENDING_OWN_KEYS);
  // The server applied the second-newest refresh: the newest stays pending.
  const res = tree.applyBatch([{ kind: 'rekey-leaf', slot: 2, key: keys[keys.length - 2]! }]);
  const next = leaf.processPart(s, res.message.header, res.split.part(res.split.partIdFor(2)!));
  t.true(equal(next.groupKey(), tree.groupKey()!));
  t.is(next.pendingOwnKeys, 1);
  // A welcome that already carries the pending key does not keep it pending.
  const welcomed = LeafKeys.fromWelcome(tree.welcome(2)).carryPendingFrom(leaf);
  t.is(welcomed.pendingOwnKeys, MAX_PENDING_OWN_KEYS - 1);
});

test('a leaf rekeyed and moved by compaction in the same batch follows the move', async (t) => {
  const s = await suite();
  const tree = makeTree(s, 17); // height 3
  const h = new Harness(s, tree);
  const leaves: TreeOp[] = [];
  for (let slot = 1; slot < 16; slot++) leaves.push({ kind: 'leave', slot });
  // Two members left (slots 0 and 16): the tree compacts to height 1 and slot 16 moves.
  const res = h.apply([...leaves, { kind: 'rekey-leaf', slot: 16, key: freshKey(s, 16) }]);
  t.true(res.moves.some((m) => m.from === 16));
  t.is(h.leaves.size, 2);
});

test('compromise at epoch E: the adversary follows the group key until every leaf was refreshed', async (t) => {
  const s = await suite();
  const random = rng(17);
  const tree = makeTree(s, 120, 4, 3);
  const h = new Harness(s, tree);
  for (let i = 0; i < 3; i++) h.apply(randomBatch(random, tree, occupied(tree), 6));
  const stolen = treeKeys(tree); // a data-directory copy, or a core server revoked later
  const E = stolen.epoch;

  // Without refreshes the adversary reads every later group key.
  for (let i = 0; i < 4; i++) h.apply(randomBatch(random, tree, occupied(tree), 6, 0.3));
  t.true(
    h.checker.deriveAfterCompromise(stolen).has(rootId(tree)),
    'the attack works on an unrefreshed tree',
  );

  // Refresh every member present at E, a chunk per batch, with joins and departures mixed in.
  // Until the last one, a sibling's old key still opens the path of the others.
  let n = 0;
  for (;;) {
    const members = occupied(tree);
    const stale = members.filter(
      (slot) => h.checker.createdEpoch(keyId(0, slot, tree.welcome(slot).keys[0]!.version))! <= E,
    );
    if (stale.length === 0) break;
    const chunk = stale.slice(0, 25);
    const ops: TreeOp[] = chunk.map((slot) => ({ kind: 'rekey-leaf', slot, key: freshKey(s, n++) }));
    const others = members.filter((m) => !chunk.includes(m) && !stale.includes(m));
    if (others.length > 2 && random() < 0.5) ops.push({ kind: 'leave', slot: others[0]! });
    ops.push({ kind: 'join' });
    h.apply(ops);
    if (stale.length > chunk.length)
      t.true(h.checker.deriveAfterCompromise(stolen).has(rootId(tree)), 'still exposed mid-refresh');
  }
  const completed = tree.epoch;
  for (let i = 0; i < 3; i++) h.apply(randomBatch(random, tree, occupied(tree), 5));
  const derived = h.checker.deriveAfterCompromise(stolen);
  const late = [...derived.keys()].filter((id) => h.checker.createdEpoch(id)! >= completed);
  t.deepEqual(late, [], 'nothing created once the refresh completed is derivable');
  t.false(derived.has(rootId(tree)));
  // The honest coalition checks still hold with refreshes in the history.
  const departed = h.checker
    .members()
    .filter((m) => m.leaveEpoch !== undefined)
    .map((m) => m.id);
  h.checker.check(departed);
});

test('compromise: refreshing all but one leaf of a subtree leaves the group key exposed', async (t) => {
  const s = await suite();
  const tree = makeTree(s, 16, 4, 5);
  const h = new Harness(s, tree);
  const stolen = treeKeys(tree);
  const ops: TreeOp[] = [];
  for (let slot = 0; slot < 15; slot++) ops.push({ kind: 'rekey-leaf', slot, key: freshKey(s, slot) });
  h.apply(ops);
  t.true(h.checker.deriveAfterCompromise(stolen).has(rootId(tree)));
  h.apply([{ kind: 'rekey-leaf', slot: 15, key: freshKey(s, 15) }]);
  t.false(h.checker.deriveAfterCompromise(stolen).has(rootId(tree)));
});
