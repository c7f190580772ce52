/**
 * leaf-sdk/ — what a leaf application links: `LeafClient`, the host of the leaf side of the leaf
 * protocol, and `LeafSession`, that protocol as a sans-IO machine (what simulations host).
 */
export { LeafClient } from './leaf-client.js';
export { GossipLink } from './gossip-socket.js';
export {
  LeafConnectError,
  type LeafClientOptions,
  type LeafConnectOptions,
  type LeafClientEvents,
  type LeafServerAddress,
} from './client-api.js';
export {
  LeafSession,
  LeafProtocolError,
  LeafEvictedError,
  DEFAULT_PUBLISH_WINDOW,
  CATCH_UP_RETRY_MS,
  newLeafStats,
  type LeafClientStats,
  type LeafSessionOptions,
  type LeafSessionEvent,
  type LeafSessionEffect,
  type LeafLinkInfo,
  type LeafTimer,
  type GossipCommand,
} from './session.js';
export {
  ExportUnavailableError,
  EXPORT_LABEL_MAX_BYTES,
  EXPORT_CONTEXT_MAX_BYTES,
  EXPORT_MIN_BYTES,
  EXPORT_MAX_BYTES,
  type ExportedSecret,
  type ExportUnavailableReason,
} from '../gossip-edge/index.js';
