/**
 * The leaf's link to core servers: one mutually authenticated TLS 1.3 link (net/tls TlsTransport,
 * set up by ServerTrust) to one core server at a time. `dial` tries the servers in turn until one
 * welcomes us — bounded attempts, exponential backoff with jitter, each new link handed to the
 * owner to join over and awaited until the session says `welcomed` or `joinFailed` — and stays on
 * the server that did. A link that goes down is reported to the owner (LeafClient fails over by
 * dialing again). `leaveWithoutLink` links again only to say we leave.
 *
 * What is sent, and whether a join succeeded, are the session's: this is transport only.
 */
import { LinkError, TlsTransport, type LinkDownReason } from '../net/index.js';
import { MAX_LEAF_FRAME_BYTES } from '../gossip-edge/index.js';
import { LeafEvictedError, type LeafLinkInfo } from './session.js';
import { LeafConnectError, type LeafServerAddress } from './client-api.js';
import type { ServerTrust } from './server-trust.js';

export interface ServerLinkOptions {
  /** Core servers to try, in order (non-empty). */
  readonly servers: readonly LeafServerAddress[];
  /** Connection attempts per dial, across servers. */
  readonly maxAttempts: number;
  /** Backoff between attempts: base·2^k capped at max, times a jitter in [0.5, 1). */
  readonly backoffBaseMs: number;
  readonly backoffMaxMs: number;
  readonly handshakeTimeoutMs: number;
  readonly random?: () => number;
}

/** What the owner of the link hears. */
export interface ServerLinkHandler {
  /**
   * A link is up (the server authenticated): join over it; `welcomed` or `joinFailed` answers.
   * `link`: the server as the TLS verifier accepted it, and the link's exporter.
   */
  linkUp(link: Omit<LeafLinkInfo, 'gossip'>): void;
  /** A frame from the linked server. */
  frame(server: string, bytes: Uint8Array): void;
  /** The linked server's link is gone. `joining`: it awaited its welcome (the running dial goes on). */
  linkDown(error: LinkError, joining: boolean): void;
}

interface Waiter {
  resolve(): void;
  reject(err: Error): void;
}

export class ServerLink {
  /** Undefined once closed. */
  private transport: TlsTransport | undefined;
  /** The server linked now (its link identity), joining or welcomed. */
  private current: string | undefined;
  private nextServer = 0;
  private welcomeWaiter: Waiter | undefined;

  constructor(
    private readonly trust: ServerTrust,
    private readonly opts: ServerLinkOptions,
    private readonly handler: ServerLinkHandler,
  ) {
    if (opts.servers.length === 0) throw new RangeError('LeafClient: no servers');
    this.transport = this.newTransport();
    this.transport.setHandler({
      onMessage: (from, data) => {
        if (from === this.current) handler.frame(from, data);
      },
      onPeerDown: (peer, reason, detail) => this.onPeerDown(peer, reason, detail),
    });
  }

  /** The server linked now (joining or welcomed). */
  get server(): string | undefined {
    return this.current;
  }

  /** False if there is no link or it could not take the frame now. */
  send(bytes: Uint8Array): boolean {
    const peer = this.current;
    return peer !== undefined && this.transport?.send(peer, bytes) === true;
  }

  /** Ends the current link (its `linkDown` follows). */
  drop(reason: string): void {
    if (this.current !== undefined) this.transport?.disconnect(this.current, reason);
  }

  /** The session's 'welcomed': the pending join succeeded. */
  welcomed(): void {
    const w = this.welcomeWaiter;
    this.welcomeWaiter = undefined;
    w?.resolve();
  }

  /** The session's 'joinFailed' (or the link's end): the pending join failed with `err`. */
  joinFailed(err: Error): void {
    const w = this.welcomeWaiter;
    if (w === undefined) return;
    this.welcomeWaiter = undefined;
    w.reject(err);
  }

