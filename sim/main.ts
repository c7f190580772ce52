/**
 * `npm run sim -- <subject> [options]`: deterministic simulation runs. Subjects register here;
 * each one parses its own options. Exit code 1 if any run violated a property.
 */

import { coreMain } from './core/cli.js';
import { gossipMain } from './gossip/cli.js';
import { systemMain } from './system/cli.js';

const SUBJECTS: Record<string, (args: string[]) => number | Promise<number>> = {
  core: coreMain,
  gossip: gossipMain,
  system: systemMain,
};

function main(argv: string[]): number | Promise<number> {
  const [subject, ...rest] = argv;
  const run = subject === undefined ? undefined : SUBJECTS[subject];
  if (!run) {
    console.error(`usage: npm run sim -- <${Object.keys(SUBJECTS).join('|')}> [options]`);
    return 2;
  }
  return run(rest);
}

process.exitCode = await main(process.argv.slice(2));
