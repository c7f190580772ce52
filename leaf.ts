/**
 * `keyglass/leaf`: what a leaf application links, and nothing else. It loads the leaf SDK and the
 * rooms under it (crypto, wire, net, auth, keytree, gossip-edge); no server, CA, metrics library
 * or @peculiar/x509 with its global `Reflect` polyfill (test/package/pack.test.ts checks this).
 */
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
  ExportUnavailableError,
  EXPORT_LABEL_MAX_BYTES,
  EXPORT_CONTEXT_MAX_BYTES,
  EXPORT_MIN_BYTES,
  EXPORT_MAX_BYTES,
  type ExportedSecret,
  type ExportUnavailableReason,
} from './leaf-sdk/index.js';
