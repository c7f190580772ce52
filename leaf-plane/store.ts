/**
 * Durable leaf state: a snapshot plus an append-only command log in one data directory.
 *
 *   DIR/data.key   32 random bytes, mode 0600, created on first open. The at-rest key is
 *                  HKDF-SHA256(data.key, "keyglass leaf-state at rest v1"). A key FILE (not a
 *                  passphrase) so that a server restarts unattended; protect the directory like
 *                  the server's private key. A data.key readable by group or others is refused.
 *   DIR/snapshot   "KGLS" ‖ u8 1 ‖ u64 lastIndex ‖ nonce24 ‖ XChaCha20-Poly1305(snapshot bytes),
 *                  AAD = the 13 header bytes. Written atomically (Storage.replace, 0600).
 *   DIR/log        "KGLL" ‖ u8 1 ‖ u64 baseIndex, then records:
 *                  u32 length ‖ u32 crc32(length) ‖ u32 crc32(payload) ‖ payload,
 *                  payload = nonce24 ‖ XChaCha20-Poly1305(encoded command), AAD = "KGLL" ‖ u64 index.
 *
 * Everything at rest is encrypted: the snapshot holds every tree key and the derivation secret,
 * and `setKeySecret` records carry secrets. Records are authenticated with their index, so a
 * reordered, dropped or spliced record fails to open.
 *
 * Writes: `commit(commands)` appends the records in one write, applies them, and fsyncs before
 * it returns — acknowledge a command to anyone only after commit returned. One exception keeps
 * admissions cheap: a commit of accepted `admit` commands alone (no batch cut, no refusal) is
 * written but not yet fsynced. Nothing observable depends on it: the leaf is welcomed only by
 * the batch that admits it, and that commit's fsync makes every earlier record durable too (an
 * fsync covers the whole file). A crash before then loses only admissions nobody was told of —
 * the log's torn-tail rule already treats such records as never acknowledged. At most
 * MAX_UNSYNCED_COMMANDS wait; `close()` syncs them.
 * Compaction (every `compactEvery` records, or `compact()`): write the snapshot atomically, then
 * atomically replace the log with an empty one based after it. A crash between the two leaves
 * the old log, whose records up to the snapshot index are skipped on open.
 *
 * Open: restore the snapshot, replay the log. A torn tail — a last record cut short, or one whose
 * bytes up to the end of the file fail their checksum (a write the crash interrupted), or a
 * record failing its checksum with nothing but zeros after it (the file system extended the file
 * before the data landed) — is truncated away: it was never acknowledged. A bad record with intact records after it is
 * corruption and an error naming the file, offset and index; so is a record whose checksum
 * holds but which does not decrypt (wrong data.key, or tampering).
 *
 * Single writer: one server process owns a data directory. The files live in a Storage
 * (storage.ts): the file system for a server, a faulty memory store in the simulator.
 */
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import {
  KEY_BYTES,
  XNONCE_BYTES,
  concatBytes,
  randomBytes,
  randomXNonce,
  type CipherSuite,
} from '../crypto/index.js';
import { DecodeError } from '../wire/index.js';
import { SECRET_FILE_MODE } from '../auth/index.js';
import { MAX_COMMAND_BYTES, decodeCommand, encodeCommand, type LeafCommand } from './commands.js';
import type { ApplyResult, LeafStateMachine } from './machine.js';
import { MAX_LEAF_STATE_SNAPSHOT_BYTES } from './snapshot.js';
import { StorageError, type AppendFile, type Storage } from './storage.js';

const KEY_FILE = 'data.key';
const SNAPSHOT_FILE = 'snapshot';
const LOG_FILE = 'log';
const SNAPSHOT_MAGIC = Uint8Array.of(0x4b, 0x47, 0x4c, 0x53); // "KGLS"
const LOG_MAGIC = Uint8Array.of(0x4b, 0x47, 0x4c, 0x4c); // "KGLL"
const FORMAT = 1;
const FILE_HEADER_BYTES = 4 + 1 + 8;
const RECORD_HEADER_BYTES = 12;
const TAG_BYTES = 16;
const MAX_PAYLOAD_BYTES = XNONCE_BYTES + MAX_COMMAND_BYTES + TAG_BYTES;
/** A snapshot file: header, nonce, the sealed snapshot (snapshot.ts bounds it) and its tag. */
const MAX_SNAPSHOT_FILE_BYTES = FILE_HEADER_BYTES + XNONCE_BYTES + MAX_LEAF_STATE_SNAPSHOT_BYTES + TAG_BYTES;
const REST_INFO = new TextEncoder().encode('keyglass leaf-state at rest v1');
export const DEFAULT_COMPACT_EVERY = 10_000;
/** Bound on written-but-not-fsynced commands (see the module comment). */
export const MAX_UNSYNCED_COMMANDS = 4096;

