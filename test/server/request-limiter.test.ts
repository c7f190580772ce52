/** The per-leaf request budget (request-limiter.ts): bursts, refill, flood detection, bounded table. */
import test from 'ava';
import { RequestLimiter, TokenBucket } from '../../server/index.js';

test('a burst is served, then one request per refill; a flood through a burst of refusals is abusive', (t) => {
  const l = new RequestLimiter({ perSec: 10, burst: 3 });
  t.deepEqual(
    [0, 0, 0].map((now) => l.take('a', now)),
    ['ok', 'ok', 'ok'],
  );
  t.deepEqual(
    [0, 0, 0].map((now) => l.take('a', now)),
    ['refused', 'refused', 'refused'],
  );
  t.is(l.take('a', 0), 'abusive', 'a fourth refusal in a row without waiting');
  t.is(l.take('b', 0), 'ok', 'another leaf has its own bucket');
  t.is(l.take('a', 100), 'ok', '100 ms at 10/s: one token');
  t.is(l.take('a', 100), 'refused', 'a served request resets the run of refusals');
  t.deepEqual(
    [10_000, 10_000, 10_000, 10_000].map((now) => l.take('a', now)),
    ['ok', 'ok', 'ok', 'refused'],
  );
});

test('a clock step back refills nothing; the table keeps at most maxLeaves buckets', (t) => {
  const l = new RequestLimiter({ perSec: 1, burst: 1 }, 2);
  t.is(l.take('a', 5000), 'ok');
  t.is(l.take('a', 0), 'refused');
  t.not(l.take('a', 5500), 'ok', 'time counts from the newest instant seen');
  l.take('b', 0);
  l.take('c', 0);
  t.is(l.size, 2);
  t.throws(() => new RequestLimiter({ perSec: 0, burst: 1 }), { instanceOf: RangeError });
  t.throws(() => new RequestLimiter({ perSec: 1, burst: 0 }), { instanceOf: RangeError });
});

test('a token bucket: take only what is there, spend into debt, refill from the debt', (t) => {
  const b = new TokenBucket(1000, 500, 0); // 1,000 a second, holds 500, starts full
  t.true(b.take(500, 0));
  t.false(b.take(1, 0));
  t.is(b.tokens(100), 100);
  b.spend(400, 100); // a cost known after the fact
  t.is(b.tokens(100), -300);
  t.false(b.take(1, 250));
  t.is(b.tokens(400), 0, 'the debt is paid back first');
  t.is(b.tokens(10_000), 500, 'never above capacity');
  t.is(b.tokens(5_000), 500, 'a step back refills nothing');
});
