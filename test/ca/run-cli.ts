/** Runs the real `keyglass` binary (the compiled cli/bin.js next to this test's output) as a child process. */
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../../cli/bin.js', import.meta.url));

/**
 * Per command. A PKCS#12 issuance derives its MAC and key-bag keys at 600,000 iterations each
 * (~1-2 s of one core); on a loaded 2-core machine running two test files at once that can take
 * many times longer.
 */
const CLI_TIMEOUT_MS = 90_000;

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export function keyglass(
  args: readonly string[],
  opts: { cwd?: string; env?: Record<string, string | undefined> } = {},
): Promise<CliResult> {
  const env: Record<string, string | undefined> = {
    ...process.env,
    KEYGLASS_CA_PASSPHRASE: undefined,
    KEYGLASS_KEY_PASSPHRASE: undefined,
    KEYGLASS_CA_DIR: undefined,
    KEYGLASS_DEBUG: undefined,
    ...opts.env,
  };
  for (const k of Object.keys(env)) if (env[k] === undefined) delete env[k];
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      { cwd: opts.cwd, env: env as NodeJS.ProcessEnv, timeout: CLI_TIMEOUT_MS },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        // A child the timeout killed says nothing itself: say it here, so a slow machine is not
        // mistaken for a silent failure.
        const killed = err?.killed === true ? `[killed after the test's ${CLI_TIMEOUT_MS} ms timeout]` : '';
        resolve({ code, stdout, stderr: stderr + killed });
      },
    );
  });
}

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** A snapshot of every file (path → content) under `dir`, to prove a failed command changed nothing. */
export function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string): void => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out[p] = readFileSync(p, 'latin1');
    }
  };
  walk(dir);
  return out;
}

/** The argv of `keyglass ca issue` for member `name` with `role` in `group`; add the rest after it. */
export function issueArgs(dir: string, role: string, name: string, group = 'g'): string[] {
  return ['ca', 'issue', '--dir', dir, '--group', group, '--role', role, '--name', name];
}
