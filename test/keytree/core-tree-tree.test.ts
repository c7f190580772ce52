import test from 'ava';
import fc from 'fast-check';
import { Reader, Writer, DecodeError } from '../../wire/index.js';
import {
  avlHeightBound,
  cut,
  isAvl,
  membersOf,
  mergePieces,
  innerNodes,
  asPiece,
  leaf,
  readTree,
  writeTree,
  type SymTree,
} from '../../keytree/index.js';

const ids = (n: number, prefix = 'm'): string[] => Array.from({ length: n }, (_, i) => `${prefix}${i}`);
const build = (members: string[], keyer = members[0]!): SymTree => mergePieces(members.map(leaf), keyer);

test('merging singletons gives an AVL tree within the height bound', (t) => {
  for (let n = 1; n <= 200; n++) {
    const tree = build(ids(n));
    t.true(isAvl(tree), `n=${n}`);
    t.true(tree.height <= Math.max(1, avlHeightBound(n)), `n=${n} height ${tree.height}`);
    t.deepEqual(membersOf(tree).sort(), ids(n).sort());
    t.deepEqual(
      innerNodes(tree).map((x) => x.id),
      Array.from({ length: n - 1 }, (_, i) => i + 1),
    );
  }
});

test('cut keeps exactly the maximal subtrees without departed members', (t) => {
  fc.assert(
    fc.property(fc.integer({ min: 2, max: 80 }), fc.array(fc.nat(), { maxLength: 20 }), (n, gone) => {
      const tree = build(ids(n));
      const departed = new Set(gone.map((g) => `m${g % n}`));
      const pieces = cut(tree, (m) => !departed.has(m));
      const kept = pieces.flatMap(membersOf).sort();
      t.deepEqual(
        kept,
        ids(n)
          .filter((m) => !departed.has(m))
          .sort(),
      );
      // Maximal: a piece's parent holds a departed member (checked via merging back).
      if (departed.size === 0) t.is(pieces.length, 1);
    }),
  );
});

test('a departed keyer takes its keys with it', (t) => {
  const tree = build(ids(8), 'm3');
  // m3 generated every key: when it leaves, nothing of the tree is retained but the leaves
  const pieces = cut(tree, (m) => m !== 'm3');
  t.true(pieces.every((p) => p.kind === 'leaf'));
  t.is(pieces.length, 7);
  // a keyer that stays does not matter
  t.is(cut(tree, (m) => m !== 'm9').length, 1);
});

test('random leave/join sequences stay balanced; untouched subtrees keep their keys', (t) => {
  fc.assert(
    fc.property(
      fc.integer({ min: 2, max: 64 }),
      fc.array(fc.tuple(fc.boolean(), fc.nat()), { minLength: 1, maxLength: 30 }),
      (n, ops) => {
        let members = ids(n);
        let tree = build(members);
        let fresh = n;
        for (const [isJoin, x] of ops) {
          const departed = new Set<string>();
          const joiners: string[] = [];
          if (isJoin || members.length <= 2) joiners.push(`j${fresh++}`);
          else departed.add(members[x % members.length]!);
          members = members.filter((m) => !departed.has(m)).concat(joiners);
          const pieces = cut(tree, (m) => !departed.has(m)).map(asPiece);
          const next = mergePieces([...pieces, ...joiners.map(leaf)], members[0]!);
          t.true(isAvl(next));
          t.true(next.height <= avlHeightBound(members.length));
          t.deepEqual(membersOf(next).sort(), [...members].sort());
          // every retained node names an old node with exactly the same members
          const old = new Map(innerNodes(tree).map((v) => [v.id, membersOf(v).sort().join()]));
          for (const v of innerNodes(next)) {
            if (v.prev !== undefined) t.is(old.get(v.prev), membersOf(v).sort().join());
            // a joiner's whole path is fresh
            if (joiners.some((j) => membersOf(v).includes(j))) t.is(v.prev, undefined);
          }
          tree = next;
        }
      },
    ),
    { numRuns: 60 },
  );
});

test('tree codec round-trips and refuses bad input', (t) => {
  const tree = build(ids(37));
  const w = new Writer();
  writeTree(w, tree);
  const bytes = w.finish();
  t.deepEqual(readTree(new Reader(bytes)), tree);
  // duplicate member
  const dup = new Writer();
  writeTree(dup, mergePieces([leaf('a'), leaf('b')], 'a'));
  const dupBytes = dup.finish();
  const bad = new Writer().u8(1).varuint(1).u8(0).string('a', 128);
  writeTree(bad, leaf('a'));
  writeTree(bad, leaf('a'));
  t.throws(() => readTree(new Reader(bad.finish())), { instanceOf: DecodeError });
  t.notThrows(() => readTree(new Reader(dupBytes)));
  // too deep: a left spine deeper than the cap
  const deep = new Writer();
  for (let i = 1; i <= 30; i++) deep.u8(1).varuint(i).u8(0).string('a', 128);
  t.throws(() => readTree(new Reader(deep.finish())), {
    instanceOf: DecodeError,
    message: /too-large|truncated/,
  });
  for (let cutAt = 0; cutAt < bytes.length; cutAt++)
    t.throws(() => readTree(new Reader(bytes.subarray(0, cutAt))), { instanceOf: DecodeError });
});
