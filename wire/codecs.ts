/**
 * Reusable `Codec` values and combinators over the primitives in codec.ts, so a protocol
 * declares its messages as data (`struct`, `union`, `list`, …) instead of hand-writing
 * encode/decode pairs that can drift apart. Every combinator keeps the codec's guarantees:
 * canonical (one encoding per value), bounded (explicit caps), DecodeError-only on bad input.
 */
import { DecodeError } from './codec.js';
import type { Codec, DecodeErrorCode, Reader, Writer } from './codec.js';

/** The value type a codec carries. */
export type CodecValue<C> = C extends Codec<infer T> ? T : never;

export const u8: Codec<number> = { encode: (w, v) => void w.u8(v), decode: (r) => r.u8() };
export const u16: Codec<number> = { encode: (w, v) => void w.u16(v), decode: (r) => r.u16() };
export const u32: Codec<number> = { encode: (w, v) => void w.u32(v), decode: (r) => r.u32() };
export const u64: Codec<bigint> = { encode: (w, v) => void w.u64(v), decode: (r) => r.u64() };
export const varuint: Codec<number> = { encode: (w, v) => void w.varuint(v), decode: (r) => r.varuint() };
export const bool: Codec<boolean> = { encode: (w, v) => void w.bool(v), decode: (r) => r.bool() };

/** A key epoch / view number: u64, fixed width so it sorts bytewise and never overflows. */
export const epoch: Codec<bigint> = u64;

/** A varuint that must stay within `max` on both sides. */
export function boundedUint(max: number, what = 'value'): Codec<number> {
  return {
    encode: (w, v) => {
      if (v > max) throw new RangeError(`${what} ${v} exceeds cap ${max}`);
      w.varuint(v);
    },
    decode: (r) => r.bounded(max, what),
  };
}

/** Exactly `n` raw bytes. Decoded values are copies (also when the input is a Buffer, whose slice() is a view). */
export function fixedBytes(n: number): Codec<Uint8Array> {
  return { encode: (w, v) => void w.fixed(v, n), decode: (r) => new Uint8Array(r.fixed(n)) };
}

/** A 32-byte key, hash or identifier. */
export const bytes32: Codec<Uint8Array> = fixedBytes(32);

/** Length-prefixed bytes of at most `max` (copied out of the input). */
export function bytes(max: number): Codec<Uint8Array> {
  return { encode: (w, v) => void w.bytes(v, max), decode: (r) => new Uint8Array(r.bytes(max)) };
}

/** UTF-8 string of at most `maxBytes` encoded bytes. */
export function string(maxBytes: number): Codec<string> {
  return { encode: (w, v) => void w.string(v, maxBytes), decode: (r) => r.string(maxBytes) };
}

export function list<T>(max: number, item: Codec<T>): Codec<T[]> {
  return {
    encode: (w, v) => void w.list(v, max, (ww, x) => item.encode(ww, x)),
    decode: (r) => r.list(max, (rr) => item.decode(rr)),
  };
}

export function option<T>(item: Codec<T>): Codec<T | undefined> {
  return {
    encode: (w, v) => void w.option(v, (ww, x) => item.encode(ww, x)),
    decode: (r) => r.option((rr) => item.decode(rr)),
  };
}

/**
 * `codec` restricted to the values `valid` accepts, on both sides: the decoder throws
 * DecodeError(`code`) for a value outside the domain, and the encoder refuses it (RangeError, a
 * programming error), so nothing is ever sent that a peer would drop. A type guard narrows the type.
 */
export function refine<T, U extends T>(
  codec: Codec<T>,
  valid: (v: T) => v is U,
  what: string,
  code?: DecodeErrorCode,
): Codec<U>;
export function refine<T>(
  codec: Codec<T>,
  valid: (v: T) => boolean,
  what: string,
  code?: DecodeErrorCode,
): Codec<T>;
export function refine<T>(
  codec: Codec<T>,
  valid: (v: T) => boolean,
  what: string,
  code: DecodeErrorCode = 'bad-value',
): Codec<T> {
  return {
    encode: (w, v) => {
      if (!valid(v)) throw new RangeError(`refusing to encode: ${what}`);
      codec.encode(w, v);
    },
    decode: (r) => {
      const v = codec.decode(r);
      if (!valid(v)) throw new DecodeError(code, what);
      return v;
    },
  };
}

type Fields = Record<string, Codec<unknown>>;
export type StructOf<F extends Fields> = { [K in keyof F]: CodecValue<F[K]> };

/**
 * A record encoded as its fields in declaration order (no names, no tags on the wire).
 * Field order is part of the format: append new fields only in a new frame type or version.
 */
