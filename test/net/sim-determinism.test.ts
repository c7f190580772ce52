import test from 'ava';
import fc from 'fast-check';
import { applyFaultPlan, describeFaultPlan, planFaults, Simulator } from '../../net/sim/index.js';
import type { FaultKnobs, NodeEnv } from '../../net/sim/index.js';

const NODES = 9;
const KNOBS: FaultKnobs = {
  nodes: NODES,
  startMs: 200,
  quietAtMs: 8_000,
  meanGapMs: 150,
  minEpisodeMs: 50,
  maxEpisodeMs: 900,
  weights: { crash: 2, pause: 2, isolate: 1, split: 1, groups: 1, asymmetric: 1, lossy: 2, slowLink: 1 },
  maxLoss: 0.3,
  maxDuplicate: 0.1,
  maxJitterMs: 20,
  maxReorder: 0.2,
};

/**
 * A chatty toy protocol: every node gossips random bytes to random peers on a jittered timer,
 * replies to some messages, and keeps per-incarnation counters. Exercises every kernel path.
 */
function chatter(env: NodeEnv<Uint8Array>) {
  let received = 0;
  const tick = (round: number): void => {
    const to = env.rng.int(NODES);
    env.send(to, env.rng.bytes(1 + env.rng.int(24)));
    const h = env.setTimer(env.rng.exp(20), () => env.trace('stray timer'));
    if (env.rng.bool(0.9)) env.cancelTimer(h);
    env.setTimer(5 + env.rng.exp(15), tick, round + 1);
  };
  env.setTimer(env.rng.uniform(0, 10), tick, 0);
  return {
    onMessage(from: number, msg: Uint8Array): void {
      received++;
      if ((msg[0] ?? 0) < 64) env.send(from, Uint8Array.of(received & 0xff, env.incarnation));
      if (received % 50 === 0) env.trace(`received ${received}`);
    },
  };
}

function runScenario(seed: number, traceRing = 500) {
  const sim = new Simulator<Uint8Array>({
    seed,
    link: { latencyMs: 2, jitterMs: 3, jitter: 'exponential', loss: 0.01 },
    traceRing,
  });
  for (let i = 0; i < NODES; i++) sim.addNode(chatter);
  const plan = planFaults(sim.forkRng('faults'), KNOBS);
  applyFaultPlan(sim, plan);
  sim.runUntil(10_000);
  return {
    hash: sim.traceHash(),
    text: sim.traceText(),
    stats: sim.stats(),
    plan: describeFaultPlan(plan),
    sim,
  };
}

test('same seed: byte-identical trace, hash and stats with every fault kind active', (t) => {
  const a = runScenario(1234);
  const b = runScenario(1234);
  t.is(a.hash, b.hash);
  t.is(a.text, b.text);
  t.deepEqual(a.stats, b.stats);
  t.is(a.plan, b.plan);
  // The scenario really exercised the fault paths.
  const s = a.stats;
  t.true(s.delivered > 5000, `delivered ${s.delivered}`);
  for (const cause of ['loss', 'partition', 'blocked', 'crashed'] as const) {
    t.true(s.dropped[cause] > 0, `some ${cause} drops`);
  }
  t.true(s.duplicated > 0);
  for (const kind of [
    'crash',
    'restart',
    'pause',
    'resume',
    'isolate',
    'partition',
    'block',
    'heal',
    'default-link',
    'link',
  ]) {
    t.true(a.plan.includes(` ${kind} `), `plan has ${kind}`);
  }
  t.regex(a.text, /deliver/);
  t.is(a.text.split('\n').length, 501, '500 kept lines + the elision line');
});

test('the hash does not depend on how many trace lines are kept', (t) => {
  const hashOnly = runScenario(1234, 0);
  t.is(hashOnly.hash, runScenario(1234, 10).hash);
  t.regex(hashOnly.text, /^… \d+ earlier events not kept$/);
});

test('different seeds give different runs', (t) => {
  const hashes = new Set([1, 2, 3, 4].map((seed) => runScenario(seed).hash));
  t.is(hashes.size, 4);
});

test('after quietAt every node is up and connected and links are back to default', (t) => {
  const { sim } = runScenario(77);
  for (let a = 0; a < NODES; a++) {
    t.true(sim.isUp(a));
    for (let b = 0; b < NODES; b++) {
      t.true(sim.connected(a, b));
      t.deepEqual(sim.linkParams(a, b), sim.linkParams(0, 1));
    }
  }
  t.is(sim.linkParams(0, 1).loss, 0.01);
});

