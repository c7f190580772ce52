/**
 * A Storage (leaf-plane/storage.ts) in memory for simulations, with the faults a real disk has,
 * so the shipped stores (LeafStore, PrimaryRecord, IncarnationRecord) meet them in the simulator:
 *
 *   - at `crash()`, bytes appended since a file's last sync are lost, kept, or TORN (a prefix of
 *     them lands, possibly followed by zeros: some file systems extend the file before the data
 *     lands); a truncate not yet synced is undone or not;
 *   - at `crash()`, chosen files come back OLDER: rolled back to an earlier synced image (or to
 *     not existing), as a restored backup, a lying fsync or a replaced disk would leave them;
 *   - `failNext(op)`: the next append, sync or replace fails with a StorageError (an append after
 *     landing a prefix of its bytes, unsynced; a replace changes nothing: it is atomic).
 * Each fault is chosen by the caller or drawn from a seeded Rng, so a run replays exactly.
 *
 * What the model keeps: `replace` is atomic and durable when it returns; directories survive
 * crashes (the stores create theirs once, before any file in them); a handle opened before a
 * crash is dead after it ('closed'); a handle's file stays its own after a `replace` of its path
 * (the old inode), as on POSIX.
 *
 * Memory is bounded: the bytes held (current contents plus the images kept for rollbacks, each
 * counted whole although images share buffers) stay ≤ maxBytes — the oldest images go first, and
 * a write that would exceed the bound with no image left to drop fails 'full', as ENOSPC.
 */
import { posix } from 'node:path';
import { StorageError, type AppendFile, type FileInfo, type Storage } from '../leaf-plane/index.js';
import { Rng } from '../net/sim/index.js';

export const DEFAULT_MEMORY_STORAGE_BYTES = 256 * 1024 * 1024;
export const DEFAULT_IMAGES_PER_FILE = 4;
const MAX_FILES = 1024;

/** What becomes of a file's bytes appended since its last sync, at a crash. */
export type UnsyncedFate = 'lose' | 'keep' | 'tear' | 'tear-zeros';

export interface CrashPlan {
  /** Fate of every file's unsynced bytes (default 'random': drawn per file). */
  readonly unsynced?: UnsyncedFate | 'random';
  /** For a tear: how many of the unsynced bytes land (default drawn in [1, n − 1], clamped). */
  readonly tearAt?: number;
  /**
   * Files whose path starts with `prefix` come back `depth` synced images older (default drawn in
   * [1, images kept]); a file with fewer images goes back to its oldest (possibly: absent).
   */
  readonly rollback?: readonly { readonly prefix: string; readonly depth?: number }[];
}

export interface CrashOutcome {
  readonly path: string;
  readonly fate: UnsyncedFate | 'rolled-back';
  /** Unsynced bytes at the crash, and how many of them landed. */
  readonly unsynced: number;
  readonly landed: number;
  /** For a rollback: images gone back, and the size it came back with (−1: absent). */
  readonly depth?: number;
  readonly size?: number;
}

export type FailingOp = 'append' | 'sync' | 'replace';

export interface MemoryStorageOptions {
  /** Draws the faults not chosen by the caller (default Rng.seeded(seed ?? 0)). */
  readonly rng?: Rng;
  readonly seed?: number;
  /** Bound on the bytes held (default 256 MiB). */
  readonly maxBytes?: number;
  /** Synced images kept per file for rollbacks (default 4; 0: no rollback possible). */
  readonly imagesPerFile?: number;
}

/** An image that survives a crash: bytes (never mutated once taken) or null for "no file". */
type Image = Uint8Array | null;

interface MemFile {
  /** Current content = buf[0, len); buf beyond a taken image's length is the only part written. */
  buf: Uint8Array;
  len: number;
  mode: number;
  /** The image a crash without faults leaves. */
  durable: Uint8Array;
  /** Earlier durable images, oldest first (≤ imagesPerFile). */
  history: Image[];
  /** True while the current content is not durable + an appended tail (a truncate since sync). */
  reshaped: boolean;
}

