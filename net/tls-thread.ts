/**
 * A `LinkTransport` whose TLS runs on a worker thread.
 *
 * Why: a TLS 1.3 mutual-auth handshake costs ~1.5–2 ms of CPU in node 20 (OpenSSL 3), and every
 * record is encrypted on the thread that writes it. On a key server's main thread that work
 * competes with the core group's protocol (heartbeats, flush, total order): a burst of leaf
 * handshakes or a push to thousands of leaves delays it by as much. Here a `TlsTransport` runs on
 * a worker thread (its own event loop, its own core when the machine has one); the main thread
 * sees the same interface, and the threads exchange operations in one message per event-loop
 * turn each way:
 *
 *   main → thread   send(peer, bytes) · ack(bytes) · disconnect(peer, detail) · control(payload) ·
 *                   listen · close
 *   thread → main   up(peer, remote IP, info) · down(peer, reason, detail) · message(peer, bytes) ·
 *                   handshakeFailed(remote, reason, detail) · event(payload) · ack(bytes) ·
 *                   stats(counters, thread CPU) · listening / listenFailed · closed
 *
 * The thread's entry module builds the TlsTransport (and its `identify`, which runs there) and
 * hands it to a `LinkThreadHost`; `info` is what the entry wants the main thread to know about a
 * link (e.g. its certificate's serial), delivered before onPeerUp.
 *
 * Semantics match TlsTransport's, shifted by one hop: `send` returns false when the main thread
 * knows the link is not up or the bytes handed to the thread and not yet taken by it exceed
 * `maxInFlightBytes` (bounded like a socket queue); a send the thread then cannot queue (link just
 * went down, its socket queue full) is dropped there and counted in `stats.sendQueueFull`.
 * `disconnect` takes effect on the thread; onPeerDown follows from there. The other way, message
 * bytes the main thread has not taken yet are capped too: the thread stops reading (LinkThreadHost). If the thread dies, every
 * up link is reported down ('error') and a new thread listens again on the same address.
 */
import type { MessagePort, Worker } from 'node:worker_threads';
import { readFileSync } from 'node:fs';
import { ownBytes } from '../crypto/index.js';
import type { LinkDownReason, LinkTransport, TransportHandler } from './transport.js';
import { zeroTlsStats, type TlsTransport, type TlsTransportStats } from './tls.js';

type ToThread =
  | readonly ['send', string, Uint8Array]
  | readonly ['ack', number]
  | readonly ['disconnect', string, string]
  | readonly ['control', unknown]
  | readonly ['listen', number, string]
  | readonly ['close'];

type FromThread =
  | readonly ['up', string, string | undefined, unknown]
  | readonly ['down', string, LinkDownReason, string]
  | readonly ['message', string, Uint8Array]
  | readonly ['handshakeFailed', string, LinkDownReason, string]
  | readonly ['event', unknown]
  | readonly ['ack', number]
  | readonly ['stats', TlsTransportStats, number | undefined]
  | readonly ['listening', string, number]
  | readonly ['listenFailed', string]
  | readonly ['closed'];

/** Default cap on bytes handed to the thread and not yet taken by it. */
export const DEFAULT_MAX_IN_FLIGHT_BYTES = 64 * 1024 * 1024;
/** How often the thread reports its counters and CPU time (what /metrics shows lags by up to this). */
export const THREAD_STATS_INTERVAL_MS = 250;
const CLOSE_TIMEOUT_MS = 5000;
/** Linux USER_HZ: /proc's CPU times are in these ticks (100 on every mainstream architecture). */
const CLOCK_TICKS_PER_SECOND = 100;

/** CPU seconds (user + system) the calling thread has used; undefined where /proc cannot say. */
export function threadCpuSeconds(): number | undefined {
  try {
    const stat = readFileSync('/proc/thread-self/stat', 'utf8');
    // Fields after "(comm)": state is field 3, utime 14, stime 15 (proc(5)).
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(f[11]) + Number(f[12]);
    return Number.isFinite(ticks) ? ticks / CLOCK_TICKS_PER_SECOND : undefined;
  } catch {
    return undefined;
  }
}

/** Operations queued in one event-loop turn go out as one postMessage. */
class OpBatch<T> {
  private ops: T[] = [];
  constructor(private readonly post: (ops: T[]) => void) {}

  push(op: T): void {
    if (this.ops.length === 0) queueMicrotask(() => this.flush());
    this.ops.push(op);
  }

  flush(): void {
    if (this.ops.length === 0) return;
    const ops = this.ops;
    this.ops = [];
    this.post(ops);
  }
}

