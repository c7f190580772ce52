/**
 * A fault-injecting TCP forwarder on 127.0.0.1 for real-process tests: every connection to the
 * proxy's port is piped to one target address. `cut()` destroys every open connection of the link
 * and refuses new ones (accepted, then reset at once) until `heal()`: a clean network partition of
 * whatever runs over it, as both ends see it (a dead socket, then failed redials). `mute()` is the
 * nastier partition: connections stay open and every byte is dropped, so neither end sees
 * anything but silence (what a sender wrote just before is lost, never refused).
 */
import { createServer, connect, type Server, type Socket } from 'node:net';

export class FaultProxy {
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private isCut = false;
  private muted = false;
  /** Connections accepted and forwarded, and connections refused while cut. */
  readonly counts = { forwarded: 0, refused: 0 };

  private constructor(
    readonly port: number,
    server: Server,
  ) {
    this.server = server;
  }

  /** Listens on an ephemeral 127.0.0.1 port and forwards to `targetPort` on 127.0.0.1. */
  static async start(targetPort: number): Promise<FaultProxy> {
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const proxy = new FaultProxy((server.address() as { port: number }).port, server);
    server.on('connection', (client) => proxy.accept(client, targetPort));
    return proxy;
  }

  get partitioned(): boolean {
    return this.isCut;
  }

  private accept(client: Socket, targetPort: number): void {
    if (this.isCut) {
      this.counts.refused++;
      client.resetAndDestroy();
      return;
    }
    this.counts.forwarded++;
    const upstream = connect(targetPort, '127.0.0.1');
    for (const [a, b] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      this.sockets.add(a);
      a.on('error', () => b.destroy());
      a.on('close', () => {
        this.sockets.delete(a);
        b.destroy();
      });
      a.on('data', (chunk: Buffer) => {
        if (this.muted) return;
        if (!b.write(chunk)) {
          a.pause();
          b.once('drain', () => a.resume());
        }
      });
      a.on('end', () => b.end());
    }
  }

  /** Partition: drop every connection now and refuse new ones until `heal`. */
  partition(): void {
    this.isCut = true;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }

  heal(): void {
    this.isCut = false;
  }

  /** Silence: connections stay open, every byte is dropped both ways (new ones too) until `unmute`. */
  mute(): void {
    this.muted = true;
  }

  /** Ends the silence: the muted connections lost bytes mid-stream, so they are dropped (ends redial). */
  unmute(): void {
    this.muted = false;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }

  async close(): Promise<void> {
    this.partition();
    await new Promise((resolve) => this.server.close(resolve));
  }
}
