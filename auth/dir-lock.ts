/**
 * An exclusive lock on a data directory for read-modify-write commands: a `.lock` file
 * created with O_EXCL holding the owner's pid. A lock whose owner process is gone (crash)
 * is taken over; a live owner makes the caller fail fast instead of racing it.
 */
import { closeSync, constants, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';

export class DirLockedError extends Error {
  override readonly name = 'DirLockedError';
}

function ownerAlive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Runs `fn` holding `<dir>/.lock`; the lock is released however `fn` ends. */
export async function withDirLock<T>(dir: string, fn: () => Promise<T> | T): Promise<T> {
  const lockPath = join(dir, '.lock');
  let fd: number | undefined;
  for (let attempt = 0; attempt < 2 && fd === undefined; attempt++) {
    try {
      fd = openSync(lockPath, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      let pid = NaN;
      try {
        pid = Number(readFileSync(lockPath, 'utf8').trim());
      } catch {
        // vanished between open and read: retry
      }
      if (ownerAlive(pid)) throw new DirLockedError(`${dir} is locked by running process ${pid}`);
      try {
        unlinkSync(lockPath); // stale: its owner died without releasing it
      } catch {
        // someone else removed it: retry
      }
    }
  }
  if (fd === undefined) throw new DirLockedError(`could not lock ${dir}`);
  try {
    writeSync(fd, `${process.pid}\n`);
    closeSync(fd);
    return await fn();
  } finally {
    try {
      unlinkSync(lockPath);
    } catch {
      // removed by an operator: nothing to release
    }
  }
}