  /**
   * Tries servers in turn until one welcomes us; resolves to that server's link identity.
   * Rejects with LeafConnectError when every attempt failed or the link was closed meanwhile,
   * with LeafEvictedError when a server evicted us while we joined.
   */
  async dial(): Promise<string> {
    const tried: string[] = [];
    const servers = this.opts.servers;
    for (let attempt = 0; attempt < this.opts.maxAttempts; attempt++) {
      if (attempt > 0 && this.transport !== undefined) await sleep(this.backoff(attempt - 1));
      const transport = this.transport;
      if (transport === undefined) throw new LeafConnectError('client closed', tried);
      const server = servers[this.nextServer]!;
      this.nextServer = (this.nextServer + 1) % servers.length;
      try {
        const peer = await transport.connect(server.host, server.port);
        this.current = peer;
        await this.join(peer);
        if (this.transport === undefined) throw new LeafConnectError('client closed', tried);
        // A frame right behind the welcome may have ended the link already (in one read).
        if (this.current !== peer) throw new Error('link lost right after the welcome');
        this.nextServer = (this.nextServer + servers.length - 1) % servers.length; // stay on it
        return peer;
      } catch (e) {
        if (e instanceof LeafEvictedError) throw e;
        tried.push(`${server.host}:${server.port}: ${(e as Error).message}`);
        if (this.current !== undefined) transport.disconnect(this.current, 'join failed');
        this.current = undefined;
      }
    }
    throw new LeafConnectError(`no core server welcomed us after ${this.opts.maxAttempts} attempts`, tried);
  }

  /**
   * For a client whose failover gave up but who still holds its admission in the registry: links
   * to the servers in turn (within `waitMs`) only to send `leave`. A server takes a leave from
   * any authenticated link of that leaf, welcomed or not.
   */
  async leaveWithoutLink(leave: Uint8Array, waitMs: number): Promise<void> {
    const t = this.newTransport();
    t.setHandler({ onMessage: () => {}, onPeerDown: () => {} });
    const deadline = Date.now() + waitMs;
    try {
      for (const s of this.opts.servers) {
        const left = deadline - Date.now();
        if (left <= 0) return;
        const peer = await within(
          t.connect(s.host, s.port).catch(() => undefined),
          left,
        );
        if (peer !== undefined && t.send(peer, leave)) return;
      }
    } finally {
      await t.close(); // ends each link after what was written
    }
  }

  /** Ends the link for good (a pending join fails with `why`); `leaveWithoutLink` still works. */
  async close(why: string): Promise<void> {
    this.joinFailed(new Error(why));
    this.current = undefined;
    const t = this.transport;
    this.transport = undefined;
    await t?.close();
  }

  private newTransport(): TlsTransport {
    return new TlsTransport({
      local: this.trust.local,
      tls: this.trust.tlsOptions(),
      identify: this.trust.identifyServer(),
      maxMessageBytes: MAX_LEAF_FRAME_BYTES,
      handshakeTimeoutMs: this.opts.handshakeTimeoutMs,
      maxLinks: 4,
    });
  }

  private backoff(k: number): number {
    const base = Math.min(this.opts.backoffMaxMs, this.opts.backoffBaseMs * 2 ** Math.min(k, 20));
    return base * (0.5 + 0.5 * (this.opts.random ?? Math.random)());
  }

  /** Hands the new link to the owner (the session joins, resuming our admission) and waits for the welcome. */
  private join(server: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.joinFailed(new Error('superseded by a new join'));
      this.welcomeWaiter = { resolve, reject };
      const accepted = this.trust.acceptedServer(server);
      this.handler.linkUp({
        server,
        ...(accepted !== undefined ? { accepted } : {}),
        exportKeyingMaterial: (length, label) => this.transport?.exportKeyingMaterial(server, length, label),
      });
    });
  }

  private onPeerDown(peer: string, reason: LinkDownReason, detail: string | undefined): void {
    if (peer !== this.current) return;
    this.current = undefined;
    this.handler.linkDown(new LinkError(reason, detail ?? 'link down'), this.welcomeWaiter !== undefined);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** `p`'s value, or undefined once `ms` passed first (the timer never outlives the wait). */
export async function within<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  try {
    const timeout = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms)));
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
