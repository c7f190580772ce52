/**
 * Crash-safe file replacement: write a temporary file in the target's directory (O_EXCL,
 * so two writers never share one), fsync it, rename it over the target, fsync the
 * directory. A reader — or a process restarted after a crash — sees the old content or
 * the new, never a torn file. Secrets are created with mode 0600 from the first byte.
 *
 * `stageFile` splits the two halves so a command that writes several files can prepare
 * them all (any failure: abort, nothing visible changed) and then publish them in a
 * chosen order, the last rename being its commit point.
 */
import {
  closeSync,
  fsyncSync,
  openSync,
  renameSync,
  unlinkSync,
  writeSync,
  constants,
  mkdirSync,
} from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';

export const SECRET_FILE_MODE = 0o600;
export const PUBLIC_FILE_MODE = 0o644;

export interface StagedFile {
  readonly path: string;
  readonly tempPath: string;
  /** Renames the temporary file over `path` and syncs the directory. Call once. */
  commit(): void;
  /** Removes the temporary file; safe after commit (then it does nothing). */
  abort(): void;
}

function fsyncDir(dir: string): void {
  // Some platforms refuse to open directories; durability is then best effort there.
  let fd: number | undefined;
  try {
    fd = openSync(dir, constants.O_RDONLY);
    fsyncSync(fd);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'EISDIR' && code !== 'EINVAL' && code !== 'EPERM') throw e;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

export function stageFile(
  path: string,
  data: string | Uint8Array,
  mode: number = PUBLIC_FILE_MODE,
): StagedFile {
  const dir = dirname(path);
  const tempPath = join(dir, `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const fd = openSync(tempPath, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, mode);
  try {
    const buf =
      typeof data === 'string'
        ? Buffer.from(data, 'utf8')
        : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    let off = 0;
    while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    unlinkSync(tempPath);
    throw e;
  }
  closeSync(fd);
  let state: 'staged' | 'committed' | 'aborted' = 'staged';
  return {
    path,
    tempPath,
    commit() {
      if (state !== 'staged') throw new Error(`staged file ${path} already ${state}`);
      renameSync(tempPath, path);
      state = 'committed';
      fsyncDir(dir);
    },
    abort() {
      if (state !== 'staged') return;
      state = 'aborted';
      try {
        unlinkSync(tempPath);
      } catch {
        // already gone: nothing to clean
      }
    },
  };
}

/** Atomically and durably replaces `path` with `data`. */
export function writeFileDurable(
  path: string,
  data: string | Uint8Array,
  mode: number = PUBLIC_FILE_MODE,
): void {
  stageFile(path, data, mode).commit();
}

/**
 * Stages every file, then commits them in order. If staging any file fails, none is
 * committed and all temporaries are removed. The last file is the commit point.
 */
export function writeFilesDurable(
  files: readonly { path: string; data: string | Uint8Array; mode?: number }[],
): void {
  const staged: StagedFile[] = [];
  try {
    for (const f of files) staged.push(stageFile(f.path, f.data, f.mode ?? PUBLIC_FILE_MODE));
  } catch (e) {
    for (const s of staged) s.abort();
    throw e;
  }
  for (const s of staged) s.commit();
}

/** mkdir -p with a mode for newly created directories (0700 for directories holding secrets). */
export function ensureDir(path: string, mode = 0o700): void {
  mkdirSync(path, { recursive: true, mode });
}
