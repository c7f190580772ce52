import test from 'ava';
import { DecodeError } from '../../wire/index.js';
import {
  KeytreeError,
  LeafKeys,
  decodeHeader,
  decodeOps,
  decodePart,
  decodeRekey,
  decodeWelcome,
  encodeHeader,
  encodeOps,
  encodePart,
  encodeRekey,
  encodeWelcome,
  encodeSnapshot,
  decodeSnapshot,
  derivedKeySource,
  maxHeight,
  span,
  type TreeOp,
} from '../../keytree/index.js';
import { GROUP, Harness, equal, makeTree, secret, suite } from './harness.js';

test('genesis: every member derives the same group key from its welcome', async (t) => {
  const s = await suite();
  const tree = makeTree(s, 50);
  const h = new Harness(s, tree);
  t.is(h.leaves.size, 50);
  t.is(tree.height, 3); // 4^3 = 64 ≥ 50
  h.assertAgreement();
  tree.checkInvariants();
});

test('one leave replaces exactly its path and costs O(d·log_d n) wraps', async (t) => {
  const s = await suite();
  const tree = makeTree(s, 256); // full tree of height 4
  const h = new Harness(s, tree);
  const before = tree.groupKey()!;
  const res = h.apply([{ kind: 'leave', slot: 37 }]);
  t.is(res.message.body.records.length, tree.height);
  const wraps = res.message.body.records.reduce((n, r) => n + r.wraps.length, 0);
  // Each replaced node wraps under its 3 other children: the departed slot is empty at level 1,
  // and above it the key on the path is derived from the replaced child instead of wrapped.
  t.is(wraps, tree.height * 3);
  // Slot 37's path: (1, 9) ← (2, 2) via child 1 ← (3, 0) via child 2 ← root via child 0.
  t.deepEqual(
    res.message.body.records.map((r) => [r.level, r.index, r.derivedFrom]),
    [
      [1, 9, undefined],
      [2, 2, 1],
      [3, 0, 2],
      [4, 0, 0],
    ],
  );
  t.false(equal(before, tree.groupKey()!));
  t.is(h.leaves.size, 255);
  // Every part a leaf needs is at most `height` wraps.
  for (let i = 0; i < res.split.count; i++) t.true(res.split.part(i).wraps.length <= tree.height);
});

test('an evicted leaf recovers nothing of its eviction batch or any later one', async (t) => {
  const s = await suite();
  const tree = makeTree(s, 64);
  const h = new Harness(s, tree);
  const victim = h.leaves.get(21)!;
  const first = h.apply([{ kind: 'evict', slot: 21 }, { kind: 'join' }]); // the joiner reuses slot 21
  t.true(tree.isOccupied(21));
  const later = h.apply([{ kind: 'leave', slot: 3 }]);
  for (const res of [first, later]) {
    for (let i = 0; i < res.split.count; i++) {
      const err = t.throws(() => victim.processPart(s, res.message.header, res.split.part(i)));
      t.true(err instanceof KeytreeError, String(err));
    }
  }
  const err = t.throws(() => victim.processMessage(s, first.message), { instanceOf: KeytreeError });
  t.is(err?.code, 'missing'); // slot 21 now belongs to the joiner, whose leaf key the victim lacks
  t.throws(() => victim.processMessage(s, later.message), {
    instanceOf: KeytreeError,
    message: /out-of-order/,
  });
});

test('a joiner cannot read the epochs before its join', async (t) => {
  const s = await suite();
  const tree = makeTree(s, 20);
  const h = new Harness(s, tree);
  const old = h.apply([{ kind: 'leave', slot: 4 }]);
  const res = h.apply([{ kind: 'join' }]);
  const joiner = h.leaves.get(res.joined[0]!.slot)!;
  t.throws(() => joiner.processMessage(s, old.message), { instanceOf: KeytreeError, message: /stale-epoch/ });
  t.throws(() => joiner.processMessage(s, res.message), { instanceOf: KeytreeError, message: /replay/ });
  const members = h.checker.members();
  h.checker.check([members.length - 1]);
  t.pass();
});

