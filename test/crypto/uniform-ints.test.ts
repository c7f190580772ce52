import test from 'ava';
import { CryptoError, UniformInts } from '../../crypto/index.js';

test('UniformInts: values stay in [0, n) and every value is about equally likely', (t) => {
  const u = new UniformInts();
  // n = 3 does not divide 2^32: without rejection the low values would be favoured (slightly);
  // the chi-square test below is a coarse check that nothing grosser is wrong.
  for (const n of [1, 2, 3, 7, 1000]) {
    const draws = 20_000 * Math.min(n, 10);
    const counts = new Map<number, number>();
    for (let k = 0; k < draws; k++) {
      const v = u.int(n);
      t.true(Number.isInteger(v) && v >= 0 && v < n, `n=${n}: ${v}`);
      counts.set(v, (counts.get(v) ?? 0) + 1);
    }
    if (n === 1 || n === 1000) continue;
    t.is(counts.size, n);
    const expected = draws / n;
    let chi2 = 0;
    for (const c of counts.values()) chi2 += (c - expected) ** 2 / expected;
    // 99.9th percentile of chi-square with n − 1 ≤ 6 degrees of freedom is < 23.
    t.true(chi2 < 23, `n=${n}: chi2 ${chi2.toFixed(1)}`);
  }
  t.is(u.int(2 ** 32) >= 0, true);
});

test('UniformInts: two instances do not repeat each other (drawn from the CSPRNG)', (t) => {
  const a = new UniformInts();
  const b = new UniformInts();
  const xs = Array.from({ length: 64 }, () => a.int(2 ** 32));
  const ys = Array.from({ length: 64 }, () => b.int(2 ** 32));
  t.notDeepEqual(xs, ys);
});

test('UniformInts: a bound outside 1..2^32 is refused', (t) => {
  const u = new UniformInts();
  for (const n of [0, -1, 1.5, 2 ** 32 + 1, Number.NaN])
    t.throws(() => u.int(n), { instanceOf: CryptoError });
});
