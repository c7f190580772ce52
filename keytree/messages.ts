/**
 * Rekey messages, parts and welcomes, and their canonical encodings.
 *
 * Encoding (wire codec primitives; integers big-endian, varuint = minimal LEB128):
 *
 *   EpochHeader   u8 format(=1) ‖ bytes(≤64) group ‖ varuint epoch ‖ u8 arity ‖ u8 height
 *                 ‖ varuint rootVersion ‖ varuint partCount ‖ fixed32 partsRoot ‖ fixed32 bodyDigest
 *   RekeyBody     list(records) ‖ list(moves)
 *     record      u8 level ‖ varuint index ‖ varuint version ‖ u8 derive ‖ u16 childMask
 *                 ‖ for each set bit c, ascending: varuint childVersion ‖ fixed40 wrap
 *                 (wrap = AES-256-KW of the node's new key under child c's current key;
 *                 derive = 0, or c + 1 when the key is derived from refreshed child c — see
 *                 derive.ts — in which case c has no wrap)
 *     move        varuint from ‖ varuint to ‖ varuint version (leaf version at `to`)
 *   RekeyMessage  EpochHeader ‖ RekeyBody
 *   RekeyPart     u8 format ‖ varuint epoch ‖ u8 level ‖ varuint index ‖ option(varuint movedFrom)
 *                 ‖ list(≤32) pathWrap ‖ varuint position ‖ list(≤48) fixed32 proof
 *     pathWrap    varuint parentVersion ‖ varuint childVersion ‖ (u8 0 ‖ fixed40 wrap | u8 1)
 *                 (u8 1: the parent key is derived from the child key; never the first step)
 *   Welcome       u8 format ‖ bytes(≤64) group ‖ varuint epoch ‖ u8 arity ‖ u8 height ‖ varuint slot
 *                 ‖ list(height + 1) (varuint version ‖ fixed32 key), leaf first
 *
 * Records are sorted by (level, index) ascending — bottom-up — and moves by `to`; decoders
 * reject any other order, so every message has exactly one encoding. See split.ts for how parts
 * are cut from a body and authenticated by the header.
 */
import { KEY_BYTES, WRAP_OVERHEAD } from '../crypto/index.js';
import { DecodeError, Reader, Writer } from '../wire/index.js';
import { MAX_ARITY, MAX_HEIGHT, MAX_SLOTS, MIN_ARITY, span } from './geometry.js';

export const FORMAT_VERSION = 1;
export const WRAPPED_BYTES = KEY_BYTES + WRAP_OVERHEAD;
export const DIGEST_BYTES = 32;
export const MAX_GROUP_BYTES = 64;
/** A full rekey message may exceed the 16 MiB frame cap (10^5 changes at 10^6 leaves); parts never do. */
export const MAX_REKEY_BYTES = 128 * 1024 * 1024;
export const MAX_RECORDS = 1 << 22;
export const MAX_MOVES = 1 << 22;
/** A Merkle proof over at most 2^48 parts. */
export const MAX_PROOF = 48;
const MAX_VERSION = 0xffffffff;

/** Everything a signer signs; each part is verifiable against it alone. */
export interface EpochHeader {
  readonly group: Uint8Array;
  readonly epoch: number;
  readonly arity: number;
  readonly height: number;
  readonly rootVersion: number;
  readonly partCount: number;
  readonly partsRoot: Uint8Array;
  readonly bodyDigest: Uint8Array;
}

export interface ChildWrap {
  /** Child position 0..d−1. */
  readonly child: number;
  /** Version of the child's key used as the key-encryption key. */
  readonly childVersion: number;
  readonly wrapped: Uint8Array;
}

/**
 * A replaced node: its new version, the child its key is derived from (if any), and its new
 * key wrapped under each other non-empty child.
 */
export interface NodeRecord {
  readonly level: number;
  readonly index: number;
  readonly version: number;
  readonly derivedFrom: number | undefined;
  readonly wraps: readonly ChildWrap[];
}

