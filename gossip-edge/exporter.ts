/**
 * The key exporter: secrets an application derives from the leaf group key of one epoch, to
 * protect its own files, media or streams for exactly the members of that epoch.
 *
 *   exporterKey(E) = HKDF-SHA256(ikm = groupKey(E), salt = ∅, info = "keyglass exporter v1", 32)
 *   secret         = HKDF-SHA256(ikm = exporterKey(E), salt = ∅, info, L)
 *   info           = "keyglass export v1" ‖ u8 |group| ‖ group ‖ u64be E
 *                    ‖ u8 |label| ‖ label ‖ u16be |context| ‖ context ‖ u16be L
 *
 * Every field is length-prefixed (or fixed-size), so no two (group, epoch, label, context, L)
 * give the same info; L is bound so a shorter export is not a prefix of a longer one. The first
 * stage separates exported secrets from the data key (info "keyglass data" ‖ u64be E) and lets
 * the keyring keep a retired epoch's exporter key instead of its group key, which would also
 * open LKH wraps.
 *
 * Bounds (RangeError otherwise): label 1..64 bytes of printable ASCII (a name, compared byte for
 * byte: ASCII has one spelling per name, Unicode would not); context ≤ 512 bytes (an id or a
 * hash: hash anything longer); L within 16..1024 (below 16 bytes is no key; above, derive a
 * key and expand it with a cipher or KDF of your own). The info stays well under the suite's
 * HKDF info bound.
 */
import { HKDF_MAX_INFO_BYTES, KEY_BYTES, concatBytes, type CipherSuite } from '../crypto/index.js';
import type { DataKeyring } from './data-envelope.js';

export const EXPORT_LABEL_MAX_BYTES = 64;
export const EXPORT_CONTEXT_MAX_BYTES = 512;
export const EXPORT_MIN_BYTES = 16;
export const EXPORT_MAX_BYTES = 1024;
/** Group ids as LKH headers bound them (keytree MAX_GROUP_BYTES). */
const GROUP_MAX_BYTES = 64;

const utf8 = new TextEncoder();
const EXPORTER_KEY_INFO = utf8.encode('keyglass exporter v1');
const EXPORT_INFO_LABEL = utf8.encode('keyglass export v1');
const EMPTY = new Uint8Array(0);

/** What an exported secret is bound to besides its label and context. */
export interface ExportScope {
  /** The group id (the bytes LKH headers and welcomes carry). */
  readonly group: Uint8Array;
  readonly epoch: number;
}

export interface ExportedSecret {
  /** The epoch whose group key the secret comes from: every member of that epoch can derive it. */
  readonly epoch: number;
  /** A fresh buffer the caller owns (wipe it when done). */
  readonly secret: Uint8Array;
}

export type ExportUnavailableReason =
  /** No group key held: not connected yet, evicted or closed. */
  | 'no-key'
  /** The epoch precedes our admission: its key was never ours (backward secrecy). */
  | 'before-admission'
  /** The epoch is newer than the newest key we hold. */
  | 'not-yet'
  /** Retired beyond the keyring's window (previousEpochs, retiredEpochGraceMs): forgotten. */
  | 'retired';

/** The key of the epoch asked for is not held (reason says why). */
export class ExportUnavailableError extends Error {
  override readonly name = 'ExportUnavailableError';
  constructor(
    readonly reason: ExportUnavailableReason,
    readonly epoch: number | undefined,
  ) {
    super(`${reason}: no exportable group key${epoch === undefined ? '' : ` for epoch ${epoch}`}`);
  }
}

/** First stage: the epoch's exporter key (the keyring keeps it beside the data key). */
export function deriveExporterKey(suite: CipherSuite, groupKey: Uint8Array): Uint8Array {
  return suite.hkdf(groupKey, EMPTY, EXPORTER_KEY_INFO, KEY_BYTES);
}

