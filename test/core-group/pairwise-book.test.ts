/**
 * Pairwise renewal races (the bug behind `--renewals` seeds 251, 96, 300): a pairwise key is a
 * function of both ends' offers, so it changes when either end renews, and the ends learn of a
 * renewal at different times. Whatever key one end wraps under must open at the other end until
 * one of the two offers it came from expires.
 */
import test from 'ava';
import { loadSuite } from '../../crypto/index.js';
import { MAX_RETIRED_PROCESSES, PairwiseBook } from '../../core-group/index.js';

const LIFETIME = 4_000;

/** Books for `a` and `b` with known identity keys; `make` builds another process of either. */
async function pair(): Promise<{ a: PairwiseBook; b: PairwiseBook; make: (name: string) => PairwiseBook }> {
  const suite = await loadSuite();
  const seeds = new Map(['a', 'b'].map((m) => [m, suite.randomBytes(32)]));
  const make = (name: string): PairwiseBook =>
    new PairwiseBook(
      {
        suite,
        identitySeed: seeds.get(name)!,
        verifyKeyOf: (m) => (seeds.has(m) ? suite.ed25519PublicKey(seeds.get(m)!) : undefined),
        random: () => 0,
        pairwiseLifetimeMs: LIFETIME,
        pairwiseRenewBeforeMs: 1_500,
        pairwiseJitterMs: 1_000,
      },
      name,
    );
  return { a: make('a'), b: make('b'), make };
}

test('two renewals in a row (one per end) keep the key a late wrap names', async (t) => {
  const { a, b } = await pair();
  b.accept(a.offer(0), 1);
  a.accept(b.offer(0), 1);
  const k11 = b.ring.current('a')!; // b wraps for a under it; the wrap is delivered late
  t.deepEqual(a.ring.current('b')!.key, k11.key);
  // b renews (due at 4000 − 1500 = 2500); a learns it, then renews itself; b learns that.
  const b2 = b.offer(2_500);
  t.is(b2.epoch, 2);
  a.accept(b2, 2_510);
  const a2 = a.offer(2_600);
  t.is(a2.epoch, 2);
  b.accept(a2, 2_610);
  t.deepEqual(a.ring.current('b')!.key, b.ring.current('a')!.key, 'both ends on the newest key');
  // Before the fix only one previous key was kept: k(a1,b1) was wiped by a's own renewal.
  t.deepEqual(a.byId('b', k11.id)?.key, k11.key, 'the late wrap still opens');
  // Once an offer it came from expires, the key is gone (forward secrecy is bounded by lifetime).
  a.offer(LIFETIME + 1);
  t.is(a.byId('b', k11.id), undefined);
});

test('concurrent renewals: each end understands a wrap made before it saw the other renewal', async (t) => {
  const { a, b } = await pair();
  b.accept(a.offer(0), 1);
  a.accept(b.offer(0), 1);
  // Both renew before either offer crosses: a wraps under k(a2, b1), b under k(a1, b2).
  const a2 = a.offer(2_500);
  const b2 = b.offer(2_500);
  const fromA = a.ring.current('b')!;
  const fromB = b.ring.current('a')!;
  t.notDeepEqual(fromA.id, fromB.id);
  a.accept(b2, 2_505);
  b.accept(a2, 2_505);
  // Each end derived the combination the other one wrapped under (its previous secret is kept).
  t.deepEqual(b.byId('a', fromA.id)?.key, fromA.key);
  t.deepEqual(a.byId('b', fromB.id)?.key, fromB.key);
  // And both now agree on k(a2, b2).
  t.deepEqual(a.ring.current('b')!.key, b.ring.current('a')!.key);
});

test('a restarted peer (epochs start over, later expiry) replaces the dead process; its keys stay findable', async (t) => {
  const { a, b, make } = await pair();
  b.accept(a.offer(0), 1);
  a.accept(b.offer(0), 1);
  const old = a.ring.current('b')!;
  const oldKey = old.key.slice();
  t.false(a.accept(b.offer(0), 2), 'the same offer again is not news');
  const reborn = make('b'); // a new process of b: epoch 1 again, expiring later
  const offer = reborn.offer(1_000);
  t.is(offer.epoch, 1);
  t.true(a.accept(offer, 1_001));
  reborn.accept(a.offer(1_001), 1_002);
  t.deepEqual(a.ring.current('b')!.key, reborn.ring.current('a')!.key);
  // Frames the dead process sealed may still be delivered by the survivors of its view.
  t.deepEqual(a.byId('b', old.id)?.key, oldKey);
  // A replayed offer of the dead process is not taken for news.
  t.false(a.accept(b.offer(0), 1_003));
});

test('keys of every recent dead process stay findable until their offers expire (seed 5593)', async (t) => {
  const { a, b, make } = await pair();
  b.accept(a.offer(0), 1);
  a.accept(b.offer(0), 1);
  const first = a.ring.current('b')!;
  const firstKey = first.key.slice();
  // b restarts twice before a's flush of the first process's view delivers its last message.
  for (const at of [300, 600]) {
    const next = make('b');
    t.true(a.accept(next.offer(at), at + 1));
  }
  // Before the fix only the latest dead process was kept: this key was wiped at the second restart.
  t.deepEqual(a.byId('b', first.id)?.key, firstKey, "the first process's late message still opens");
  // Past the first process's offer expiry (it was issued at 0) its keys are gone.
  a.offer(LIFETIME + 1);
  t.is(a.byId('b', first.id), undefined);
});

test('a crash loop keeps at most MAX_RETIRED_PROCESSES dead processes per name', async (t) => {
  const { a, b, make } = await pair();
  b.accept(a.offer(0), 1);
  a.accept(b.offer(0), 1);
  const ids = [a.ring.current('b')!.id];
  for (let i = 1; i <= MAX_RETIRED_PROCESSES + 1; i++) {
    t.true(a.accept(make('b').offer(i * 10), i * 10 + 1));
    ids.push(a.ring.current('b')!.id);
  }
  const found = ids.map((id) => a.byId('b', id) !== undefined);
  // The current process and the newest MAX_RETIRED_PROCESSES dead ones; the oldest is wiped.
  t.deepEqual(found, [false, ...Array<boolean>(MAX_RETIRED_PROCESSES + 1).fill(true)]);
});
