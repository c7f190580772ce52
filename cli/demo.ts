/**
 * `keyglass demo` — an in-process, deterministic simulation of the whole system: a core group
 * of key servers and N leaves on the simulated network, with joins, leaves, a revocation and a
 * coordinator crash. The protocol code and the crypto are the real ones; time is virtual.
 * (The multi-process demo over TLS belongs to `keyglass server`.)
 */
import { CliError, parseFlags, type Command } from './command.js';
import { banner, progressLine, summary } from './demo-sim/render.js';
import { DEMO_DEFAULTS, DEMO_LIMITS, runDemo, type DemoOptions } from './demo-sim/scenario.js';

const HELP = `Usage: keyglass demo [--leaves N] [--servers N] [--seed S] [--duration SECONDS] [--quiet]

A simulated run of Keyglass in one process, on a deterministic virtual clock: ${DEMO_DEFAULTS.servers} core
servers form a virtually synchronous group; leaves join in waves and receive batched LKH rekeys
(one batch per 100 ms, cut by the coordinator); leaves publish messages sealed under the group key;
some leave; one is revoked and shown failing to read what follows; the coordinator crashes, the
survivors carry on, and it restarts and rejoins with state transfer. The protocol code and the
crypto are real; the network and the clock are simulated (same seed, same run).

Options:
  --leaves N        leaves (default ${DEMO_DEFAULTS.leaves}, ${DEMO_LIMITS.leaves[0]}..${DEMO_LIMITS.leaves[1]})
  --servers N       core servers (default ${DEMO_DEFAULTS.servers}, ${DEMO_LIMITS.servers[0]}..${DEMO_LIMITS.servers[1]})
  --seed S          simulation seed (default ${DEMO_DEFAULTS.seed})
  --duration S      virtual seconds of scripted activity (default ${DEMO_DEFAULTS.durationS}, ${DEMO_LIMITS.durationS[0]}..${DEMO_LIMITS.durationS[1]})
  --quiet           no live progress lines, only the summary

Exit status: 0 when every verdict holds, 1 when one fails, 130 when interrupted.`;

function intFlag(
  name: string,
  raw: string | undefined,
  dflt: number,
  range?: readonly [number, number],
): number {
  if (raw === undefined) return dflt;
  const v = Number(raw);
  if (!Number.isSafeInteger(v) || v < 0) throw new CliError(`--${name} must be a non-negative integer`, 2);
  if (range && (v < range[0] || v > range[1]))
    throw new CliError(`--${name} must be within ${range[0]}..${range[1]}`, 2);
  return v;
}

export function parseDemoArgs(argv: string[]): { options: DemoOptions; quiet: boolean } {
  const { values } = parseFlags(argv, {
    leaves: { type: 'string' },
    servers: { type: 'string' },
    seed: { type: 'string' },
    duration: { type: 'string' },
    quiet: { type: 'boolean' },
  });
  return {
    options: {
      leaves: intFlag('leaves', values.leaves, DEMO_DEFAULTS.leaves, DEMO_LIMITS.leaves),
      servers: intFlag('servers', values.servers, DEMO_DEFAULTS.servers, DEMO_LIMITS.servers),
      seed: intFlag('seed', values.seed, DEMO_DEFAULTS.seed),
      durationS: intFlag('duration', values.duration, DEMO_DEFAULTS.durationS, DEMO_LIMITS.durationS),
    },
    quiet: values.quiet === true,
  };
}

export const demoCommand: Command = {
  name: 'demo',
  summary: 'simulated run of the whole system (virtual time, real protocol code and crypto)',
  help: HELP,
  async run(argv: string[]): Promise<number> {
    const { options, quiet } = parseDemoArgs(argv);
    let interrupted = false;
    const onSigint = (): void => {
      interrupted = true;
    };
    // Output piped into `head` and closed early: stop the run quietly instead of crashing. The
    // listener stays for the life of the process (the EPIPE of a last write arrives later).
    let outputClosed = false;
    const say = (line: string): void => {
      if (!outputClosed) console.log(line);
    };
    process.stdout.on('error', (e: NodeJS.ErrnoException): void => {
      if (e.code !== 'EPIPE') throw e;
      outputClosed = interrupted = true;
    });
    process.once('SIGINT', onSigint);
    try {
      say(banner(options));
      const result = await runDemo(options, {
        ...(quiet ? {} : { progress: (p) => say(progressLine(p)) }),
        aborted: () => interrupted,
      });
      say(summary(result));
      if (result.aborted) return 130;
      return result.verdict.ok ? 0 : 1;
    } finally {
      process.removeListener('SIGINT', onSigint);
    }
  },
};
