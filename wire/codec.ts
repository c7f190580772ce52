/**
 * Canonical, bounded binary codec.
 *
 * Every value has exactly one encoding (minimal varints, 0/1 booleans, valid UTF-8), every
 * variable-length item carries an explicit cap, and decoding untrusted bytes either returns a
 * value or throws a `DecodeError` — never anything else, and never allocates past the caps
 * (lengths are checked against both the cap and the bytes actually remaining before any copy).
 *
 * Layout primitives (all integers big-endian):
 *   u8 u16 u32        fixed width
 *   u64               8 bytes, as bigint
 *   varuint           LEB128, 1..8 bytes, minimal, value ≤ 2^53 − 1
 *   bytes(max)        varuint length ‖ data
 *   fixed(n)          n raw bytes
 *   string(max)       bytes(max) holding UTF-8
 *   list(max, item)   varuint count ‖ items
 *   option(item)      u8 0 | u8 1 ‖ item
 */

/** Hard cap on any encoded message or frame (16 MiB). Individual fields have far smaller caps. */
export const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

export type DecodeErrorCode =
  | 'truncated' // fewer bytes than the encoding needs
  | 'too-large' // a length or count exceeds its cap
  | 'non-canonical' // a value with more than one encoding was not in its canonical form
  | 'bad-tag' // unknown union tag or frame type
  | 'bad-value' // a value outside its domain
  | 'bad-version' // unsupported protocol version
  | 'trailing-bytes'; // bytes left after a complete value

/** The only error a decoder throws. `code` is stable and safe to count in metrics. */
export class DecodeError extends Error {
  override readonly name = 'DecodeError';
  constructor(
    readonly code: DecodeErrorCode,
    message: string,
  ) {
    super(`${code}: ${message}`);
  }
}

const MAX_SAFE = Number.MAX_SAFE_INTEGER; // 2^53 - 1
const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Growable output buffer with a hard size cap. Encoding past the cap is a programming error. */
/** Bytes `Writer.varuint(v)` writes. */
export function varuintBytes(v: number): number {
  let n = 1;
  for (let x = v; x >= 0x80; x = Math.floor(x / 0x80)) n++;
  return n;
}

export class Writer {
  private buf: Uint8Array;
  private view: DataView;
  private pos = 0;

  constructor(
    private readonly maxBytes: number = MAX_MESSAGE_BYTES,
    initial = 256,
  ) {
    this.buf = new Uint8Array(Math.min(initial, maxBytes));
    this.view = new DataView(this.buf.buffer);
  }

  get length(): number {
    return this.pos;
  }

