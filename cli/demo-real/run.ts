/**
 * `keyglass demo` (real mode): builds the throwaway deployment, runs the script, prints the
 * summary, and always tears down — leaves closed, every server child SIGKILLed and reaped, temp
 * dir removed — on success, failure, Ctrl-C or SIGTERM. A second Ctrl-C kills at once.
 */
import { rmSync } from 'node:fs';
import { LocalCluster } from '../cluster/index.js';
import type { RealDemoOptions } from './options.js';
import { realBanner, realProgressLine, realSummary } from './render.js';
import { runRealDemo } from './scenario.js';

export async function runRealDemoCommand(
  opts: RealDemoOptions,
  say: (line: string) => void,
): Promise<number> {
  const cluster = new LocalCluster('kg-demo-');
  const controller = new AbortController();
  let signalled: NodeJS.Signals | undefined;
  const onSignal = (sig: NodeJS.Signals): void => {
    if (signalled !== undefined) {
      // Second signal: no more waiting.
      cluster.killAllNow();
      rmSync(cluster.dir, { recursive: true, force: true });
      process.exit(130);
    }
    signalled = sig;
    say(`\n${sig}: stopping the servers and removing ${cluster.dir}`);
    controller.abort();
  };
  // Last resort if something exits the process underneath us: no orphaned servers.
  const onExit = (): void => cluster.killAllNow();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('exit', onExit);
  let keepDir = false;
  try {
    await cluster.init('Keyglass Demo CA');
    try {
      await cluster.startServers(opts.servers, { batchIntervalMs: 50, leaseMs: 3000 });
    } catch (e) {
      keepDir = true;
      say(`servers failed to start: ${(e as Error).message}`);
      return 1;
    }
    say(realBanner(opts, cluster));
    const result = await runRealDemo(cluster, opts, {
      signal: controller.signal,
      ...(opts.quiet ? {} : { progress: (s) => say(realProgressLine(s)) }),
    });
    say(realSummary(result));
    if (result.aborted) return signalled === 'SIGTERM' ? 143 : 130;
    if (!result.verdict.ok) {
      keepDir = true;
      say(`server logs kept in ${cluster.dir} (core-N.log)`);
    }
    return result.verdict.ok ? 0 : 1;
  } finally {
    await cluster.stop({ keepDir: keepDir && signalled === undefined });
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    process.removeListener('exit', onExit);
  }
}
