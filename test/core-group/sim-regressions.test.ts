import test from 'ava';
import { SIM_SUITE } from '../../sim/core/cli.js';
import { restartPlan, runCore } from '../../sim/core/run.js';
import { REGRESSION_SEEDS, RESTART_SEEDS, runSeeds } from './sim-seeds.js';

test('core simulation: regression seeds stay green', (t) => {
  runSeeds(
    t,
    REGRESSION_SEEDS.filter((r) => r.renewals !== true).map((r) => r.seed),
  );
  runSeeds(
    t,
    REGRESSION_SEEDS.filter((r) => r.renewals === true).map((r) => r.seed),
    true,
  );
});

test('core simulation: a restarted keyed member merges back once and stays', (t) => {
  for (const { seed, n } of RESTART_SEEDS) {
    const r = runCore({ seed, n, keys: SIM_SUITE, secrecy: true, plan: restartPlan });
    t.deepEqual(r.violations, [], `npm run sim -- core --restart --seed ${seed} --n ${n} --secrecy`);
  }
});

test('core simulation: a seed replays exactly (same trace hash)', (t) => {
  const a = runCore({ seed: 4242 });
  const b = runCore({ seed: 4242 });
  t.is(a.traceHash, b.traceHash);
  t.is(a.viewsInstalled, b.viewsInstalled);
  t.is(a.messagesDelivered, b.messagesDelivered);
});

test('core simulation: without faults the group forms one primary view fast and delivers', (t) => {
  for (const n of [3, 8, 16]) {
    const r = runCore({ seed: 7, n, faults: false, quietAtMs: 500 });
    t.deepEqual(r.violations, [], `n=${n}`);
    t.true(r.messagesDelivered > 0);
  }
});
