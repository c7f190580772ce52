/**
 * `Transport<string>` over TCP + TLS 1.3 with mutual authentication.
 *
 * Addresses are peer identities: strings the caller's `identify` derives from the peer's
 * verified certificate (the auth layer above builds both the TLS options and `identify`;
 * this module never parses certificates itself). Each link carries length-prefixed messages
 * (wire stream framing).
 *
 * Link life cycle, both directions alike:
 *   TLS handshake (chain verified by node:tls against the caller's CA, TLS ≥ 1.3)
 *   → identify(peer certificate) — refusal closes with reason 'auth'
 *   → each side sends LINK_HELLO as its first frame, and only after accepting the other side;
 *     the link is up when our check passed AND the peer's hello arrived. (In TLS 1.3 a client
 *     finishes its handshake before the server has judged the client certificate, so without
 *     the hello a refused client would believe it was connected.)
 *   → messages; an oversize or malformed frame closes that link alone with 'bad-frame'.
 * The handshake timeout covers TLS and the hello; the idle timeout closes silent links.
 *
 * Two links to one identity (a reconnect racing a dying link, or both sides dialing at once):
 *   - same direction: the newer link wins (the peer reconnected; the old one is stale);
 *   - opposite directions: the link dialed by the lexicographically smaller identity wins,
 *     a rule both ends evaluate identically, so simultaneous dials converge on one link.
 * The loser is closed without events. When an up link is replaced the handler sees
 * onPeerDown(peer, 'closed', 'replaced') then onPeerUp(peer): in-flight messages of the old
 * link may be lost, and its exporter secret is gone (re-derive from the new link).
 *
 * One identity, one process (option `instance`, the core mesh): the hello then carries a random
 * id of the sending process (LINK_HELLO_V2). A second link to an identity from ANOTHER process
 * while the up link's process was heard within `instanceLiveMs` is refused — whatever the
 * directions — with a LINK_REFUSED frame saying why, so both ends can log it: a copied unit or a
 * botched deploy running a second process under a live server's certificate is kept off the
 * mesh instead of replacing that server's links. A restarted server is a new process too: its
 * predecessor's link closes with its socket, or falls silent and stops counting after
 * `instanceLiveMs`. First live process wins; the transport cannot tell the real one from a copy.
 */
import * as tls from 'node:tls';
import { constants, type X509Certificate } from 'node:crypto';
import { DEFAULT_MAX_FRAME_BYTES, MAX_MESSAGE_BYTES, StreamDeframer, frameForStream } from '../wire/index.js';
import type { LinkDownReason, LinkTransport, TransportHandler } from './transport.js';

/** OpenSSL's SSL_OP_NO_TICKET (node exports it as crypto.constants.SSL_OP_NO_TICKET). */
const NO_SESSION_TICKETS = constants.SSL_OP_NO_TICKET;

/** First frame each side sends on a link once it has accepted the other side. */
export const LINK_HELLO: Uint8Array = Uint8Array.of(0x4b, 0x47, 0x4c, 0x4e, 0x4b, 0x00, 0x00, 0x01); // "KGLNK" v1
/** Hello of a transport with an `instance`: "KGLNK" v2 followed by the 16-byte process id. */
const LINK_HELLO_V2_PREFIX = Uint8Array.of(0x4b, 0x47, 0x4c, 0x4e, 0x4b, 0x00, 0x00, 0x02);
/** A link refused after its TLS handshake: this prefix, then why (UTF-8, at most 200 bytes). */
const LINK_REFUSED_PREFIX = Uint8Array.of(0x4b, 0x47, 0x4c, 0x4e, 0x4b, 0x00, 0x00, 0xff);
export const INSTANCE_BYTES = 16;
const MAX_REFUSAL_TEXT_BYTES = 200;
/** The detail of a link refused for another live process under the same identity (both ends). */
export const DUPLICATE_IDENTITY = 'duplicate identity';