/** The second stage's info, after checking every bound (RangeError names the one broken). */
export function exportInfo(
  scope: ExportScope,
  label: string,
  context: Uint8Array,
  length: number,
): Uint8Array {
  if (!(scope.group instanceof Uint8Array) || scope.group.length < 1 || scope.group.length > GROUP_MAX_BYTES)
    throw new RangeError(`export: group id must be 1..${GROUP_MAX_BYTES} bytes`);
  if (!(Number.isSafeInteger(scope.epoch) && scope.epoch >= 0))
    throw new RangeError(`export: bad epoch ${scope.epoch}`);
  if (typeof label !== 'string' || !/^[\x20-\x7e]+$/.test(label) || label.length > EXPORT_LABEL_MAX_BYTES)
    throw new RangeError(`export: label must be 1..${EXPORT_LABEL_MAX_BYTES} printable ASCII characters`);
  if (!(context instanceof Uint8Array) || context.length > EXPORT_CONTEXT_MAX_BYTES)
    throw new RangeError(`export: context must be a Uint8Array of at most ${EXPORT_CONTEXT_MAX_BYTES} bytes`);
  if (!(Number.isInteger(length) && length >= EXPORT_MIN_BYTES && length <= EXPORT_MAX_BYTES))
    throw new RangeError(`export: length must be within ${EXPORT_MIN_BYTES}..${EXPORT_MAX_BYTES}`);
  const fixed = new Uint8Array(8);
  new DataView(fixed.buffer).setBigUint64(0, BigInt(scope.epoch));
  const info = concatBytes(
    EXPORT_INFO_LABEL,
    Uint8Array.of(scope.group.length),
    scope.group,
    fixed,
    Uint8Array.of(label.length),
    utf8.encode(label), // ASCII: one byte per character
    u16be(context.length),
    context,
    u16be(length),
  );
  if (info.length > HKDF_MAX_INFO_BYTES)
    throw new Error(`export: info of ${info.length} bytes (bounds broken)`);
  return info;
}

/** The second stage from an epoch's exporter key. */
export function expandExporterKey(
  suite: CipherSuite,
  exporterKey: Uint8Array,
  scope: ExportScope,
  label: string,
  context: Uint8Array,
  length: number,
): Uint8Array {
  return suite.hkdf(exporterKey, EMPTY, exportInfo(scope, label, context, length), length);
}

/** The whole derivation from an epoch's group key (what any member of the epoch can compute). */
export function exportGroupSecret(
  suite: CipherSuite,
  groupKey: Uint8Array,
  scope: ExportScope,
  label: string,
  context: Uint8Array,
  length: number,
): Uint8Array {
  exportInfo(scope, label, context, length); // misuse fails before any key is derived
  const exporterKey = deriveExporterKey(suite, groupKey);
  try {
    return expandExporterKey(suite, exporterKey, scope, label, context, length);
  } finally {
    exporterKey.fill(0);
  }
}

/**
 * Exports from the keys a member holds: `epoch` undefined means the newest. The same window as
 * reading data applies (DataKeyring.exporterKey): a newest key retired beyond the grace window
 * is refused too, as publishing under it is (a member evicted since holds it).
 */
export function exportFromKeyring(
  suite: CipherSuite,
  keyring: DataKeyring | undefined,
  held: { readonly group: Uint8Array | undefined; readonly admittedEpoch: number | undefined },
  epoch: number | undefined,
  label: string,
  context: Uint8Array,
  length: number,
): ExportedSecret {
  if (epoch !== undefined && !(Number.isSafeInteger(epoch) && epoch >= 0))
    throw new RangeError(`export: bad epoch ${epoch}`);
  const newest = keyring?.current;
  if (keyring === undefined || newest === undefined || held.group === undefined)
    throw new ExportUnavailableError('no-key', epoch);
  const at = epoch ?? newest;
  exportInfo({ group: held.group, epoch: at }, label, context, length); // misuse first: it is never transient
  if (held.admittedEpoch !== undefined && at < held.admittedEpoch)
    throw new ExportUnavailableError('before-admission', at);
  if (at > newest) throw new ExportUnavailableError('not-yet', at);
  const exporterKey = keyring.exporterKey(at);
  if (exporterKey === undefined) throw new ExportUnavailableError('retired', at);
  return {
    epoch: at,
    secret: expandExporterKey(suite, exporterKey, { group: held.group, epoch: at }, label, context, length),
  };
}

function u16be(n: number): Uint8Array {
  return Uint8Array.of(n >>> 8, n & 0xff);
}
