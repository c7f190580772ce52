/**
 * One core server's data stream: the dense numbering of the envelopes its edge relay injects
 * into the leaves' gossip overlay (each as a StreamEntry the server signed for its position),
 * and a bounded history of those entries for leaves that pull what
 * gossip did not bring (leaf-protocol `dataPull`: DESIGN's "retention for a bounded number of
 * rounds, then catch-up from the core").
 *
 * Why per server and not one core-wide stream: data travels the core on the FIFO channel, so
 * servers see envelopes of different publishers in different orders and could not agree on one
 * numbering without ordering every envelope; each server's leaves gossip among themselves
 * (their seeds come from that server), so each overlay needs only its own server's numbering.
 *
 * Origin: drawn from the CSPRNG in [1, MAX_ORIGIN] per stream, so a restarted server does not
 * reuse the ids its previous process gave (leaves remember seen ids, and an id seen before is
 * suppressed as a duplicate). Two live streams share an origin with probability 2⁻²⁰ per pair
 * and only ever meet in a leaf whose overlay mixes both servers' leaves. Past MAX_STREAM_SEQ the stream
 * starts over under a new origin (the seed tells the leaves).
 *
 * Bounded: at most `maxItems` entries and `maxBytes` of them; the oldest go first.
 */
import { UniformInts } from '../crypto/index.js';
import {
  MAX_ORIGIN,
  MAX_PULL_ITEMS,
  MAX_PULL_REPLY_BYTES,
  MAX_STREAM_SEQ,
  type DataPullReply,
  type DataStream,
} from './index.js';

export const DEFAULT_HISTORY_ITEMS = 4096;
export const DEFAULT_HISTORY_BYTES = 16 * 1024 * 1024;

export interface DataHistoryOptions {
  readonly maxItems?: number;
  readonly maxBytes?: number;
  /** Uniform integer in [0, n) for the origin (default: the CSPRNG). */
  readonly randomInt?: (n: number) => number;
}

const uniform = new UniformInts();

export class DataHistory {
  private origin = 0;
  private next = 0;
  /** Circular buffer: the envelope of seq `next − count + i` is at (start + i) % capacity. */
  private readonly ring: (Uint8Array | undefined)[];
  private start = 0;
  private count = 0;
  private bytes = 0;
  private readonly maxBytes: number;
  private readonly randomInt: (n: number) => number;

  constructor(opts: DataHistoryOptions = {}) {
    const maxItems = opts.maxItems ?? DEFAULT_HISTORY_ITEMS;
    this.maxBytes = opts.maxBytes ?? DEFAULT_HISTORY_BYTES;
    if (!(Number.isInteger(maxItems) && maxItems >= 1)) throw new RangeError('history maxItems ≥ 1');
    if (!(this.maxBytes >= 1)) throw new RangeError('history maxBytes ≥ 1');
    this.ring = new Array<Uint8Array | undefined>(maxItems).fill(undefined);
    this.randomInt = opts.randomInt ?? ((n) => uniform.int(n));
    this.restart();
  }

  /** Where the stream stands: its origin and the seq the next envelope gets. */
  get stream(): DataStream {
    return { origin: this.origin, next: this.next };
  }

  /** Envelopes held (for tests and status). */
  get held(): number {
    return this.count;
  }

  /**
   * Records the entry (the signed envelope) injected as seq `stream.next` (read the stream
   * before: it may restart after).
   */
  append(entry: Uint8Array): void {
    const cap = this.ring.length;
    while (this.count > 0 && (this.count === cap || this.bytes + entry.length > this.maxBytes))
      this.dropOldest();
    this.ring[(this.start + this.count) % cap] = entry;
    this.count++;
    this.bytes += entry.length;
    this.next++;
    if (this.next > MAX_STREAM_SEQ) this.restart();
  }

  /**
   * The answer to a pull: entries from `fromSeq` on (what is still held, at most
   * MAX_PULL_ITEMS and `maxBytes` ≤ MAX_PULL_REPLY_BYTES), `next` = where to resume, `head` =
   * the stream's next seq. Another origin gets this stream and no items.
   */
  pull(origin: number, fromSeq: number, maxBytes = MAX_PULL_REPLY_BYTES): DataPullReply {
    const head = this.next;
    if (origin !== this.origin) return { origin: this.origin, next: head, head, items: [] };
    const oldest = head - this.count;
    let seq = Math.min(Math.max(fromSeq, oldest), head);
    const items: DataPullReply['items'] = [];
    let bytes = 0;
    while (seq < head && items.length < MAX_PULL_ITEMS) {
      const entry = this.ring[(this.start + (seq - oldest)) % this.ring.length]!;
      if (bytes + entry.length > maxBytes) break;
      items.push({ seq, entry });
      bytes += entry.length;
      seq++;
    }
    return { origin: this.origin, next: seq, head, items };
  }

  private dropOldest(): void {
    const e = this.ring[this.start]!;
    this.ring[this.start] = undefined;
    this.start = (this.start + 1) % this.ring.length;
    this.count--;
    this.bytes -= e.length;
  }

  /** A new stream: fresh origin (never the previous one), seq 0, empty history. */
  private restart(): void {
    const previous = this.origin;
    do this.origin = 1 + this.randomInt(MAX_ORIGIN);
    while (this.origin === previous);
    this.next = 0;
    while (this.count > 0) this.dropOldest();
    this.start = 0;
  }
}
