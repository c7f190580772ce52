/**
 * Shared by the simulation test files: run seeds (core keys on, with the secrecy closure check),
 * collect failures with their replay command.
 */
import type { ExecutionContext } from 'ava';
import { SIM_SUITE, replayCommand } from '../../sim/core/cli.js';
import { runCore } from '../../sim/core/run.js';

/** Seeds that once found a bug (the bug in the comment); they must stay green. */
export const REGRESSION_SEEDS: readonly { seed: number; bug: string; renewals?: boolean }[] = [
  { seed: 10, bug: 'hellos to a member that had left kept its failure detector quiet' },
  { seed: 35, bug: 'same, with a restarted member' },
  { seed: 19, bug: 'leftover ordered messages sorted at a flush broke total order across components' },
  { seed: 57, bug: 'same, 3 members' },
  { seed: 118, bug: 'STATUS sent while frozen let others garbage-collect past the FLUSH_OK report' },
  { seed: 136, bug: 'same, 3 members' },
  { seed: 128, bug: 'resending unordered messages into another component delivered a payload twice' },
  { seed: 293, bug: 'the convergence poll ran before the quiet-time restarts' },
  // Found with core keys on:
  {
    seed: 1,
    bug: "core-tree cut kept a member that had committed another lineage since (report 'bad-report')",
  },
  { seed: 2, bug: 'a restarted process re-offered pairwise epoch 1: peers kept the dead process key' },
  { seed: 13, bug: 'same, with the offer book lost on a rejoin (offers must outlive incarnations)' },
  {
    seed: 258,
    bug: "a reported piece whose keyer sits in another piece failed to decode ('keyer is not a member')",
  },
  {
    seed: 5593,
    bug: "a dead process's core-tree message, delivered by a flush after its name had restarted twice, named a pairwise key wiped at the second restart ('missing-pairwise'; only one previous process was kept)",
  },
  // Durable state (issue 18), found while adding the durability checker:
  {
    seed: 5,
    bug: "a flush that skipped an ORDER record (its message outside the cut) counted the deliveries after it as the view's prefix: two different states with one version ('state-version')",
  },
  { seed: 8, bug: 'same, 4 members' },
  // Pairwise renewals every ~2 s (`--renewals`):
  {
    seed: 251,
    renewals: true,
    bug: 'a bundle resent at a flush named a pairwise key wiped after renewals of both ends (only one previous key was kept)',
  },
  { seed: 96, renewals: true, bug: 'same, 7 members' },
  { seed: 300, renewals: true, bug: 'same, 7 members' },
];

/**
 * Seeds of the restart scenario (`npm run sim -- core --restart`: the last member crashes,
 * restarts as a new process on slow links and merges back) that once found a bug.
 */
export const RESTART_SEEDS: readonly { seed: number; n: number; bug: string }[] = [
  {
    seed: 33,
    n: 3,
    bug: "the joiner's hello from its own old view, delivered after the others installed the merge, got it excluded",
  },
  { seed: 38, n: 3, bug: 'same, excluded again after each rejoin' },
  { seed: 40, n: 5, bug: 'same, 5 members' },
];

export function runSeeds(t: ExecutionContext, seeds: Iterable<number>, renewals = false): void {
  const failures: string[] = [];
  let runs = 0;
  for (const seed of seeds) {
    const r = runCore({ seed, keys: SIM_SUITE, secrecy: true, renewals });
    runs++;
    if (r.violations.length > 0) {
      failures.push(
        `${replayCommand({ ...r, renewals })}\n${r.violations.map((v) => `  [${v.property}] ${v.detail.slice(0, 400)}`).join('\n')}`,
      );
    }
  }
  t.log(`${runs} seeds`);
  t.deepEqual(failures, []);
}
