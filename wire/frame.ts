/**
 * The versioned frame every Keyglass message travels in.
 *
 * Header (10 bytes, big-endian), then the body:
 *   offset 0  u16  magic 0x4B47 ("KG") — rejects stray traffic early
 *          2  u8   wire version (WIRE_VERSION)
 *          3  u8   flags (each protocol declares which bits it uses; others must be 0)
 *          4  u16  frame type (globally unique across protocols, see defineFrames)
 *          6  u32  body length
 *         10  …    body: exactly `body length` bytes, the frame type's codec
 *
 * Frame types form one process-wide number space, so frames of several protocols can share a
 * link and be dispatched on `peekFrameHeader(bytes).type` without ambiguity.
 */
import { DecodeError, MAX_MESSAGE_BYTES, Reader, encode } from './codec.js';
import type { Codec, Writer } from './codec.js';

export const FRAME_MAGIC = 0x4b47;
export const WIRE_VERSION = 1;
export const FRAME_HEADER_BYTES = 10;
/** Default cap on a whole frame (header + body) unless a protocol or channel sets its own. */
export const DEFAULT_MAX_FRAME_BYTES = 1024 * 1024;
export const MAX_FRAME_TYPE = 0xffff;

export interface FrameHeader {
  readonly version: number;
  readonly flags: number;
  readonly type: number;
  readonly bodyLength: number;
}

/**
 * Validate and read a frame header without decoding the body. `maxFrameBytes` bounds the
 * declared body length before anyone allocates or waits for it.
 */
export function peekFrameHeader(
  bytes: Uint8Array,
  maxFrameBytes: number = DEFAULT_MAX_FRAME_BYTES,
): FrameHeader {
  return readHeader(new Reader(bytes), maxFrameBytes);
}

function readHeader(r: Reader, maxFrameBytes: number): FrameHeader {
  const magic = r.u16();
  if (magic !== FRAME_MAGIC) throw new DecodeError('bad-value', `bad frame magic 0x${magic.toString(16)}`);
  const version = r.u8();
  if (version !== WIRE_VERSION) throw new DecodeError('bad-version', `wire version ${version}`);
  const flags = r.u8();
  const type = r.u16();
  const bodyLength = r.u32();
  if (bodyLength > maxFrameBytes - FRAME_HEADER_BYTES) {
    throw new DecodeError(
      'too-large',
      `frame body ${bodyLength} exceeds cap ${maxFrameBytes - FRAME_HEADER_BYTES}`,
    );
  }
  return { version, flags, type, bodyLength };
}

/** One entry of a protocol's frame table: its type number and its body codec. */
export type FrameTypes = Record<string, readonly [type: number, codec: Codec<unknown>]>;

/** The decoded frame of a protocol: a tagged union over its frame table. */
export type FrameOf<T extends FrameTypes> = {
  [K in keyof T & string]: { type: K; flags: number; body: T[K][1] extends Codec<infer B> ? B : never };
}[keyof T & string];

export interface FrameProtocolOptions {
  /** Cap on a whole frame of this protocol (default 1 MiB, at most MAX_MESSAGE_BYTES). */
  maxFrameBytes?: number;
  /** Flag bits this protocol gives meaning to; a frame with any other bit set is refused. */
  flagsMask?: number;
}

/** Owner of each claimed frame type number, so two protocols can never share one. */
const claimedTypes = new Map<number, string>();

/**
 * A protocol's frames: a `Codec` over `FrameOf<T>` that reads and writes the full header.
 * Decoding checks magic, version ('bad-version'), flags, frame type ('bad-tag'), the size cap
 * ('too-large'), and that the body codec consumes exactly the declared body length.
 */
export class FrameProtocol<T extends FrameTypes> implements Codec<FrameOf<T>> {
  readonly maxFrameBytes: number;
  readonly flagsMask: number;
  private readonly byName = new Map<string, { type: number; codec: Codec<unknown> }>();
  private readonly byType = new Map<number, { name: string; codec: Codec<unknown> }>();

