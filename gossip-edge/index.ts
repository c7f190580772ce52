/** gossip-edge/ — peer sampling, bimodal multicast, rekey routing by subtree (sans-IO), and the UDP hosts of both halves. */
export * from './ids.js';
export { DEFAULT_GOSSIP_CONFIG, LIMITS, gossipConfig, type GossipConfig } from './config.js';
export {
  GOSSIP_KINDS,
  MAC_BYTES,
  WHOLE_GROUP_END,
  emptyPushBytes,
  itemBytes,
  pushChunkEnd,
  pushChunks,
  pushFits,
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
  envelopeCore,
  frameOf,
  macInput,
  macInputOfFrame,
} from './codec.js';
export { MacAuthenticator, ModelAuthenticator, macKeyInfo, type Authenticator } from './auth.js';
export { GossipCounters, DROP_REASONS, SEND_HISTOGRAM_MAX, type DropReason } from './counters.js';
export { GossipStore } from './store.js';
export { PeerSampling, subtreeOf } from './peer-sampling.js';
export { FifoDelivery } from './fifo.js';
export { EarlyEnvelopes, EARLY_EPOCHS, MAX_EARLY } from './early.js';
export { GossipNode, type AdmitVerdict, type CorePull, type GossipHost } from './node.js';
export type { RandomSource } from './random.js';
export {
  routeEpochParts,
  epochPartItem,
  entryFanout,
  pick,
  lowerBound,
  type EpochRoute,
  type SignedEpochParts,
} from './relay.js';
export {
  AddressBook,
  AddressClaims,
  CLAIM_PERIODS,
  MAX_CLAIM_CHECKS,
  DEFAULT_ADDRESS_BOOK_SIZE,
  type AddressSource,
  type ClaimStats,
  type ProbeOut,
} from './address-book.js';
export {
  PROBE_FRAME_TYPE,
  PROBE_NONCE_BYTES,
  MAX_PROBE_FRAME_BYTES,
  ProbeFrames,
  encodeAddrProbe,
  openAddrProbe,
  type AddrProbe,
} from './addr-probe.js';
export {
  ADDR_FRAME_TYPE,
  AddrFrames,
  MAX_ADDR_FRAME_BYTES,
  PeerEndpoint,
  encodeAddrHints,
  openAddrHints,
  type AddrHints,
} from './addr-hints.js';
export {
  rekeyItem,
  partScope,
  rekeyItemBound,
  itemLabelsAgree,
  farAhead,
  openRekeyItem,
  streamItem,
  signedStreamItem,
  signStreamEntry,
  openStreamItem,
  judgeStreamItem,
  admitGossipItem,
  type ItemAdmissionHost,
  type StreamSigner,
  type OpenedStreamItem,
  type StreamItemVerdict,
} from './gossip-items.js';
export {
  GossipLink,
  DEFAULT_GOSSIP_DATAGRAM_BYTES,
  DEFAULT_GOSSIP_ROUND_MS,
  DEFAULT_IDLE_ROUND_EVERY,
  type GossipLinkOptions,
  type GossipLinkHandler,
  type GossipLinkStats,
} from './gossip-link.js';
export {
  LeafFrames,
  encodeLeafFrame,
  decodeLeafFrame,
  JoinRequest,
  WelcomeFrame,
  RekeyPush,
  SignerKey,
  DataFrame,
  CatchUpRequest,
  CatchUpReply,
  GossipHello,
  LeaveRequest,
  LeafKeyRefresh,
  GossipSeed,
  DataStream,
  DataPull,
  DataPullReply,
  StreamEntry,
  MAX_ENTRY_ENVELOPES,
  streamEntryBytes,
  MAX_STREAM_ENTRY_BYTES,
  streamSignedBytes,
  MAX_PULL_ITEMS,
  MAX_PULL_REPLY_BYTES,
  LeafError,
  EVICTION_REASONS,
  LEAF_ERROR_CODES,
  PUBLISH_RESULTS,
  MAX_LEAF_FRAME_BYTES,
  MAX_ENVELOPE_BYTES,
  MAX_WELCOME_BYTES,
  MAX_HEADER_BYTES,
  MAX_PART_BYTES,
  MAX_PARTS_PER_PUSH,
  MAX_CATCH_UP_EPOCHS,
  MAX_SIGNERS,
  CrlUpdate,
  MAX_IN_BAND_CRLS,
  MAX_IN_BAND_CRL_BYTES,
  MAX_SERIAL_CHARS,
  type LeafFrame,
  type LeafFrameType,
  type LeafFrameBody,
  type EvictionReason,
  type LeafErrorCode,
  type PublishResult,
} from './leaf-protocol.js';
export {
  DataKeyring,
  DataSealer,
  DataOpener,
  DataEnvelopeError,
  RetiredKeyError,
  ReplayWindow,
  ReplayGuard,
  deriveDataKey,
  dataKeyInfo,
  encodeDataEnvelope,
  decodeDataEnvelope,
  DATA_ENVELOPE_VERSION,
  DATA_ERROR_REASONS,
  FLAG_SIGNED,
  MAX_DATA_BYTES,
  MAX_SENDER_ID,
  DEFAULT_PREVIOUS_EPOCHS,
  DEFAULT_RETIRED_GRACE_MS,
  DEFAULT_REPLAY_WINDOW,
  DEFAULT_MAX_SENDERS,
  type DataErrorReason,
  type DataEnvelope,
  type DataEnvelopeHeader,
  type OpenedData,
  type SealerOptions,
  type OpenerOptions,
  type KeyringOptions,
} from './data-envelope.js';
export {
  RequestLimiter,
  TokenBucket,
  DEFAULT_CATCH_UP_BYTES_PER_SEC,
  DEFAULT_LEAF_REQUEST_LIMITS,
  MAX_LIMITED_LEAVES,
  type RequestLimits,
  type RequestVerdict,
} from './request-limiter.js';
export { EdgeRelay, type GossipTarget, type RelayOptions, type RelayStats } from './gossip-relay.js';
export { isRekeyId } from './ids.js';
export { VerifiedHeaders } from './verified-headers.js';
export { DEFAULT_HISTORY_BYTES } from './data-history.js';
export { DEFAULT_HISTORY_ITEMS } from './data-history.js';
export { DEFAULT_PULL_BYTES_PER_SEC } from './gossip-relay.js';
