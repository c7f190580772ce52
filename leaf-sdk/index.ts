/** leaf-sdk/ — what a leaf application links: `LeafClient`, the host of the leaf side of the leaf protocol. */
export {
  LeafClient,
  LeafProtocolError,
  LeafConnectError,
  LeafEvictedError,
  DEFAULT_PUBLISH_WINDOW,
  type LeafClientOptions,
  type LeafConnectOptions,
  type LeafClientEvents,
  type LeafClientStats,
  type LeafServerAddress,
} from './leaf-client.js';
export {
  ExportUnavailableError,
  EXPORT_LABEL_MAX_BYTES,
  EXPORT_CONTEXT_MAX_BYTES,
  EXPORT_MIN_BYTES,
  EXPORT_MAX_BYTES,
  type ExportedSecret,
  type ExportUnavailableReason,
} from '../gossip-edge/index.js';
