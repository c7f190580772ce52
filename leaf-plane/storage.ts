/**
 * The durable storage the server's stores write through (the leaf store, the primary record, the
 * incarnation record): the few file operations they need, behind one interface, so the same store
 * code runs on the real file system (server/ FileStorage) and, in the simulator, on a memory
 * store that tears, loses and rolls back writes (sim/ MemoryStorage).
 *
 * The contract is the one the stores' crash reasoning relies on:
 *   - `replace` is atomic and durable: after a crash a reader sees the old content or the new,
 *     never a mix, and the new content once `replace` returned (temp file, fsync, rename, fsync
 *     of the directory);
 *   - `append` is neither: after a crash any prefix of the bytes appended since the last `sync`
 *     may be there (none, part of a record, all of it); `sync` makes every byte appended and any
 *     `truncate` before it durable;
 *   - a storage error leaves the file in an unknown state past its last sync: a store that saw one
 *     stops writing (LeafStore refuses further commits) and recovers by reopening.
 * Paths are '/'-separated; nothing else (rename, remove, list) is needed by a store: `replace`
 * is the only way a file's content changes other than at its end.
 */

export type StorageErrorCode =
  /** No such file or directory. */
  | 'not-found'
  /** The file system refused access. */
  | 'denied'
  /** No space left (ENOSPC, or the memory store's byte bound). */
  | 'full'
  /** A file larger than the caller's bound. */
  | 'too-large'
  /** Use of a file handle after close, or after the storage crashed under it. */
  | 'closed'
  /** Any other failure of the device (EIO…): the state past the last sync is unknown. */
  | 'io';

export class StorageError extends Error {
  override readonly name = 'StorageError';
  constructor(
    readonly code: StorageErrorCode,
    readonly path: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${path}: ${message}`, options);
  }
}

export interface FileInfo {
  readonly size: number;
  /** Permission bits (0o777 mask). */
  readonly mode: number;
}

export interface Storage {
  /** mkdir -p: directories it creates get `mode`. */
  ensureDir(path: string, mode: number): void;
  /** Size and permissions of a file, or undefined when there is none. */
  stat(path: string): FileInfo | undefined;
  /**
   * The whole file, or undefined when there is none. A file larger than `maxBytes` is a
   * StorageError 'too-large' and is not read.
   */
  read(path: string, maxBytes?: number): Uint8Array | undefined;
  /** Atomically and durably replaces (or creates) the file with `data`, permissions `mode`. */
  replace(path: string, data: Uint8Array, mode: number): void;
  /** Opens an existing file for appending (StorageError 'not-found' when there is none). */
  openAppend(path: string): AppendFile;
}

export interface AppendFile {
  readonly path: string;
  /** Writes all of `data` at the end of the file; durable only after `sync`. */
  append(data: Uint8Array): void;
  /** Cuts the file to `size` bytes; durable only after `sync`. */
  truncate(size: number): void;
  /** fsync: every byte appended and every truncate so far is durable when it returns. */
  sync(): void;
  close(): void;
}