/** A leaf relocated by compaction: it keeps its leaf key, which gets `version` at slot `to`. */
export interface Move {
  readonly from: number;
  readonly to: number;
  readonly version: number;
}

export interface RekeyBody {
  readonly records: readonly NodeRecord[];
  readonly moves: readonly Move[];
}

export interface RekeyMessage {
  readonly header: EpochHeader;
  readonly body: RekeyBody;
}

/**
 * One step up a part's path: the parent's new key wrapped under the child on the path, or
 * (`wrapped` undefined) derived from that child's key.
 */
export interface PathWrap {
  readonly parentVersion: number;
  readonly childVersion: number;
  readonly wrapped: Uint8Array | undefined;
}

/** What the leaves under subtree (level, index) need of one rekey, with its Merkle proof. */
export interface RekeyPart {
  readonly epoch: number;
  readonly level: number;
  readonly index: number;
  readonly movedFrom: number | undefined;
  /** From the subtree's parent up to the root: wraps[i] delivers the key at level + 1 + i. */
  readonly wraps: readonly PathWrap[];
  readonly position: number;
  readonly proof: readonly Uint8Array[];
}

export interface VersionedKey {
  readonly version: number;
  readonly key: Uint8Array;
}

/** A joiner's path keys for the epoch it joins, leaf first. Confidential: send over TLS only. */
export interface Welcome {
  readonly group: Uint8Array;
  readonly epoch: number;
  readonly arity: number;
  readonly height: number;
  readonly slot: number;
  readonly keys: readonly VersionedKey[];
}

// ── header ──────────────────────────────────────────────────────────────────────────────────

const SIGN_LABEL = new TextEncoder().encode('keyglass/keytree/rekey-header/v1');

export function writeHeader(w: Writer, h: EpochHeader): void {
  w.u8(FORMAT_VERSION).bytes(h.group, MAX_GROUP_BYTES).varuint(h.epoch).u8(h.arity).u8(h.height);
  w.varuint(h.rootVersion)
    .varuint(h.partCount)
    .fixed(h.partsRoot, DIGEST_BYTES)
    .fixed(h.bodyDigest, DIGEST_BYTES);
}

export function readHeader(r: Reader): EpochHeader {
  readFormat(r);
  const group = r.bytes(MAX_GROUP_BYTES).slice();
  const epoch = r.varuint();
  const arity = readArity(r);
  const height = readShape(arity, r);
  const rootVersion = r.bounded(MAX_VERSION, 'root version');
  const partCount = r.varuint();
  const partsRoot = r.fixed(DIGEST_BYTES).slice();
  const bodyDigest = r.fixed(DIGEST_BYTES).slice();
  return { group, epoch, arity, height, rootVersion, partCount, partsRoot, bodyDigest };
}

export function encodeHeader(h: EpochHeader): Uint8Array {
  const w = new Writer(256, 160);
  writeHeader(w, h);
  return w.finish();
}

export function decodeHeader(bytes: Uint8Array): EpochHeader {
  const r = new Reader(bytes);
  const h = readHeader(r);
  r.end();
  return h;
}

/**
 * The bytes a core server signs for an epoch: a domain label and the canonical header. The
 * header commits to the body (bodyDigest) and to every part (partsRoot), so one signature
 * authenticates the full message and each part on its own.
 */
export function signedBytes(h: EpochHeader): Uint8Array {
  const header = encodeHeader(h);
  const out = new Uint8Array(SIGN_LABEL.length + header.length);
  out.set(SIGN_LABEL);
  out.set(header, SIGN_LABEL.length);
  return out;
}

// ── body ────────────────────────────────────────────────────────────────────────────────────

export function writeBody(w: Writer, body: RekeyBody): void {
  w.list(body.records, MAX_RECORDS, (w, rec) => {
    let mask = 0;
    for (const c of rec.wraps) mask |= 1 << c.child;
    w.u8(rec.level)
      .varuint(rec.index)
      .varuint(rec.version)
      .u8(rec.derivedFrom === undefined ? 0 : rec.derivedFrom + 1)
      .u16(mask);
    for (const c of rec.wraps) w.varuint(c.childVersion).fixed(c.wrapped, WRAPPED_BYTES);
  });
  w.list(body.moves, MAX_MOVES, (w, m) => w.varuint(m.from).varuint(m.to).varuint(m.version));
}