export class StoreError extends Error {
  override readonly name = 'StoreError';
}

/**
 * A failed durable write at run time: the store's own refusal (StoreError) or the storage's
 * error out of the write that failed first (StorageError, which LeafStore and PrimaryRecord let
 * through). Either way the replica may be ahead of what its disk holds: a host stops the server,
 * which reopens its storage on restart (KeyServer, and the system simulation's host).
 */
export function isStoreFailure(e: unknown): e is StoreError | StorageError {
  return e instanceof StoreError || e instanceof StorageError;
}

export interface StoreOptions {
  readonly suite: CipherSuite;
  /** Compact after this many log records (default 10,000). */
  readonly compactEvery?: number;
}

export interface OpenReport {
  readonly snapshotIndex: number;
  readonly replayed: number;
  /** Bytes cut off a torn tail (0 when the log ended cleanly). */
  readonly truncatedBytes: number;
}

export interface StoreStats {
  /** fsyncs of the log by commit (one per externally visible commit, not per command). */
  syncs: number;
  /** Commits whose fsync was deferred to a later commit. */
  deferredCommits: number;
}

export class LeafStore {
  readonly stats: StoreStats = { syncs: 0, deferredCommits: 0 };
  private log: AppendFile;
  private records: number;
  /** Commands written since the last fsync. */
  private unsynced = 0;
  /** Set by a failed write: the log's tail is unknown, so nothing more is written (see commit). */
  private failure: string | undefined;

  private constructor(
    private readonly storage: Storage,
    readonly dir: string,
    private readonly machine: LeafStateMachine,
    private readonly suite: CipherSuite,
    private readonly key: Uint8Array,
    private readonly compactEvery: number,
    log: AppendFile,
    private lastIndex: number,
    records: number,
    readonly opened: OpenReport,
  ) {
    this.log = log;
    this.records = records;
  }

  /**
   * Opens (or creates) the store in `dir` of `storage` and brings `machine` — freshly constructed
   * with the group's options — to the last durable state. The machine's primary flag is left as
   * it was.
   */
  /**
   * Opens the store a server runs on: as `open`, and a fresh store (no snapshot, no commands)
   * writes one at once, so the machine's random secret survives a restart. One rule for the
   * server (server/open.ts) and the system simulation.
   */
  static openForServer(
    storage: Storage,
    dir: string,
    machine: LeafStateMachine,
    opts: StoreOptions,
  ): LeafStore {
    const store = LeafStore.open(storage, dir, machine, opts);
    if (store.index === 0 && store.opened.snapshotIndex === 0) store.compact();
    return store;
  }