export class MemoryStorage implements Storage {
  private readonly rng: Rng;
  private readonly maxBytes: number;
  private readonly imagesPerFile: number;
  private readonly files = new Map<string, MemFile>();
  private readonly dirs = new Set<string>(['.', '/']);
  /** Bumped by every crash: handles of an older epoch are dead. */
  private epoch = 0;
  private failing: { op: FailingOp; code: 'io' | 'full'; landed?: number } | undefined;
  /** Counters a simulation reports. */
  readonly stats = {
    appends: 0,
    syncs: 0,
    replaces: 0,
    crashes: 0,
    torn: 0,
    lost: 0,
    rolledBack: 0,
    failed: 0,
  };

  constructor(opts: MemoryStorageOptions = {}) {
    this.rng = opts.rng ?? Rng.seeded(opts.seed ?? 0);
    this.maxBytes = opts.maxBytes ?? DEFAULT_MEMORY_STORAGE_BYTES;
    this.imagesPerFile = opts.imagesPerFile ?? DEFAULT_IMAGES_PER_FILE;
    if (!(Number.isSafeInteger(this.maxBytes) && this.maxBytes > 0))
      throw new RangeError('maxBytes must be > 0');
    if (!(Number.isInteger(this.imagesPerFile) && this.imagesPerFile >= 0 && this.imagesPerFile <= 64))
      throw new RangeError('imagesPerFile must be in [0, 64]');
  }

  // ── Storage ────────────────────────────────────────────────────────────────────────────────

  ensureDir(path: string, _mode: number): void {
    let p = norm(path);
    while (!this.dirs.has(p)) {
      if (this.files.has(p)) throw new StorageError('io', p, 'a file is in the way of a directory');
      this.dirs.add(p);
      p = posix.dirname(p);
    }
  }

  stat(path: string): FileInfo | undefined {
    const f = this.files.get(norm(path));
    return f === undefined ? undefined : { size: f.len, mode: f.mode };
  }

  read(path: string, maxBytes = Number.MAX_SAFE_INTEGER): Uint8Array | undefined {
    const p = norm(path);
    const f = this.files.get(p);
    if (f === undefined) return undefined;
    if (f.len > maxBytes)
      throw new StorageError('too-large', p, `${f.len} bytes, more than the ${maxBytes} allowed`);
    return f.buf.slice(0, f.len); // a copy: callers wipe what they read
  }

  replace(path: string, data: Uint8Array, mode: number): void {
    const p = this.parentChecked(path);
    this.failIf('replace', p); // atomic: a failed replace leaves the old file as it was
    const old = this.files.get(p);
    if (old === undefined && this.files.size >= MAX_FILES)
      throw new StorageError('full', p, 'too many files');
    const buf = data.slice();
    const history = old === undefined ? [null] : [...old.history, old.durable];
    const file: MemFile = {
      buf,
      len: buf.length,
      mode: mode & 0o777,
      durable: buf,
      history,
      reshaped: false,
    };
    this.files.set(p, file);
    this.trimHistory(file);
    try {
      this.bounded(p, 0);
    } catch (e) {
      if (old === undefined) this.files.delete(p);
      else this.files.set(p, old);
      throw e;
    }
    this.stats.replaces++;
  }

  openAppend(path: string): AppendFile {
    const p = norm(path);
    const f = this.files.get(p);
    if (f === undefined) throw new StorageError('not-found', p, 'no such file');
    return new MemAppend(this, p, f, this.epoch);
  }

  // ── faults ─────────────────────────────────────────────────────────────────────────────────

  /**
   * The next `op` fails with a StorageError of `code` ('io' by default). For an append, `landed`
   * bytes of it (default drawn in [0, n)) reach the file, unsynced, before the error.
   */
  failNext(op: FailingOp, opts: { code?: 'io' | 'full'; landed?: number } = {}): void {
    this.failing = {
      op,
      code: opts.code ?? 'io',
      ...(opts.landed !== undefined ? { landed: opts.landed } : {}),
    };
  }

