/** Shared by the simulation test files: run seeds, collect failures with their replay command. */
import type { ExecutionContext } from 'ava';
import { replayCommand } from '../sim/core/cli.js';
import { runCore } from '../sim/core/run.js';

/** Seeds that once found a bug (the bug in the comment); they must stay green. */
export const REGRESSION_SEEDS: readonly { seed: number; bug: string }[] = [
  { seed: 10, bug: 'hellos to a member that had left kept its failure detector quiet' },
  { seed: 35, bug: 'same, with a restarted member' },
  { seed: 19, bug: 'leftover ordered messages sorted at a flush broke total order across components' },
  { seed: 57, bug: 'same, 3 members' },
  { seed: 118, bug: 'STATUS sent while frozen let others garbage-collect past the FLUSH_OK report' },
  { seed: 136, bug: 'same, 3 members' },
  { seed: 128, bug: 'resending unordered messages into another component delivered a payload twice' },
  { seed: 293, bug: 'the convergence poll ran before the quiet-time restarts' },
];

export function runSeeds(t: ExecutionContext, seeds: Iterable<number>): void {
  const failures: string[] = [];
  let runs = 0;
  for (const seed of seeds) {
    const r = runCore({ seed });
    runs++;
    if (r.violations.length > 0) {
      failures.push(
        `${replayCommand(r)}\n${r.violations.map((v) => `  [${v.property}] ${v.detail.slice(0, 400)}`).join('\n')}`,
      );
    }
  }
  t.log(`${runs} seeds`);
  t.deepEqual(failures, []);
}