/**
 * Bytes that own their buffer exactly: a structured clone copies a view's WHOLE underlying
 * buffer, and frames are often small views into a socket read or an encoder's buffer.
 */
function exactBytes(b: Uint8Array): Uint8Array {
  return b.byteOffset === 0 && b.byteLength === b.buffer.byteLength ? b : ownBytes(b);
}

function addStats(a: TlsTransportStats, b: TlsTransportStats): TlsTransportStats {
  const sum = zeroTlsStats();
  for (const k of Object.keys(sum) as (keyof TlsTransportStats)[]) sum[k] = a[k] + b[k];
  return sum;
}

// ── the worker thread's side ─────────────────────────────────────────────────────────────────

export interface LinkThreadHooks {
  /** What the main thread learns with a link's `up` (structured-cloneable). */
  infoOf?(peer: string): unknown;
  /** A `control` payload from the main thread (e.g. a new CRL). */
  control?(payload: unknown): void | Promise<void>;
}

/**
 * Runs on the worker thread: serves a TlsTransport to the main thread's ThreadTransport.
 * Bounded the other way too: message bytes handed to the main thread and not yet taken by it
 * are capped (`maxUnackedBytes`); beyond, the thread stops reading from every link until the
 * main thread has caught up to half of it, so a main thread that falls behind (a long stack
 * event, a state transfer) makes TCP push back on the leaves instead of queueing without bound.
 */
export class LinkThreadHost {
  private readonly out: OpBatch<FromThread>;
  private transport: TlsTransport | undefined;
  private statsTimer: NodeJS.Timeout | undefined;
  private unacked = 0;
  private readonly maxUnackedBytes: number;

  constructor(
    private readonly port: MessagePort,
    private readonly hooks: LinkThreadHooks = {},
    opts: { readonly maxUnackedBytes?: number } = {},
  ) {
    this.out = new OpBatch((ops) => port.postMessage(ops));
    this.maxUnackedBytes = opts.maxUnackedBytes ?? DEFAULT_MAX_IN_FLIGHT_BYTES;
  }

  /** For the TlsTransport's onHandshakeFailed option. */
  handshakeFailed(remote: string, reason: LinkDownReason, detail: string): void {
    this.out.push(['handshakeFailed', remote, reason, detail]);
  }

  /** Something for the main thread's onEvent (e.g. a certificate refusal to count). */
  emit(payload: unknown): void {
    this.out.push(['event', payload]);
  }

  serve(transport: TlsTransport): void {
    if (this.transport !== undefined) throw new Error('LinkThreadHost: already serving');
    this.transport = transport;
    transport.setHandler({
      onMessage: (from, data) => {
        this.out.push(['message', from, exactBytes(data)]);
        this.unacked += data.length;
        if (this.unacked > this.maxUnackedBytes) transport.setReading(false);
      },
      onPeerUp: (peer) =>
        this.out.push(['up', peer, transport.remoteAddress(peer), this.hooks.infoOf?.(peer)]),
      onPeerDown: (peer, reason, detail) => this.out.push(['down', peer, reason, detail ?? '']),
    });
    this.port.on('message', (ops: ToThread[]) => this.run(transport, ops));
    this.statsTimer = setInterval(() => this.reportStats(), THREAD_STATS_INTERVAL_MS);
    this.statsTimer.unref();
  }

  private reportStats(): void {
    if (this.transport !== undefined)
      this.out.push(['stats', { ...this.transport.stats }, threadCpuSeconds()]);
  }

  private run(t: TlsTransport, ops: ToThread[]): void {
    let taken = 0;
    for (const op of ops) {
      switch (op[0]) {
        case 'send':
          taken += op[2].length;
          t.send(op[1], op[2]); // false: dropped here, counted by the transport if its queue was full
          break;
        case 'ack':
          this.unacked = Math.max(0, this.unacked - op[1]);
          if (this.unacked <= this.maxUnackedBytes / 2) t.setReading(true);
          break;
        case 'disconnect':
          t.disconnect(op[1], op[2]);
          break;
        case 'control':
          void Promise.resolve(this.hooks.control?.(op[1])).catch((e: unknown) =>
            this.emit({ kind: 'controlFailed', error: (e as Error).message }),
          );
          break;
        case 'listen':
          t.listen(op[1], op[2]).then(
            (a) => {
              this.reportStats(); // the main thread has figures from the start
              this.out.push(['listening', a.host, a.port]);
            },
            (e: unknown) => this.out.push(['listenFailed', (e as Error).message]),
          );
          break;
        case 'close':
          clearInterval(this.statsTimer);
          void t.close().then(() => {
            this.reportStats();
            this.out.push(['closed']);
          });
          break;
      }
    }
    if (taken > 0) this.out.push(['ack', taken]);
  }
}

