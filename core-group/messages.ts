/**
 * Wire messages of the core-group stack and their canonical, bounded codec.
 *
 * Every message is decoded from bytes (also in simulation), so every path sees exactly what a
 * real peer would send. Layout: u8 version ‖ u8 tag ‖ fields. Every list and byte string has a
 * cap; decoding untrusted bytes returns a `Frame` or throws `DecodeError`, nothing else.
 * Each message kind is owned by one layer (noted per type); layers ignore kinds they do not own.
 */

import { DecodeError, Reader, Writer } from '../wire/index.js';
import type { MemberKey, PrimaryRef, StateVersion, ViewId } from './ids.js';
import { MAX_VERSION_PARTS } from './ids.js';
import { isMemberKey, MAX_MEMBERS } from './ids.js';

export const WIRE_VERSION = 1;
/** Cap on one application payload. */
export const MAX_PAYLOAD_BYTES = 64 * 1024;
/** Cap on an application state snapshot carried by a COMMIT. */
export const MAX_STATE_BYTES = 8 * 1024 * 1024;
/** Cap on messages carried by one FLUSH_OK or PREPARE (the unstable window of all senders). */
export const MAX_FLUSH_MESSAGES = 1 << 16;
/** Cap on remembered primary attempts. */
export const MAX_ATTEMPTS = 32;
/** Cap on a sequencer ORDER batch. */
export const MAX_ORDER_BATCH = 1024;
const MAX_KEY_BYTES = 82;

/** Data channels: application FIFO, application total order, sequencer ORDER records. */
export const Channel = { Fifo: 0, Ordered: 1, Order: 2 } as const;
export type Channel = (typeof Channel)[keyof typeof Channel];

/** A multicast in a view (nakack). Retransmissions carry the same content. */
export interface DataMsg {
  readonly t: 'data';
  readonly from: MemberKey;
  readonly view: ViewId;
  readonly seq: number;
  readonly ch: Channel;
  readonly payload: Uint8Array;
}
/** A data message without its view, as carried inside flush messages. */
export interface FlushedMsg {
  readonly sender: MemberKey;
  readonly seq: number;
  readonly ch: Channel;
  readonly payload: Uint8Array;
}
/** Per-sender contiguous receipt vector, aligned with the view's members (nakack: NAKs + stability). */
export interface StatusMsg {
  readonly t: 'status';
  readonly from: MemberKey;
  readonly view: ViewId;
  readonly contig: readonly number[];
}
/** Retransmission request for sender's seqs lo..hi (nakack). */
export interface NakMsg {
  readonly t: 'nak';
  readonly from: MemberKey;
  readonly to: MemberKey;
  readonly view: ViewId;
  readonly sender: MemberKey;
  readonly lo: number;
  readonly hi: number;
}
/** Liveness (fd). */
export interface HeartbeatMsg {
  readonly t: 'hb';
  readonly from: MemberKey;
  readonly to: MemberKey;
  readonly view: ViewId;
}
/** "You are not in my newer view" — answer to a heartbeat from an excluded member (gms). */
export interface ExcludedMsg {
  readonly t: 'excluded';
  readonly from: MemberKey;
  readonly to: MemberKey;
  readonly view: ViewId;
}
/** Point-to-point data and its cumulative ack (unicast layer). */
export interface UnicastMsg {
  readonly t: 'ucast';
  readonly from: MemberKey;
  readonly to: MemberKey;
  readonly view: ViewId;
  readonly seq: number;
  readonly payload: Uint8Array;
}
export interface UnicastAckMsg {
  readonly t: 'uack';
  readonly from: MemberKey;
  readonly to: MemberKey;
  readonly view: ViewId;
  readonly ack: number;
}
/** gms: reported suspicions, to the coordinator. */
export interface SuspectMsg {
  readonly t: 'suspect';
  readonly from: MemberKey;
  readonly to: MemberKey;
  readonly view: ViewId;
  readonly suspects: readonly MemberKey[];
}
/** gms: a coordinator advertises its view to processes outside it (merge and join discovery). */
export interface HelloMsg {
  readonly t: 'hello';
  readonly from: MemberKey;
  readonly view: ViewId;
  readonly members: readonly MemberKey[];
  readonly primary: boolean;
  readonly lpStep: number;
  /** The coordinator's committed-state version: the newest state leads a merge. */
  readonly version: StateVersion;
}
/** gms flush, round 1: stop sending and report. */
export interface ProposeMsg {
  readonly t: 'propose';
  readonly from: MemberKey;
  readonly to: MemberKey;
  readonly id: ViewId;
  readonly members: readonly MemberKey[];
}
export interface FlushOkMsg {
  readonly t: 'flushok';
  readonly from: MemberKey;
  readonly to: MemberKey;
  readonly id: ViewId;
  readonly oldView: ViewId;
  readonly oldMembers: readonly MemberKey[];
  readonly oldPrimary: boolean;
  readonly contig: readonly number[];
  /** Every message of the old view this member still holds (all above its stability point). */
  readonly msgs: readonly FlushedMsg[];
  readonly lastPrimary: PrimaryRef;
  readonly attempts: readonly PrimaryRef[];
  /** The reporter's committed-state version when it froze. */
  readonly version: StateVersion;
}
/** gms flush, round 2: the agreed cut, the messages this member lacks, the primary decision. */
export interface PrepareMsg {
  readonly t: 'prepare';
  readonly from: MemberKey;
  readonly to: MemberKey;
  readonly id: ViewId;
  readonly members: readonly MemberKey[];
  readonly primary: boolean;
  readonly lastPrimary: PrimaryRef;
  readonly attempts: readonly PrimaryRef[];
  /** Cut of the receiver's old view, aligned with its old members. */
  readonly cut: readonly number[];
  readonly msgs: readonly FlushedMsg[];
  /** The old view's sequencer is in the receiver's flush group: unordered messages were never ordered anywhere. */
  readonly resendUnordered: boolean;
}
export interface ReadyMsg {
  readonly t: 'ready';
  readonly from: MemberKey;
  readonly to: MemberKey;
  readonly id: ViewId;
}
/** gms flush, round 3: install; carries the coordinator's state to members from other old views. */
export interface CommitMsg {
  readonly t: 'commit';
  readonly from: MemberKey;
  readonly to: MemberKey;
  readonly id: ViewId;
  readonly state: Uint8Array | undefined;
  /** The version of `state` (present with it). */
  readonly version: StateVersion;
}
export interface InstalledMsg {
  readonly t: 'installed';
  readonly from: MemberKey;
  readonly to: MemberKey;
  readonly id: ViewId;
}

