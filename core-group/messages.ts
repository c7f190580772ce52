/**
 * Wire messages of the core-group stack and their canonical, bounded codec.
 *
 * Every message is decoded from bytes (also in simulation), so every path sees exactly what a
 * real peer would send. Layout: u8 version ‖ tag (one byte: tags < 128) ‖ fields in declaration
 * order. Every list and byte string has a cap; decoding untrusted bytes returns a `Frame` or
 * throws `DecodeError`, nothing else. Each frame kind is declared once, below, as a codec (the
 * wire/codecs.ts combinators), and its type is derived from it, so encoder, decoder and type
 * cannot drift apart. Each kind is owned by one layer (noted per kind); layers ignore kinds they
 * do not own.
 */

import {
  bool,
  bytes,
  DecodeError,
  list,
  option,
  Reader,
  refine,
  string,
  struct,
  taggedUnion,
  u8,
  varuint,
  Writer,
} from '../wire/index.js';
import type { Codec, CodecValue } from '../wire/index.js';
import type { MemberKey, PrimaryRef, StateVersion, ViewId } from './ids.js';
import { isMemberKey, MAX_MEMBERS, MAX_VERSION_PARTS } from './ids.js';

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

// ---- field codecs ----

/** A member key `name#incarnation`. */
const key: Codec<MemberKey> = refine(string(MAX_KEY_BYTES), isMemberKey, 'bad member key');

/** Epoch 0 with an empty coordinator is the genesis pseudo-view; every other view names a member. */
const viewId: Codec<ViewId> = refine(
  struct({ epoch: varuint, coord: string(MAX_KEY_BYTES) }),
  (v) => (v.epoch === 0 && v.coord === '') || isMemberKey(v.coord),
  'bad view coordinator',
);

/** A set of members, as a list: duplicates are refused. */
const keys: Codec<readonly MemberKey[]> = refine(
  list(MAX_MEMBERS, key),
  (ks) => new Set(ks).size === ks.length,
  'duplicate member in list',
);

/** A number per member of a view (receipt vectors, cuts). */
const perMember: Codec<readonly number[]> = list(MAX_MEMBERS, varuint);

const version: Codec<StateVersion> = list(MAX_VERSION_PARTS, varuint);

const primaryRef: Codec<PrimaryRef> = struct({ step: varuint, id: viewId, members: keys });
const attempts: Codec<readonly PrimaryRef[]> = list(MAX_ATTEMPTS, primaryRef);

const channel: Codec<Channel> = refine(u8, (c): c is Channel => c <= 2, 'unknown channel', 'bad-tag');

/** Message sequence numbers start at 1. */
const seq = refine(varuint, (n) => n >= 1, 'sequence number must be ≥ 1');

const payload = bytes(MAX_PAYLOAD_BYTES);

/** A data message without its view, as carried inside flush messages. */
const flushedMsg = struct({ sender: key, seq: varuint, ch: channel, payload });
const flushedMsgs: Codec<readonly FlushedMsg[]> = list(MAX_FLUSH_MESSAGES, flushedMsg);

/** Addressed control frames: sender, receiver, the view (or proposed view) it is about. */
const toInView = struct({ from: key, to: key, view: viewId });
const toAboutView = struct({ from: key, to: key, id: viewId });

// ---- the frames: tag ‖ fields, every kind once ----

