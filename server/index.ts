/**
 * server/ — the core key server assembly (`keyglass server`): configuration, the
 * process (KeyServer), its leaf edge, metrics, admin endpoint and logs.
 */
export {
  ConfigError,
  loadServerConfig,
  parseServerConfig,
  parseHostPort,
  DEFAULT_BATCH_INTERVAL_MS,
  DEFAULT_SERVER_LEASE_MS,
  MAX_CORE_SERVERS,
  MAX_GENERATION,
  INCARNATIONS_PER_GENERATION,
  SERVER_CONFIG_FIELDS,
  LISTEN_FIELDS,
  CREDENTIALS_FIELDS,
  type HostPort,
  type ServerConfig,
} from './config.js';
export { KeyServer } from './key-server.js';
export type { ServerStatus } from './status.js';
export { ServerStartError, IncarnationRecord, signingSeedOf } from './boot.js';
export { PrimaryRecord } from './primary-record.js';
export { FileStorage } from './file-storage.js';
// The leaf plane's server half moved to leaf-plane/ (sans-IO); re-exported for existing users.
export {
  LeafEdge,
  RETIRED_PUBLISH_GRACE_MS,
  type LeafEdgeDeps,
  type InBandCrls,
} from '../leaf-plane/index.js';
export {
  RequestLimiter,
  TokenBucket,
  DEFAULT_CATCH_UP_BYTES_PER_SEC,
  DEFAULT_LEAF_REQUEST_LIMITS,
  MAX_LIMITED_LEAVES,
  type RequestLimits,
  type RequestVerdict,
} from '../gossip-edge/index.js';
export {
  MAX_LEAF_LINKS,
  leafLinkRefusal,
  nextLeafPortCrl,
  type LeafCert,
  type LeafLinkInfo,
  type LeafPortCrl,
} from './leaf-port.js';
export { EdgeRelay } from './edge-relay-socket.js';
export {
  EdgeRelayMachine,
  type GossipTarget,
  type RelayOptions,
  type RelayStats,
  type SignedEpochParts,
} from '../gossip-edge/index.js';
export {
  parseGossipConfig,
  DEFAULT_RELAY_FANOUT,
  GOSSIP_CONFIG_FIELDS,
  type GossipRelayConfig,
} from './gossip-config.js';
export { ServerMetrics, type ExpiringCertificate, type InstalledCrl } from './metrics.js';
export { auditBatch, auditEventOf, AUDIT_MSG, type AuditEvent } from '../leaf-plane/index.js';
export { AdminServer } from './admin.js';
export { PortRefusals } from './refusals.js';
export { jsonLogger, LOG_LEVELS, type Logger, type LogLevel, type LogFields } from './log.js';
export {
  CoreMessage,
  encodeCoreMessage,
  decodeCoreMessage,
  MAX_RELAYED_ENVELOPE_BYTES,
  CommandOutbox,
  type CommandOutboxDeps,
} from '../leaf-plane/index.js';
export {
  Readiness,
  NOT_PRIMARY_WARN_AFTER_MS,
  type NotReadyReason,
  type ReadinessReport,
} from './readiness.js';
export { packageVersion } from './version.js';
export { GuardedEvents } from './guarded-events.js';
export { CrlWatch, type CrlWatchOptions } from './crl-watch.js';
