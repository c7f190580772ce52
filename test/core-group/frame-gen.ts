/**
 * A seeded generator of valid core-group frames of every kind, and a JSON form of a frame (bytes
 * as hex) so golden encodings can be stored as data independent of the generator.
 */
import { Channel, MAX_VERSION_PARTS } from '../../core-group/index.js';
import type {
  Frame,
  FlushedMsg,
  MemberKey,
  PrimaryRef,
  StateVersion,
  ViewId,
} from '../../core-group/index.js';
import type { Prng } from '../wire/kit.js';

export const FRAME_KINDS: readonly Frame['t'][] = [
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
];

const NAME_CHARS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:-';
/** Varuints at the LEB128 byte boundaries, and the largest value the codec takes. */
const EDGES = [0, 1, 127, 128, 16383, 16384, 2 ** 21, 2 ** 31, 2 ** 40, Number.MAX_SAFE_INTEGER];

function uint(p: Prng, min = 0): number {
  const v = p.next() < 0.5 ? p.pick(EDGES) : p.int(2 ** 20);
  return Math.max(min, v);
}

function key(p: Prng): MemberKey {
  const len = 1 + p.int(p.next() < 0.2 ? 64 : 8);
  let name = '';
  for (let i = 0; i < len; i++) name += p.pick([...NAME_CHARS]);
  return `${name}#${p.next() < 0.2 ? p.pick([0, 2 ** 40, Number.MAX_SAFE_INTEGER]) : p.int(1000)}`;
}

/** Distinct keys (member lists refuse duplicates). */
function keys(p: Prng, max: number): MemberKey[] {
  return [...new Set(Array.from({ length: p.int(max + 1) }, () => key(p)))];
}

function viewId(p: Prng): ViewId {
  return p.next() < 0.1 ? { epoch: 0, coord: '' } : { epoch: uint(p), coord: key(p) };
}

function primary(p: Prng): PrimaryRef {
  return { step: uint(p), id: viewId(p), members: keys(p, 4) };
}

function version(p: Prng): StateVersion {
  return Array.from({ length: p.int(MAX_VERSION_PARTS + 1) }, () => uint(p));
}

function channel(p: Prng): Channel {
  return p.pick([Channel.Fifo, Channel.Ordered, Channel.Order]);
}

function flushed(p: Prng): FlushedMsg[] {
  return Array.from({ length: p.int(4) }, () => ({
    sender: key(p),
    seq: uint(p, 1),
    ch: channel(p),
    payload: p.bytes(p.int(24)),
  }));
}

function nums(p: Prng, n: number): number[] {
  return Array.from({ length: n }, () => uint(p));
}

/** A valid frame of `kind` (every field within its domain, so it round-trips). */
export function genCoreFrame(p: Prng, kind: Frame['t']): Frame {
  const from = key(p);
  const to = key(p);
  switch (kind) {
    case 'data':
      return { t: kind, from, view: viewId(p), seq: uint(p, 1), ch: channel(p), payload: p.bytes(p.int(32)) };
    case 'status':
      return { t: kind, from, view: viewId(p), contig: nums(p, p.int(6)) };
    case 'nak': {
      const lo = uint(p, 1);
      return { t: kind, from, to, view: viewId(p), sender: key(p), lo, hi: lo + p.int(100) };
    }
    case 'hb':
    case 'excluded':
      return { t: kind, from, to, view: viewId(p) };
    case 'ucast':
      return { t: kind, from, to, view: viewId(p), seq: uint(p, 1), payload: p.bytes(p.int(32)) };
    case 'uack':
      return { t: kind, from, to, view: viewId(p), ack: uint(p) };
    case 'suspect':
      return { t: kind, from, to, view: viewId(p), suspects: keys(p, 4) };
    case 'hello':
      return {
        t: kind,
        from,
        view: viewId(p),
        members: keys(p, 5),
        primary: p.next() < 0.5,
        lpStep: uint(p),
        version: version(p),
      };
    case 'propose':
      return { t: kind, from, to, id: viewId(p), members: keys(p, 5) };
    case 'flushok': {
      const oldMembers = keys(p, 4);
      return {
        t: kind,
        from,
        to,
        id: viewId(p),
        oldView: viewId(p),
        oldMembers,
        oldPrimary: p.next() < 0.5,
        contig: nums(p, oldMembers.length),
        msgs: flushed(p),
        lastPrimary: primary(p),
        attempts: Array.from({ length: p.int(3) }, () => primary(p)),
        version: version(p),
      };
    }
    case 'prepare':
      return {
        t: kind,
        from,
        to,
        id: viewId(p),
        members: keys(p, 5),
        primary: p.next() < 0.5,
        lastPrimary: primary(p),
        attempts: Array.from({ length: p.int(3) }, () => primary(p)),
        cut: nums(p, p.int(5)),
        msgs: flushed(p),
        resendUnordered: p.next() < 0.5,
      };
    case 'ready':
    case 'installed':
      return { t: kind, from, to, id: viewId(p) };
    case 'commit':
      return {
        t: kind,
        from,
        to,
        id: viewId(p),
        state: p.next() < 0.3 ? undefined : p.bytes(p.int(40)),
        version: version(p),
      };
  }
}

/** A frame as JSON: byte strings become { hex }, `undefined` becomes { undefined: true }. */
export function frameToJson(f: Frame): unknown {
  return JSON.parse(
    JSON.stringify(f, (_k, v: unknown) => {
      if (v instanceof Uint8Array) return { hex: Buffer.from(v).toString('hex') };
      return v === undefined ? { undefined: true } : v;
    }),
  );
}

export function frameFromJson(j: unknown): Frame {
  return revive(j) as Frame;
}

function revive(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(revive);
  if (v === null || typeof v !== 'object') return v;
  const o = v as Record<string, unknown>;
  const names = Object.keys(o);
  if (names.length === 1 && typeof o['hex'] === 'string') return new Uint8Array(Buffer.from(o['hex'], 'hex'));
  if (names.length === 1 && o['undefined'] === true) return undefined;
  return Object.fromEntries(names.map((n) => [n, revive(o[n])]));
}
