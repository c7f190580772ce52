/**
 * Durable leaf state: a snapshot plus an append-only command log in one data directory.
 *
 *   DIR/data.key   32 random bytes, mode 0600, created on first open. The at-rest key is
 *                  HKDF-SHA256(data.key, "keyglass leaf-state at rest v1"). A key FILE (not a
 *                  passphrase) so that a server restarts unattended; protect the directory like
 *                  the server's private key. A data.key readable by group or others is refused.
 *   DIR/snapshot   "KGLS" ‖ u8 1 ‖ u64 lastIndex ‖ nonce24 ‖ XChaCha20-Poly1305(snapshot bytes),
 *                  AAD = the 13 header bytes. Written atomically (auth writeFileDurable, 0600).
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
 * bytes up to the end of the file fail their checksum (a write the crash interrupted) — is
 * truncated away: it was never acknowledged. A bad record with intact records after it is
 * corruption and an error naming the file, offset and index; so is a record whose checksum
 * holds but which does not decrypt (wrong data.key, or tampering).
 *
 * Single writer: one server process owns a data directory.
 */
import {
  closeSync,
  constants,
  existsSync,
  fstatSync,
  fsyncSync,
  ftruncateSync,
  openSync,
  readFileSync,
  statSync,
  writeSync,
} from 'node:fs';
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
import { SECRET_FILE_MODE, ensureDir, writeFileDurable } from '../auth/index.js';
import { MAX_COMMAND_BYTES, decodeCommand, encodeCommand, type LeafCommand } from './commands.js';
import type { ApplyResult, LeafStateMachine } from './machine.js';

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
const REST_INFO = new TextEncoder().encode('keyglass leaf-state at rest v1');
export const DEFAULT_COMPACT_EVERY = 10_000;
/** Bound on written-but-not-fsynced commands (see the module comment). */
export const MAX_UNSYNCED_COMMANDS = 4096;

export class StoreError extends Error {
  override readonly name = 'StoreError';
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
  private fd: number;
  private records: number;
  /** Commands written since the last fsync. */
  private unsynced = 0;

  private constructor(
    readonly dir: string,
    private readonly machine: LeafStateMachine,
    private readonly suite: CipherSuite,
    private readonly key: Uint8Array,
    private readonly compactEvery: number,
    fd: number,
    private lastIndex: number,
    records: number,
    readonly opened: OpenReport,
  ) {
    this.fd = fd;
    this.records = records;
  }

  /**
   * Opens (or creates) the store in `dir` and brings `machine` — freshly constructed with the
   * group's options — to the last durable state. The machine's primary flag is left as it was.
   */
  static open(dir: string, machine: LeafStateMachine, opts: StoreOptions): LeafStore {
    ensureDir(dir, 0o700);
    const key = opts.suite.hkdf(
      loadOrCreateKey(join(dir, KEY_FILE)),
      new Uint8Array(0),
      REST_INFO,
      KEY_BYTES,
    );
    const compactEvery = opts.compactEvery ?? DEFAULT_COMPACT_EVERY;
    if (!(Number.isInteger(compactEvery) && compactEvery >= 1))
      throw new RangeError('compactEvery must be ≥ 1');

    let snapshotIndex = 0;
    const snapPath = join(dir, SNAPSHOT_FILE);
    if (existsSync(snapPath)) {
      const bytes = readFileSync(snapPath);
      const header = bytes.subarray(0, FILE_HEADER_BYTES);
      if (bytes.length < FILE_HEADER_BYTES + XNONCE_BYTES + TAG_BYTES || !startsWith(header, SNAPSHOT_MAGIC))
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
      }
      plain.fill(0);
    }

