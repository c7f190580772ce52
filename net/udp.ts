/**
 * `Transport<string>` over UDP datagrams (node:dgram); one message = one datagram.
 *
 * Addresses are "host:port" with a literal IP: "127.0.0.1:4000" or "[::1]:4000" (no DNS:
 * a gossip peer list holds addresses, not names). Datagrams are bounded by
 * `maxDatagramBytes` (default 1200, safely under common path MTUs without fragmentation);
 * larger sends throw, larger receipts are dropped and counted. Content authentication
 * belongs to the protocol above (gossip MACs): anyone can send a datagram.
 */
import * as dgram from 'node:dgram';
import { isIPv4, isIPv6 } from 'node:net';
import type { Transport, TransportHandler } from './transport.js';

/** Largest UDP payload over IPv4 (65535 − 8 UDP − 20 IP header bytes). */
export const MAX_UDP_PAYLOAD = 65507;
export const DEFAULT_MAX_DATAGRAM_BYTES = 1200;

export interface UdpTransportOptions {
  /** Literal IP to bind (default 127.0.0.1); its family picks udp4 or udp6. */
  host?: string;
  /** Port to bind (default 0 = ephemeral). */
  port?: number;
  /** Largest datagram sent or accepted (default 1200, at most 65507). */
  maxDatagramBytes?: number;
  /** Sends handed to the OS but not yet completed; `send` returns false beyond it (default 1024). */
  maxInflight?: number;
}

export interface UdpTransportStats {
  sent: number;
  received: number;
  droppedOversize: number;
  sendErrors: number;
  sendQueueFull: number;
  wrongFamily: number;
}

export interface UdpAddress {
  readonly host: string;
  readonly port: number;
  readonly family: 4 | 6;
}

/** Parse "a.b.c.d:port" or "[v6]:port"; undefined if it is neither. */
export function parseUdpAddress(addr: string): UdpAddress | undefined {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(addr);
  if (m === null) return undefined;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return undefined;
  if (m[1] !== undefined) return isIPv6(m[1]) ? { host: m[1], port, family: 6 } : undefined;
  return isIPv4(m[2]!) ? { host: m[2]!, port, family: 4 } : undefined;
}

export function formatUdpAddress(host: string, port: number): string {
  return isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
}

const noHandler: TransportHandler<string> = { onMessage: () => {} };

export class UdpTransport implements Transport<string> {
  readonly stats: UdpTransportStats = {
    sent: 0,
    received: 0,
    droppedOversize: 0,
    sendErrors: 0,
    sendQueueFull: 0,
    wrongFamily: 0,
  };
  private handler: TransportHandler<string> = noHandler;
  private inflight = 0;
  private closed = false;

  private constructor(
    private readonly socket: dgram.Socket,
    private readonly family: 4 | 6,
    readonly local: string,
    readonly maxMessageBytes: number,
    private readonly maxInflight: number,
  ) {
    socket.on('message', (msg, rinfo) => this.received(msg, rinfo));
    // Errors on an unconnected datagram socket (e.g. ICMP unreachable surfacing late) are not
    // fatal to the endpoint; sends report theirs through their callbacks.
    socket.on('error', () => this.stats.sendErrors++);
  }

  /** Bind a socket and return a ready transport. */
  static async bind(opts: UdpTransportOptions = {}): Promise<UdpTransport> {
    const host = opts.host ?? '127.0.0.1';
    const max = opts.maxDatagramBytes ?? DEFAULT_MAX_DATAGRAM_BYTES;
    const maxInflight = opts.maxInflight ?? 1024;
    if (!Number.isInteger(max) || max < 1 || max > MAX_UDP_PAYLOAD) {
      throw new RangeError(`maxDatagramBytes ${max} outside 1..${MAX_UDP_PAYLOAD}`);
    }
    if (!Number.isInteger(maxInflight) || maxInflight < 1) throw new RangeError(`maxInflight ${maxInflight}`);
    const family = isIPv4(host) ? 4 : isIPv6(host) ? 6 : undefined;
    if (family === undefined) throw new RangeError(`UDP bind host must be a literal IP, got '${host}'`);
    const socket = dgram.createSocket({ type: family === 4 ? 'udp4' : 'udp6', ipv6Only: family === 6 });
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(opts.port ?? 0, host, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    const bound = socket.address();
    return new UdpTransport(socket, family, formatUdpAddress(bound.address, bound.port), max, maxInflight);
  }

  setHandler(handler: TransportHandler<string>): void {
    this.handler = handler;
  }

  send(to: string, data: Uint8Array): boolean {
    if (data.length > this.maxMessageBytes) {
      throw new RangeError(`datagram of ${data.length} bytes exceeds ${this.maxMessageBytes}`);
    }
    const addr = parseUdpAddress(to);
    if (addr === undefined) throw new RangeError(`not a UDP address: '${to}'`);
    if (this.closed) return false;
    if (addr.family !== this.family) {
      this.stats.wrongFamily++;
      return false;
    }
    if (this.inflight >= this.maxInflight) {
      this.stats.sendQueueFull++;
      return false;
    }
    this.inflight++;
    this.socket.send(data, addr.port, addr.host, (err) => {
      this.inflight--;
      if (err) this.stats.sendErrors++;
      else this.stats.sent++;
    });
    return true;
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }

  private received(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    if (msg.length > this.maxMessageBytes) {
      this.stats.droppedOversize++;
      return;
    }
    this.stats.received++;
    // A plain Uint8Array view: Buffer.slice() does not copy, which would surprise decoders.
    this.handler.onMessage(
      formatUdpAddress(rinfo.address, rinfo.port),
      new Uint8Array(msg.buffer, msg.byteOffset, msg.byteLength),
    );
  }
}
