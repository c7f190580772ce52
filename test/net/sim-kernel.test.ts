import test from 'ava';
import { EventLimitError, Simulator } from '../../net/sim/index.js';
import type { NodeEnv } from '../../net/sim/index.js';
import { EventHeap } from '../../net/sim/event-heap.js';
import { Rng } from '../../net/sim/rng.js';

/** A node that records what it sees; the harness drives it through its env. */
function recorder(log: string[]): (env: NodeEnv<number>) => { onMessage(from: number, m: number): void } {
  return (env) => ({ onMessage: (from, m) => log.push(`${env.now()} ${env.id}<-${from}:${m}`) });
}

test('heap pops in (time, insertion) order under random pushes and pops', (t) => {
  const h = new EventHeap();
  const r = Rng.seeded(1);
  const ref: { time: number; seq: number; slot: number }[] = [];
  let seq = 0;
  for (let round = 0; round < 20_000; round++) {
    if (ref.length === 0 || r.bool(0.6)) {
      const time = r.int(50); // many ties
      h.push(time, seq);
      ref.push({ time, seq, slot: seq });
      seq++;
    } else {
      ref.sort((a, b) => a.time - b.time || a.seq - b.seq);
      const want = ref.shift()!;
      t.is(h.peekTime(), want.time);
      if (h.pop() !== want.slot) return t.fail(`round ${round}: wrong slot`);
    }
  }
  t.is(h.size, ref.length);
});

test('timers fire in time order, ties in creation order; args are passed', (t) => {
  const sim = new Simulator<number>({ seed: 1 });
  const fired: string[] = [];
  sim.addNode((env) => {
    const fn = (arg: number): void => void fired.push(`${env.now()}:${arg}`);
    env.setTimer(5, fn, 1);
    env.setTimer(2, fn, 2);
    env.setTimer(5, fn, 3);
    env.setTimer(0, fn, 4);
    return { onMessage: () => {} };
  });
  const res = sim.run();
  t.deepEqual(fired, ['0:4', '2:2', '5:1', '5:3']);
  t.is(res.stop, 'idle');
  t.is(sim.now, 5);
  t.is(sim.stats().timersFired, 4);
});

test('cancelTimer cancels only pending timers of the same node', (t) => {
  const sim = new Simulator<number>({ seed: 1 });
  const fired: number[] = [];
  const envs: NodeEnv<number>[] = [];
  for (let i = 0; i < 2; i++)
    sim.addNode((env) => {
      envs.push(env);
      return { onMessage: () => {} };
    });
  const [a, b] = envs as [NodeEnv<number>, NodeEnv<number>];
  const fn = (arg: number): void => void fired.push(arg);
  const h1 = a.setTimer(10, fn, 1);
  const h2 = a.setTimer(20, fn, 2);
  t.false(b.cancelTimer(h1), 'another node cannot cancel it');
  t.true(a.cancelTimer(h1));
  t.false(a.cancelTimer(h1), 'second cancel is a no-op');
  sim.runUntil(25);
  t.deepEqual(fired, [2]);
  t.false(a.cancelTimer(h2), 'a fired timer cannot be cancelled');
  // A stale handle must not cancel a new timer that reuses the same slot.
  const h3 = a.setTimer(1, fn, 3);
  t.false(a.cancelTimer(h2));
  t.false(a.cancelTimer(-1));
  t.false(a.cancelTimer(1.5));
  sim.run();
  t.deepEqual(fired, [2, 3]);
  t.not(h3, h2);
  t.is(sim.stats().timersCancelled, 1);
});

test('schedule/after/cancel, runUntil sets the clock, step and stop', (t) => {
  const sim = new Simulator<number>({ seed: 1 });
  const seen: number[] = [];
  sim.schedule(10, () => seen.push(sim.now));
  const h = sim.after(15, () => seen.push(-1));
  sim.schedule(20, () => {
    seen.push(sim.now);
    sim.stop();
  });
  sim.schedule(30, () => seen.push(sim.now));
  t.true(sim.cancel(h));
  let r = sim.runUntil(12);
  t.deepEqual(r, { stop: 'time', events: 1, now: 12 });
  r = sim.run();
  t.is(r.stop, 'stopped');
  t.is(sim.now, 20);
  t.deepEqual(seen, [10, 20]);
  t.true(sim.step());
  t.deepEqual(seen, [10, 20, 30]);
  t.false(sim.step());
  t.throws(() => sim.schedule(5, () => {}), { instanceOf: RangeError });
  t.throws(() => sim.runUntil(1), { instanceOf: RangeError });
  r = sim.runFor(100);
  t.is(r.now, 130);
});

test('stopWhen stops on the first event after which the predicate holds', (t) => {
  const log: string[] = [];
  const sim = new Simulator<number>({ seed: 1, link: { latencyMs: 1 } });
  sim.addNode(recorder(log));
  sim.addNode(recorder(log));
  for (let i = 0; i < 10; i++) sim.send(0, 1, i);
  const r = sim.run({ stopWhen: () => log.length === 4 });
  t.is(r.stop, 'predicate');
  t.is(log.length, 4);
  t.is(sim.pendingEvents, 6);
});

test('the event budget stops a zero-delay livelock with EventLimitError', (t) => {
  const sim = new Simulator<number>({ seed: 1, link: { latencyMs: 0 }, maxEventsPerRun: 10_000 });
  for (let i = 0; i < 2; i++) {
    sim.addNode((env) => ({ onMessage: (from, m) => env.send(from, m + 1) }));
  }
  sim.send(0, 1, 0);
  const err = t.throws(() => sim.run(), { instanceOf: EventLimitError });
  t.is(err?.limit, 10_000);
  t.is(sim.now, 0, 'virtual time never advanced');
  // A per-call budget overrides the default.
  t.throws(() => sim.run({ maxEvents: 10 }), { instanceOf: EventLimitError });
  t.is(sim.stats().events, 10_010);
});

test('a periodic timer with run() and no end trips the budget, runUntil does not', (t) => {
  const sim = new Simulator<number>({ seed: 1, maxEventsPerRun: 1000 });
  sim.addNode((env) => {
    const tick = (): void => void env.setTimer(10, tick);
    tick();
    return { onMessage: () => {} };
  });
  t.is(sim.runUntil(5000).events, 500);
  t.throws(() => sim.run(), { instanceOf: EventLimitError });
});

test('invalid ids and delays are refused', (t) => {
  const sim = new Simulator<number>({ seed: 1 });
  const envs: NodeEnv<number>[] = [];
  sim.addNode((env) => {
    envs.push(env);
    return { onMessage: () => {} };
  });
  t.throws(() => envs[0]!.send(1, 0), { instanceOf: RangeError });
  t.throws(() => envs[0]!.setTimer(-1, () => {}), { instanceOf: RangeError });
  t.throws(() => envs[0]!.setTimer(NaN, () => {}), { instanceOf: RangeError });
  t.throws(() => envs[0]!.setTimer(1, () => {}, 0.5), { instanceOf: RangeError });
  t.throws(() => envs[0]!.setTimer(1, () => {}, 2 ** 31), { instanceOf: RangeError });
  t.throws(() => sim.crash(3), { instanceOf: RangeError });
  t.throws(() => sim.partition([[0], [0]]), { instanceOf: RangeError });
  t.throws(() => sim.setDefaultLink({ loss: 2 }), { instanceOf: RangeError });
  t.throws(() => new Simulator({ seed: 1, link: { latencyMs: -1 } }), { instanceOf: RangeError });
});