  static open(storage: Storage, dir: string, machine: LeafStateMachine, opts: StoreOptions): LeafStore {
    storage.ensureDir(dir, 0o700);
    const raw = loadOrCreateKey(storage, join(dir, KEY_FILE));
    const key = opts.suite.hkdf(raw, new Uint8Array(0), REST_INFO, KEY_BYTES);
    raw.fill(0);
    try {
      const compactEvery = opts.compactEvery ?? DEFAULT_COMPACT_EVERY;
      if (!(Number.isInteger(compactEvery) && compactEvery >= 1))
        throw new RangeError('compactEvery must be ≥ 1');

      let snapshotIndex = 0;
      const snapPath = join(dir, SNAPSHOT_FILE);
      const bytes = readBounded(storage, snapPath, MAX_SNAPSHOT_FILE_BYTES);
      if (bytes !== undefined) {
        const header = bytes.subarray(0, FILE_HEADER_BYTES);
        if (
          bytes.length < FILE_HEADER_BYTES + XNONCE_BYTES + TAG_BYTES ||
          !startsWith(header, SNAPSHOT_MAGIC)
        )
          throw new StoreError(`${snapPath}: not a leaf-state snapshot`);
        if (header[4] !== FORMAT) throw new StoreError(`${snapPath}: unsupported format ${header[4]}`);
        snapshotIndex = readU64(header, 5);
        const nonce = bytes.subarray(FILE_HEADER_BYTES, FILE_HEADER_BYTES + XNONCE_BYTES);
        let plain: Uint8Array;
        try {
          plain = opts.suite.aeadOpen(key, nonce, bytes.subarray(FILE_HEADER_BYTES + XNONCE_BYTES), header);
        } catch {
          throw new StoreError(`${snapPath}: does not decrypt (wrong ${KEY_FILE}, or the file was altered)`);
        }
        try {
          machine.restore(plain);
        } catch (e) {
          throw new StoreError(`${snapPath}: ${(e as Error).message}`);
        } finally {
          plain.fill(0);
        }
      }

      const logPath = join(dir, LOG_FILE);
      if (storage.stat(logPath) === undefined)
        storage.replace(logPath, logHeader(snapshotIndex + 1), SECRET_FILE_MODE);
      const wasPrimary = machine.isPrimary;
      machine.setPrimary(true); // the log holds only commands a primary replica applied
      let replay: { lastIndex: number; records: number; replayed: number; validEnd: number; fileEnd: number };
      try {
        replay = replayLog(storage, logPath, snapshotIndex, key, opts.suite, machine);
      } finally {
        machine.setPrimary(wasPrimary);
      }
      const log = storage.openAppend(logPath);
      try {
        if (replay.validEnd < replay.fileEnd) {
          log.truncate(replay.validEnd);
          log.sync();
        }
      } catch (e) {
        log.close();
        throw e;
      }
      return new LeafStore(
        storage,
        dir,
        machine,
        opts.suite,
        key,
        compactEvery,
        log,
        replay.lastIndex,
        replay.records,
        {
          snapshotIndex,
          replayed: replay.replayed,
          truncatedBytes: replay.fileEnd - replay.validEnd,
        },
      );
    } catch (e) {
      key.fill(0);
      throw e;
    }
  }

  /** Index of the last durable command (0: none). */
  get index(): number {
    return this.lastIndex;
  }

  /** Records in the current log (since the last compaction). */
  get logRecords(): number {
    return this.records;
  }

  /**
   * Logs `commands` (one write), applies them in order, and makes them durable (one fsync) before
   * returning each command's result — except a commit of accepted admissions alone, whose fsync
   * waits for the next commit that needs one (see the module comment). Refuses everything when
   * the machine is not primary (nothing is written).
   *
   * A storage error is thrown as it is and ends this store's writing: part of the write may have
   * landed (and the machine may hold commands that are not durable), so appending after it would
   * leave a corrupt record before intact ones. Every later commit or compaction is a StoreError;
   * the host recovers by reopening the store from storage (the torn tail is then cut off).
   */
  commit(commands: readonly LeafCommand[]): ApplyResult[] {
    this.refuseIfFailed();
    if (!this.machine.isPrimary) throw new StoreError('not a primary replica: commands refused');
    if (commands.length === 0) return [];
    const chunks: Uint8Array[] = [];
    let index = this.lastIndex;
    for (const cmd of commands) chunks.push(this.record(++index, encodeCommand(cmd)));
    this.guard(() => this.log.append(concatBytes(...chunks)));
    this.lastIndex = index;
    this.records += commands.length;
    this.unsynced += commands.length;
    const results = commands.map((c) => this.machine.apply(c));
    const silent = commands.every(
      (c, i) => c.kind === 'admit' && results[i]?.batch === undefined && results[i]?.refused === undefined,
    );
    if (silent && this.unsynced <= MAX_UNSYNCED_COMMANDS) this.stats.deferredCommits++;
    else this.sync();
    if (this.records >= this.compactEvery) this.compact();
    return results;
  }

  /**
   * fsyncs the log if commands wait for it (a commit of admissions alone is not synced at once:
   * their welcomes wait for a batch, whose commit syncs). Anything durable that names a store
   * position must call this first (the primary record: PrimaryRecord.open refuses a record ahead
   * of the store).
   */
  sync(): void {
    if (this.unsynced === 0) return;
    this.guard(() => this.log.sync());
    this.stats.syncs++;
    this.unsynced = 0;
  }