/** Reads a body and checks it against the tree shape the header declares. */
export function readBody(r: Reader, arity: number, height: number): RekeyBody {
  let prev = -1;
  const records = r.list(MAX_RECORDS, (r) => {
    const level = r.u8();
    if (level < 1 || level > height)
      throw new DecodeError('bad-value', `record level ${level} outside 1..${height}`);
    const index = r.bounded(span(arity, height - level) - 1, 'record index');
    const order = level * MAX_SLOTS + index;
    if (order <= prev)
      throw new DecodeError('non-canonical', 'records not in ascending (level, index) order');
    prev = order;
    const version = r.bounded(MAX_VERSION, 'version');
    const derive = r.u8();
    const derivedFrom = derive === 0 ? undefined : derive - 1;
    if (derivedFrom !== undefined && (derivedFrom >= arity || level < 2)) {
      throw new DecodeError('bad-value', `record (${level}, ${index}) derives from child ${derivedFrom}`);
    }
    const mask = r.u16();
    if (
      mask >= 1 << arity ||
      (derivedFrom !== undefined && (mask & (1 << derivedFrom)) !== 0) ||
      (mask === 0 && derivedFrom === undefined)
    ) {
      throw new DecodeError('bad-value', `child mask ${mask} for arity ${arity}`);
    }
    const wraps: ChildWrap[] = [];
    for (let child = 0; child < arity; child++) {
      if ((mask & (1 << child)) === 0) continue;
      const childVersion = r.bounded(MAX_VERSION, 'child version');
      wraps.push({ child, childVersion, wrapped: r.fixed(WRAPPED_BYTES).slice() });
    }
    return { level, index, version, derivedFrom, wraps };
  });
  let prevTo = -1;
  const capacity = span(arity, height);
  const moves = r.list(MAX_MOVES, (r) => {
    const from = r.bounded(MAX_SLOTS - 1, 'move source');
    if (from < capacity)
      throw new DecodeError('bad-value', `move from slot ${from} inside the compacted tree`);
    const to = r.bounded(capacity - 1, 'move target');
    if (to <= prevTo) throw new DecodeError('non-canonical', 'moves not in ascending target order');
    prevTo = to;
    return { from, to, version: r.bounded(MAX_VERSION, 'move version') };
  });
  return { records, moves };
}

export function encodeBody(body: RekeyBody): Uint8Array {
  const w = new Writer(MAX_REKEY_BYTES, 1024 + body.records.length * 180);
  writeBody(w, body);
  return w.finish();
}

export function encodeRekey(msg: RekeyMessage): Uint8Array {
  const w = new Writer(MAX_REKEY_BYTES, 1024 + msg.body.records.length * 180);
  writeHeader(w, msg.header);
  writeBody(w, msg.body);
  return w.finish();
}

/** Parses a full rekey message. Throws `DecodeError` on any malformed or truncated input. */
export function decodeRekey(bytes: Uint8Array): RekeyMessage {
  if (bytes.length > MAX_REKEY_BYTES) throw new DecodeError('too-large', `${bytes.length} bytes`);
  const r = new Reader(bytes);
  const header = readHeader(r);
  const body = readBody(r, header.arity, header.height);
  r.end();
  return { header, body };
}

// ── part ────────────────────────────────────────────────────────────────────────────────────

export function encodePart(p: RekeyPart): Uint8Array {
  const w = new Writer(4096, 64 + p.wraps.length * 46 + p.proof.length * 32);
  w.u8(FORMAT_VERSION).varuint(p.epoch).u8(p.level).varuint(p.index);
  w.option(p.movedFrom, (w, v) => w.varuint(v));
  w.list(p.wraps, MAX_HEIGHT, (w, s) => writePathWrap(w, s));
  w.varuint(p.position);
  w.list(p.proof, MAX_PROOF, (w, d) => w.fixed(d, DIGEST_BYTES));
  return w.finish();
}