  constructor(
    readonly name: string,
    types: T,
    opts: FrameProtocolOptions = {},
  ) {
    this.maxFrameBytes = opts.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    this.flagsMask = opts.flagsMask ?? 0;
    if (!Number.isInteger(this.maxFrameBytes) || this.maxFrameBytes < FRAME_HEADER_BYTES) {
      throw new RangeError(`${name}: maxFrameBytes ${this.maxFrameBytes} too small`);
    }
    if (this.maxFrameBytes > MAX_MESSAGE_BYTES)
      throw new RangeError(`${name}: maxFrameBytes exceeds MAX_MESSAGE_BYTES`);
    if (!Number.isInteger(this.flagsMask) || this.flagsMask < 0 || this.flagsMask > 0xff) {
      throw new RangeError(`${name}: bad flagsMask`);
    }
    for (const [frameName, [type, codec]] of Object.entries(types)) {
      if (!Number.isInteger(type) || type < 0 || type > MAX_FRAME_TYPE) {
        throw new RangeError(`${name}: bad frame type ${type}`);
      }
      if (this.byType.has(type)) throw new RangeError(`${name}: frame type ${type} listed twice`);
      this.byName.set(frameName, { type, codec });
      this.byType.set(type, { name: frameName, codec });
    }
  }

  /** Type number of a frame name (for dispatch tables and tests). */
  typeOf(name: keyof T & string): number {
    return this.byName.get(name)!.type;
  }

  /** Does this protocol own frame type `type`? (Dispatch after `peekFrameHeader`.) */
  owns(type: number): boolean {
    return this.byType.has(type);
  }

  encode(w: Writer, f: FrameOf<T>): void {
    const entry = this.byName.get(f.type);
    if (entry === undefined) throw new RangeError(`${this.name}: unknown frame '${f.type}'`);
    if ((f.flags & ~this.flagsMask) !== 0)
      throw new RangeError(`${this.name}: flags 0x${f.flags.toString(16)}`);
    const body = encode(entry.codec, f.body, this.maxFrameBytes - FRAME_HEADER_BYTES);
    w.u16(FRAME_MAGIC).u8(WIRE_VERSION).u8(f.flags).u16(entry.type).u32(body.length).fixed(body, body.length);
  }

  decode(r: Reader): FrameOf<T> {
    const h = readHeader(r, this.maxFrameBytes);
    if ((h.flags & ~this.flagsMask) !== 0)
      throw new DecodeError('bad-value', `undefined flag bits 0x${h.flags.toString(16)}`);
    const entry = this.byType.get(h.type);
    if (entry === undefined) throw new DecodeError('bad-tag', `${this.name}: unknown frame type ${h.type}`);
    const body = new Reader(r.fixed(h.bodyLength));
    const value = entry.codec.decode(body);
    body.end();
    return { type: entry.name, flags: h.flags, body: value } as FrameOf<T>;
  }

  /** One whole frame as bytes. */
  encodeFrame(f: FrameOf<T>): Uint8Array {
    return encode(this, f, this.maxFrameBytes);
  }

  /** One whole frame from bytes; trailing bytes are an error. Throws only DecodeError. */
  decodeFrame(bytes: Uint8Array): FrameOf<T> {
    if (bytes.length > this.maxFrameBytes)
      throw new DecodeError('too-large', `frame of ${bytes.length} bytes`);
    const r = new Reader(bytes);
    const f = this.decode(r);
    r.end();
    return f;
  }
}

/**
 * Define a protocol's frames and claim its type numbers process-wide. Claiming a number that
 * another protocol already owns throws at module load, long before two protocols could
 * misread each other's frames on a shared link.
 *
 *   export const Join = defineFrames('auth.join', {
 *     hello: [0x0101, HelloCodec],
 *     welcome: [0x0102, WelcomeCodec],
 *   });
 */
export function defineFrames<T extends FrameTypes>(
  name: string,
  types: T,
  opts: FrameProtocolOptions = {},
): FrameProtocol<T> {
  const protocol = new FrameProtocol(name, types, opts);
  for (const [, [type]] of Object.entries(types)) {
    const owner = claimedTypes.get(type);
    if (owner !== undefined && owner !== name) {
      throw new RangeError(`frame type 0x${type.toString(16)} claimed by both '${owner}' and '${name}'`);
    }
  }
  for (const [, [type]] of Object.entries(types)) claimedTypes.set(type, name);
  return protocol;
}

/** Which protocol claimed a frame type number, if any. */
export function frameTypeOwner(type: number): string | undefined {
  return claimedTypes.get(type);
}
