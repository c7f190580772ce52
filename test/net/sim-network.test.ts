import test from 'ava';
import { SimTransport, Simulator } from '../../net/sim/index.js';
import type { NodeEnv, NodeId, SimOptions } from '../../net/sim/index.js';

interface Received {
  at: number;
  to: NodeId;
  from: NodeId;
  msg: number;
  incarnation: number;
}

/** n nodes that log every message they receive; returns the sim, the log and the envs. */
function cluster(n: number, options: SimOptions<number>) {
  const sim = new Simulator<number>(options);
  const got: Received[] = [];
  const envs: NodeEnv<number>[] = [];
  for (let i = 0; i < n; i++) {
    sim.addNode((env) => {
      envs[env.id] = env;
      return {
        onMessage: (from, msg) =>
          void got.push({ at: env.now(), to: env.id, from, msg, incarnation: env.incarnation }),
      };
    });
  }
  return { sim, got, envs };
}

test('delay: fixed latency without jitter keeps per-link FIFO; jitter stays in range', (t) => {
  const { sim, got } = cluster(2, { seed: 1, link: { latencyMs: 5 } });
  for (let i = 0; i < 100; i++) sim.send(0, 1, i);
  sim.run();
  t.deepEqual(
    got.map((g) => g.msg),
    Array.from({ length: 100 }, (_, i) => i),
  );
  t.true(got.every((g) => g.at === 5));

  const j = cluster(2, { seed: 1, link: { latencyMs: 5, jitterMs: 10 } });
  for (let i = 0; i < 1000; i++) j.sim.send(0, 1, i);
  j.sim.run();
  t.is(j.got.length, 1000);
  t.true(j.got.every((g) => g.at >= 5 && g.at < 15));
  const inOrder = j.got.every((g, i) => g.msg === i);
  t.false(inOrder, 'uniform jitter reorders');
});

test('exponential jitter has the configured mean', (t) => {
  const { sim, got } = cluster(2, { seed: 2, link: { latencyMs: 1, jitterMs: 4, jitter: 'exponential' } });
  const N = 20_000;
  for (let i = 0; i < N; i++) sim.send(0, 1, i);
  sim.run();
  const mean = got.reduce((a, g) => a + g.at, 0) / N;
  t.true(Math.abs(mean - 5) < 0.15, `mean delay ${mean}`);
});

test('explicit reorder holds messages back on a jitter-free link', (t) => {
  const { sim, got } = cluster(2, { seed: 3, link: { latencyMs: 1, reorder: 0.2, reorderDelayMs: 10 } });
  const N = 5000;
  for (let i = 0; i < N; i++) sim.after(i * 0.1, () => sim.send(0, 1, i));
  sim.run();
  t.is(got.length, N);
  const late = got.filter((g) => g.at - g.msg * 0.1 > 1 + 1e-9).length;
  t.true(Math.abs(late / N - 0.2) < 0.02, `held back ${late / N}`);
  t.false(
    got.every((g, i) => g.msg === i),
    'some messages were overtaken',
  );
});

test('loss rate is statistically near its setting, and counted', (t) => {
  const { sim, got } = cluster(2, { seed: 4, link: { loss: 0.25 } });
  const N = 40_000;
  for (let i = 0; i < N; i++) sim.send(0, 1, i);
  sim.run();
  const rate = 1 - got.length / N;
  // σ = sqrt(p(1-p)/N) ≈ 0.0022: ±5σ.
  t.true(Math.abs(rate - 0.25) < 0.011, `loss ${rate}`);
  const st = sim.stats();
  t.is(st.sent, N);
  t.is(st.dropped.loss + st.delivered, N);
});

test('duplication delivers extra copies at its rate', (t) => {
  const { sim, got } = cluster(2, { seed: 5, link: { duplicate: 0.1, jitterMs: 3 } });
  const N = 20_000;
  for (let i = 0; i < N; i++) sim.send(0, 1, i);
  sim.run();
  const extra = got.length - N;
  t.true(Math.abs(extra / N - 0.1) < 0.01, `dup ${extra / N}`);
  t.is(sim.stats().duplicated, extra);
  t.is(new Set(got.map((g) => g.msg)).size, N, 'every message arrived at least once');
});