export function decodePart(bytes: Uint8Array): RekeyPart {
  const r = new Reader(bytes);
  readFormat(r);
  const epoch = r.varuint();
  const level = r.u8();
  if (level >= MAX_HEIGHT) throw new DecodeError('bad-value', `part level ${level}`);
  const index = r.bounded(MAX_SLOTS - 1, 'part index');
  const movedFrom = r.option((r) => r.bounded(MAX_SLOTS - 1, 'moved-from slot'));
  if (movedFrom !== undefined && level !== 0)
    throw new DecodeError('bad-value', 'a moved part must address a leaf');
  const wraps = r.list(MAX_HEIGHT, (r): PathWrap => {
    const parentVersion = r.bounded(MAX_VERSION, 'parent version');
    const childVersion = r.bounded(MAX_VERSION, 'child version');
    const kind = r.u8();
    if (kind > 1) throw new DecodeError('bad-tag', `path step kind ${kind}`);
    return { parentVersion, childVersion, wrapped: kind === 0 ? r.fixed(WRAPPED_BYTES).slice() : undefined };
  });
  if (wraps[0]?.wrapped === undefined) throw new DecodeError('bad-value', 'a part starts with a wrap');
  const position = r.varuint();
  const proof = r.list(MAX_PROOF, (r) => r.fixed(DIGEST_BYTES).slice());
  r.end();
  return { epoch, level, index, movedFrom, wraps, position, proof };
}

/** A path step as encoded in parts and hashed in part digests. */
export function writePathWrap(w: Writer, s: PathWrap): void {
  w.varuint(s.parentVersion).varuint(s.childVersion);
  if (s.wrapped === undefined) w.u8(1);
  else w.u8(0).fixed(s.wrapped, WRAPPED_BYTES);
}

// ── welcome ─────────────────────────────────────────────────────────────────────────────────

export function encodeWelcome(wel: Welcome): Uint8Array {
  const w = new Writer(4096, 64 + wel.keys.length * 40);
  w.u8(FORMAT_VERSION).bytes(wel.group, MAX_GROUP_BYTES).varuint(wel.epoch).u8(wel.arity).u8(wel.height);
  w.varuint(wel.slot);
  w.list(wel.keys, MAX_HEIGHT + 1, (w, k) => w.varuint(k.version).fixed(k.key, KEY_BYTES));
  return w.finish();
}

export function decodeWelcome(bytes: Uint8Array): Welcome {
  const r = new Reader(bytes);
  readFormat(r);
  const group = r.bytes(MAX_GROUP_BYTES).slice();
  const epoch = r.varuint();
  const arity = readArity(r);
  const height = readShape(arity, r);
  const slot = r.bounded(span(arity, height) - 1, 'slot');
  const keys = r.list(MAX_HEIGHT + 1, (r) => ({
    version: r.bounded(MAX_VERSION, 'version'),
    key: r.fixed(KEY_BYTES).slice(),
  }));
  if (keys.length !== height + 1)
    throw new DecodeError('bad-value', `welcome has ${keys.length} keys for height ${height}`);
  r.end();
  return { group, epoch, arity, height, slot, keys };
}

// ── shared field readers ────────────────────────────────────────────────────────────────────

function readFormat(r: Reader): void {
  const v = r.u8();
  if (v !== FORMAT_VERSION) throw new DecodeError('bad-version', `keytree format ${v}`);
}

function readArity(r: Reader): number {
  const a = r.u8();
  if (a < MIN_ARITY || a > MAX_ARITY) throw new DecodeError('bad-value', `arity ${a}`);
  return a;
}

/** Reads a height and checks the tree it describes has at most 2^32 slots. */
function readShape(arity: number, r: Reader): number {
  const h = r.u8();
  if (h < 1 || h > MAX_HEIGHT || span(arity, h) > MAX_SLOTS)
    throw new DecodeError('bad-value', `height ${h} for arity ${arity}`);
  return h;
}