  /** Writes a snapshot of the current state and starts an empty log after it. */
  compact(): void {
    this.refuseIfFailed();
    const header = new Uint8Array(FILE_HEADER_BYTES);
    header.set(SNAPSHOT_MAGIC);
    header[4] = FORMAT;
    writeU64(header, 5, this.lastIndex);
    const nonce = randomXNonce();
    const plain = this.machine.snapshot();
    const sealed = this.suite.aeadSeal(this.key, nonce, plain, header);
    plain.fill(0);
    this.guard(() => {
      this.storage.replace(
        join(this.dir, SNAPSHOT_FILE),
        concatBytes(header, nonce, sealed),
        SECRET_FILE_MODE,
      );
      // The snapshot is durable: now the log can be replaced by an empty one after it.
      this.log.close();
      const logPath = join(this.dir, LOG_FILE);
      this.storage.replace(logPath, logHeader(this.lastIndex + 1), SECRET_FILE_MODE);
      this.log = this.storage.openAppend(logPath);
    });
    this.records = 0;
    this.unsynced = 0; // the durable snapshot holds them
  }

  /** Syncs what waits and closes the log (after a failed write: closes only). Wipes the key. */
  close(): void {
    try {
      if (this.failure === undefined) this.sync();
    } finally {
      try {
        this.log.close();
      } catch {
        // closing a handle of a failed device: nothing more to lose
      }
      this.key.fill(0);
      this.failure ??= 'closed';
    }
  }

  /** Whether a failed write stopped this store (a host then restarts it from storage). */
  get failed(): boolean {
    return this.failure !== undefined && this.failure !== 'closed';
  }

  private guard(write: () => void): void {
    try {
      write();
    } catch (e) {
      this.failure = (e as Error).message;
      throw e;
    }
  }

  private refuseIfFailed(): void {
    if (this.failure === 'closed') throw new StoreError(`${this.dir}: the store is closed`);
    if (this.failure !== undefined)
      throw new StoreError(
        `${this.dir}: a write failed (${this.failure}); nothing more is written until the store is reopened`,
      );
  }

  private record(index: number, command: Uint8Array): Uint8Array {
    const nonce = randomXNonce();
    const sealed = this.suite.aeadSeal(this.key, nonce, command, recordAad(index));
    const payload = concatBytes(nonce, sealed);
    const out = new Uint8Array(RECORD_HEADER_BYTES + payload.length);
    const view = new DataView(out.buffer);
    view.setUint32(0, payload.length);
    view.setUint32(4, crc32(out.subarray(0, 4)));
    view.setUint32(8, crc32(payload));
    out.set(payload, RECORD_HEADER_BYTES);
    return out;
  }
}