test('fault plans respect maxDown, pair every start with an end before quiet, and replay', (t) => {
  for (let seed = 0; seed < 30; seed++) {
    const sim = new Simulator<Uint8Array>({ seed });
    const plan = planFaults(sim.forkRng('faults'), { ...KNOBS, maxDown: 2 });
    t.is(
      describeFaultPlan(planFaults(sim.forkRng('faults'), { ...KNOBS, maxDown: 2 })),
      describeFaultPlan(plan),
    );
    const down = new Set<number>();
    let maxConcurrent = 0;
    let last = -Infinity;
    for (const a of plan.actions) {
      t.true(a.at >= last && a.at <= KNOBS.quietAtMs && a.at >= KNOBS.startMs!);
      last = a.at;
      if (a.kind === 'crash' || a.kind === 'pause') {
        t.false(down.has(a.node), 'one node fault at a time per node');
        down.add(a.node);
      } else if (a.kind === 'restart' || a.kind === 'resume') {
        t.true(down.delete(a.node));
      }
      maxConcurrent = Math.max(maxConcurrent, down.size);
    }
    t.is(down.size, 0, 'every crash/pause ended');
    t.true(maxConcurrent <= 2);
  }
});

test('a node stream does not change when another node is added', (t) => {
  const draws = (nodes: number): number[] => {
    const sim = new Simulator<number>({ seed: 5 });
    const out: number[] = [];
    for (let i = 0; i < nodes; i++) {
      sim.addNode((env) => {
        if (env.id === 1) for (let k = 0; k < 8; k++) out.push(env.rng.uint32());
        else for (let k = 0; k < 100; k++) env.rng.uint32(); // others draw freely
        return { onMessage: () => {} };
      });
    }
    return out;
  };
  t.deepEqual(draws(2), draws(5));
  // Restart gives a different, reproducible stream, and the dead incarnation's stream is
  // detached: drawing from it does not perturb the new incarnation.
  const afterRestart = (drawFromDead: boolean): number[] => {
    const sim = new Simulator<number>({ seed: 5 });
    const envs: NodeEnv<number>[] = [];
    sim.addNode((env) => {
      envs.push(env);
      return { onMessage: () => {} };
    });
    const dead = envs[0]!.rng;
    const out = [dead.uint32()];
    sim.restart(0);
    if (drawFromDead) for (let k = 0; k < 10; k++) dead.uint32();
    for (let k = 0; k < 4; k++) out.push(envs[1]!.rng.uint32());
    return out;
  };
  const clean = afterRestart(false);
  t.deepEqual(afterRestart(true), clean);
  t.not(clean[0], clean[1]);
});

test("a sender's network fate does not change when other nodes send", (t) => {
  const delivered = (extraSenders: number): number[] => {
    const sim = new Simulator<number>({ seed: 6, link: { loss: 0.5, jitterMs: 4 } });
    const got: number[] = [];
    sim.addNode(() => ({ onMessage: () => {} }));
    sim.addNode(() => ({ onMessage: (from, m) => void (from === 0 && got.push(m)) }));
    for (let i = 0; i < extraSenders; i++) sim.addNode(() => ({ onMessage: () => {} }));
    for (let i = 0; i < 500; i++) {
      sim.send(0, 1, i);
      for (let s = 2; s < 2 + extraSenders; s++) sim.send(s, 1, -i);
    }
    sim.run();
    return got.sort((a, b) => a - b);
  };
  const alone = delivered(0);
  t.true(alone.length > 150 && alone.length < 350);
  t.deepEqual(delivered(3), alone);
});

test('property: every message is accounted for exactly once under random faults', (t) => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 2 ** 32 }),
      fc.integer({ min: 2, max: 7 }),
      fc.integer({ min: 1, max: 40 }),
      (seed, nodes, perNode) => {
        const sim = new Simulator<number>({ seed, traceRing: 0, link: { latencyMs: 3, jitterMs: 5 } });
        for (let i = 0; i < nodes; i++) {
          sim.addNode((env) => {
            // Only incarnation 0 sends, so the workload is finite and the run goes idle.
            if (env.incarnation === 0) {
              for (let k = 0; k < perNode; k++) {
                env.setTimer(env.rng.uniform(0, 2_000), (dst) => void env.send(dst, k), env.rng.int(nodes));
              }
            }
            return { onMessage: () => {} };
          });
        }
        applyFaultPlan(sim, planFaults(sim.forkRng('faults'), { ...KNOBS, nodes, quietAtMs: 2_500 }));
        const r = sim.run();
        const s = sim.stats();
        const dropped = Object.values(s.dropped).reduce((a, b) => a + b, 0);
        return (
          r.stop === 'idle' && s.sent + s.duplicated === s.delivered + dropped && s.sent <= nodes * perNode
        );
      },
    ),
    { numRuns: 60 },
  );
  t.pass();
});
