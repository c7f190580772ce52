/**
 * LeafClient's options (client-api.ts LeafClientOptions) checked and split by who uses them: the
 * session's pass through as they are (one list: LeafSessionOptions, whose defaults are its own),
 * the dialing ones go to ServerLink with the host's defaults, the gossip socket's to GossipHost.
 * Checked at construction, so a bad option fails before anything is linked.
 */
import type { CipherSuite } from '../crypto/index.js';
import type { GossipLinkOptions } from '../gossip-edge/index.js';
import { checkPublishWindow, type LeafSessionOptions } from './session.js';
import type { LeafClientOptions } from './client-api.js';
import type { ServerLinkOptions } from './server-link.js';

export interface ClientOptions {
  /** The session's options, but its suite and counters (the client supplies them). */
  readonly session: Omit<LeafSessionOptions, 'suite' | 'stats'>;
  readonly dial: Omit<ServerLinkOptions, 'servers'>;
  /** Given, or loaded at the first connect. */
  readonly suite: CipherSuite | undefined;
  readonly gossip: GossipLinkOptions | false;
  /** How long `close` waits for a failover or a link to leave over, by default. */
  readonly leaveWaitMs: number;
}

export function clientOptions(options: LeafClientOptions): ClientOptions {
  const {
    suite,
    maxAttempts = 8,
    backoffBaseMs = 100,
    backoffMaxMs = 5000,
    handshakeTimeoutMs = 10_000,
    random,
    gossip = {},
    ...session
  } = options;
  if (!(maxAttempts >= 1 && maxAttempts <= 1000)) throw new RangeError('maxAttempts 1..1000');
  if (session.publishWindow !== undefined) checkPublishWindow(session.publishWindow);
  return {
    session,
    dial: {
      maxAttempts,
      backoffBaseMs,
      backoffMaxMs,
      handshakeTimeoutMs,
      ...(random !== undefined ? { random } : {}),
    },
    suite,
    gossip,
    leaveWaitMs: session.welcomeTimeoutMs ?? 10_000,
  };
}
