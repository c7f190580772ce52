/**
 * Real `keyglass server` processes on 127.0.0.1 for tests: the shared local-deployment kit
 * (cli/cluster: throwaway CA, configs, server child processes, leaves in this process) plus a
 * runner for one-shot `keyglass` commands.
 */
import { execFile } from 'node:child_process';
import { BIN, LocalCluster, type LocalLeaf } from '../../cli/cluster/index.js';

export { BIN, GROUP, freePorts, until, type Member, type ServerProc } from '../../cli/cluster/index.js';
export type Leaf = LocalLeaf;

export class Cluster extends LocalCluster {
  constructor() {
    super('kg-server-');
  }

  override init(): Promise<void> {
    return super.init('Server Test CA');
  }
}

/** Runs `keyglass ARGS` to completion. */
export function keyglass(args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { timeout: 20_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}
