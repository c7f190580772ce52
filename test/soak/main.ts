/**
 * `npm run soak -- --minutes N [--servers 3|5] [--leaves L] [--seed S] [--gossip F] [--out FILE]
 * [--keep]`: the nemesis soak (soak.ts). Not part of `npm test`. Prints one line per phase and
 * fault, then the summary; exit code 0 iff no violation. `--seed` replays the nemesis and workload
 * choices (timing on real processes still varies).
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Soak } from './soak.js';

function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      minutes: { type: 'string', default: '3' },
      servers: { type: 'string', default: '3' },
      leaves: { type: 'string', default: '150' },
      seed: { type: 'string' },
      gossip: { type: 'string', default: '0.2' },
      out: { type: 'string' },
      keep: { type: 'boolean', default: false },
    },
  });
  const num = (v: string | undefined, name: string, lo: number, hi: number): number => {
    const x = Number(v);
    if (!Number.isFinite(x) || x < lo || x > hi) throw new RangeError(`--${name}: ${lo}..${hi}`);
    return x;
  };
  const seed =
    values.seed === undefined
      ? Math.floor(Math.random() * 2 ** 31)
      : num(values.seed, 'seed', 0, 2 ** 32 - 1);
  const opts = {
    minutes: num(values.minutes, 'minutes', 0.5, 240),
    servers: num(values.servers, 'servers', 3, 5),
    leaves: Math.floor(num(values.leaves, 'leaves', 1, 1000)),
    seed,
    gossip: num(values.gossip, 'gossip', 0, 1),
    keep: values.keep,
  };
  if (!Number.isInteger(opts.servers)) throw new RangeError('--servers: 3, 4 or 5');
  const soak = new Soak(opts);
  console.log(
    `[soak] seed ${seed} (replay: --seed ${seed}), ${opts.servers} servers, ${opts.leaves} leaves, ${opts.minutes} min`,
  );
  let interrupted = 0;
  process.on('SIGINT', () => {
    if (++interrupted > 1) {
      soak.killAllNow();
      process.exit(130);
    }
    console.log('[soak] interrupted: healing, checking and cleaning up (Ctrl-C again to kill at once)');
    soak.abort();
  });
  process.on('exit', () => soak.killAllNow());
  return soak.run().then((summary) => {
    const { violationList, ...rest } = summary;
    console.log(`[soak] summary ${JSON.stringify(rest)}`);
    for (const v of violationList) console.log(`[soak]   violation: ${v}`);
    console.log(`[soak] violations: ${summary.violations}`);
    if (values.out !== undefined) writeFileSync(values.out, JSON.stringify(summary, null, 2));
    return summary.violations === 0 && interrupted === 0 ? 0 : 1;
  });
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(`[soak] ${(e as Error).message}`);
    process.exit(2);
  },
);