// ── the main thread's side ───────────────────────────────────────────────────────────────────

export interface ThreadTransportOptions {
  /** This endpoint's own identity (as the thread's `identify` would derive it). */
  readonly local: string;
  /** Largest message; must equal the thread's TlsTransport's. */
  readonly maxMessageBytes: number;
  /** Starts the thread (again after it died); its entry serves a LinkThreadHost. */
  spawn(): Worker;
  /**
   * A link came up with the `info` its thread gave; return a string to refuse it (closed with that
   * detail, no onPeerUp) — e.g. it was judged against a CRL older than this thread's.
   */
  onLinkUp?(peer: string, info: unknown): string | undefined;
  onEvent?(payload: unknown): void;
  onHandshakeFailed?(remote: string, reason: LinkDownReason, detail: string): void;
  /** The thread died (its links are reported down; a new one is started). */
  onThreadExit?(detail: string): void;
  readonly maxInFlightBytes?: number;
  /** Delay before a new thread replaces a dead one (default 1 s). */
  readonly restartDelayMs?: number;
}

const noHandler: TransportHandler<string> = { onMessage: () => {} };

export class ThreadTransport implements LinkTransport {
  readonly local: string;
  readonly maxMessageBytes: number;
  private readonly maxInFlightBytes: number;
  private handler: TransportHandler<string> = noHandler;
  private worker: Worker | undefined;
  private out: OpBatch<ToThread> | undefined;
  /** Up links as the thread last reported them, with their remote IP. */
  private readonly up = new Map<string, string | undefined>();
  private inFlight = 0;
  private localDrops = 0;
  /** Counters of dead threads, and the live thread's last report. */
  private pastStats = zeroTlsStats();
  private threadStats = zeroTlsStats();
  private pastCpu = 0;
  private threadCpu: number | undefined;
  private address: { host: string; port: number } | undefined;
  private listening: { resolve(a: { host: string; port: number }): void; reject(e: Error): void } | undefined;
  private closed: (() => void) | undefined;
  private closing = false;
  private restartTimer: NodeJS.Timeout | undefined;
  private threadError = '';

  constructor(private readonly opts: ThreadTransportOptions) {
    this.local = opts.local;
    this.maxMessageBytes = opts.maxMessageBytes;
    this.maxInFlightBytes = opts.maxInFlightBytes ?? DEFAULT_MAX_IN_FLIGHT_BYTES;
    if (this.maxInFlightBytes < this.maxMessageBytes)
      throw new RangeError('maxInFlightBytes below maxMessageBytes');
  }

  /** TlsTransport's counters summed over this transport's threads, plus sends refused here. */
  get stats(): TlsTransportStats {
    const s = addStats(this.pastStats, this.threadStats);
    return { ...s, sendQueueFull: s.sendQueueFull + this.localDrops };
  }

  /** CPU seconds the TLS threads have used (as of their last report); undefined without /proc. */
  get threadCpuSeconds(): number | undefined {
    return this.threadCpu === undefined ? undefined : this.pastCpu + this.threadCpu;
  }

  setHandler(handler: TransportHandler<string>): void {
    this.handler = handler;
  }

  listen(port: number, host = '127.0.0.1'): Promise<{ host: string; port: number }> {
    if (this.closing) return Promise.reject(new Error('ThreadTransport: closed'));
    if (this.worker !== undefined) return Promise.reject(new Error('ThreadTransport: already listening'));
    return this.start(port, host);
  }

  private start(port: number, host: string): Promise<{ host: string; port: number }> {
    const worker = this.opts.spawn();
    this.worker = worker;
    this.threadError = '';
    const out = new OpBatch<ToThread>((ops) => worker.postMessage(ops));
    this.out = out;
    worker.on('message', (ops: FromThread[]) => {
      if (this.worker === worker) this.received(ops);
    });
    worker.on('error', (e) => {
      this.threadError = e.message;
    });
    worker.on('exit', (code) => this.exited(worker, code));
    const bound = new Promise<{ host: string; port: number }>((resolve, reject) => {
      this.listening = { resolve, reject };
    });
    out.push(['listen', port, host]);
    return bound.then(
      (a) => {
        this.address = a;
        return a;
      },
      async (e: unknown) => {
        if (this.worker === worker) {
          this.worker = undefined; // so its exit is not taken for a crash
          this.out = undefined;
          await worker.terminate();
        }
        throw e;
      },
    );
  }