test('replayed, stale and out-of-order epochs are rejected', async (t) => {
  const s = await suite();
  const tree = makeTree(s, 30);
  const h = new Harness(s, tree);
  const start = h.leaves.get(0)!;
  const e1 = h.apply([{ kind: 'leave', slot: 9 }]);
  const e2 = h.apply([{ kind: 'refresh-root' }]);
  t.is(
    t.throws(() => start.processMessage(s, e2.message), { instanceOf: KeytreeError })?.code,
    'out-of-order',
  );
  const at1 = start.processMessage(s, e1.message);
  t.is(t.throws(() => at1.processMessage(s, e1.message), { instanceOf: KeytreeError })?.code, 'replay');
  const at2 = at1.processMessage(s, e2.message);
  t.is(t.throws(() => at2.processMessage(s, e1.message), { instanceOf: KeytreeError })?.code, 'stale-epoch');
  t.true(equal(at2.groupKey(), tree.groupKey()!));
});

test('a part for another subtree, a forged part and a tampered header are refused', async (t) => {
  const s = await suite();
  const tree = makeTree(s, 200);
  const h = new Harness(s, tree);
  const leaf = h.leaves.get(5)!;
  const res = tree.applyBatch([{ kind: 'leave', slot: 150 }]);
  const mine = res.split.part(res.split.partIdFor(5)!);
  const other = res.split.part(res.split.partIdFor(199)!);
  t.is(
    t.throws(() => leaf.processPart(s, res.message.header, other), { instanceOf: KeytreeError })?.code,
    'not-addressed',
  );
  const forged = {
    ...mine,
    wraps: mine.wraps.map((w, i) =>
      i === mine.wraps.length - 1 ? { ...w, wrapped: new Uint8Array(40) } : w,
    ),
  };
  t.is(
    t.throws(() => leaf.processPart(s, res.message.header, forged), { instanceOf: KeytreeError })?.code,
    'bad-proof',
  );
  const header = { ...res.message.header, partsRoot: new Uint8Array(32) };
  t.is(t.throws(() => leaf.processPart(s, header, mine), { instanceOf: KeytreeError })?.code, 'bad-proof');
  t.is(
    t.throws(() => leaf.processPart(s, { ...res.message.header, group: new Uint8Array(3) }, mine), {
      instanceOf: KeytreeError,
    })?.code,
    'wrong-group',
  );
  t.true(equal(leaf.processPart(s, res.message.header, mine).groupKey(), tree.groupKey()!));
});

test('a leaf reports exactly the part or key it is missing', async (t) => {
  const s = await suite();
  const tree = makeTree(s, 64);
  const h = new Harness(s, tree);
  const leftAlone = h.leaves.get(8)!;
  const reused = h.leaves.get(9)!;
  // Slot 9 departs and a joiner takes it (the lowest free slot); slot 8 departs and stays empty.
  const res = h.apply([{ kind: 'leave', slot: 9 }, { kind: 'join' }, { kind: 'leave', slot: 8 }]);
  t.false(tree.isOccupied(8));
  t.true(tree.isOccupied(9));
  const noPart = t.throws(() => leftAlone.processMessage(s, res.message), { instanceOf: KeytreeError });
  t.is(noPart?.code, 'missing');
  t.deepEqual(noPart?.missing, [{ kind: 'part', epoch: 1, slot: 8 }]);
  const noKey = t.throws(() => reused.processMessage(s, res.message), { instanceOf: KeytreeError });
  t.is(noKey?.code, 'missing');
  t.deepEqual(noKey?.missing, [
    { kind: 'key', level: 0, index: 9, version: tree.welcome(9).keys[0]!.version },
  ]);
});

test('growth and compaction keep depth ≤ ⌈log_d n⌉ + 1 and moved leaves follow', async (t) => {
  const s = await suite();
  const tree = makeTree(s, 16, 4); // height 2, full
  const h = new Harness(s, tree);
  const joins: TreeOp[] = Array.from({ length: 60 }, () => ({ kind: 'join' }));
  h.apply(joins); // 76 members: height 4
  t.is(tree.height, 4);
  t.true(tree.height <= maxHeight(4, tree.members));
  // Remove all but three members spread across the tree, forcing compaction down to height 1.
  const keep = new Set([0, 40, 75]);
  const ops: TreeOp[] = [];
  for (let slot = 0; slot < 76; slot++) if (!keep.has(slot)) ops.push({ kind: 'leave', slot });
  const res = h.apply(ops);
  t.is(tree.members, 3);
  t.is(tree.height, 1);
  t.is(res.moves.length, 2);
  t.deepEqual(
    [...h.leaves.keys()].sort((a, b) => a - b),
    [0, 1, 2],
  );
  tree.checkInvariants();
  h.apply([{ kind: 'join' }, { kind: 'join' }]);
  t.is(tree.height, 2);
  for (let m = 0; m < h.checker.members().length; m++) h.checker.check([m]);
});

