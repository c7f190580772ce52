/**
 * Event trace of a simulation run: a running 64-bit hash of EVERY event plus the last K
 * events kept in a ring buffer for printing when a check fails.
 *
 * Records are six numbers written into parallel typed arrays (no string or object per event);
 * text is produced only by `text()`. With ring size 0 only the hash is kept, which costs a
 * few `Math.imul`s per event. The hash is two murmur3-style 32-bit lanes with different
 * seeds and constants (a 64-bit value, printed as 16 hex digits): a cheap fingerprint for
 * "did two runs do exactly the same thing", not a cryptographic digest.
 */

import { fmix32 } from './rng.js';

/** Event kinds. Values are part of the hash, so never renumber them. */
export const TraceKind = {
  send: 1, // a=from b=to x=digest
  deliver: 2, // a=to b=from x=digest
  drop: 3, // a=from b=to x=digest y=DropCause
  duplicate: 4, // a=from b=to x=digest
  timer: 5, // a=node x=timer arg
  call: 6, // a=-1: a scripted callback ran
  crash: 7, // a=node x=incarnation that ended
  restart: 8, // a=node x=new incarnation
  pause: 9, // a=node
  resume: 10, // a=node x=deferred events released
  note: 11, // a=node (or -1) + text from env.trace / sim.note
  fault: 12, // a=-1 + text: partition, block, heal, link change
  start: 13, // a=node: added to the simulation (incarnation 0)
} as const;
export type TraceKind = (typeof TraceKind)[keyof typeof TraceKind];

/** Why a message was not delivered. Values are part of the hash. */
export const DropCause = {
  loss: 1, // random link loss
  partition: 2, // sender and receiver in different partition components
  blocked: 3, // an (asymmetric) link block from → to
  crashed: 4, // receiver crashed, or restarted since the message was sent
  senderDown: 5, // sender was crashed (or its incarnation ended) when it called send
} as const;
export type DropCause = (typeof DropCause)[keyof typeof DropCause];

const KIND_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(TraceKind).map(([k, v]) => [v, k]),
);
const CAUSE_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(DropCause).map(([k, v]) => [v, k]),
);

// Shared scratch to read a float64's bit pattern as two uint32 words.
const f64 = new Float64Array(1);
const u32 = new Uint32Array(f64.buffer);

const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;
const D1 = 0x85ebca77;
const D2 = 0xc2b2ae3d;

export class Tracer {
  private h1 = 0x243f6a88;
  private h2 = 0x85a308d3;
  private total = 0;

  private readonly cap: number;
  private readonly kinds: Uint8Array;
  private readonly times: Float64Array;
  private readonly as: Int32Array;
  private readonly bs: Int32Array;
  private readonly xs: Float64Array;
  private readonly ys: Float64Array;
  private readonly texts: (string | undefined)[];

  constructor(ringSize: number) {
    if (!Number.isSafeInteger(ringSize) || ringSize < 0)
      throw new RangeError(`bad trace ring size ${ringSize}`);
    this.cap = ringSize;
    this.kinds = new Uint8Array(ringSize);
    this.times = new Float64Array(ringSize);
    this.as = new Int32Array(ringSize);
    this.bs = new Int32Array(ringSize);
    this.xs = new Float64Array(ringSize);
    this.ys = new Float64Array(ringSize);
    this.texts = new Array<string | undefined>(ringSize);
  }

  /** Number of events recorded (all of them, not just those in the ring). */
  get count(): number {
    return this.total;
  }

  private word(w: number): void {
    let k = Math.imul(w, C1);
    k = (k << 15) | (k >>> 17);
    this.h1 ^= Math.imul(k, C2);
    this.h1 = Math.imul((this.h1 << 13) | (this.h1 >>> 19), 5) + 0xe6546b64;
    let j = Math.imul(w, D1);
    j = (j << 17) | (j >>> 15);
    this.h2 ^= Math.imul(j, D2);
    this.h2 = Math.imul((this.h2 << 11) | (this.h2 >>> 21), 9) + 0x38495ab5;
  }

  /** Records one event. `x` and `y` are hashed as uint32 (digests, args, causes, counts). */
  record(kind: TraceKind, time: number, a: number, b: number, x: number, y: number): void {
    f64[0] = time;
    this.word(kind);
    this.word(u32[0]!);
    this.word(u32[1]!);
    this.word(a);
    this.word(b);
    this.word(x >>> 0);
    this.word(y >>> 0);
    if (this.cap > 0) {
      const i = this.total % this.cap;
      this.kinds[i] = kind;
      this.times[i] = time;
      this.as[i] = a;
      this.bs[i] = b;
      this.xs[i] = x;
      this.ys[i] = y;
      this.texts[i] = undefined;
    }
    this.total++;
  }

  /** Records an event carrying text (notes and fault descriptions); the text is hashed too. */
  recordText(kind: TraceKind, time: number, a: number, text: string): void {
    this.word(text.length);
    for (let i = 0; i < text.length; i++) this.word(text.charCodeAt(i));
    const at = this.total;
    this.record(kind, time, a, -1, 0, 0);
    if (this.cap > 0) this.texts[at % this.cap] = text;
  }

  /** The running hash of every event so far, as 16 hex digits. */
  hash(): string {
    // Finalize copies so recording can continue afterwards.
    let a = (this.h1 ^ this.total) >>> 0;
    let b = (this.h2 ^ Math.floor(this.total / 4294967296)) >>> 0;
    a = fmix32(a + Math.imul(b, 0x9e3779b9));
    b = fmix32(b ^ a);
    return a.toString(16).padStart(8, '0') + b.toString(16).padStart(8, '0');
  }

  /** The last (up to ring size) events, one line each, oldest first. */
  text(): string {
    const lines: string[] = [];
    const n = Math.min(this.total, this.cap);
    if (this.total > n) lines.push(`… ${this.total - n} earlier events not kept`);
    for (let k = this.total - n; k < this.total; k++) lines.push(this.line(k % this.cap));
    return lines.join('\n');
  }

  private line(i: number): string {
    const kind = this.kinds[i]!;
    const t = this.times[i]!.toFixed(3).padStart(12);
    const a = this.as[i]!;
    const b = this.bs[i]!;
    const x = this.xs[i]!;
    const y = this.ys[i]!;
    const name = (KIND_NAMES[kind] ?? `kind${kind}`).padEnd(9);
    const dg = (v: number): string => '#' + (v >>> 0).toString(16).padStart(8, '0');
    switch (kind) {
      case TraceKind.send:
      case TraceKind.duplicate:
        return `${t} ${name} ${a}->${b} ${dg(x)}`;
      case TraceKind.deliver:
        return `${t} ${name} ${a}<-${b} ${dg(x)}`;
      case TraceKind.drop:
        return `${t} ${name} ${a}->${b} ${dg(x)} ${CAUSE_NAMES[y] ?? y}`;
      case TraceKind.timer:
        return `${t} ${name} n${a} arg=${x}`;
      case TraceKind.crash:
      case TraceKind.restart:
      case TraceKind.start:
        return `${t} ${name} n${a} inc=${x}`;
      case TraceKind.resume:
        return `${t} ${name} n${a} released=${x}`;
      case TraceKind.note:
      case TraceKind.fault:
        return `${t} ${name} ${a >= 0 ? 'n' + a + ' ' : ''}${this.texts[i] ?? ''}`;
      default:
        return `${t} ${name} ${a >= 0 ? 'n' + a : ''}`;
    }
  }
}
