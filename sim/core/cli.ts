/**
 * `npm run sim -- core --seed S [--n N] [--trace]`   replay one run and print its verdict
 * `npm run sim -- core --seeds N [--from S] [--n N]` run many and print a summary
 * Core keys are on (real crypto, randomness from the seed); `--no-keys` runs the bare stack;
 * `--secrecy` adds the forward/backward secrecy closure check; `--renewals` makes pairwise
 * offers live 4 s instead of 1 h, so that their renewal races happen in every run; `--restart`
 * replaces the random faults by one scenario: the last member crashes, restarts as a new
 * process on slow links and merges back (the run fails if that process is excluded again).
 */

import { intArg } from '../args.js';
import { loadSuite } from '../../crypto/index.js';
import { describeFaultPlan } from '../../net/sim/index.js';
import type { Property } from './checkers.js';
import { PROPERTIES } from './checkers.js';
import type { CoreRunResult } from './run.js';
import { LIVENESS_BOUND_MS, restartPlan, runCore } from './run.js';

/** The suite the simulation runs with (loaded once; ESM top-level await). */
export const SIM_SUITE = await loadSuite();

export function replayCommand(r: { seed: number; n: number; renewals?: boolean; restart?: boolean }): string {
  return (
    `npm run sim -- core --seed ${r.seed} --n ${r.n} --secrecy` +
    `${r.renewals === true ? ' --renewals' : ''}${r.restart === true ? ' --restart' : ''}`
  );
}

export function printFailure(r: CoreRunResult, renewals = false, restart = false): void {
  console.log(`FAIL seed ${r.seed} (n=${r.n}): replay with: ${replayCommand({ ...r, renewals, restart })}`);
  for (const v of r.violations) console.log(`  [${v.property}] ${v.detail}`);
}

export function coreMain(args: string[]): number {
  const seed = intArg(args, '--seed');
  const n = intArg(args, '--n');
  const keys: { keys?: typeof SIM_SUITE; secrecy?: boolean; renewals?: boolean } = args.includes('--no-keys')
    ? {}
    : { keys: SIM_SUITE, secrecy: args.includes('--secrecy'), renewals: args.includes('--renewals') };
  const scenario = {
    ...(args.includes('--restart') ? { plan: (n: number) => restartPlan(n) } : {}),
    // Storage fault (issue 19): `--stale-disks P`: P % of restarts come back with an older disk.
    ...(intArg(args, '--stale-disks') !== undefined
      ? { staleDisks: intArg(args, '--stale-disks')! / 100 }
      : {}),
  };
  if (seed !== undefined) {
    const r = runCore({
      ...keys,
      ...scenario,
      seed,
      ...(n !== undefined ? { n } : {}),
      traceRing: args.includes('--trace') ? 4000 : 0,
    });
    if (args.includes('--plan')) console.log(describeFaultPlan(r.plan));
    if (r.trace) console.log(r.trace);
    console.log(
      `seed ${r.seed} n=${r.n}: ${r.violations.length === 0 ? 'ok' : 'FAILED'}; views ${r.viewsInstalled}, ` +
        `delivered ${r.messagesDelivered}, primary views ${r.primaryViews}, state transfers ${r.stateTransfers}, ` +
        `acknowledged changes ${r.acknowledged}${r.outage ? ', whole-group outage' : ''}, ` +
        `rejoins ${r.rejoins}, rekeys ${r.rekeys} (refreshes ${r.refreshes}, aborted ${r.rekeyAborts}), sealed core ${r.sealedCore} / pair ${r.sealedPair}, secure drops ${r.secureDrops}, converged ${Math.round(r.convergeMs)} ms after quiet, virtual ${r.virtualMs} ms, ` +
        `wall ${r.wallMs.toFixed(0)} ms, trace ${r.traceHash}`,
    );
    if (r.violations.length > 0) printFailure(r, keys.renewals === true, args.includes('--restart'));
    return r.violations.length === 0 ? 0 : 1;
  }
  const count = intArg(args, '--seeds') ?? 100;
  const from = intArg(args, '--from') ?? 1;
  const byProperty = new Map<Property, number>();
  let failedRuns = 0;
  let views = 0;
  let delivered = 0;
  let virtual = 0;
  let worstConverge = 0;
  const coverage = {
    primaryViews: 0,
    stateTransfers: 0,
    acknowledged: 0,
    outages: 0,
    rejoins: 0,
    resent: 0,
    droppedUnordered: 0,
    maxRetained: 0,
    rekeys: 0,
    refreshes: 0,
    rekeyAborts: 0,
    sealedCore: 0,
    sealedPair: 0,
    secureDrops: 0,
  };
  const wall0 = performance.now();
  for (let s = from; s < from + count; s++) {
    const r = runCore({ ...keys, ...scenario, seed: s, ...(n !== undefined ? { n } : {}) });
    views += r.viewsInstalled;
    delivered += r.messagesDelivered;
    virtual += r.virtualMs;
    worstConverge = Math.max(worstConverge, r.convergeMs);
    coverage.primaryViews += r.primaryViews;
    coverage.stateTransfers += r.stateTransfers;
    coverage.acknowledged += r.acknowledged;
    if (r.outage) coverage.outages++;
    coverage.rejoins += r.rejoins;
    coverage.resent += r.resent;
    coverage.droppedUnordered += r.droppedUnordered;
    coverage.maxRetained = Math.max(coverage.maxRetained, r.maxRetained);
    coverage.rekeys += r.rekeys;
    coverage.refreshes += r.refreshes;
    coverage.rekeyAborts += r.rekeyAborts;
    coverage.sealedCore += r.sealedCore;
    coverage.sealedPair += r.sealedPair;
    coverage.secureDrops += r.secureDrops;
    if (r.violations.length > 0) {
      failedRuns++;
      for (const p of new Set(r.violations.map((v) => v.property)))
        byProperty.set(p, (byProperty.get(p) ?? 0) + 1);
      printFailure(r, keys.renewals === true, args.includes('--restart'));
    }
    if ((s - from + 1) % 500 === 0) console.log(`… ${s - from + 1} runs, ${failedRuns} failed`);
  }
  const wall = (performance.now() - wall0) / 1000;
  console.log(`core: ${count} runs (seeds ${from}..${from + count - 1}), ${failedRuns} with violations`);
  for (const p of PROPERTIES) console.log(`  ${p.padEnd(20)} ${byProperty.get(p) ?? 0}`);
  console.log(
    `  views installed ${views}, messages delivered ${delivered}, virtual ${(virtual / 1000).toFixed(0)} s, ` +
      `wall ${wall.toFixed(1)} s; slowest convergence ${Math.round(worstConverge)} ms after quiet (bound ${LIVENESS_BOUND_MS} ms)`,
  );
  console.log(
    `  coverage: primary views ${coverage.primaryViews}, state transfers ${coverage.stateTransfers}, ` +
      `acknowledged changes ${coverage.acknowledged}, runs with a whole-group outage ${coverage.outages}, ` +
      `rejoins after exclusion ${coverage.rejoins}, ordered messages resent ${coverage.resent} / dropped ${coverage.droppedUnordered}, ` +
      `max retained by one member ${coverage.maxRetained}; ` +
      `core keys ${keys.keys ? 'on' : 'off'}: rekeys committed ${coverage.rekeys} (refreshes ${coverage.refreshes}), sessions aborted ${coverage.rekeyAborts}; ` +
      `frames sealed under core keys ${coverage.sealedCore} / pairwise ${coverage.sealedPair}, dropped by the secure link ${coverage.secureDrops}`,
  );
  return failedRuns === 0 ? 0 : 1;
}
