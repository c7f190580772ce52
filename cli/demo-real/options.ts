/** Flags of the real multi-process `keyglass demo` (the default mode). */
import { CliError, parseFlags } from '../command.js';

export interface RealDemoOptions {
  /** Leaves joined at the start (the churn keeps the population near this). */
  readonly leaves: number;
  readonly servers: number;
  /** Real seconds of scripted activity after the servers are up. */
  readonly durationS: number;
  readonly quiet: boolean;
}

export const REAL_DEMO_DEFAULTS: RealDemoOptions = { leaves: 50, servers: 3, durationS: 30, quiet: false };
export const REAL_DEMO_LIMITS = {
  leaves: [4, 500],
  // A coordinator crash must leave a majority: at least 3 servers.
  servers: [3, 7],
  durationS: [8, 600],
} as const satisfies Record<string, readonly [number, number]>;

function intFlag(
  name: string,
  raw: string | undefined,
  dflt: number,
  range: readonly [number, number],
): number {
  if (raw === undefined) return dflt;
  const v = Number(raw);
  if (!Number.isSafeInteger(v)) throw new CliError(`--${name} must be an integer`, 2);
  if (v < range[0] || v > range[1])
    throw new CliError(`--${name} must be within ${range[0]}..${range[1]}`, 2);
  return v;
}

export function parseRealDemoArgs(argv: string[]): RealDemoOptions {
  const { values } = parseFlags(argv, {
    leaves: { type: 'string' },
    servers: { type: 'string' },
    duration: { type: 'string' },
    quiet: { type: 'boolean' },
  });
  return {
    leaves: intFlag('leaves', values.leaves, REAL_DEMO_DEFAULTS.leaves, REAL_DEMO_LIMITS.leaves),
    servers: intFlag('servers', values.servers, REAL_DEMO_DEFAULTS.servers, REAL_DEMO_LIMITS.servers),
    durationS: intFlag('duration', values.duration, REAL_DEMO_DEFAULTS.durationS, REAL_DEMO_LIMITS.durationS),
    quiet: values.quiet === true,
  };
}
