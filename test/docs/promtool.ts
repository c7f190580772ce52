/**
 * Runs Prometheus's promtool (Debian package `prometheus`; .ci/run installs it). Tests that need
 * it skip with a t.log saying so where it is absent, and fail on anything it reports.
 */
import { spawnSync } from 'node:child_process';

export interface PromtoolResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** The `promtool --version` first line, or undefined when promtool is not installed. */
export function promtoolVersion(): string | undefined {
  const r = spawnSync('promtool', ['--version'], { encoding: 'utf8', timeout: 10_000 });
  if (r.error !== undefined || r.status !== 0) return undefined;
  return `${r.stdout}${r.stderr}`.split('\n')[0];
}

export const PROMTOOL_ABSENT =
  'promtool not installed (Debian: apt-get install prometheus; .ci/run installs it): check skipped';

export function promtool(args: readonly string[], input?: string): PromtoolResult {
  const r = spawnSync('promtool', args, {
    encoding: 'utf8',
    timeout: 30_000,
    ...(input !== undefined ? { input } : {}),
  });
  if (r.error !== undefined) throw r.error;
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}