  private ensure(n: number): void {
    const need = this.pos + n;
    if (need > this.maxBytes) throw new RangeError(`Writer: encoding exceeds ${this.maxBytes} bytes`);
    if (need <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < need) size *= 2;
    const next = new Uint8Array(Math.min(size, this.maxBytes));
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  u8(v: number): this {
    assertUint(v, 0xff, 'u8');
    this.ensure(1);
    this.buf[this.pos++] = v;
    return this;
  }

  u16(v: number): this {
    assertUint(v, 0xffff, 'u16');
    this.ensure(2);
    this.view.setUint16(this.pos, v);
    this.pos += 2;
    return this;
  }

  u32(v: number): this {
    assertUint(v, 0xffffffff, 'u32');
    this.ensure(4);
    this.view.setUint32(this.pos, v);
    this.pos += 4;
    return this;
  }

  u64(v: bigint): this {
    if (v < 0n || v > 0xffffffffffffffffn) throw new RangeError(`u64 out of range: ${v}`);
    this.ensure(8);
    this.view.setBigUint64(this.pos, v);
    this.pos += 8;
    return this;
  }

  /** LEB128 unsigned, minimal, for values up to 2^53 − 1. */
  varuint(v: number): this {
    assertUint(v, MAX_SAFE, 'varuint');
    this.ensure(varuintBytes(v)); // the exact size: a value that fits under the cap must not be refused
    while (v >= 0x80) {
      this.buf[this.pos++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buf[this.pos++] = v;
    return this;
  }

  bool(v: boolean): this {
    return this.u8(v ? 1 : 0);
  }

  /** Raw bytes of a length both sides know. */
  fixed(b: Uint8Array, len: number): this {
    if (b.length !== len) throw new RangeError(`fixed: expected ${len} bytes, got ${b.length}`);
    this.ensure(len);
    this.buf.set(b, this.pos);
    this.pos += len;
    return this;
  }

  /** Length-prefixed bytes, at most `max`. */
  bytes(b: Uint8Array, max: number): this {
    if (b.length > max) throw new RangeError(`bytes: ${b.length} exceeds cap ${max}`);
    this.varuint(b.length);
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
    return this;
  }

  /** UTF-8 string. Lone surrogates are refused: TextEncoder would silently turn them into U+FFFD,
   *  so two different strings would share one encoding and decode∘encode would not be identity. */
  string(s: string, maxBytes: number): this {
    if (LONE_SURROGATE.test(s)) throw new RangeError('string: lone UTF-16 surrogate has no UTF-8 encoding');
    return this.bytes(utf8Encoder.encode(s), maxBytes);
  }

  list<T>(items: readonly T[], max: number, item: (w: this, v: T) => void): this {
    if (items.length > max) throw new RangeError(`list: ${items.length} items exceed cap ${max}`);
    this.varuint(items.length);
    for (const v of items) item(this, v);
    return this;
  }

  option<T>(v: T | undefined, item: (w: this, v: T) => void): this {
    if (v === undefined) return this.u8(0);
    this.u8(1);
    item(this, v);
    return this;
  }

  /** The encoded bytes (a copy; the writer may be reused after `reset`). */
  finish(): Uint8Array {
    return this.buf.slice(0, this.pos);
  }

  reset(): void {
    this.pos = 0;
  }
}

/** Cursor over untrusted bytes. Every method either returns a value or throws `DecodeError`. */
export class Reader {
  private pos = 0;
  private readonly view: DataView;

  constructor(private readonly buf: Uint8Array) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  get remaining(): number {
    return this.buf.length - this.pos;
  }

  get offset(): number {
    return this.pos;
  }

  private need(n: number, what: string): void {
    if (this.buf.length - this.pos < n) {
      throw new DecodeError(
        'truncated',
        `${what} needs ${n} bytes at offset ${this.pos}, ${this.remaining} left`,
      );
    }
  }

  u8(): number {
    this.need(1, 'u8');
    return this.buf[this.pos++]!;
  }

  u16(): number {
    this.need(2, 'u16');
    const v = this.view.getUint16(this.pos);
    this.pos += 2;
    return v;
  }

  u32(): number {
    this.need(4, 'u32');
    const v = this.view.getUint32(this.pos);
    this.pos += 4;
    return v;
  }

  u64(): bigint {
    this.need(8, 'u64');
    const v = this.view.getBigUint64(this.pos);
    this.pos += 8;
    return v;
  }

  varuint(): number {
    let result = 0;
    let scale = 1;
    for (let i = 0; i < 8; i++) {
      const b = this.u8();
      result += (b & 0x7f) * scale;
      if ((b & 0x80) === 0) {
        if (i > 0 && b === 0)
          throw new DecodeError('non-canonical', 'varuint has a redundant trailing zero byte');
        if (result > MAX_SAFE) throw new DecodeError('bad-value', 'varuint exceeds 2^53 - 1');
        return result;
      }
      scale *= 0x80;
    }
    throw new DecodeError('bad-value', 'varuint longer than 8 bytes');
  }

  /** A varuint that must not exceed `max` (for counts, ids, enum-like values). */
  bounded(max: number, what: string): number {
    const v = this.varuint();
    if (v > max) throw new DecodeError('too-large', `${what} ${v} exceeds cap ${max}`);
    return v;
  }

  bool(): boolean {
    const b = this.u8();
    if (b > 1) throw new DecodeError('non-canonical', `bool byte ${b}`);
    return b === 1;
  }

  /** `len` raw bytes, as a view into the input (copy if you keep it past the input's lifetime). */
  fixed(len: number): Uint8Array {
    this.need(len, 'fixed');
    const out = this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    return out;
  }

  /** Length-prefixed bytes of at most `max`; a view into the input. */
  bytes(max: number): Uint8Array {
    const len = this.bounded(max, 'byte length');
    return this.fixed(len);
  }

  string(maxBytes: number): string {
    const raw = this.bytes(maxBytes);
    try {
      return utf8Decoder.decode(raw);
    } catch {
      throw new DecodeError('bad-value', 'string is not valid UTF-8');
    }
  }

  /** A counted list of at most `max` items; the array grows item by item, never preallocated. */
  list<T>(max: number, item: (r: this) => T): T[] {
    const count = this.bounded(max, 'list count');
    const out: T[] = [];
    for (let i = 0; i < count; i++) out.push(item(this));
    return out;
  }

  option<T>(item: (r: this) => T): T | undefined {
    const flag = this.u8();
    if (flag === 0) return undefined;
    if (flag !== 1) throw new DecodeError('non-canonical', `option flag ${flag}`);
    return item(this);
  }

  /** Assert the whole input was consumed. */
  end(): void {
    if (this.pos !== this.buf.length) {
      throw new DecodeError('trailing-bytes', `${this.buf.length - this.pos} bytes after the value`);
    }
  }
}

/** A pair of functions that encode and decode one type; the unit of composition. */
export interface Codec<T> {
  encode(w: Writer, v: T): void;
  decode(r: Reader): T;
}

/** Encode a whole value to bytes. */
export function encode<T>(codec: Codec<T>, v: T, maxBytes: number = MAX_MESSAGE_BYTES): Uint8Array {
  const w = new Writer(maxBytes);
  codec.encode(w, v);
  return w.finish();
}

/** Decode a whole value; trailing bytes are an error. Throws only `DecodeError`. */
export function decode<T>(codec: Codec<T>, bytes: Uint8Array): T {
  if (bytes.length > MAX_MESSAGE_BYTES) throw new DecodeError('too-large', `${bytes.length} bytes`);
  const r = new Reader(bytes);
  const v = codec.decode(r);
  r.end();
  return v;
}

function assertUint(v: number, max: number, what: string): void {
  if (!Number.isInteger(v) || v < 0 || v > max) throw new RangeError(`${what} out of range: ${v}`);
}