    const logPath = join(dir, LOG_FILE);
    if (!existsSync(logPath)) writeFileDurable(logPath, logHeader(snapshotIndex + 1), SECRET_FILE_MODE);
    const wasPrimary = machine.isPrimary;
    machine.setPrimary(true); // the log holds only commands a primary replica applied
    let replay: { lastIndex: number; records: number; replayed: number; validEnd: number; fileEnd: number };
    try {
      replay = replayLog(logPath, snapshotIndex, key, opts.suite, machine);
    } finally {
      machine.setPrimary(wasPrimary);
    }
    const fd = openSync(logPath, constants.O_WRONLY | constants.O_APPEND);
    if (replay.validEnd < replay.fileEnd) {
      ftruncateSync(fd, replay.validEnd);
      fsyncSync(fd);
    }
    return new LeafStore(dir, machine, opts.suite, key, compactEvery, fd, replay.lastIndex, replay.records, {
      snapshotIndex,
      replayed: replay.replayed,
      truncatedBytes: replay.fileEnd - replay.validEnd,
    });
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
   */
  commit(commands: readonly LeafCommand[]): ApplyResult[] {
    if (!this.machine.isPrimary) throw new StoreError('not a primary replica: commands refused');
    if (commands.length === 0) return [];
    const chunks: Uint8Array[] = [];
    let index = this.lastIndex;
    for (const cmd of commands) chunks.push(this.record(++index, encodeCommand(cmd)));
    const buf = concatBytes(...chunks);
    let off = 0;
    while (off < buf.length) off += writeSync(this.fd, buf, off, buf.length - off);
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

  /** fsyncs the log if commands wait for it. */
  private sync(): void {
    if (this.unsynced === 0) return;
    fsyncSync(this.fd);
    this.stats.syncs++;
    this.unsynced = 0;
  }

  /** Writes a snapshot of the current state and starts an empty log after it. */
  compact(): void {
    const header = new Uint8Array(FILE_HEADER_BYTES);
    header.set(SNAPSHOT_MAGIC);
    header[4] = FORMAT;
    writeU64(header, 5, this.lastIndex);
    const nonce = randomXNonce();
    const plain = this.machine.snapshot();
    const sealed = this.suite.aeadSeal(this.key, nonce, plain, header);
    plain.fill(0);
    writeFileDurable(join(this.dir, SNAPSHOT_FILE), concatBytes(header, nonce, sealed), SECRET_FILE_MODE);
    // The snapshot is durable: now the log can be replaced by an empty one after it.
    closeSync(this.fd);
    const logPath = join(this.dir, LOG_FILE);
    writeFileDurable(logPath, logHeader(this.lastIndex + 1), SECRET_FILE_MODE);
    this.fd = openSync(logPath, constants.O_WRONLY | constants.O_APPEND);
    this.records = 0;
    this.unsynced = 0; // the durable snapshot holds them
  }

  close(): void {
    this.sync();
    closeSync(this.fd);
    this.key.fill(0);
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
  path: string,
  snapshotIndex: number,
  key: Uint8Array,
  suite: CipherSuite,
  machine: LeafStateMachine,
): { lastIndex: number; records: number; replayed: number; validEnd: number; fileEnd: number } {
  const bytes = readFileSync(path);
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
      if (allZero(bytes.subarray(off))) break; // zero-filled torn tail
      throw corrupt('length checksum mismatch');
    }
    if (len > MAX_PAYLOAD_BYTES || len < XNONCE_BYTES + TAG_BYTES) throw corrupt(`impossible length ${len}`);
    if (len > left - RECORD_HEADER_BYTES) break; // torn: the payload was cut short
    const payload = bytes.subarray(off + RECORD_HEADER_BYTES, off + RECORD_HEADER_BYTES + len);
    const end = off + RECORD_HEADER_BYTES + len;
    if (view.getUint32(off + 8) !== crc32(payload)) {
      if (end === bytes.length) break; // the last record, partly written: torn
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

function loadOrCreateKey(path: string): Uint8Array {
  if (!existsSync(path)) writeFileDurable(path, randomBytes(KEY_BYTES), SECRET_FILE_MODE);
  const mode = statSync(path).mode & 0o777;
  if ((mode & 0o077) !== 0)
    throw new StoreError(`${path} is accessible by group or others (mode ${mode.toString(8)}); chmod 600 it`);
  const fd = openSync(path, constants.O_RDONLY);
  try {
    if (fstatSync(fd).size !== KEY_BYTES)
      throw new StoreError(`${path} must hold exactly ${KEY_BYTES} bytes`);
  } finally {
    closeSync(fd);
  }
  return new Uint8Array(readFileSync(path));
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