export type Frame =
  | DataMsg
  | StatusMsg
  | NakMsg
  | HeartbeatMsg
  | ExcludedMsg
  | UnicastMsg
  | UnicastAckMsg
  | SuspectMsg
  | HelloMsg
  | ProposeMsg
  | FlushOkMsg
  | PrepareMsg
  | ReadyMsg
  | CommitMsg
  | InstalledMsg;

const TAGS = [
  'data',
  'status',
  'nak',
  'hb',
  'excluded',
  'ucast',
  'uack',
  'suspect',
  'hello',
  'propose',
  'flushok',
  'prepare',
  'ready',
  'commit',
  'installed',
] as const;
const TAG_OF: Record<Frame['t'], number> = Object.fromEntries(TAGS.map((t, i) => [t, i])) as Record<
  Frame['t'],
  number
>;

// ---- field codecs ----

function wKey(w: Writer, k: MemberKey): void {
  w.string(k, MAX_KEY_BYTES);
}
function rKey(r: Reader): MemberKey {
  const k = r.string(MAX_KEY_BYTES);
  if (!isMemberKey(k)) throw new DecodeError('bad-value', `bad member key ${JSON.stringify(k)}`);
  return k;
}
function wViewId(w: Writer, v: ViewId): void {
  w.varuint(v.epoch);
  w.string(v.coord, MAX_KEY_BYTES);
}
function rViewId(r: Reader): ViewId {
  const epoch = r.varuint();
  const coord = r.string(MAX_KEY_BYTES);
  // epoch 0 with an empty coordinator is the genesis pseudo-view; everything else names a member.
  if (!(coord === '' && epoch === 0) && !isMemberKey(coord))
    throw new DecodeError('bad-value', 'bad view coordinator');
  return { epoch, coord };
}
function wKeys(w: Writer, ks: readonly MemberKey[]): void {
  w.list(ks, MAX_MEMBERS, wKey);
}
function rKeys(r: Reader): MemberKey[] {
  const ks = r.list(MAX_MEMBERS, rKey);
  if (new Set(ks).size !== ks.length) throw new DecodeError('bad-value', 'duplicate member in list');
  return ks;
}
function wNums(w: Writer, ns: readonly number[]): void {
  w.list(ns, MAX_MEMBERS, (ww, n) => ww.varuint(n));
}
function rNums(r: Reader): number[] {
  return r.list(MAX_MEMBERS, (rr) => rr.varuint());
}
function wPrimary(w: Writer, p: PrimaryRef): void {
  w.varuint(p.step);
  wViewId(w, p.id);
  wKeys(w, p.members);
}
function rPrimary(r: Reader): PrimaryRef {
  return { step: r.varuint(), id: rViewId(r), members: rKeys(r) };
}
function wVersion(w: Writer, v: StateVersion): void {
  w.list(v, MAX_VERSION_PARTS, (ww, n) => ww.varuint(n));
}
function rVersion(r: Reader): StateVersion {
  return r.list(MAX_VERSION_PARTS, (rr) => rr.varuint());
}
function wChannel(w: Writer, c: Channel): void {
  w.u8(c);
}
function rChannel(r: Reader): Channel {
  const c = r.u8();
  if (c > 2) throw new DecodeError('bad-tag', `channel ${c}`);
  return c as Channel;
}
function wFlushed(w: Writer, m: FlushedMsg): void {
  wKey(w, m.sender);
  w.varuint(m.seq);
  wChannel(w, m.ch);
  w.bytes(m.payload, MAX_PAYLOAD_BYTES);
}
function rFlushed(r: Reader): FlushedMsg {
  return { sender: rKey(r), seq: r.varuint(), ch: rChannel(r), payload: r.bytes(MAX_PAYLOAD_BYTES).slice() };
}
function wFlushedList(w: Writer, ms: readonly FlushedMsg[]): void {
  w.list(ms, MAX_FLUSH_MESSAGES, wFlushed);
}
function rFlushedList(r: Reader): FlushedMsg[] {
  return r.list(MAX_FLUSH_MESSAGES, rFlushed);
}
function rPositive(r: Reader, what: string): number {
  const v = r.varuint();
  if (v === 0) throw new DecodeError('bad-value', `${what} must be ≥ 1`);
  return v;
}

