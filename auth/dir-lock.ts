/**
 * An exclusive lock on a directory: a `.lock` file created with O_EXCL holding its owner's pid
 * and, on Linux, the owner's start time (so a recycled pid — a container restarted as pid 1 —
 * is not taken for the owner). A lock whose owner process is gone (crash, SIGKILL) is taken
 * over; a live owner makes the caller fail fast instead of racing it.
 *
 * Two uses: `withDirLock` around one read-modify-write command (the CA store), and
 * `lockDirForProcess` for the lifetime of a process (a key server's data directory). The file
 * is removed on release and on a normal process exit; after SIGKILL it stays, and its dead
 * owner makes it stale, which is what "released by the OS" amounts to for a pid lock.
 */
import { closeSync, constants, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';

export class DirLockedError extends Error {
  override readonly name = 'DirLockedError';
}

/** A held lock. `release` is idempotent and removes the file only while it is still ours. */
export interface DirLock {
  readonly path: string;
  release(): void;
}

/** Field 22 of /proc/<pid>/stat (start time in clock ticks since boot); undefined off Linux. */
function startTimeOf(pid: number | 'self'): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may hold spaces: split after its ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const start = fields[19];
    return start !== undefined && /^[0-9]+$/.test(start) ? start : undefined;
  } catch {
    return undefined;
  }
}

function ownerAlive(owner: string): boolean {
  const [pidText, start] = owner.trim().split(' ');
  const pid = Number(pidText);
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  // Our own pid with no start time to tell: a predecessor in a recycled pid (a container
  // restarted as pid 1), not this process.
  if (pid === process.pid && (start === undefined || start === '')) return false;
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  // The pid is in use: by the owner only if it started when the owner did.
  if (start !== undefined && start !== '') {
    const now = startTimeOf(pid);
    if (now !== undefined && now !== start) return false;
  }
  return true;
}

/** Takes `<dir>/.lock` or throws DirLockedError naming the live owner. */
function acquire(dir: string): DirLock {
  const lockPath = join(dir, '.lock');
  const owner = `${process.pid} ${startTimeOf('self') ?? ''}\n`;
  let fd: number | undefined;
  for (let attempt = 0; attempt < 2 && fd === undefined; attempt++) {
    try {
      fd = openSync(lockPath, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      let held = '';
      try {
        held = readFileSync(lockPath, 'utf8');
      } catch {
        // vanished between open and read: retry
      }
      if (held === '' || ownerAlive(held)) {
        if (held !== '')
          throw new DirLockedError(`${dir} is locked by running process ${held.trim().split(' ')[0]}`);
        continue;
      }
      try {
        unlinkSync(lockPath); // stale: its owner died without releasing it
      } catch {
        // someone else removed it: retry
      }
    }
  }
  if (fd === undefined) throw new DirLockedError(`could not lock ${dir}`);
  try {
    writeSync(fd, owner);
  } finally {
    closeSync(fd);
  }
  let held = true;
  return {
    path: lockPath,
    release() {
      if (!held) return;
      held = false;
      try {
        if (readFileSync(lockPath, 'utf8') === owner) unlinkSync(lockPath);
      } catch {
        // removed by an operator: nothing to release
      }
    },
  };
}

/** Runs `fn` holding `<dir>/.lock`; the lock is released however `fn` ends. */
export async function withDirLock<T>(dir: string, fn: () => Promise<T> | T): Promise<T> {
  const lock = acquire(dir);
  try {
    return await fn();
  } finally {
    lock.release();
  }
}

/**
 * Holds `<dir>/.lock` until `release()` or the end of this process: a second process on the same
 * directory gets DirLockedError at once.
 */
export function lockDirForProcess(dir: string): DirLock {
  const lock = acquire(dir);
  const onExit = (): void => lock.release();
  process.once('exit', onExit);
  return {
    path: lock.path,
    release() {
      process.off('exit', onExit);
      lock.release();
    },
  };
}