export interface TlsTransportOptions {
  /** This endpoint's own identity (as `identify` would derive it from our certificate). */
  local: string;
  /** Our key, certificate chain and trusted CA(s), plus any other secure-context options. */
  tls: tls.SecureContextOptions;
  /** The peer identity of a certificate that the TLS layer already verified, or why not. */
  identify(cert: X509Certificate): string | Error;
  /** Largest message (default 1 MiB, at most MAX_MESSAGE_BYTES). */
  maxMessageBytes?: number;
  /** Per-link cap on bytes queued for sending; `send` returns false beyond it (default 4 MiB). */
  maxQueuedBytes?: number;
  /** TLS handshake plus link hello (default 10 s). */
  handshakeTimeoutMs?: number;
  /** Close a link with no traffic either way for this long (default 120 s; 0 = never). */
  idleTimeoutMs?: number;
  /** Cap on concurrent sockets, handshaking ones included (default 1024). */
  maxLinks?: number;
  /** Inbound connection that failed before its link came up (for metrics and logs). */
  onHandshakeFailed?(remote: string, reason: LinkDownReason, detail: string): void;
  /** This process's random id (INSTANCE_BYTES): turns on one-process-per-identity (module comment). */
  instance?: Uint8Array;
  /** An up link's process counts as live while heard from within this (default 5000 ms). */
  instanceLiveMs?: number;
}

/** Why `connect` failed. */
export class LinkError extends Error {
  override readonly name = 'LinkError';
  constructor(
    readonly reason: LinkDownReason,
    readonly detail: string,
  ) {
    super(`${reason}: ${detail}`);
  }
}

export interface TlsTransportStats {
  linksUp: number;
  replaced: number;
  badFrames: number;
  handshakeFailures: number;
  sendQueueFull: number;
  /** Times reading from the links stopped because their consumer fell behind (`setReading`). */
  readPauses: number;
}

/** Every counter at zero. */
export function zeroTlsStats(): TlsTransportStats {
  return { linksUp: 0, replaced: 0, badFrames: 0, handshakeFailures: 0, sendQueueFull: 0, readPauses: 0 };
}

type LinkState = 'handshake' | 'up' | 'closed';

interface Link {
  readonly socket: tls.TLSSocket;
  readonly dialed: boolean;
  readonly remote: string;
  readonly deframer: StreamDeframer;
  state: LinkState;
  peer: string | undefined; // set once `identify` accepted the certificate
  helloReceived: boolean;
  instance: string | undefined; // the peer process's id from its hello (hex), if it sent one
  lastHeard: number;
  timer: NodeJS.Timeout | undefined;
  settle: ((err: LinkError | undefined, peer?: string) => void) | undefined; // outbound: connect()'s promise
}

const CLOSE_GRACE_MS = 1000;
const noHandler: TransportHandler<string> = { onMessage: () => {} };

export class TlsTransport implements LinkTransport {
  readonly local: string;
  readonly maxMessageBytes: number;
  readonly stats: TlsTransportStats = zeroTlsStats();

  private readonly maxQueuedBytes: number;
  private readonly handshakeTimeoutMs: number;
  private readonly idleTimeoutMs: number;
  private readonly maxLinks: number;
  private handler: TransportHandler<string> = noHandler;
  private server: tls.Server | undefined;
  private readonly sockets = new Set<Link>(); // every open socket, any state
  private readonly current = new Map<string, Link>(); // the one up link per identity
  private closing = false;
  private reading = true;
  private tlsOptions: tls.SecureContextOptions;
  private identify: (cert: X509Certificate) => string | Error;
  private readonly hello: Uint8Array;