  /**
   * The process dies and the machine restarts: every open handle is dead, unsynced bytes meet
   * their fate, rollbacks apply. Returns what happened to each file it touched.
   */
  crash(plan: CrashPlan = {}): CrashOutcome[] {
    this.epoch++;
    this.failing = undefined;
    this.stats.crashes++;
    const out: CrashOutcome[] = [];
    for (const [path, f] of [...this.files]) {
      const durable = f.durable;
      const appended = f.reshaped ? 0 : f.len - durable.length;
      const dirty = f.reshaped || appended > 0;
      if (!dirty) continue;
      let fate = plan.unsynced ?? 'random';
      if (fate === 'random') fate = this.rng.pick(['lose', 'keep', 'tear', 'tear-zeros'] as const);
      // A truncate since the last sync: the file is as synced, or as it is now (no prefix model).
      if (f.reshaped && (fate === 'tear' || fate === 'tear-zeros')) fate = this.rng.bool() ? 'keep' : 'lose';
      let landed = 0;
      if (fate === 'keep') landed = appended;
      else if (fate === 'tear' || fate === 'tear-zeros') {
        landed =
          plan.tearAt !== undefined
            ? Math.max(0, Math.min(appended, plan.tearAt))
            : appended <= 1
              ? 0
              : this.rng.range(1, appended);
        const zeros = fate === 'tear-zeros' ? appended - landed : 0;
        // Zeros past the landed prefix: the file was extended, the data never written.
        f.buf.fill(0, durable.length + landed, durable.length + landed + zeros);
        f.len = durable.length + landed + zeros;
      }
      if (fate === 'lose') {
        this.setContent(f, f.durable);
        this.stats.lost++;
      } else {
        this.settle(f); // what landed is now what the disk holds
        if (fate !== 'keep') this.stats.torn++;
      }
      out.push({ path, fate, unsynced: appended, landed });
    }
    for (const { prefix, depth } of plan.rollback ?? []) {
      const pre = norm(prefix);
      for (const [path, f] of [...this.files]) {
        if (!(path === pre || path.startsWith(pre === '/' ? '/' : `${pre}/`))) continue;
        if (f.history.length === 0) continue;
        const back = Math.min(f.history.length, depth ?? this.rng.range(1, f.history.length + 1));
        if (!(Number.isInteger(back) && back >= 1)) throw new RangeError(`rollback depth ${depth}`);
        const image = f.history[f.history.length - back]!;
        f.history = f.history.slice(0, f.history.length - back);
        this.stats.rolledBack++;
        if (image === null) this.files.delete(path);
        else this.setContent(f, image);
        out.push({
          path,
          fate: 'rolled-back',
          unsynced: 0,
          landed: 0,
          depth: back,
          size: image?.length ?? -1,
        });
      }
    }
    return out;
  }

  /** Test knob: permissions of an existing file (LeafStore refuses a data.key others can read). */
  setMode(path: string, mode: number): void {
    const f = this.files.get(norm(path));
    if (f === undefined) throw new StorageError('not-found', norm(path), 'no such file');
    f.mode = mode & 0o777;
  }

  /** Bytes appended to `path` and not yet synced (−1: a truncate waits for a sync). */
  unsyncedBytes(path: string): number {
    const f = this.files.get(norm(path));
    if (f === undefined) return 0;
    return f.reshaped ? -1 : f.len - f.durable.length;
  }

  /** Synced images of `path` kept for rollbacks. */
  images(path: string): number {
    return this.files.get(norm(path))?.history.length ?? 0;
  }

  /** Bytes held (current contents + kept images, counted whole). */
  get bytesHeld(): number {
    let n = 0;
    for (const f of this.files.values()) n += held(f);
    return n;
  }

  // ── for MemAppend ──────────────────────────────────────────────────────────────────────────

  /** @internal */
  checkLive(epoch: number, path: string): void {
    if (epoch !== this.epoch) throw new StorageError('closed', path, 'handle from before a crash');
  }

  /** @internal Appends to `f` (which may no longer be the file at `path`: an old inode). */
  fileAppend(path: string, f: MemFile, data: Uint8Array): void {
    let bytes = data;
    let failure: StorageError | undefined;
    if (this.failing?.op === 'append') {
      const { code, landed } = this.failing;
      this.failing = undefined;
      this.stats.failed++;
      const n = Math.max(
        0,
        Math.min(data.length, landed ?? (data.length === 0 ? 0 : this.rng.int(data.length))),
      );
      bytes = data.subarray(0, n);
      failure = new StorageError(code, path, `injected ${code} failure after ${n} of ${data.length} bytes`);
    }
    if (this.files.get(path) === f) this.bounded(path, bytes.length);
    if (f.len + bytes.length > f.buf.length) {
      // Grow into a new buffer: images taken of the old one keep it, unchanged.
      const next = new Uint8Array(Math.max(f.len + bytes.length, f.buf.length * 2, 256));
      next.set(f.buf.subarray(0, f.len));
      f.buf = next;
    }
    f.buf.set(bytes, f.len);
    f.len += bytes.length;
    this.stats.appends++;
    if (failure !== undefined) throw failure;
  }

