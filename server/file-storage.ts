/**
 * The leaf plane's Storage on the real file system, with the durability the stores were written
 * for: `replace` is auth's writeFileDurable (temp file with O_EXCL and the final mode, fsync,
 * rename, fsync of the directory); appends are write(2) on an O_APPEND descriptor, made durable
 * by fsync(2). Node's errors become StorageErrors with a code the stores can act on.
 */
import {
  closeSync,
  constants,
  fstatSync,
  fsyncSync,
  ftruncateSync,
  openSync,
  readSync,
  statSync,
  writeSync,
} from 'node:fs';
import { ensureDir, writeFileDurable } from '../auth/index.js';
import { StorageError, type AppendFile, type FileInfo, type Storage } from '../leaf-plane/index.js';

function storageError(path: string, e: unknown): StorageError {
  if (e instanceof StorageError) return e;
  const code = (e as NodeJS.ErrnoException).code;
  const kind =
    code === 'ENOENT' || code === 'ENOTDIR'
      ? 'not-found'
      : code === 'EACCES' || code === 'EPERM' || code === 'EROFS'
        ? 'denied'
        : code === 'ENOSPC' || code === 'EDQUOT'
          ? 'full'
          : code === 'EBADF'
            ? 'closed'
            : 'io';
  return new StorageError(kind, path, (e as Error).message, { cause: e });
}

function io<T>(path: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw storageError(path, e);
  }
}

export class FileStorage implements Storage {
  ensureDir(path: string, mode: number): void {
    io(path, () => ensureDir(path, mode));
  }

  stat(path: string): FileInfo | undefined {
    return io(path, () => {
      const s = statSync(path, { throwIfNoEntry: false });
      return s === undefined ? undefined : { size: s.size, mode: s.mode & 0o777 };
    });
  }

  read(path: string, maxBytes = Number.MAX_SAFE_INTEGER): Uint8Array | undefined {
    let fd: number;
    try {
      fd = openSync(path, constants.O_RDONLY);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw storageError(path, e);
    }
    try {
      // Size from the open descriptor: the bound holds for the bytes actually read.
      const size = io(path, () => fstatSync(fd).size);
      if (size > maxBytes)
        throw new StorageError('too-large', path, `${size} bytes, more than the ${maxBytes} allowed`);
      const out = new Uint8Array(size);
      let off = 0;
      while (off < size) {
        const n = io(path, () => readSync(fd, out, off, size - off, off));
        if (n === 0) break; // shrank under us: a single writer owns the directory, so never in practice
        off += n;
      }
      return off === size ? out : out.subarray(0, off);
    } finally {
      closeSync(fd);
    }
  }

  replace(path: string, data: Uint8Array, mode: number): void {
    io(path, () => writeFileDurable(path, data, mode));
  }

  openAppend(path: string): AppendFile {
    const fd = io(path, () => openSync(path, constants.O_WRONLY | constants.O_APPEND));
    return new FileAppend(path, fd);
  }
}

class FileAppend implements AppendFile {
  private open = true;

  constructor(
    readonly path: string,
    private readonly fd: number,
  ) {}

  append(data: Uint8Array): void {
    this.check();
    io(this.path, () => {
      let off = 0;
      while (off < data.length) off += writeSync(this.fd, data, off, data.length - off);
    });
  }

  truncate(size: number): void {
    this.check();
    io(this.path, () => ftruncateSync(this.fd, size));
  }

  sync(): void {
    this.check();
    io(this.path, () => fsyncSync(this.fd));
  }

  close(): void {
    if (!this.open) return;
    this.open = false;
    io(this.path, () => closeSync(this.fd));
  }

  private check(): void {
    if (!this.open) throw new StorageError('closed', this.path, 'file handle used after close');
  }
}
