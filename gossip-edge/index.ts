/** gossip-edge/ — peer sampling, bimodal multicast, rekey routing by subtree, leases (sans-IO). */
export * from './ids.js';
export { DEFAULT_GOSSIP_CONFIG, LIMITS, gossipConfig, type GossipConfig } from './config.js';
export {
  GOSSIP_KINDS,
  MAC_BYTES,
  WHOLE_GROUP_END,
  itemBytes,
  wireBytes,
  type Envelope,
  type GossipBody,
  type GossipKind,
  type Item,
  type MacTag,
} from './messages.js';
export {
  GOSSIP_FRAME_TYPE,
  GossipFrames,
  MAX_GOSSIP_FRAME_BYTES,
  authenticatedBytes,
  decodeEnvelope,
  encodeEnvelope,
} from './codec.js';
export { MacAuthenticator, ModelAuthenticator, macKeyInfo, type Authenticator } from './auth.js';
export { GossipCounters, DROP_REASONS, SEND_HISTOGRAM_MAX, type DropReason } from './counters.js';
export { GossipStore } from './store.js';
export { PeerSampling, subtreeOf } from './peer-sampling.js';
export { FifoDelivery } from './fifo.js';
export { GossipNode, type GossipHost } from './node.js';
export type { RandomSource } from './random.js';
export { routeRekeyParts, lowerBound, type RekeyPartSource } from './relay.js';
export { LeaseClient, LeaseTable } from './lease.js';
