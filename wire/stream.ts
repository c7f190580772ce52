/**
 * Message framing over byte streams (TCP/TLS): each message is `u32 BE length ‖ bytes`.
 *
 * The deframer accepts any chunking (one byte at a time, many frames per chunk), validates a
 * length prefix the moment its 4 bytes are in, before allocating anything for the body, and
 * never retains more than one frame body plus a partial prefix. After an error it stays
 * failed: a byte stream cannot resynchronise, so the caller must close the connection.
 */
import { DecodeError, MAX_MESSAGE_BYTES } from './codec.js';

export const STREAM_PREFIX_BYTES = 4;

function assertCap(maxFrameBytes: number): void {
  if (!Number.isInteger(maxFrameBytes) || maxFrameBytes < 0 || maxFrameBytes > MAX_MESSAGE_BYTES) {
    throw new RangeError(`stream frame cap ${maxFrameBytes} outside 0..${MAX_MESSAGE_BYTES}`);
  }
}

/** `msg` with its u32 length prefix, ready for one socket write. */
export function frameForStream(msg: Uint8Array, maxFrameBytes: number): Uint8Array {
  assertCap(maxFrameBytes);
  if (msg.length > maxFrameBytes)
    throw new RangeError(`stream frame of ${msg.length} bytes exceeds cap ${maxFrameBytes}`);
  const out = new Uint8Array(STREAM_PREFIX_BYTES + msg.length);
  new DataView(out.buffer).setUint32(0, msg.length);
  out.set(msg, STREAM_PREFIX_BYTES);
  return out;
}

export class StreamDeframer {
  private readonly prefix = new Uint8Array(STREAM_PREFIX_BYTES);
  private prefixFill = 0;
  private body: Uint8Array | undefined; // allocated only after the prefix passed the cap check
  private bodyFill = 0;
  private failure: DecodeError | undefined;

  constructor(readonly maxFrameBytes: number) {
    assertCap(maxFrameBytes);
  }

  /** Bytes of an incomplete frame held right now (0 at a frame boundary). */
  get pending(): number {
    return this.body === undefined ? this.prefixFill : STREAM_PREFIX_BYTES + this.bodyFill;
  }

  /**
   * Feed bytes; returns the frames they completed, in order (each a fresh copy). Throws
   * DecodeError('too-large') for a length over the cap, and the same error on every later call.
   */
  push(chunk: Uint8Array): Uint8Array[] {
    if (this.failure !== undefined) throw this.failure;
    const out: Uint8Array[] = [];
    let pos = 0;
    while (pos < chunk.length) {
      if (this.body === undefined) {
        const take = Math.min(STREAM_PREFIX_BYTES - this.prefixFill, chunk.length - pos);
        this.prefix.set(chunk.subarray(pos, pos + take), this.prefixFill);
        this.prefixFill += take;
        pos += take;
        if (this.prefixFill < STREAM_PREFIX_BYTES) break;
        const len = new DataView(this.prefix.buffer).getUint32(0);
        if (len > this.maxFrameBytes) {
          this.failure = new DecodeError(
            'too-large',
            `stream frame of ${len} bytes exceeds cap ${this.maxFrameBytes}`,
          );
          throw this.failure;
        }
        this.prefixFill = 0;
        this.body = new Uint8Array(len);
        this.bodyFill = 0;
      }
      const take = Math.min(this.body.length - this.bodyFill, chunk.length - pos);
      this.body.set(chunk.subarray(pos, pos + take), this.bodyFill);
      this.bodyFill += take;
      pos += take;
      if (this.bodyFill === this.body.length) {
        out.push(this.body);
        this.body = undefined;
        this.bodyFill = 0;
      }
    }
    return out;
  }

  /** Call at end of stream: a partial frame left over means the peer cut a frame short. */
  end(): void {
    if (this.failure !== undefined) throw this.failure;
    if (this.pending !== 0) {
      this.failure = new DecodeError(
        'truncated',
        `stream ended inside a frame (${this.pending} bytes pending)`,
      );
      throw this.failure;
    }
  }
}