export function struct<F extends Fields>(fields: F): Codec<StructOf<F>> {
  const entries = Object.entries(fields);
  for (const [name] of entries) {
    // Integer-like keys would be reordered by the JS engine and silently change the layout.
    if (/^\d+$/.test(name)) throw new TypeError(`struct: integer-like field name '${name}'`);
  }
  return {
    encode: (w: Writer, v: StructOf<F>) => {
      for (const [name, codec] of entries) codec.encode(w, (v as Record<string, unknown>)[name]);
    },
    decode: (r: Reader) => {
      const out: Record<string, unknown> = {};
      for (const [name, codec] of entries) out[name] = codec.decode(r);
      return out as StructOf<F>;
    },
  };
}

/** Largest tag a `union` accepts; tags are varuints so small ones take one byte. */
export const MAX_UNION_TAG = 0xffff;

export type UnionCases = Record<string, readonly [tag: number, codec: Codec<unknown>]>;
export type UnionOf<C extends UnionCases> = {
  [K in keyof C & string]: { kind: K; value: C[K][1] extends Codec<infer T> ? T : never };
}[keyof C & string];

/**
 * A tagged union: varuint tag ‖ the case's encoding. Tags are explicit numbers (never derived
 * from key order) so renaming or reordering cases cannot change the wire format.
 * Unknown tags decode to DecodeError('bad-tag').
 *
 *   const Msg = union({ ping: [1, struct({ n: u32 })], pong: [2, struct({ n: u32 })] });
 *   encode(Msg, { kind: 'ping', value: { n: 7 } });
 */
export function union<C extends UnionCases>(cases: C): Codec<UnionOf<C>> {
  const byKind = new Map<string, { tag: number; codec: Codec<unknown> }>();
  const byTag = new Map<number, { kind: string; codec: Codec<unknown> }>();
  for (const [kind, [tag, codec]] of Object.entries(cases)) {
    if (!Number.isInteger(tag) || tag < 0 || tag > MAX_UNION_TAG)
      throw new RangeError(`union: bad tag ${tag}`);
    if (byTag.has(tag))
      throw new RangeError(`union: tag ${tag} used by '${byTag.get(tag)!.kind}' and '${kind}'`);
    byKind.set(kind, { tag, codec: codec as Codec<unknown> });
    byTag.set(tag, { kind, codec: codec as Codec<unknown> });
  }
  return {
    encode: (w, v) => {
      const c = byKind.get(v.kind);
      if (c === undefined) throw new RangeError(`union: unknown kind '${v.kind}'`);
      w.varuint(c.tag);
      c.codec.encode(w, v.value);
    },
    decode: (r) => {
      const tag = r.varuint();
      const c = byTag.get(tag);
      if (c === undefined) throw new DecodeError('bad-tag', `unknown union tag ${tag}`);
      return { kind: c.kind, value: c.codec.decode(r) } as UnionOf<C>;
    },
  };
}

export type TaggedCases = Record<string, readonly [tag: number, codec: Codec<object>]>;
export type TaggedOf<D extends string, C extends TaggedCases> = {
  [K in keyof C & string]: { [P in D]: K } & (C[K][1] extends Codec<infer T> ? T : never);
}[keyof C & string];

/**
 * A tagged union of records whose kind is a field of the record itself (`{ t: 'ping', n: 7 }`
 * rather than `union`'s `{ kind, value }`): varuint tag ‖ the case's encoding. The case codecs
 * (usually `struct`s) must not have a field named `discriminant`; the encoder passes the whole
 * record to the case codec, which writes only its own fields. Tags below 128 are one byte,
 * the same bytes as a u8 tag. Unknown tags decode to DecodeError('bad-tag').
 */
export function taggedUnion<D extends string, C extends TaggedCases>(
  discriminant: D,
  cases: C,
): Codec<TaggedOf<D, C>> {
  const byKind = new Map<string, { tag: number; codec: Codec<object> }>();
  const byTag = new Map<number, { kind: string; codec: Codec<object> }>();
  for (const [kind, [tag, codec]] of Object.entries(cases)) {
    if (!Number.isInteger(tag) || tag < 0 || tag > MAX_UNION_TAG)
      throw new RangeError(`taggedUnion: bad tag ${tag}`);
    if (byTag.has(tag))
      throw new RangeError(`taggedUnion: tag ${tag} used by '${byTag.get(tag)!.kind}' and '${kind}'`);
    byKind.set(kind, { tag, codec });
    byTag.set(tag, { kind, codec });
  }
  return {
    encode: (w, v) => {
      const kind = (v as Record<string, unknown>)[discriminant];
      const c = typeof kind === 'string' ? byKind.get(kind) : undefined;
      if (c === undefined) throw new RangeError(`taggedUnion: unknown ${discriminant} '${String(kind)}'`);
      w.varuint(c.tag);
      c.codec.encode(w, v);
    },
    decode: (r) => {
      const tag = r.varuint();
      const c = byTag.get(tag);
      if (c === undefined) throw new DecodeError('bad-tag', `unknown union tag ${tag}`);
      return { [discriminant]: c.kind, ...c.codec.decode(r) } as TaggedOf<D, C>;
    },
  };
}