test('identical ops and key source give identical messages and snapshots; snapshots round-trip', async (t) => {
  const s = await suite();
  const a = makeTree(s, 300);
  const b = makeTree(s, 300);
  const batches: TreeOp[][] = [
    [{ kind: 'leave', slot: 10 }, { kind: 'join' }, { kind: 'evict', slot: 299 }],
    [{ kind: 'refresh-path', slot: 7 }, { kind: 'join' }, { kind: 'join' }],
  ];
  for (const ops of batches) {
    const decoded = decodeOps(encodeOps(ops));
    t.deepEqual(decoded, ops);
    t.true(equal(a.applyBatch(ops).encoded, b.applyBatch(decoded).encoded));
  }
  const snap = encodeSnapshot(a);
  t.true(equal(snap, encodeSnapshot(b)));
  const opts = { suite: s, keySource: derivedKeySource(s, secret(1)), group: GROUP, arity: 4 };
  const c = decodeSnapshot(snap, opts);
  t.true(equal(encodeSnapshot(c), snap));
  c.checkInvariants();
  const next: TreeOp[] = [{ kind: 'leave', slot: 100 }, { kind: 'join' }];
  t.true(equal(a.applyBatch(next).encoded, c.applyBatch(next).encoded));
  t.true(equal(a.groupKey()!, c.groupKey()!));
});

test('invalid operations are refused before the tree changes', async (t) => {
  const s = await suite();
  const tree = makeTree(s, 10);
  const snap = encodeSnapshot(tree);
  t.throws(
    () =>
      tree.applyBatch([
        { kind: 'leave', slot: 3 },
        { kind: 'leave', slot: 3 },
      ]),
    { message: /not a member/ },
  );
  t.throws(() => tree.applyBatch([{ kind: 'evict', slot: 12 }]), { message: /not a member/ });
  t.true(equal(encodeSnapshot(tree), snap));
});

test('emptying the tree and refilling it works', async (t) => {
  const s = await suite();
  const tree = makeTree(s, 5);
  const h = new Harness(s, tree);
  h.apply([0, 1, 2, 3, 4].map((slot) => ({ kind: 'leave', slot }) as TreeOp));
  t.is(tree.members, 0);
  t.is(tree.groupKey(), undefined);
  h.apply([{ kind: 'join' }, { kind: 'join' }]);
  t.is(h.leaves.size, 2);
  for (let m = 0; m < h.checker.members().length; m++) h.checker.check([m]);
});

test('full message encoding round-trips and each truncation is a DecodeError', async (t) => {
  const s = await suite();
  const tree = makeTree(s, 40);
  const res = tree.applyBatch([{ kind: 'leave', slot: 3 }, { kind: 'join' }, { kind: 'join' }]);
  t.true(equal(encodeRekey(decodeRekey(res.encoded)), res.encoded));
  for (let cut = 0; cut < res.encoded.length; cut++) {
    t.throws(() => decodeRekey(res.encoded.subarray(0, cut)), { instanceOf: DecodeError });
  }
  const longer = new Uint8Array(res.encoded.length + 1);
  longer.set(res.encoded);
  t.throws(() => decodeRekey(longer), { instanceOf: DecodeError });
  t.is(span(4, 2), 16);
  t.truthy(LeafKeys);
});

test('welcomes, headers, parts, snapshots and op lists reject truncation and trailing bytes', async (t) => {
  const s = await suite();
  const tree = makeTree(s, 23);
  const res = tree.applyBatch([
    { kind: 'leave', slot: 4 },
    { kind: 'join' },
    { kind: 'refresh-path', slot: 9 },
  ]);
  const opts = { suite: s, keySource: derivedKeySource(s, secret(1)), group: GROUP, arity: 4 };
  const cases: [string, Uint8Array, (b: Uint8Array) => unknown][] = [
    ['welcome', encodeWelcome(tree.welcome(4)), decodeWelcome],
    ['header', encodeHeader(res.message.header), decodeHeader],
    ['part', encodePart(res.split.part(0)), decodePart],
    ['snapshot', encodeSnapshot(tree), (b) => decodeSnapshot(b, opts)],
    [
      'ops',
      encodeOps([{ kind: 'join', ref: 7 }, { kind: 'evict', slot: 300 }, { kind: 'refresh-root' }]),
      decodeOps,
    ],
  ];
  for (const [name, bytes, decode] of cases) {
    t.notThrows(() => decode(bytes), name);
    for (let cut = 0; cut < bytes.length; cut++) {
      t.throws(() => decode(bytes.subarray(0, cut)), { instanceOf: DecodeError }, `${name} cut at ${cut}`);
    }
    const longer = new Uint8Array(bytes.length + 1);
    longer.set(bytes);
    t.throws(() => decode(longer), { instanceOf: DecodeError }, `${name} with a trailing byte`);
  }
  const welcome = decodeWelcome(encodeWelcome(tree.welcome(4)));
  t.true(equal(LeafKeys.fromWelcome(welcome).groupKey(), tree.groupKey()!));
});

