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
