import test from 'ava';
import { Rng } from '../../net/sim/index.js';
import { xoshiroNext } from '../../net/sim/rng.js';

test('xoshiro128** matches the reference output for state [1,2,3,4]', (t) => {
  const s = Uint32Array.of(1, 2, 3, 4);
  const out = Array.from({ length: 4 }, () => xoshiroNext(s, 0));
  t.deepEqual(out, [11520, 0, 5927040, 70819200]);
});

test('same seed gives the same stream; different seeds differ', (t) => {
  const draw = (r: Rng): number[] => Array.from({ length: 32 }, () => r.uint32());
  t.deepEqual(draw(Rng.seeded(7)), draw(Rng.seeded(7)));
  t.notDeepEqual(draw(Rng.seeded(7)), draw(Rng.seeded(8)));
  t.notDeepEqual(draw(Rng.seeded(2 ** 40)), draw(Rng.seeded(0)));
  t.throws(() => Rng.seeded(-1), { instanceOf: RangeError });
  t.throws(() => Rng.seeded(1.5), { instanceOf: RangeError });
});

test('fork depends on the parent seed and label only, not on draws', (t) => {
  const a = Rng.seeded(99);
  const b = Rng.seeded(99);
  for (let i = 0; i < 1000; i++) b.uint32(); // b has drawn, a has not
  const fa = a.fork('node').fork(3);
  const fb = b.fork('node').fork(3);
  t.deepEqual(
    Array.from({ length: 16 }, () => fa.uint32()),
    Array.from({ length: 16 }, () => fb.uint32()),
  );
  // Different labels, numeric vs string labels, and different parents give different streams.
  const first = (r: Rng): number => r.uint32();
  const root = Rng.seeded(99);
  const values = new Set([
    first(root.fork(3)),
    first(root.fork('3')),
    first(root.fork(4)),
    first(root.fork('node')),
    first(Rng.seeded(98).fork(3)),
    first(root.fork(2 ** 50)),
  ]);
  t.is(values.size, 6);
  // The parent's own stream is unaffected by forking.
  const p1 = Rng.seeded(5);
  const p2 = Rng.seeded(5);
  p1.fork('x');
  t.is(p1.uint32(), p2.uint32());
});

test('10^5 numeric forks have distinct first outputs pairs (no 32-bit key collapse)', (t) => {
  const root = Rng.seeded(1);
  const seen = new Set<string>();
  for (let i = 0; i < 100_000; i++) {
    const r = root.fork(i);
    seen.add(`${r.uint32()}:${r.uint32()}`);
  }
  t.is(seen.size, 100_000);
});

test('int(n) is in range and unbiased (chi-square), including n > 2^32', (t) => {
  const r = Rng.seeded(3);
  const n = 7;
  const counts = new Array<number>(n).fill(0);
  const draws = 70_000;
  for (let i = 0; i < draws; i++) {
    const v = r.int(n);
    t.true(v >= 0 && v < n && Number.isInteger(v));
    counts[v]!++;
  }
  const expected = draws / n;
  const chi2 = counts.reduce((a, c) => a + (c - expected) ** 2 / expected, 0);
  t.true(chi2 < 22.5, `chi2 ${chi2} (6 d.o.f., p≈0.001 cut-off 22.46)`); // fails with probability 0.1%
  for (let i = 0; i < 1000; i++) {
    const big = r.int(2 ** 40 + 3);
    t.true(big >= 0 && big < 2 ** 40 + 3 && Number.isInteger(big));
  }
  t.is(r.int(1), 0);
  t.throws(() => r.int(0), { instanceOf: RangeError });
  t.throws(() => r.int(2.5), { instanceOf: RangeError });
  for (let i = 0; i < 1000; i++) {
    const v = r.range(-3, 4);
    t.true(v >= -3 && v < 4);
  }
});

test('next/uniform/bool/exp have the right ranges and means', (t) => {
  const r = Rng.seeded(11);
  let sum = 0;
  let trues = 0;
  let expSum = 0;
  const N = 200_000;
  for (let i = 0; i < N; i++) {
    const x = r.next();
    t.true(x >= 0 && x < 1);
    sum += x;
    if (r.bool(0.3)) trues++;
    const e = r.exp(5);
    t.true(e > 0);
    expSum += e;
  }
  t.true(Math.abs(sum / N - 0.5) < 0.005);
  t.true(Math.abs(trues / N - 0.3) < 0.005);
  t.true(Math.abs(expSum / N - 5) < 0.1);
  t.false(r.bool(0));
  t.true(r.bool(1));
  const u = r.uniform(10, 20);
  t.true(u >= 10 && u < 20);
});

test('shuffle permutes, pick picks, bytes fills', (t) => {
  const r = Rng.seeded(5);
  const arr = Array.from({ length: 100 }, (_, i) => i);
  const sh = r.shuffle([...arr]);
  t.notDeepEqual(sh, arr);
  t.deepEqual(
    [...sh].sort((a, b) => a - b),
    arr,
  );
  const picked = new Set(Array.from({ length: 200 }, () => r.pick(['a', 'b', 'c'])));
  t.deepEqual([...picked].sort(), ['a', 'b', 'c']);
  t.throws(() => r.pick([]), { instanceOf: RangeError });
  for (const n of [0, 1, 3, 4, 5, 33]) t.is(r.bytes(n).length, n);
  const b = r.bytes(4096);
  const distinct = new Set(b);
  t.true(distinct.size > 250);
});
