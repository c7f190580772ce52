/**
 * leaf-plane/ — the leaf plane of a core key server that does not depend on the
 * virtual-synchrony internals: the replicated leaf state machine (registry + LKH tree +
 * revocations), its durable store (over a Storage: files for a server, memory for the simulator),
 * and the signed rekey history that serves leaves.
 */
export {
  LeafCommand,
  encodeCommand,
  decodeCommand,
  MAX_COMMAND_BYTES,
  MAX_NAME_BYTES,
  MAX_SERIAL_BYTES,
  MAX_RENEWALS_PER_COMMAND,
  MAX_REFRESHES_PER_COMMAND,
  type LeafCommandKind,
} from './commands.js';
export {
  LeafStateMachine,
  NotPrimaryError,
  leafTreeSecret,
  DEFAULT_LEASE_MS,
  DEFAULT_MAX_LEAVES,
  DEFAULT_MAX_REVOKED,
  DEFAULT_MAX_JOINS_PER_BATCH,
  DEFAULT_MAX_REKEYS_PER_BATCH,
  type LeafStateOptions,
  type AdmittedLeaf,
  type BatchOutput,
  type ApplyResult,
  type Refusal,
} from './machine.js';
export {
  DEPARTURE_REASONS,
  MAX_LEAVES_CAP,
  type DepartureReason,
  type LeafEntry,
  type PendingDeparture,
} from './types.js';
export { LEAF_STATE_SNAPSHOT_VERSION, MAX_LEAF_STATE_SNAPSHOT_BYTES } from './snapshot.js';
export { RekeyHistory, signBatch, DEFAULT_HISTORY_EPOCHS, DEFAULT_HISTORY_BYTES } from './history.js';
export {
  LeafStore,
  StoreError,
  isStoreFailure,
  DEFAULT_COMPACT_EVERY,
  MAX_UNSYNCED_COMMANDS,
  type StoreOptions,
  type StoreStats,
  type OpenReport,
} from './store.js';
export {
  StorageError,
  type Storage,
  type AppendFile,
  type FileInfo,
  type StorageErrorCode,
} from './storage.js';
export {
  CoreMessage,
  encodeCoreMessage,
  decodeCoreMessage,
  MAX_CORE_MESSAGE_BYTES,
  MAX_RELAYED_ENVELOPE_BYTES,
  MAX_COMMANDS_PER_MESSAGE,
} from './core-messages.js';
export { CommandOutbox, type CommandOutboxDeps } from './command-outbox.js';
export {
  LeafEdge,
  MIN_PULL_INTERVAL_MS,
  RETIRED_PUBLISH_GRACE_MS,
  type EdgeTimer,
  type InBandCrls,
  type LeafCert,
  type LeafEdgeDeps,
  type LeafLinks,
  type RefreshCause,
} from './edge.js';
export {
  ServerPlane,
  LEASE_SWEEP_MS,
  MAX_OUTBOX_COMMANDS,
  type PlaneHost,
  type PlaneRecord,
  type PlaneStore,
  type PlaneTimer,
  type ServerPlaneOptions,
} from './server-plane.js';
export type { EdgeMetrics, PlaneLog, PlaneLogFields, PlaneMetrics, RelayCounters } from './observe.js';
export { auditBatch, auditEventOf, AUDIT_MSG, type AuditEvent } from './audit.js';