  constructor(private readonly opts: TlsTransportOptions) {
    this.local = opts.local;
    this.maxMessageBytes = opts.maxMessageBytes ?? DEFAULT_MAX_FRAME_BYTES;
    this.maxQueuedBytes = opts.maxQueuedBytes ?? 4 * 1024 * 1024;
    this.handshakeTimeoutMs = opts.handshakeTimeoutMs ?? 10_000;
    this.idleTimeoutMs = opts.idleTimeoutMs ?? 120_000;
    this.maxLinks = opts.maxLinks ?? 1024;
    if (this.maxMessageBytes < LINK_HELLO.length || this.maxMessageBytes > MAX_MESSAGE_BYTES) {
      throw new RangeError(
        `maxMessageBytes ${this.maxMessageBytes} outside ${LINK_HELLO.length}..${MAX_MESSAGE_BYTES}`,
      );
    }
    if (this.maxQueuedBytes < this.maxMessageBytes)
      throw new RangeError('maxQueuedBytes below maxMessageBytes');
    if (opts.instance !== undefined && opts.instance.length !== INSTANCE_BYTES)
      throw new RangeError(`instance must be ${INSTANCE_BYTES} bytes`);
    this.tlsOptions = opts.tls;
    this.identify = opts.identify;
    this.hello = opts.instance === undefined ? LINK_HELLO : concat(LINK_HELLO_V2_PREFIX, opts.instance);
  }

  /**
   * New credentials, anchors or identity check (a reload): links made from now on use them, up
   * links keep what they were made with.
   */
  setTls(options: tls.SecureContextOptions, identify?: (cert: X509Certificate) => string | Error): void {
    this.tlsOptions = options;
    if (identify !== undefined) this.identify = identify;
    this.server?.setSecureContext(this.serverContextOptions());
  }

  private serverContextOptions(): tls.SecureContextOptions {
    return {
      ...this.tlsOptions,
      minVersion: 'TLSv1.3',
      // No session tickets: every link is a full mutual-auth handshake judged by `identify`
      // against the current CRL (a resumed session would skip the chain check) and our dialers
      // never resume, so tickets are pure cost. How much varies on this machine: a bare node
      // server with Ed25519 certificates used 1.4 vs 2.1 ms CPU per handshake without / with
      // them on a quiet run, and 1.73 vs 1.74 ms on a loaded one.
      secureOptions: (this.tlsOptions.secureOptions ?? 0) | NO_SESSION_TICKETS,
    };
  }

  setHandler(handler: TransportHandler<string>): void {
    this.handler = handler;
  }