  send(to: string, data: Uint8Array): boolean {
    if (data.length > this.maxMessageBytes) {
      throw new RangeError(`message of ${data.length} bytes exceeds ${this.maxMessageBytes}`);
    }
    if (!this.up.has(to) || this.out === undefined) return false;
    if (this.inFlight + data.length > this.maxInFlightBytes) {
      this.localDrops++;
      return false;
    }
    this.inFlight += data.length;
    this.out.push(['send', to, exactBytes(data)]);
    return true;
  }

  disconnect(peer: string, detail = 'disconnected locally'): void {
    this.out?.push(['disconnect', peer, detail]);
  }

  /** Hands `payload` to the thread entry's `control` hook (after every operation queued before it). */
  control(payload: unknown): void {
    this.out?.push(['control', payload]);
  }

  remoteAddress(peer: string): string | undefined {
    return this.up.get(peer);
  }

  /** Identities with an up link (as the thread last reported). */
  peers(): string[] {
    return [...this.up.keys()];
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    clearTimeout(this.restartTimer);
    const worker = this.worker;
    if (worker !== undefined) {
      const done = new Promise<void>((resolve) => {
        this.closed = resolve;
        setTimeout(resolve, CLOSE_TIMEOUT_MS).unref();
      });
      this.out!.push(['close']);
      await done;
      this.worker = undefined;
      this.out = undefined;
      await worker.terminate();
    }
    this.allDown('closed', 'transport closed');
  }

  private received(ops: FromThread[]): void {
    let taken = 0;
    for (const op of ops) {
      switch (op[0]) {
        case 'up': {
          const [, peer, remote, info] = op;
          const refusal = this.opts.onLinkUp?.(peer, info);
          if (refusal !== undefined) {
            this.disconnect(peer, refusal);
            break;
          }
          this.up.set(peer, remote);
          this.handler.onPeerUp?.(peer);
          break;
        }
        case 'down':
          if (this.up.delete(op[1])) this.handler.onPeerDown?.(op[1], op[2], op[3]);
          break;
        case 'message':
          taken += op[2].length;
          if (this.up.has(op[1])) this.handler.onMessage(op[1], op[2]);
          break;
        case 'handshakeFailed':
          this.opts.onHandshakeFailed?.(op[1], op[2], op[3]);
          break;
        case 'event':
          this.opts.onEvent?.(op[1]);
          break;
        case 'ack':
          this.inFlight = Math.max(0, this.inFlight - op[1]);
          break;
        case 'stats':
          this.threadStats = op[1];
          this.threadCpu = op[2];
          break;
        case 'listening':
          this.listening?.resolve({ host: op[1], port: op[2] });
          this.listening = undefined;
          break;
        case 'listenFailed':
          this.listening?.reject(new Error(op[1]));
          this.listening = undefined;
          break;
        case 'closed':
          this.closed?.();
          break;
      }
    }
    if (taken > 0) this.out?.push(['ack', taken]); // the thread may read again (LinkThreadHost)
  }

  private exited(worker: Worker, code: number): void {
    if (this.worker !== worker) return; // terminated by close()
    this.worker = undefined;
    this.out = undefined;
    this.inFlight = 0;
    this.pastStats = addStats(this.pastStats, this.threadStats);
    this.threadStats = zeroTlsStats();
    this.pastCpu += this.threadCpu ?? 0;
    this.threadCpu = undefined;
    const detail = `TLS thread exited with code ${code}${this.threadError ? `: ${this.threadError}` : ''}`;
    this.listening?.reject(new Error(detail));
    this.listening = undefined;
    this.allDown('error', detail);
    if (this.closing) return this.closed?.();
    this.opts.onThreadExit?.(detail);
    this.scheduleRestart();
  }

  /** A new thread on the address the first one bound (leaves reconnect where they were). */
  private scheduleRestart(): void {
    const addr = this.address;
    if (addr === undefined || this.closing) return; // never listened: nothing to restore
    this.restartTimer = setTimeout(() => {
      if (this.closing) return;
      this.start(addr.port, addr.host).catch((e: unknown) => {
        this.opts.onThreadExit?.(`TLS thread restart failed: ${(e as Error).message}`);
        this.scheduleRestart();
      });
    }, this.opts.restartDelayMs ?? 1000);
    this.restartTimer.unref();
  }

  private allDown(reason: LinkDownReason, detail: string): void {
    const peers = [...this.up.keys()];
    this.up.clear();
    for (const p of peers) this.handler.onPeerDown?.(p, reason, detail);
  }
}