function encodeBody(w: Writer, f: Frame): void {
  wKey(w, f.from);
  switch (f.t) {
    case 'data':
      wViewId(w, f.view);
      w.varuint(f.seq);
      wChannel(w, f.ch);
      w.bytes(f.payload, MAX_PAYLOAD_BYTES);
      return;
    case 'status':
      wViewId(w, f.view);
      wNums(w, f.contig);
      return;
    case 'nak':
      wKey(w, f.to);
      wViewId(w, f.view);
      wKey(w, f.sender);
      w.varuint(f.lo);
      w.varuint(f.hi);
      return;
    case 'hb':
    case 'excluded':
      wKey(w, f.to);
      wViewId(w, f.view);
      return;
    case 'ucast':
      wKey(w, f.to);
      wViewId(w, f.view);
      w.varuint(f.seq);
      w.bytes(f.payload, MAX_PAYLOAD_BYTES);
      return;
    case 'uack':
      wKey(w, f.to);
      wViewId(w, f.view);
      w.varuint(f.ack);
      return;
    case 'suspect':
      wKey(w, f.to);
      wViewId(w, f.view);
      wKeys(w, f.suspects);
      return;
    case 'hello':
      wViewId(w, f.view);
      wKeys(w, f.members);
      w.bool(f.primary);
      w.varuint(f.lpStep);
      wVersion(w, f.version);
      return;
    case 'propose':
      wKey(w, f.to);
      wViewId(w, f.id);
      wKeys(w, f.members);
      return;
    case 'flushok':
      wKey(w, f.to);
      wViewId(w, f.id);
      wViewId(w, f.oldView);
      wKeys(w, f.oldMembers);
      w.bool(f.oldPrimary);
      wNums(w, f.contig);
      wFlushedList(w, f.msgs);
      wPrimary(w, f.lastPrimary);
      w.list(f.attempts, MAX_ATTEMPTS, wPrimary);
      wVersion(w, f.version);
      return;
    case 'prepare':
      wKey(w, f.to);
      wViewId(w, f.id);
      wKeys(w, f.members);
      w.bool(f.primary);
      wPrimary(w, f.lastPrimary);
      w.list(f.attempts, MAX_ATTEMPTS, wPrimary);
      wNums(w, f.cut);
      wFlushedList(w, f.msgs);
      w.bool(f.resendUnordered);
      return;
    case 'ready':
    case 'installed':
      wKey(w, f.to);
      wViewId(w, f.id);
      return;
    case 'commit':
      wKey(w, f.to);
      wViewId(w, f.id);
      w.option(f.state, (ww, s) => ww.bytes(s, MAX_STATE_BYTES));
      wVersion(w, f.version);
      return;
  }
}