  /** @internal */
  fileTruncate(f: MemFile, size: number): void {
    if (!(Number.isSafeInteger(size) && size >= 0)) throw new RangeError(`truncate to ${size}`);
    // A fresh buffer: the bytes under the cut may belong to an image, later appends must not touch them.
    const next = new Uint8Array(Math.max(size, 256));
    next.set(f.buf.subarray(0, Math.min(size, f.len)));
    f.buf = next;
    f.len = size;
    f.reshaped = true;
  }

  /** @internal */
  fileSync(path: string, f: MemFile): void {
    this.failIf('sync', path); // an fsync that failed made nothing durable (fsyncgate: nor will a retry)
    this.settle(f);
    this.stats.syncs++;
  }

  // ── internals ──────────────────────────────────────────────────────────────────────────────

  /** The current content becomes the durable image; the previous one joins the history. */
  private settle(f: MemFile): void {
    const now = f.buf.subarray(0, f.len);
    if (!f.reshaped && now.length === f.durable.length) return; // nothing new
    f.history.push(f.durable);
    f.durable = now;
    f.reshaped = false;
    this.trimHistory(f);
  }

  /** After a crash: the file's content is `image` (its durable image), nothing pending. */
  private setContent(f: MemFile, image: Uint8Array): void {
    f.buf = image.slice(); // images are never written: the file gets its own buffer
    f.len = image.length;
    f.durable = f.buf.subarray(0, f.len);
    f.reshaped = false;
  }

  private trimHistory(f: MemFile): void {
    while (f.history.length > this.imagesPerFile) f.history.shift();
  }

  /** Makes room for `more` bytes: drops the oldest kept images, else fails 'full'. */
  private bounded(path: string, more: number): void {
    let total = this.bytesHeld + more;
    while (total > this.maxBytes) {
      let victim: MemFile | undefined;
      for (const f of this.files.values())
        if (f.history.length > 0 && (victim === undefined || held(f) > held(victim))) victim = f;
      if (victim === undefined)
        throw new StorageError('full', path, `memory storage bound of ${this.maxBytes} bytes reached`);
      total -= victim.history.shift()?.length ?? 0;
    }
  }

  private parentChecked(path: string): string {
    const p = norm(path);
    if (!this.dirs.has(posix.dirname(p))) throw new StorageError('not-found', p, 'no such directory');
    if (this.dirs.has(p)) throw new StorageError('io', p, 'is a directory');
    return p;
  }

  private failIf(op: FailingOp, path: string): void {
    if (this.failing?.op !== op) return;
    const { code } = this.failing;
    this.failing = undefined;
    this.stats.failed++;
    throw new StorageError(code, path, `injected ${code} failure of ${op}`);
  }
}

class MemAppend implements AppendFile {
  private open = true;

  constructor(
    private readonly storage: MemoryStorage,
    readonly path: string,
    private readonly file: MemFile,
    private readonly epoch: number,
  ) {}

  append(data: Uint8Array): void {
    this.check();
    this.storage.fileAppend(this.path, this.file, data);
  }

  truncate(size: number): void {
    this.check();
    this.storage.fileTruncate(this.file, size);
  }

  sync(): void {
    this.check();
    this.storage.fileSync(this.path, this.file);
  }

  close(): void {
    this.open = false;
  }

  private check(): void {
    if (!this.open) throw new StorageError('closed', this.path, 'file handle used after close');
    this.storage.checkLive(this.epoch, this.path);
  }
}

function held(f: MemFile): number {
  let n = f.len;
  for (const img of f.history) n += img?.length ?? 0;
  return n;
}

function norm(path: string): string {
  if (path.length === 0 || path.includes('\0')) throw new StorageError('not-found', path, 'not a path');
  const p = posix.normalize(path);
  return p.length > 1 && p.endsWith('/') ? p.slice(0, -1) : p;
}