test('per-link parameters override the default for one direction only', (t) => {
  const { sim, got } = cluster(3, { seed: 6, link: { latencyMs: 2 } });
  sim.setLink(0, 1, { latencyMs: 50 });
  t.is(sim.linkParams(0, 1).latencyMs, 50);
  t.is(sim.linkParams(1, 0).latencyMs, 2);
  sim.send(0, 1, 1);
  sim.send(1, 0, 2);
  sim.send(0, 2, 3);
  sim.run();
  t.deepEqual(
    got.map((g) => [g.msg, g.at]),
    [
      [2, 2],
      [3, 2],
      [1, 50],
    ],
  );
  sim.setLink(0, 1, null);
  t.is(sim.linkParams(0, 1).latencyMs, 2);
  sim.setDefaultLink({ loss: 1 });
  sim.send(2, 1, 9);
  sim.run();
  t.is(got.length, 3);
  sim.resetLinks();
  t.is(sim.linkParams(2, 1).loss, 0);
});

test('partition blocks exactly the cross-component traffic', (t) => {
  const n = 7;
  const { sim, got } = cluster(n, { seed: 7 });
  const groups = [
    [0, 1, 2],
    [3, 4],
  ]; // 5 and 6 form the third component
  sim.partition(groups);
  const comp = (id: number): number => groups.findIndex((g) => g.includes(id));
  for (let a = 0; a < n; a++) for (let b = 0; b < n; b++) sim.send(a, b, a * 100 + b);
  sim.run();
  const delivered = new Set(got.map((g) => g.msg));
  for (let a = 0; a < n; a++) {
    for (let b = 0; b < n; b++) {
      t.is(delivered.has(a * 100 + b), comp(a) === comp(b), `${a}->${b}`);
      t.is(sim.connected(a, b), comp(a) === comp(b));
    }
  }
  t.is(sim.stats().dropped.partition, n * n - delivered.size);
  const late = sim.addNode(() => ({ onMessage: () => {} }));
  t.true(sim.connected(late, 5), 'a node added while partitioned joins the nodes in no group');
  t.false(sim.connected(late, 0));
  sim.isolate(1);
  t.false(sim.connected(0, 1));
  t.true(sim.connected(0, 2));
  sim.heal();
  for (let a = 0; a <= n; a++) for (let b = 0; b <= n; b++) t.true(sim.connected(a, b));
});

test('a link must be open both when a message is sent and when it arrives', (t) => {
  const { sim, got } = cluster(2, { seed: 8, link: { latencyMs: 10 } });
  sim.send(0, 1, 1); // arrives at 10, inside the partition: lost
  sim.schedule(3, () => sim.send(0, 1, 3)); // arrives at 13, after the heal: delivered
  sim.schedule(5, () => sim.isolate(1));
  sim.schedule(7, () => sim.send(0, 1, 2)); // sent during the partition: lost although it would arrive after the heal
  sim.schedule(12, () => sim.heal());
  sim.run();
  t.deepEqual(
    got.map((g) => [g.msg, g.at]),
    [[3, 13]],
  );
  t.is(sim.stats().dropped.partition, 2);
});

test('asymmetric block stops one direction only', (t) => {
  const { sim, got } = cluster(3, { seed: 9 });
  sim.block(0, 1);
  t.false(sim.connected(0, 1));
  t.true(sim.connected(1, 0));
  sim.send(0, 1, 1);
  sim.send(1, 0, 2);
  sim.send(0, 2, 3);
  sim.send(2, 1, 4);
  sim.run();
  t.deepEqual(got.map((g) => g.msg).sort(), [2, 3, 4]);
  t.is(sim.stats().dropped.blocked, 1);
  sim.unblock(0, 1);
  sim.send(0, 1, 5);
  sim.run();
  t.is(got.at(-1)?.msg, 5);
});

