/**
 * GossipLink — the UDP host of a leaf's gossip machine (gossip-edge GossipLinkMachine): it binds
 * the socket (net/udp), runs the machine's effects (datagrams, the round timer, early envelopes
 * replayed on a microtask) and hands it every datagram that arrives. All protocol decisions are
 * the machine's; this file only moves bytes and time. LeafClient is its one production user.
 */
import { UdpTransport, parseUdpAddress } from '../net/index.js';
import type { CipherSuite } from '../crypto/index.js';
import {
  GossipLinkMachine,
  type AddressBook,
  type AddressClaims,
  type DataPullReply,
  type DataStream,
  type GossipCounters,
  type GossipLinkEffect,
  type GossipLinkHandler,
  type GossipLinkOptions,
  type GossipLinkStats,
  type GossipSeed,
  type PeerId,
} from '../gossip-edge/index.js';

export class GossipLink {
  private timer: NodeJS.Timeout | undefined;
  /** When the running round was due (Date.now ms): the next one is due a period after it, not after its work. */
  private tickDue: number | undefined;
  private closed = false;

  private constructor(
    private readonly udp: UdpTransport,
    /** The protocol machine this socket hosts (tests and diagnostics read it). */
    readonly machine: GossipLinkMachine,
    readonly endpoint: { readonly host: string; readonly port: number },
  ) {
    udp.setHandler({ onMessage: (from, data) => this.onDatagram(from, data) });
  }

  /** Binds the UDP socket; throws RangeError on options out of range (before binding). */
  static async bind(
    suite: CipherSuite,
    handler: GossipLinkHandler,
    opts: GossipLinkOptions = {},
  ): Promise<GossipLink> {
    const machine = new GossipLinkMachine(suite, handler, opts);
    const udp = await UdpTransport.bind({
      host: opts.host ?? '127.0.0.1',
      port: opts.port ?? 0,
      maxDatagramBytes: machine.maxDatagramBytes,
    });
    const local = parseUdpAddress(udp.local)!;
    return new GossipLink(udp, machine, { host: local.host, port: local.port });
  }

  get counters(): GossipCounters {
    return this.machine.counters;
  }

  get stats(): GossipLinkStats {
    return this.machine.stats;
  }

  get book(): AddressBook {
    return this.machine.book;
  }

  get claims(): AddressClaims {
    return this.machine.claims;
  }

  /** Our PeerId (slot), or undefined before `start`. */
  get self(): PeerId | undefined {
    return this.machine.self;
  }

  get started(): boolean {
    return this.machine.started;
  }

  get coreStream(): { origin: number; next: number } | undefined {
    return this.machine.coreStream;
  }

  start(slot: PeerId, epoch: number, arity: number): void {
    this.run(this.machine.start(slot, epoch, arity));
  }

  installKey(epoch: number, groupKey: Uint8Array): void {
    this.run(this.machine.installKey(epoch, groupKey));
  }

  seed(seed: GossipSeed): void {
    this.run(this.machine.seed(seed));
  }

  /** Throws DecodeError on a position out of range. */
  noteCoreStream(stream: DataStream): void {
    this.run(this.machine.noteCoreStream(stream));
  }

  /** Throws DecodeError on seqs out of range. */
  onDataPull(reply: DataPullReply): void {
    this.run(this.machine.onDataPull(reply));
  }

  moveTo(slot: PeerId, epoch: number): void {
    this.run(this.machine.moveTo(slot, epoch));
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.machine.close();
    await this.udp.close();
  }

  private onDatagram(from: string, data: Uint8Array): void {
    this.run(this.machine.handleDatagram(from, data));
  }

  private run(effects: readonly GossipLinkEffect[]): void {
    if (this.closed) return;
    for (const e of effects) {
      switch (e.type) {
        case 'datagram':
          if (!this.udp.send(e.to, e.bytes)) this.machine.stats.sendQueueFull++;
          break;
        case 'setTimer': {
          if (this.timer !== undefined) clearTimeout(this.timer);
          // Rounds keep their cadence under load (as an interval would): a tick's re-arm counts from
          // when it was due, unless it ran a whole period late (no burst of catch-up rounds).
          const now = Date.now();
          const late = this.tickDue === undefined || now - this.tickDue >= e.afterMs;
          const due = (late ? now : this.tickDue!) + e.afterMs;
          this.timer = setTimeout(
            () => {
              this.timer = undefined;
              this.tickDue = due;
              try {
                this.run(this.machine.tick());
              } finally {
                this.tickDue = undefined;
              }
            },
            Math.max(0, due - now),
          );
          this.timer.unref();
          break;
        }
        case 'replayEarly':
          queueMicrotask(() => this.run(this.machine.replayEarly()));
          break;
      }
    }
  }
}