function replayLog(
  storage: Storage,
  path: string,
  snapshotIndex: number,
  key: Uint8Array,
  suite: CipherSuite,
  machine: LeafStateMachine,
): { lastIndex: number; records: number; replayed: number; validEnd: number; fileEnd: number } {
  const bytes = storage.read(path);
  if (bytes === undefined) throw new StoreError(`${path}: missing`);
  if (bytes.length < FILE_HEADER_BYTES || !startsWith(bytes, LOG_MAGIC))
    throw new StoreError(`${path}: not a leaf-state log`);
  if (bytes[4] !== FORMAT) throw new StoreError(`${path}: unsupported format ${bytes[4]}`);
  const base = readU64(bytes, 5);
  if (base > snapshotIndex + 1)
    throw new StoreError(`${path}: starts at command ${base} but the snapshot ends at ${snapshotIndex}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let off = FILE_HEADER_BYTES;
  let index = base - 1;
  let records = 0;
  let replayed = 0;
  const corrupt = (what: string): StoreError =>
    new StoreError(`${path}: corrupt record ${index + 1} at offset ${off}: ${what} (intact data follows it)`);
  while (off < bytes.length) {
    const left = bytes.length - off;
    if (left < RECORD_HEADER_BYTES) break; // torn inside a record header
    const len = view.getUint32(off);
    if (view.getUint32(off + 4) !== crc32(bytes.subarray(off, off + 4))) {
      // Zeros after the length and its checksum: the file was extended before this write landed.
      if (allZero(bytes.subarray(off + 8))) break;
      throw corrupt('length checksum mismatch');
    }
    if (len > MAX_PAYLOAD_BYTES || len < XNONCE_BYTES + TAG_BYTES) throw corrupt(`impossible length ${len}`);
    if (len > left - RECORD_HEADER_BYTES) break; // torn: the payload was cut short
    const payload = bytes.subarray(off + RECORD_HEADER_BYTES, off + RECORD_HEADER_BYTES + len);
    const end = off + RECORD_HEADER_BYTES + len;
    if (view.getUint32(off + 8) !== crc32(payload)) {
      // The last record, partly written, or one with only zeros after it (extended, not written): torn.
      if (end === bytes.length || allZero(bytes.subarray(end))) break;
      throw corrupt('payload checksum mismatch');
    }
    let command: Uint8Array;
    try {
      command = suite.aeadOpen(
        key,
        payload.subarray(0, XNONCE_BYTES),
        payload.subarray(XNONCE_BYTES),
        recordAad(index + 1),
      );
    } catch {
      throw new StoreError(
        `${path}: record ${index + 1} at offset ${off} does not decrypt (wrong ${KEY_FILE}, or records were altered or reordered)`,
      );
    }
    index++;
    records++;
    if (index > snapshotIndex) {
      let cmd: LeafCommand;
      try {
        cmd = decodeCommand(command);
      } catch (e) {
        if (e instanceof DecodeError) throw corrupt(`command does not decode (${e.message})`);
        throw e;
      }
      machine.apply(cmd);
      replayed++;
    }
    off = end;
  }
  if (index < snapshotIndex)
    throw new StoreError(`${path}: ends at command ${index}, before the snapshot's ${snapshotIndex}`);
  return { lastIndex: index, records, replayed, validEnd: off, fileEnd: bytes.length };
}

function loadOrCreateKey(storage: Storage, path: string): Uint8Array {
  if (storage.stat(path) === undefined) {
    const fresh = randomBytes(KEY_BYTES);
    storage.replace(path, fresh, SECRET_FILE_MODE);
    fresh.fill(0);
  }
  const info = storage.stat(path);
  if (info === undefined) throw new StoreError(`${path} vanished after it was written`);
  if ((info.mode & 0o077) !== 0)
    throw new StoreError(
      `${path} is accessible by group or others (mode ${info.mode.toString(8)}); chmod 600 it`,
    );
  const key = info.size === KEY_BYTES ? readBounded(storage, path, KEY_BYTES) : undefined;
  if (key?.length !== KEY_BYTES) throw new StoreError(`${path} must hold exactly ${KEY_BYTES} bytes`);
  return key;
}

/** Reads a file of at most `maxBytes` (undefined: none there); a larger one is a StoreError. */
function readBounded(storage: Storage, path: string, maxBytes: number): Uint8Array | undefined {
  try {
    return storage.read(path, maxBytes);
  } catch (e) {
    if (e instanceof StorageError && e.code === 'too-large') throw new StoreError(e.message);
    throw e;
  }
}

function logHeader(base: number): Uint8Array {
  const h = new Uint8Array(FILE_HEADER_BYTES);
  h.set(LOG_MAGIC);
  h[4] = FORMAT;
  writeU64(h, 5, base);
  return h;
}

function recordAad(index: number): Uint8Array {
  const aad = new Uint8Array(12);
  aad.set(LOG_MAGIC);
  writeU64(aad, 4, index);
  return aad;
}

function readU64(b: Uint8Array, at: number): number {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength).getBigUint64(at);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new StoreError('index beyond 2^53');
  return Number(v);
}

function writeU64(b: Uint8Array, at: number, v: number): void {
  new DataView(b.buffer, b.byteOffset, b.byteLength).setBigUint64(at, BigInt(v));
}

function startsWith(b: Uint8Array, prefix: Uint8Array): boolean {
  return prefix.every((x, i) => b[i] === x);
}

function allZero(b: Uint8Array): boolean {
  for (const x of b) if (x !== 0) return false;
  return true;
}
