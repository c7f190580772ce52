import test, { type ExecutionContext } from 'ava';
import { loadSuite, type CipherSuite } from '../../crypto/index.js';
import { avlHeightBound, isAvl, membersOf, type MemberId } from '../../keytree/index.js';
import { CoreCluster, type RekeyStats } from '../../sim/core-tree-driver.js';
import { rng } from './harness.js';

const hexOf = (k: Uint8Array): string => Buffer.from(k).toString('hex');

/** After a completed rekey: one shared, never-seen core key; a balanced tree of exactly the view. */
function checkView(
  t: ExecutionContext,
  c: CoreCluster,
  members: readonly MemberId[],
  stats: RekeyStats,
  seen: Set<string>,
): void {
  t.true(stats.installed, 'every member installed');
  const first = c.state(members[0]!);
  for (const m of members) {
    const s = c.state(m);
    t.is(hexOf(s.groupKey), hexOf(first.groupKey), `${m} agrees`);
    t.is(s.epoch, first.epoch);
  }
  const h = hexOf(first.groupKey);
  t.false(seen.has(h), 'core key is new');
  seen.add(h);
  t.deepEqual(membersOf(first.tree).sort(), [...members].sort());
  t.true(isAvl(first.tree));
  t.true(first.tree.height <= Math.max(1, avlHeightBound(members.length)));
}

/**
 * Forward and backward secrecy in one check: for every member x that was absent from some
 * view, everything x ever held, plus every wrap ever sent, derives no core key of a view
 * without x.
 */
function checkSecrecy(t: ExecutionContext, c: CoreCluster): void {
  let checked = 0;
  for (const [x, keys] of c.knownBy) {
    const foreign = c.history.filter((v) => !v.members.has(x));
    if (foreign.length === 0) continue;
    const closure = c.closure(keys.values());
    for (const v of foreign)
      t.false(
        closure.has(hexOf(v.key)),
        `${x} derives the key of view ${c.history.indexOf(v)} {${[...v.members].join()}}`,
      );
    checked++;
  }
  t.log(`secrecy checked for ${checked} members over ${c.wraps.length} wraps`);
}

/** Views stay within the core's size range. */
const MAX_N = 64;

interface Sequence {
  readonly n: number;
  readonly steps: number;
  readonly seed: number;
}

async function runSequence(
  t: ExecutionContext,
  suite: CipherSuite,
  { n, steps, seed }: Sequence,
): Promise<void> {
  const rand = rng(seed);
  const c = new CoreCluster(suite);
  let next = 0;
  const fresh = (): MemberId => `s${String(next++).padStart(3, '0')}`;
  let view: MemberId[] = [];
  for (let i = 0; i < n; i++) {
    const id = fresh();
    c.addNode(id);
    view.push(id);
  }
  const seen = new Set<string>();
  checkView(t, c, view, c.viewChange(view), seen);
  const pick = (): MemberId => view[Math.floor(rand() * view.length)]!;
  for (let step = 0; step < steps; step++) {
    const r = rand();
    let members: MemberId[];
    let fullRefresh = false;
    if (r < 0.25 && view.length > 2) {
      const gone = pick(); // graceful leave or crash between rekeys: the protocol sees the same
      members = view.filter((m) => m !== gone);
    } else if (r < 0.4 && view.length > 2) {
      // crash during the rekey: the view fails part-way, the next view excludes the crashed one
      const crashed = rand() < 0.5 ? [...view].sort()[0]! : pick();
      const joiner = fresh();
      c.addNode(joiner, rand() < 0.5);
      const aborted = c.viewChange([...view, joiner], {
        crashAfterDeliveries: 1 + Math.floor(rand() * 3 * view.length),
      });
      if (aborted.installed) {
        checkView(t, c, [...view, joiner], aborted, seen);
        view = [...view, joiner];
      }
      members = view.filter((m) => m !== crashed);
      if (!aborted.installed) members.push(joiner);
    } else if (r < 0.65 && view.length < MAX_N - 3) {
      const k = 1 + Math.floor(rand() * 3);
      const joiners = Array.from({ length: k }, fresh);
      for (const j of joiners) c.addNode(j, rand() < 0.8);
      members = [...view, ...joiners];
    } else if (r < 0.8 && view.length < MAX_N - 2) {
      // merge with another group that has its own tree
      const k = 2 + Math.floor(rand() * Math.min(view.length, MAX_N - 2 - view.length));
      const other = Array.from({ length: k }, fresh);
      for (const j of other) c.addNode(j);
      checkView(t, c, other, c.viewChange(other), seen);
      members = [...view, ...other];
    } else {
      members = [...view];
      fullRefresh = rand() < 0.5;
    }
    const stats = c.viewChange(members, { fullRefresh });
    checkView(t, c, members, stats, seen);
    view = members;
  }
  checkSecrecy(t, c);
}

let suite: CipherSuite;
test.before(async () => {
  suite = await loadSuite();
});

for (const seq of [
  { n: 2, steps: 14, seed: 1 },
  { n: 3, steps: 14, seed: 2 },
  { n: 5, steps: 12, seed: 3 },
  { n: 8, steps: 12, seed: 4 },
  { n: 16, steps: 10, seed: 5 },
  { n: 33, steps: 6, seed: 6 },
  { n: 64, steps: 5, seed: 7 },
]) {
  test(`random view-change sequence n=${seq.n} seed=${seq.seed}`, async (t) => {
    await runSequence(t, suite, seq);
  });
}

test('more seeds at small n', async (t) => {
  for (let seed = 100; seed < 112; seed++) await runSequence(t, suite, { n: 2 + (seed % 7), steps: 8, seed });
});

test('a joiner without a pairwise key makes the leader wait, then the rekey completes', async (t) => {
  const c = new CoreCluster(suite);
  for (const m of ['a', 'b', 'c']) c.addNode(m);
  const seen = new Set<string>();
  checkView(t, c, ['a', 'b', 'c'], c.viewChange(['a', 'b', 'c']), seen);
  c.addNode('d', false);
  const before = c.pairwiseWaits;
  checkView(t, c, ['a', 'b', 'c', 'd'], c.viewChange(['a', 'b', 'c', 'd']), seen);
  t.is(c.pairwiseWaits, before + 1);
});

test('no member switches keys without the commit; the next view starts over', async (t) => {
  const c = new CoreCluster(suite);
  const members = ['a', 'b', 'c', 'd', 'e'];
  for (const m of members) c.addNode(m);
  const seen = new Set<string>();
  checkView(t, c, members, c.viewChange(members), seen);
  const before = members.map((m) => hexOf(c.state(m).groupKey));
  const aborted = c.viewChange(members.slice(1), { withholdCommit: true });
  t.false(aborted.installed);
  t.deepEqual(
    members.map((m) => hexOf(c.state(m).groupKey)),
    before,
    'nobody switched',
  );
  checkView(t, c, members.slice(2), c.viewChange(members.slice(2)), seen);
  checkSecrecy(t, c);
});