  /** Accept links on host:port (port 0 = ephemeral); resolves with the bound address. */
  listen(port: number, host = '127.0.0.1'): Promise<{ host: string; port: number }> {
    if (this.server !== undefined) throw new Error('TlsTransport: already listening');
    if (this.closing) throw new Error('TlsTransport: closed');
    const server = tls.createServer({
      ...this.serverContextOptions(),
      requestCert: true,
      rejectUnauthorized: true,
      handshakeTimeout: this.handshakeTimeoutMs,
    });
    server.maxConnections = this.maxLinks;
    this.server = server;
    server.on('secureConnection', (socket: tls.TLSSocket) => this.accept(socket));
    server.on('tlsClientError', (err: NodeJS.ErrnoException, socket: tls.TLSSocket) => {
      const reason: LinkDownReason = err.code === 'ERR_TLS_HANDSHAKE_TIMEOUT' ? 'timeout' : 'auth';
      // A refused client certificate surfaces as a bare hang-up; the verify error says why.
      const why = socket.authorizationError
        ? `${String(socket.authorizationError)} (${err.message})`
        : err.message;
      this.stats.handshakeFailures++;
      this.opts.onHandshakeFailed?.(remoteOf(socket), reason, why);
      socket.destroy();
    });
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        const addr = server.address();
        if (addr === null || typeof addr === 'string') return reject(new Error('unexpected server address'));
        resolve({ host: addr.address, port: addr.port });
      });
    });
  }

  /**
   * Dial host:port; resolves with the peer's identity once the link is up (or once an
   * existing link to that identity wins over this one), rejects with a LinkError.
   * With `expect`, any other identity is refused with 'auth'.
   */
  connect(host: string, port: number, expect?: string): Promise<string> {
    if (this.closing) return Promise.reject(new LinkError('closed', 'transport closed'));
    if (this.sockets.size >= this.maxLinks) return Promise.reject(new LinkError('error', 'too many links'));
    return new Promise((resolve, reject) => {
      const socket = tls.connect({
        ...this.tlsOptions,
        host,
        port,
        minVersion: 'TLSv1.3',
        rejectUnauthorized: true,
        // Identity is the caller's `identify`, not a DNS name: Keyglass certificates name
        // members by SAN URI, so hostname checking would refuse every one of them.
        checkServerIdentity: () => undefined,
      });
      const link = this.track(socket, true, `${host}:${port}`);
      link.settle = (err, peer) => {
        link.settle = undefined;
        if (err !== undefined) reject(err);
        else resolve(peer!);
      };
      socket.once('secureConnect', () => this.secured(link, expect));
    });
  }

  send(to: string, data: Uint8Array): boolean {
    if (data.length > this.maxMessageBytes) {
      throw new RangeError(`message of ${data.length} bytes exceeds ${this.maxMessageBytes}`);
    }
    const link = this.current.get(to);
    if (link === undefined || link.state !== 'up') return false;
    if (link.socket.writableLength + data.length > this.maxQueuedBytes) {
      this.stats.sendQueueFull++;
      return false;
    }
    link.socket.write(frameForStream(data, this.maxMessageBytes));
    return true;
  }

  /**
   * Stops (false) or restarts (true) reading from every link, for a consumer of onMessage that
   * fell behind: the sockets' buffers fill and TCP pushes back on the peers.
   */
  setReading(on: boolean): void {
    if (this.reading === on) return;
    this.reading = on;
    if (!on) this.stats.readPauses++;
    // Only links that read through `received` (an accepted identity): resuming a dialed socket
    // still in its handshake would set it flowing with no data listener, and lose what arrives.
    for (const link of this.sockets) {
      if (link.peer === undefined || link.state === 'closed') continue;
      if (on) link.socket.resume();
      else link.socket.pause();
    }
  }

  /** Identities with an up link. */
  peers(): string[] {
    return [...this.current.keys()];
  }

  /** Close the link to `peer` (e.g. its credential was revoked). */
  disconnect(peer: string, detail = 'disconnected locally'): void {
    const link = this.current.get(peer);
    if (link !== undefined) this.closeLink(link, 'closed', detail, true);
  }

  /**
   * The IP address the up link to `peer` comes from (IPv4-mapped IPv6 unwrapped), for checks that
   * bind something the peer claims to where it really is; undefined without an up link.
   */
  remoteAddress(peer: string): string | undefined {
    const link = this.current.get(peer);
    const ip = link?.state === 'up' ? link.socket.remoteAddress : undefined;
    if (ip === undefined) return undefined;
    return ip.startsWith('::ffff:') && ip.includes('.') ? ip.slice('::ffff:'.length) : ip;
  }

  /** RFC 8446 §7.5 exporter of the current link to `peer`; undefined without an up link. */
  exportKeyingMaterial(
    peer: string,
    length: number,
    label: string,
    context?: Uint8Array,
  ): Uint8Array | undefined {
    const link = this.current.get(peer);
    if (link === undefined || link.state !== 'up') return undefined;
    return new Uint8Array(link.socket.exportKeyingMaterial(length, label, Buffer.from(context ?? [])));
  }

  /** Close every link (handler sees onPeerDown 'closed') and stop listening. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    const done: Promise<void>[] = [];
    for (const link of this.sockets) {
      done.push(
        new Promise((resolve) =>
          link.socket.destroyed ? resolve() : link.socket.once('close', () => resolve()),
        ),
      );
      this.closeLink(link, 'closed', 'transport closed', true);
    }
    const server = this.server;
    if (server !== undefined) done.push(new Promise((resolve) => server.close(() => resolve())));
    await Promise.all(done);
  }

  private accept(socket: tls.TLSSocket): void {
    if (this.closing) return void socket.destroy();
    const link = this.track(socket, false, remoteOf(socket));
    this.secured(link, undefined);
  }

  private track(socket: tls.TLSSocket, dialed: boolean, remote: string): Link {
    const link: Link = {
      socket,
      dialed,
      remote,
      deframer: new StreamDeframer(this.maxMessageBytes),
      state: 'handshake',
      peer: undefined,
      helloReceived: false,
      instance: undefined,
      lastHeard: Date.now(),
      timer: undefined,
      settle: undefined,
    };
    this.sockets.add(link);
    link.timer = setTimeout(
      () => this.closeLink(link, 'timeout', 'handshake timeout'),
      this.handshakeTimeoutMs,
    );
    link.timer.unref();
    socket.on('error', (err: NodeJS.ErrnoException) => {
      const tlsRefusal = /^(ERR_SSL_|ERR_TLS_CERT|UNABLE_TO_|CERT_|DEPTH_ZERO|SELF_SIGNED)/.test(
        err.code ?? '',
      );
      const reason: LinkDownReason = link.state === 'handshake' && tlsRefusal ? 'auth' : 'error';
      this.closeLink(link, reason, err.message);
    });
    socket.on('close', () => {
      // A peer that hangs up before its hello refused us (or died) during the link handshake.
      if (link.state === 'handshake') this.closeLink(link, 'auth', 'peer closed during link handshake');
      else this.closeLink(link, 'closed', 'peer closed');
      this.sockets.delete(link);
    });
    socket.on('timeout', () => this.closeLink(link, 'timeout', 'idle timeout'));
    return link;
  }

  /** TLS handshake done and chain verified: judge the identity, then say hello. */
  private secured(link: Link, expect: string | undefined): void {
    if (link.state !== 'handshake') return;
    const cert = link.socket.getPeerX509Certificate();
    if (!link.socket.authorized || cert === undefined) {
      return this.closeLink(
        link,
        'auth',
        `peer certificate not verified: ${String(link.socket.authorizationError)}`,
      );
    }
    let id: string | Error;
    try {
      id = this.identify(cert);
    } catch (err) {
      id = err instanceof Error ? err : new Error(String(err));
    }
    if (id instanceof Error) return this.closeLink(link, 'auth', id.message);
    if (id === this.local) return this.closeLink(link, 'auth', 'link to own identity');
    if (expect !== undefined && id !== expect)
      return this.closeLink(link, 'auth', `expected ${expect}, got ${id}`);
    link.peer = id;
    link.socket.write(frameForStream(this.hello, this.maxMessageBytes));
    link.socket.on('data', (chunk: Buffer) => this.received(link, chunk));
    if (!this.reading) link.socket.pause(); // a data listener set the socket flowing
  }

  private received(link: Link, chunk: Buffer): void {
    let frames: Uint8Array[];
    try {
      frames = link.deframer.push(chunk);
    } catch (err) {
      this.stats.badFrames++;
      return this.closeLink(link, 'bad-frame', (err as Error).message);
    }
    link.lastHeard = Date.now();
    for (const frame of frames) {
      if (link.state === 'closed') return;
      // A refusal ends the link, before the hello or (on a transport with an instance, whose
      // peer may have refused after its own hello left) right after it.
      if (
        (!link.helloReceived || this.opts.instance !== undefined) &&
        startsWith(frame, LINK_REFUSED_PREFIX)
      ) {
        const why = new TextDecoder().decode(
          frame.subarray(LINK_REFUSED_PREFIX.length, LINK_REFUSED_PREFIX.length + MAX_REFUSAL_TEXT_BYTES),
        );
        return this.closeLink(link, 'auth', `refused by peer: ${why.replace(/[^\x20-\x7e]/g, '?')}`);
      }
      if (!link.helloReceived) {
        const instance = helloInstance(frame);
        if (instance === undefined) {
          this.stats.badFrames++;
          return this.closeLink(link, 'bad-frame', 'first frame is not the link hello');
        }
        link.helloReceived = true;
        link.instance = instance === null ? undefined : Buffer.from(instance).toString('hex');
        this.up(link);
        continue;
      }
      this.handler.onMessage(link.peer!, frame);
    }
  }

  /** Closes `link` after telling its peer why (a LINK_REFUSED frame, then a graceful close). */
  private refuse(link: Link, detail: string): void {
    const text = new TextEncoder().encode(detail).subarray(0, MAX_REFUSAL_TEXT_BYTES);
    link.socket.write(frameForStream(concat(LINK_REFUSED_PREFIX, text), this.maxMessageBytes));
    this.closeLink(link, 'auth', detail, true);
  }

  private up(link: Link): void {
    const peer = link.peer!;
    clearTimeout(link.timer);
    link.timer = undefined;
    const existing = this.current.get(peer);
    if (
      existing !== undefined &&
      this.opts.instance !== undefined &&
      existing.instance !== undefined &&
      link.instance !== existing.instance &&
      Date.now() - existing.lastHeard < (this.opts.instanceLiveMs ?? 5000)
    ) {
      return this.refuse(
        link,
        `${DUPLICATE_IDENTITY}: ${peer} is already linked to another live process (instance ${existing.instance.slice(0, 8)}); this one (instance ${link.instance?.slice(0, 8) ?? 'none'}) is refused`,
      );
    }
    if (existing !== undefined && !this.prefer(link, existing)) {
      // An established link to this identity wins; the caller of connect() is still served.
      link.settle?.(undefined, peer);
      return this.closeLink(link, 'closed', 'duplicate link');
    }
    link.state = 'up';
    if (this.idleTimeoutMs > 0) link.socket.setTimeout(this.idleTimeoutMs);
    this.stats.linksUp++;
    if (existing !== undefined) {
      this.stats.replaced++;
      this.closeLink(existing, 'closed', 'replaced', true); // emits onPeerDown while still current
    }
    this.current.set(peer, link);
    link.settle?.(undefined, peer);
    this.handler.onPeerUp?.(peer);
  }

  /** Does `candidate` replace `existing` (both to the same identity)? See the module comment. */
  private prefer(candidate: Link, existing: Link): boolean {
    if (candidate.dialed === existing.dialed) return true;
    const weAreSmaller = this.local < candidate.peer!;
    return candidate.dialed === weAreSmaller;
  }

  private closeLink(link: Link, reason: LinkDownReason, detail: string, graceful = false): void {
    if (link.state === 'closed') return;
    const wasUp = link.state === 'up';
    link.state = 'closed';
    clearTimeout(link.timer);
    link.timer = undefined;
    if (graceful && !link.socket.destroyed) {
      link.socket.end();
      setTimeout(() => link.socket.destroy(), CLOSE_GRACE_MS).unref();
    } else {
      link.socket.destroy();
    }
    if (wasUp) {
      if (this.current.get(link.peer!) === link) {
        this.current.delete(link.peer!);
        this.handler.onPeerDown?.(link.peer!, reason, detail);
      }
      return;
    }
    if (link.settle !== undefined) return link.settle(new LinkError(reason, detail));
    if (!link.dialed && detail !== 'duplicate link') {
      this.stats.handshakeFailures++;
      this.opts.onHandshakeFailed?.(link.remote, reason, detail);
    }
  }
}

function remoteOf(socket: tls.TLSSocket): string {
  const host = socket.remoteAddress ?? '?';
  return `${host.includes(':') ? `[${host}]` : host}:${socket.remotePort ?? 0}`;
}

/** The process id in a link hello: null for a v1 hello, undefined when `frame` is no hello. */
function helloInstance(frame: Uint8Array): Uint8Array | null | undefined {
  if (bytesEqual(frame, LINK_HELLO)) return null;
  if (
    frame.length === LINK_HELLO_V2_PREFIX.length + INSTANCE_BYTES &&
    startsWith(frame, LINK_HELLO_V2_PREFIX)
  )
    return frame.subarray(LINK_HELLO_V2_PREFIX.length);
  return undefined;
}

function startsWith(a: Uint8Array, prefix: Uint8Array): boolean {
  return a.length >= prefix.length && bytesEqual(a.subarray(0, prefix.length), prefix);
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
