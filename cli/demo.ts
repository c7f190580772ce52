/**
 * `keyglass demo` — by default the real thing: a throwaway CA, `keyglass server` child processes
 * on 127.0.0.1 and N LeafClients in this process, through a scripted run (cli/demo-real/).
 * `keyglass demo --sim` is the in-process, deterministic simulation (cli/demo-sim/): the same
 * protocol code and crypto on a simulated network and a virtual clock.
 */
import { CliError, parseFlags, type Command } from './command.js';
import { banner, progressLine, summary } from './demo-sim/render.js';
import { DEMO_DEFAULTS, DEMO_LIMITS, runDemo, type DemoOptions } from './demo-sim/scenario.js';
import { REAL_DEMO_DEFAULTS, REAL_DEMO_LIMITS, parseRealDemoArgs } from './demo-real/options.js';
import { runRealDemoCommand } from './demo-real/run.js';

const HELP = `Usage: keyglass demo [--leaves N] [--servers N] [--duration SECONDS] [--quiet]
       keyglass demo --sim [--leaves N] [--servers N] [--seed S] [--duration SECONDS] [--quiet]

The real run (default): a throwaway CA in a temp dir, ${REAL_DEMO_DEFAULTS.servers} \`keyglass server\` child processes on
127.0.0.1 (mutual TLS 1.3) and N leaves in this process. Leaves join in waves, then join and
leave one at a time while a publish stream flows; one leaf is revoked by a new CRL; the view
coordinator is SIGKILLed and later restarted. Each membership action is timed until every current
leaf holds the new key. Prints one line per phase, the servers' /metrics URLs, and a summary
(rekey latency p50/p99, view changes, messages delivered/lost). The temp dir and every server
process are removed at exit, Ctrl-C included (kept, with server logs, when a verdict fails).

  --leaves N        leaves at the start (default ${REAL_DEMO_DEFAULTS.leaves}, ${REAL_DEMO_LIMITS.leaves[0]}..${REAL_DEMO_LIMITS.leaves[1]})
  --servers N       server processes (default ${REAL_DEMO_DEFAULTS.servers}, ${REAL_DEMO_LIMITS.servers[0]}..${REAL_DEMO_LIMITS.servers[1]})
  --duration S      real seconds of scripted activity (default ${REAL_DEMO_DEFAULTS.durationS}, ${REAL_DEMO_LIMITS.durationS[0]}..${REAL_DEMO_LIMITS.durationS[1]})
  --quiet           no progress lines, only the summary

With --sim: a simulated run of Keyglass in one process, on a deterministic virtual clock: ${DEMO_DEFAULTS.servers} core
servers form a virtually synchronous group; leaves join in waves and receive batched LKH rekeys
(one batch per 100 ms, cut by the coordinator); leaves publish messages sealed under the group key;
some leave; one is revoked and shown failing to read what follows; the coordinator crashes, the
survivors carry on, and it restarts from its storage and rejoins with state transfer. The shipped
server and leaf code and the crypto are real; the network, storage and clock are simulated
(same seed, same run).

Simulation options:
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

/**
 * Lines to stdout. Output piped into \`head\` and closed early: stop printing quietly instead of
 * crashing. The listener stays for the life of the process (the EPIPE of a last write arrives later).
 */
function stdoutSink(): { say(line: string): void; closed(): boolean } {
  let closed = false;
  process.stdout.on('error', (e: NodeJS.ErrnoException): void => {
    if (e.code !== 'EPIPE') throw e;
    closed = true;
  });
  return {
    say: (line) => {
      if (!closed) console.log(line);
    },
    closed: () => closed,
  };
}

export const demoCommand: Command = {
  name: 'demo',
  summary: 'local run of the whole system: a CA, server processes, leaves (--sim: simulated, virtual time)',
  help: HELP,
  async run(argv: string[]): Promise<number> {
    if (!argv.includes('--sim')) {
      const opts = parseRealDemoArgs(argv);
      return runRealDemoCommand(opts, stdoutSink().say);
    }
    return runSim(argv.filter((a) => a !== '--sim'));
  },
};

/** `keyglass demo --sim`: the deterministic in-process simulation. */
async function runSim(argv: string[]): Promise<number> {
  const { options, quiet } = parseDemoArgs(argv);
  let interrupted = false;
  const onSigint = (): void => {
    interrupted = true;
  };
  const out = stdoutSink();
  const say = out.say;
  process.once('SIGINT', onSigint);
  try {
    say(banner(options));
    const result = await runDemo(options, {
      ...(quiet ? {} : { progress: (p) => say(progressLine(p)) }),
      aborted: () => interrupted || out.closed(),
    });
    say(summary(result));
    if (result.aborted) return 130;
    return result.verdict.ok ? 0 : 1;
  } finally {
    process.removeListener('SIGINT', onSigint);
  }
}