function decodeBody(r: Reader, t: Frame['t']): Frame {
  const from = rKey(r);
  switch (t) {
    case 'data':
      return {
        t,
        from,
        view: rViewId(r),
        seq: rPositive(r, 'seq'),
        ch: rChannel(r),
        payload: r.bytes(MAX_PAYLOAD_BYTES).slice(),
      };
    case 'status': {
      const view = rViewId(r);
      return { t, from, view, contig: rNums(r) };
    }
    case 'nak': {
      const to = rKey(r);
      const view = rViewId(r);
      const sender = rKey(r);
      const lo = rPositive(r, 'nak lo');
      const hi = r.varuint();
      if (hi < lo) throw new DecodeError('bad-value', 'nak range reversed');
      return { t, from, to, view, sender, lo, hi };
    }
    case 'hb':
    case 'excluded':
      return { t, from, to: rKey(r), view: rViewId(r) };
    case 'ucast':
      return {
        t,
        from,
        to: rKey(r),
        view: rViewId(r),
        seq: rPositive(r, 'seq'),
        payload: r.bytes(MAX_PAYLOAD_BYTES).slice(),
      };
    case 'uack':
      return { t, from, to: rKey(r), view: rViewId(r), ack: r.varuint() };
    case 'suspect':
      return { t, from, to: rKey(r), view: rViewId(r), suspects: rKeys(r) };
    case 'hello':
      return {
        t,
        from,
        view: rViewId(r),
        members: rKeys(r),
        primary: r.bool(),
        lpStep: r.varuint(),
        version: rVersion(r),
      };
    case 'propose':
      return { t, from, to: rKey(r), id: rViewId(r), members: rKeys(r) };
    case 'flushok': {
      const to = rKey(r);
      const id = rViewId(r);
      const oldView = rViewId(r);
      const oldMembers = rKeys(r);
      const oldPrimary = r.bool();
      const contig = rNums(r);
      if (contig.length !== oldMembers.length)
        throw new DecodeError('bad-value', 'contig/members length mismatch');
      const msgs = rFlushedList(r);
      const lastPrimary = rPrimary(r);
      const attempts = r.list(MAX_ATTEMPTS, rPrimary);
      const version = rVersion(r);
      return {
        t,
        from,
        to,
        id,
        oldView,
        oldMembers,
        oldPrimary,
        contig,
        msgs,
        lastPrimary,
        attempts,
        version,
      };
    }
    case 'prepare': {
      const to = rKey(r);
      const id = rViewId(r);
      const members = rKeys(r);
      const primary = r.bool();
      const lastPrimary = rPrimary(r);
      const attempts = r.list(MAX_ATTEMPTS, rPrimary);
      const cut = rNums(r);
      const msgs = rFlushedList(r);
      const resendUnordered = r.bool();
      return { t, from, to, id, members, primary, lastPrimary, attempts, cut, msgs, resendUnordered };
    }
    case 'ready':
    case 'installed':
      return { t, from, to: rKey(r), id: rViewId(r) };
    case 'commit': {
      const to = rKey(r);
      const id = rViewId(r);
      const state = r.option((rr) => rr.bytes(MAX_STATE_BYTES).slice());
      return { t, from, to, id, state, version: rVersion(r) };
    }
  }
}

/** Encodes a frame. Throws RangeError (a programming error) if a field exceeds its cap. */
export function encodeFrame(f: Frame): Uint8Array {
  const w = new Writer();
  w.u8(WIRE_VERSION);
  w.u8(TAG_OF[f.t]);
  encodeBody(w, f);
  return w.finish();
}

/** Decodes untrusted bytes into a frame; throws only DecodeError. */
export function decodeFrame(bytes: Uint8Array): Frame {
  const r = new Reader(bytes);
  const v = r.u8();
  if (v !== WIRE_VERSION) throw new DecodeError('bad-version', `core-group wire version ${v}`);
  const tag = r.u8();
  const t = TAGS[tag];
  if (t === undefined) throw new DecodeError('bad-tag', `core-group frame tag ${tag}`);
  const f = decodeBody(r, t);
  r.end();
  return f;
}
