/** keytree/ — the LKH leaf key tree: batch rekey, rekey messages and parts, leaf-side processing. */
export { KeytreeError, type KeytreeErrorCode, type MissingItem } from './errors.js';
export { MIN_ARITY, MAX_ARITY, MAX_HEIGHT, minHeight, maxHeight, span } from './geometry.js';
export { derivedKeySource, randomKeySource, type KeySource } from './key-source.js';
export {
  FORMAT_VERSION,
  WRAPPED_BYTES,
  MAX_REKEY_BYTES,
  signedBytes,
  encodeHeader,
  decodeHeader,
  encodeBody,
  encodeRekey,
  decodeRekey,
  encodePart,
  decodePart,
  encodeWelcome,
  decodeWelcome,
  type EpochHeader,
  type NodeRecord,
  type ChildWrap,
  type Move,
  type RekeyBody,
  type RekeyMessage,
  type PathWrap,
  type RekeyPart,
  type VersionedKey,
  type Welcome,
} from './messages.js';
export { encodeOps, decodeOps, MAX_BATCH_OPS, type TreeOp } from './ops.js';
export { RekeySplit, type SplitContext } from './split.js';
export {
  LeafKeyTree,
  TreeOpError,
  type BatchResult,
  type Joined,
  type Departed,
  type TreeOptions,
} from './tree.js';
export { LeafKeys, MAX_PENDING_OWN_KEYS, verifyPartProof } from './leaf.js';
export {
  LEAF_KEY_EXPORTER_LABEL,
  LEAF_KEY_EXPORTER_BYTES,
  MAX_REFRESH_COUNTER,
  refreshedLeafKey,
  type LeafKeyRefreshContext,
} from './leaf-key-refresh.js';
export { encodeSnapshot, decodeSnapshot, MAX_SNAPSHOT_BYTES } from './snapshot.js';
export {
  SecrecyChecker,
  keyId,
  treeKeys,
  type Compromise,
  type EpochRecord,
  type MemberSpan,
  type SecrecyViolation,
} from './secrecy.js';
export * from './core-tree/index.js';
