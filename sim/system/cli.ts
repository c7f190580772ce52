/**
 * `npm run sim -- system --seed S`             replay one run of the whole system and print its verdict
 * `npm run sim -- system --seeds N [--from S]` run many and print a summary (exit 1 if any failed)
 * Options: `--servers N`, `--leaves N` (default: drawn from the seed), `--no-faults`,
 * `--adversary` (an adversarial leaf floods and replays), `--no-leaf-cuts` (no per-leaf
 * partitions), `--storage-faults` (failing disk operations, one server's disk rolled back),
 * `--revoke-server` (the CRL revokes a core server): scenarios.ts. A failure prints its replay command with the options it ran with.
 */
import { intArg } from '../args.js';
import { loadSuite } from '../../crypto/index.js';
import { describeFaultPlan } from '../../net/sim/index.js';
import { runSystem, type SystemRunResult } from './run.js';

const SUITE = await loadSuite();

/** The options of a run as command-line flags (the ones that change what a seed does). */
const SHAPE_FLAGS = [
  '--no-faults',
  '--adversary',
  '--no-leaf-cuts',
  '--storage-faults',
  '--revoke-server',
] as const;

export function systemReplayCommand(seed: number, args: readonly string[] = []): string {
  const flags = [
    ...(['--servers', '--leaves'] as const).flatMap((f) =>
      intArg(args, f) === undefined ? [] : [`${f} ${intArg(args, f)}`],
    ),
    ...SHAPE_FLAGS.filter((f) => args.includes(f)),
  ];
  return `npm run sim -- system ${[...flags, `--seed ${seed}`].join(' ')}`;
}

function summary(r: SystemRunResult): string {
  return (
    `seed ${r.seed} servers=${r.servers} leaves=${r.leaves}: ${r.violations.length === 0 ? 'ok' : 'FAILED'}; ` +
    `batches ${r.batches}, admissions ${r.admissions}, leaf keys ${r.leafKeys}, evictions told ${r.evictionsTold}, ` +
    `revocations ${r.revocations} (revokes checked ${r.revokesChecked}), server crashes ${r.crashes}, leaf restarts ${r.leafRestarts}, ` +
    `converged ${r.convergeMs < 0 ? 'never' : `${r.convergeMs} ms after quiet`}, virtual ${r.virtualMs} ms, ` +
    (r.serverRevocation === undefined
      ? ''
      : `revoked s${r.serverRevocation.server} at ${r.serverRevocation.at} ms (${r.serverRevocation.stolenPaths} paths stolen): ` +
        `full refresh epochs ${r.serverRevocation.refreshStartEpoch ?? '-'}..${r.serverRevocation.refreshDoneEpoch ?? '-'}, ` +
        `stolen tree opened ${r.serverRevocation.epochsOpenedBefore} epochs before it, ${r.serverRevocation.epochsChecked} checked after; `) +
    (r.storage === undefined
      ? ''
      : `storage: ${r.storage.failures.map((f) => `${f.op} fails at s${f.server}`).join(', ')} (${r.storage.stops} stops), ` +
        `${r.storage.rollback === undefined ? 'no rollback' : `s${r.storage.rollback.server} ${r.storage.rollback.files.join('+')} rolled back ${r.storage.rollback.depth} images at ${r.storage.rollback.at} ms`} ` +
        `(${r.storage.rollbacks} done${r.storage.startRefusals.length === 0 ? '' : `; refused to start: ${r.storage.startRefusals.join('; ')}`}); `) +
    (r.leafCuts === undefined
      ? ''
      : `leaf cuts: short ${r.leafCuts.shortCut ?? 'none'}, long ${r.leafCuts.longCut ?? 'none'} (its eviction checked ${r.leafCuts.evictionChecked}); `) +
    (r.adversary === undefined
      ? ''
      : `adversary: ${r.adversary.frames} frames on ${r.adversary.links} links, ${r.adversary.catchUpReplies} catch-up replies ` +
        `(${r.adversary.foreignRefusals} foreign refused), parts judged ${r.adversary.partsJudged}/${r.adversary.partsJudged + r.adversary.partsUnjudged}, ` +
        `primary checked ${r.adversary.primaryChecked}, victim checked ${r.adversary.victimChecked}; `) +
    `wall ${r.wallMs.toFixed(0)} ms, trace ${r.traceHash}`
  );
}

function printFailure(r: SystemRunResult, args: readonly string[]): void {
  console.log(`FAIL seed ${r.seed}: replay with: ${systemReplayCommand(r.seed, args)}`);
  for (const v of r.violations) console.log(`  [${v.property}] ${v.detail}`);
}

export function systemMain(args: string[]): number {
  const shape = {
    ...(intArg(args, '--servers') !== undefined ? { servers: intArg(args, '--servers')! } : {}),
    ...(intArg(args, '--leaves') !== undefined ? { leaves: intArg(args, '--leaves')! } : {}),
    ...(args.includes('--no-faults') ? { faults: false } : {}),
    ...(args.includes('--adversary') ? { adversary: true } : {}),
    ...(args.includes('--no-leaf-cuts') ? { leafCuts: false } : {}),
    ...(args.includes('--storage-faults') ? { storageFaults: true } : {}),
    ...(args.includes('--revoke-server') ? { revokeServer: true } : {}),
  };
  const seed = intArg(args, '--seed');
  if (seed !== undefined) {
    const r = runSystem({ seed, suite: SUITE, ...shape });
    if (args.includes('--plan')) console.log(describeFaultPlan(r.plan));
    console.log(summary(r));
    if (r.violations.length > 0) printFailure(r, args);
    return r.violations.length === 0 ? 0 : 1;
  }
  const count = intArg(args, '--seeds') ?? 20;
  const from = intArg(args, '--from') ?? 1;
  const wall0 = performance.now();
  let failed = 0;
  for (let s = from; s < from + count; s++) {
    const r = runSystem({ seed: s, suite: SUITE, ...shape });
    if (r.violations.length > 0) {
      failed++;
      console.log(summary(r));
      printFailure(r, args);
    }
  }
  const minutes = (performance.now() - wall0) / 60_000;
  console.log(
    `system: ${count - failed}/${count} seeds ok (${from}..${from + count - 1}); ` +
      `${(count / minutes).toFixed(1)} seeds/min wall`,
  );
  return failed === 0 ? 0 : 1;
}
