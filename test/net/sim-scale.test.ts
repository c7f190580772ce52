import test from 'ava';
import { runWorkload } from './sim-scale-workload.js';

test('10^5 nodes exchange 10^6 messages; every count adds up', (t) => {
  const nodes = 100_000;
  const hops = 10;
  const r = runWorkload({ nodes, hops, seed: 1 });
  const total = nodes * hops;
  t.is(r.stats.sent, total);
  t.is(r.stats.delivered, total);
  t.is(r.received, total);
  t.is(r.stats.timersFired, nodes);
  t.is(r.stats.events, total + nodes);
  t.deepEqual(r.stats.dropped, { loss: 0, partition: 0, blocked: 0, crashed: 0, senderDown: 0 });
  t.log(`wall ${r.wallMs.toFixed(0)} ms, ${((r.stats.events / r.wallMs) * 1000).toFixed(0)} events/s`);
});

test('with loss, sent = delivered + lost and tokens die out', (t) => {
  const r = runWorkload({ nodes: 10_000, hops: 20, seed: 2, link: { latencyMs: 1, loss: 0.1 } });
  t.is(r.stats.sent, r.stats.delivered + r.stats.dropped.loss);
  t.true(r.stats.sent < 10_000 * 20);
  const lossRate = r.stats.dropped.loss / r.stats.sent;
  t.true(Math.abs(lossRate - 0.1) < 0.01, `loss ${lossRate}`);
  // Replays exactly.
  t.is(runWorkload({ nodes: 10_000, hops: 20, seed: 2, link: { latencyMs: 1, loss: 0.1 } }).hash, r.hash);
});