test('crash drops in-flight messages and timers; restart gives a new incarnation and fresh state', (t) => {
  const sim = new Simulator<number>({ seed: 10, link: { latencyMs: 10 } });
  const built: number[] = [];
  const got: Received[] = [];
  const fired: string[] = [];
  const stopped: number[] = [];
  const envs: NodeEnv<number>[] = [];
  for (let i = 0; i < 2; i++) {
    sim.addNode((env) => {
      envs[env.id] = env;
      built.push(env.id);
      let count = 0; // per-incarnation state
      env.setTimer(15, () => void fired.push(`${env.id}/${env.incarnation}@${env.now()}`));
      return {
        onMessage: (from, msg) => {
          count++;
          got.push({
            at: env.now(),
            to: env.id,
            from,
            msg: msg * 1000 + count,
            incarnation: env.incarnation,
          });
        },
        onStop: () => void stopped.push(env.incarnation),
      };
    });
  }
  const old = envs[1]!;
  sim.send(0, 1, 1); // arrives at 10, after the crash
  sim.schedule(5, () => sim.crash(1));
  sim.schedule(6, () => sim.send(0, 1, 2)); // sent to a crashed node: lost even though it restarts at 8
  sim.schedule(8, () => sim.restart(1));
  sim.schedule(20, () => sim.send(0, 1, 3));
  sim.run();
  t.deepEqual(built, [0, 1, 1]);
  t.deepEqual(stopped, [0]);
  t.false(old.alive);
  t.true(envs[1]!.alive);
  t.is(sim.incarnationOf(1), 1);
  t.deepEqual(got, [{ at: 30, to: 1, from: 0, msg: 3001, incarnation: 1 }]);
  // Node 0's timer fires; node 1's first-incarnation timer (due at 15) died with it; the new one fires at 8+15.
  t.deepEqual(fired, ['0/0@15', '1/1@23']);
  t.is(sim.stats().dropped.crashed, 2);
  // A dead incarnation's sends are refused and counted; its timers never fire.
  t.false(old.send(0, 9));
  old.setTimer(1, () => void fired.push('zombie'));
  sim.run();
  t.is(sim.stats().dropped.senderDown, 1);
  t.false(fired.includes('zombie'));
  t.true(sim.crash(1));
  t.false(sim.crash(1), 'double crash is a no-op');
  t.true(sim.isCrashed(1));
});

test('pause defers timers and messages, resume delivers them in original order', (t) => {
  const sim = new Simulator<number>({ seed: 11, link: { latencyMs: 1 } });
  const events: string[] = [];
  for (let i = 0; i < 2; i++) {
    sim.addNode((env) => {
      if (env.id === 1) env.setTimer(3, (arg) => void events.push(`timer${arg}@${env.now()}`), 7);
      return { onMessage: (_from, msg) => void events.push(`msg${msg}@${env.now()}`) };
    });
  }
  sim.schedule(0.5, () => sim.pause(1));
  sim.schedule(1, () => sim.send(0, 1, 1)); // arrives 2, deferred
  sim.schedule(4, () => sim.send(0, 1, 2)); // arrives 5, deferred
  sim.schedule(10, () => sim.resume(1));
  sim.runUntil(9);
  t.deepEqual(events, [], 'nothing happens at a paused node');
  t.true(sim.isPaused(1));
  sim.run();
  t.deepEqual(events, ['msg1@10', 'timer7@10', 'msg2@10']);
  t.is(sim.stats().delivered, 2);
});

test('crash while paused drops what was deferred', (t) => {
  const { sim, got } = cluster(2, { seed: 12 });
  sim.pause(1);
  sim.send(0, 1, 1);
  sim.runFor(5);
  sim.crash(1);
  t.false(sim.resume(1));
  sim.restart(1);
  sim.run();
  t.deepEqual(got, []);
  t.is(sim.stats().dropped.crashed, 1);
});

test('SimTransport implements Transport<number> over the simulator', async (t) => {
  const sim = new Simulator<Uint8Array>({ seed: 13 });
  const got: string[] = [];
  const transports: SimTransport[] = [];
  for (let i = 0; i < 2; i++) {
    sim.addNode((env) => {
      const tr = new SimTransport(env, 16);
      tr.setHandler({ onMessage: (from, data) => void got.push(`${env.id}<-${from}:${data.join(',')}`) });
      transports[env.id] = tr;
      return tr;
    });
  }
  const [a, b] = transports as [SimTransport, SimTransport];
  t.is(a.local, 0);
  t.true(a.send(1, Uint8Array.of(1, 2)));
  t.throws(() => a.send(1, new Uint8Array(17)), { instanceOf: RangeError });
  sim.run();
  t.deepEqual(got, ['1<-0:1,2']);
  await b.close();
  t.true(a.send(1, Uint8Array.of(3)));
  sim.run();
  t.is(got.length, 1, 'closed transport receives nothing');
  t.false(b.send(0, Uint8Array.of(4)));
  sim.crash(0);
  t.false(a.send(1, Uint8Array.of(5)), 'crashed incarnation cannot send');
});
