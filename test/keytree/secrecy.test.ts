import test from 'ava';
import { SecrecyChecker, type NodeRecord } from '../../keytree/index.js';
import { Harness, makeTree, suite } from './harness.js';

test('the checker passes an honest history and names the coalition it tested', async (t) => {
  const s = await suite();
  const tree = makeTree(s, 40);
  const h = new Harness(s, tree);
  h.apply([{ kind: 'leave', slot: 3 }, { kind: 'join' }]);
  h.apply([{ kind: 'evict', slot: 30 }]);
  const spans = h.checker.members();
  const departed = spans.filter((m) => m.leaveEpoch !== undefined).map((m) => m.id);
  t.is(departed.length, 2);
  h.checker.check(departed);
  // A departed member derives exactly the keys of its own epochs: all of them are from epoch 0.
  const derived = h.checker.derive([departed[0]!]);
  t.true(derived.size >= tree.height + 1);
});

test('the checker catches a rekey that leaks the new group key to a departed member', async (t) => {
  const s = await suite();
  const tree = makeTree(s, 4); // height 1: the root wraps directly under leaf keys
  const h = new Harness(s, tree);
  const victim = tree.welcome(2).keys[0]!;
  h.apply([{ kind: 'leave', slot: 2 }]);
  const honest = tree.applyBatch([{ kind: 'refresh-root' }]);
  // Replay the history into a fresh checker, with one extra wrap of epoch 2's root under the
  // departed leaf's key — the bug a broken batch would have.
  const checker = new SecrecyChecker(s);
  const genesis = makeTree(s, 4);
  checker.record({ epoch: 0, welcomes: [0, 1, 2, 3].map((slot) => genesis.welcome(slot)), departed: [] });
  checker.record({ epoch: 1, message: h.results[0]!.message, welcomes: [], departed: [2] });
  const root = honest.message.body.records[0]!;
  const leaked: NodeRecord = {
    ...root,
    wraps: [
      ...root.wraps,
      { child: 2, childVersion: victim.version, wrapped: s.wrapKey(victim.key, tree.groupKey()!) },
    ].sort((a, b) => a.child - b.child),
  };
  checker.record({
    epoch: 2,
    message: { header: honest.message.header, body: { records: [leaked], moves: [] } },
    welcomes: [],
    departed: [],
  });
  const departedMember = checker.members().find((m) => m.leaveEpoch === 1)!.id;
  const v = checker.violations([departedMember]);
  t.true(v.some((x) => x.createdEpoch === 2));
  t.throws(() => checker.check([departedMember]), { message: /secrecy violated/ });
  // Without the leak the same member is clean.
  const clean = new SecrecyChecker(s);
  clean.record({ epoch: 0, welcomes: [0, 1, 2, 3].map((slot) => genesis.welcome(slot)), departed: [] });
  clean.record({ epoch: 1, message: h.results[0]!.message, welcomes: [], departed: [2] });
  clean.record({ epoch: 2, message: honest.message, welcomes: [], departed: [] });
  t.deepEqual(clean.violations([departedMember]), []);
});