const FrameCodec = taggedUnion('t', {
  /** A multicast in a view (nakack). Retransmissions carry the same content. */
  data: [0, struct({ from: key, view: viewId, seq, ch: channel, payload })],
  /** Per-sender contiguous receipt vector, aligned with the view's members (nakack: NAKs + stability). */
  status: [1, struct({ from: key, view: viewId, contig: perMember })],
  /** Retransmission request for sender's seqs lo..hi (nakack). */
  nak: [
    2,
    refine(
      struct({ from: key, to: key, view: viewId, sender: key, lo: seq, hi: varuint }),
      (n) => n.hi >= n.lo,
      'nak range reversed',
    ),
  ],
  /** Liveness (fd). */
  hb: [3, toInView],
  /** "You are not in my newer view" — answer to a heartbeat from an excluded member (gms). */
  excluded: [4, toInView],
  /** Point-to-point data (unicast layer). */
  ucast: [5, struct({ from: key, to: key, view: viewId, seq, payload })],
  /** Cumulative ack of point-to-point data (unicast layer). */
  uack: [6, struct({ from: key, to: key, view: viewId, ack: varuint })],
  /** gms: reported suspicions, to the coordinator. */
  suspect: [7, struct({ from: key, to: key, view: viewId, suspects: keys })],
  /** gms: a coordinator advertises its view to processes outside it (merge and join discovery). */
  hello: [
    8,
    struct({
      from: key,
      view: viewId,
      members: keys,
      primary: bool,
      lpStep: varuint,
      /** The coordinator's committed-state version: the newest state leads a merge. */
      version,
    }),
  ],
  /** gms flush, round 1: stop sending and report. */
  propose: [9, struct({ from: key, to: key, id: viewId, members: keys })],
  /** gms flush, round 1 answer: the reporter's old view, receipts and unstable messages. */
  flushok: [
    10,
    refine(
      struct({
        from: key,
        to: key,
        id: viewId,
        oldView: viewId,
        oldMembers: keys,
        oldPrimary: bool,
        contig: perMember,
        /** Every message of the old view this member still holds (all above its stability point). */
        msgs: flushedMsgs,
        lastPrimary: primaryRef,
        attempts,
        /** The reporter's committed-state version when it froze. */
        version,
      }),
      (f) => f.contig.length === f.oldMembers.length,
      'contig/members length mismatch',
    ),
  ],
  /** gms flush, round 2: the agreed cut, the messages this member lacks, the primary decision. */
  prepare: [
    11,
    struct({
      from: key,
      to: key,
      id: viewId,
      members: keys,
      primary: bool,
      lastPrimary: primaryRef,
      attempts,
      /** Cut of the receiver's old view, aligned with its old members. */
      cut: perMember,
      msgs: flushedMsgs,
      /** The old view's sequencer is in the receiver's flush group: unordered messages were never ordered anywhere. */
      resendUnordered: bool,
    }),
  ],
  ready: [12, toAboutView],
  /** gms flush, round 3: install; carries the coordinator's state to members from other old views. */
  commit: [
    13,
    struct({
      from: key,
      to: key,
      id: viewId,
      state: option(bytes(MAX_STATE_BYTES)),
      /** The version of `state` (present with it). */
      version,
    }),
  ],
  installed: [14, toAboutView],
});

/** Decoded values are fresh objects; the stack treats frames as immutable. */
type Frozen<T> = { readonly [K in keyof T]: T[K] extends readonly (infer E)[] ? readonly E[] : T[K] };

export type Frame = Frozen<CodecValue<typeof FrameCodec>>;
type FrameOf<K extends Frame['t']> = Extract<Frame, { readonly t: K }>;
export type FlushedMsg = Frozen<CodecValue<typeof flushedMsg>>;
export type DataMsg = FrameOf<'data'>;
export type StatusMsg = FrameOf<'status'>;
export type NakMsg = FrameOf<'nak'>;
export type HeartbeatMsg = FrameOf<'hb'>;
export type ExcludedMsg = FrameOf<'excluded'>;
export type UnicastMsg = FrameOf<'ucast'>;
export type UnicastAckMsg = FrameOf<'uack'>;
export type SuspectMsg = FrameOf<'suspect'>;
export type HelloMsg = FrameOf<'hello'>;
export type ProposeMsg = FrameOf<'propose'>;
export type FlushOkMsg = FrameOf<'flushok'>;
export type PrepareMsg = FrameOf<'prepare'>;
export type ReadyMsg = FrameOf<'ready'>;
export type CommitMsg = FrameOf<'commit'>;
export type InstalledMsg = FrameOf<'installed'>;

/** Encodes a frame. Throws RangeError (a programming error) if a field exceeds its cap or domain. */
export function encodeFrame(f: Frame): Uint8Array {
  const w = new Writer();
  w.u8(WIRE_VERSION);
  FrameCodec.encode(w, f);
  return w.finish();
}

/** Decodes untrusted bytes into a frame; throws only DecodeError. */
export function decodeFrame(bytes: Uint8Array): Frame {
  const r = new Reader(bytes);
  const v = r.u8();
  if (v !== WIRE_VERSION) throw new DecodeError('bad-version', `core-group wire version ${v}`);
  const f = FrameCodec.decode(r);
  r.end();
  return f;
}
