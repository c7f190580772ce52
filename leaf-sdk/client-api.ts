/**
 * The public face of LeafClient as the README documents it: connect and client options, events,
 * the connect error. (The protocol's errors and counters are LeafSession's: session-types.ts.)
 */
import type { LeafSessionOptions } from './session.js';
import type { CipherSuite } from '../crypto/index.js';
import type { Credentials } from '../auth/index.js';
import type { EvictionReason, GossipLinkOptions, PublishResult } from '../gossip-edge/index.js';

export interface LeafServerAddress {
  readonly host: string;
  readonly port: number;
}

export interface LeafConnectOptions {
  /** Core servers to try, in order (a failed one passes to the next). */
  readonly servers: readonly LeafServerAddress[];
  /** PEM certificate chain + private key (optionally encrypted), or already loaded credentials. */
  readonly credentials: { certPem: string; keyPem: string; passphrase?: string } | Credentials;
  /**
   * Trust anchors (the Keyglass CA) and optional intermediates; `group` defaults to ours.
   * `crlPem`: the CA's CRL(s) to start from (core servers it revokes are refused); newer ones
   * arrive in band from the servers, or by `updateCrl`.
   */
  readonly trust: { caPem: string; intermediatesPem?: string; group?: string; crlPem?: string };
}

/**
 * LeafClient's options: the session's (LeafSessionOptions: welcome timeout, retired epochs and
 * their grace, publish window, signing, sender keys, requireFreshCrl — one list, documented
 * there) and the host's own.
 */
export interface LeafClientOptions extends Omit<LeafSessionOptions, 'suite' | 'stats'> {
  /** Cipher suite (default: `await loadSuite()`). */
  readonly suite?: CipherSuite;
  /** Connection attempts per (re)connect, across servers (default 8). */
  readonly maxAttempts?: number;
  /** Backoff between attempts: base·2^k capped at max, times a jitter in [0.5, 1) (defaults 100 ms, 5 s). */
  readonly backoffBaseMs?: number;
  readonly backoffMaxMs?: number;
  readonly handshakeTimeoutMs?: number;
  /** Randomness for jitter (default Math.random). */
  readonly random?: () => number;
  /** UDP gossip tier (default: on, bound to 127.0.0.1, ephemeral port); false: TLS only. */
  readonly gossip?: GossipLinkOptions | false;
}

export interface LeafClientEvents {
  key: [{ epoch: number; keyId: string }];
  message: [{ sender: number; seq: number; epoch: number; data: Uint8Array }];
  evicted: [{ reason: EvictionReason }];
  error: [Error];
  /** A link to a core server came up and we were welcomed or resumed. */
  connected: [{ server: string }];
  /** The server refused publish `seq` (the envelope's sequence number); it reached nobody. */
  refused: [{ seq: number; reason: Exclude<PublishResult, 'accepted'> }];
  /** `publish` returned false (window full) and the window has room again. */
  drain: [];
}

/** Every server failed for this (re)connect. */
export class LeafConnectError extends Error {
  override readonly name = 'LeafConnectError';
  constructor(
    message: string,
    readonly attempts: readonly string[],
  ) {
    super(message);
  }
}