test('a snapshot with occupancy bits past the capacity is refused', async (t) => {
  const s = await suite();
  const tree = makeTree(s, 2, 3); // arity 3, height 1: 3 slots, one bitmap byte
  const snap = encodeSnapshot(tree);
  const opts = { suite: s, keySource: derivedKeySource(s, secret(1)), group: GROUP, arity: 3 };
  t.notThrows(() => decodeSnapshot(snap, opts));
  const bitmapAt = 1 + 1 + GROUP.length + 1 + 1 + 1 + 1; // format, group length, group, arity, height, allocated, epoch
  t.is(snap[bitmapAt], 0b011);
  const bad = snap.slice();
  bad[bitmapAt] = 0b1011;
  t.throws(() => decodeSnapshot(bad, opts), { instanceOf: DecodeError, message: /past the capacity/ });
});

test('refresh-root replaces only the group key; refresh-path replaces the whole path', async (t) => {
  const s = await suite();
  const tree = makeTree(s, 64);
  const h = new Harness(s, tree);
  const before = tree.welcome(10);
  const root = h.apply([{ kind: 'refresh-root' }]);
  t.deepEqual(
    root.message.body.records.map((r) => [r.level, r.index]),
    [[3, 0]],
  );
  const path = h.apply([{ kind: 'refresh-path', slot: 10 }]);
  t.deepEqual(
    path.message.body.records.map((r) => [r.level, r.index]),
    [
      [1, 2],
      [2, 0],
      [3, 0],
    ],
  );
  const after = tree.welcome(10);
  t.is(after.keys[0]!.version, before.keys[0]!.version); // the leaf's own key is its identity
  for (let l = 1; l <= tree.height; l++) t.false(equal(after.keys[l]!.key, before.keys[l]!.key));
});

test('the derived key source is deterministic per epoch and binding, distinct otherwise', async (t) => {
  const s = await suite();
  const a = derivedKeySource(s, secret(3));
  const b = derivedKeySource(s, secret(3));
  const bind = new Uint8Array(32).fill(1);
  t.true(equal(a.keys(5, 4, bind), b.keys(5, 4, bind)));
  t.false(equal(a.keys(5, 4, bind), a.keys(6, 4, bind)));
  t.false(equal(a.keys(5, 4, bind), derivedKeySource(s, secret(4)).keys(5, 4, bind)));
  t.false(equal(a.keys(5, 4, bind), a.keys(5, 4, new Uint8Array(32).fill(2))));
  t.true(equal(a.keys(5, 4, bind).subarray(0, 64), a.keys(5, 2, bind))); // a prefix: counts never shift keys
});

test('two different batches for the same epoch under one secret share no key (restore from an old backup)', async (t) => {
  const s = await suite();
  const make = () => {
    const tree = makeTree(s, 0, 4, 9);
    tree.applyBatch(Array.from({ length: 16 }, (_, i) => ({ kind: 'join' as const, ref: i })));
    return tree;
  };
  const first = make();
  const second = make();
  t.true(equal(first.groupKey()!, second.groupKey()!)); // same history: same keys (replication)
  // Epoch 2 happens twice with different ops: a joiner in the first history must not hold
  // any key of the second.
  first.applyBatch([{ kind: 'join', ref: 100 }]);
  second.applyBatch([{ kind: 'evict', slot: 3 }]);
  const joinerKeys = first.welcome(16).keys.map((k) => k.key);
  for (let slot = 0; slot < 16; slot++) {
    if (slot === 3) continue;
    for (const k of second.welcome(slot).keys.slice(1)) {
      t.false(joinerKeys.some((j) => equal(j, k.key)));
    }
  }
});
