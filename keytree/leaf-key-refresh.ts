/**
 * Post-compromise recovery of a leaf's own key: the derivation both ends of a leaf's TLS
 * session compute, without sending the key.
 *
 * Whoever once read the tree (a core server later revoked, a stolen data directory) knows every
 * leaf's own key of that time and, from the rekey parts that travel in the clear, could follow
 * every later group key for as long as those leaves stay. So a leaf's own key is replaced, at
 * every new session and periodically, by
 *
 *   K' = HKDF-SHA256(ikm = TLS exporter of the leaf's current session (label below, 32 bytes),
 *                    salt = SHA-256(label ‖ group),
 *                    info = label ‖ u64 admittedEpoch ‖ u32 counter)
 *
 * The exporter is a secret of that session's two ends only (RFC 8446 §7.5): the old tree holder
 * does not know it, nor does any other core server. The linked server ships K' to its replicas
 * inside the total order (under the core key) as a `rekey-leaf` tree op; the leaf computes the
 * same K' and holds it as a pending own key (leaf.ts) until the batch that installs it.
 * `counter` (1, 2, … per session) makes each refresh of one session a new key; the admission
 * epoch binds it to one admission. HKDF is one-way, so a replica that learns K' learns nothing
 * of the exporter or of the session's other refreshes.
 */
import type { CipherSuite } from '../crypto/index.js';
import { KEY_BYTES } from '../crypto/index.js';

/** The RFC 5705/8446 exporter label both ends pass to `exportKeyingMaterial`. */
export const LEAF_KEY_EXPORTER_LABEL = 'EXPORTER-keyglass-leaf-key';
export const LEAF_KEY_EXPORTER_BYTES = 32;
const LABEL = new TextEncoder().encode('keyglass/keytree/leaf-key-refresh/v1');
/** Refreshes one session may order (a u32 in the derivation). */
export const MAX_REFRESH_COUNTER = 0xffffffff;

export interface LeafKeyRefreshContext {
  /** The leaf group id (the tree's group). */
  readonly group: Uint8Array;
  /** The epoch of the batch that admitted the leaf (its admission). */
  readonly admittedEpoch: number;
  /** 1, 2, … for the refreshes of one session. */
  readonly counter: number;
}

export function refreshedLeafKey(
  suite: CipherSuite,
  exporter: Uint8Array,
  ctx: LeafKeyRefreshContext,
): Uint8Array {
  if (exporter.length < LEAF_KEY_EXPORTER_BYTES)
    throw new RangeError(`TLS exporter must be ≥ ${LEAF_KEY_EXPORTER_BYTES} bytes`);
  if (!(Number.isSafeInteger(ctx.admittedEpoch) && ctx.admittedEpoch >= 0))
    throw new RangeError('admittedEpoch must be a non-negative integer');
  if (!(Number.isInteger(ctx.counter) && ctx.counter >= 1 && ctx.counter <= MAX_REFRESH_COUNTER))
    throw new RangeError('refresh counter must be 1..2^32−1');
  const salt = new Uint8Array(LABEL.length + ctx.group.length);
  salt.set(LABEL);
  salt.set(ctx.group, LABEL.length);
  const info = new Uint8Array(LABEL.length + 12);
  info.set(LABEL);
  const view = new DataView(info.buffer);
  view.setBigUint64(LABEL.length, BigInt(ctx.admittedEpoch));
  view.setUint32(LABEL.length + 8, ctx.counter);
  return suite.hkdf(exporter, suite.sha256(salt), info, KEY_BYTES);
}
