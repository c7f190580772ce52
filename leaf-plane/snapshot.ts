/**
 * Snapshot of the leaf state machine, for state transfer between replicas and for the durable
 * store. It holds every tree key and the key-derivation secret: it is confidential, travels only
 * inside the core under the core key, and rests only encrypted (store.ts).
 *
 *   u8 version(=3) ‖ varuint now ‖ varuint nextMemberId ‖ varuint secretGeneration ‖ fixed32 secret
 *   ‖ list(entries, sorted by name)  entry = string name ‖ string serial ‖ fixed32 fingerprint
 *                                            ‖ varuint memberId ‖ varuint slot + 1 (0: pending)
 *                                            ‖ varuint admittedEpoch + 1 ‖ varuint leaseUntil
 *                                            ‖ u8 flags (v2; bit 0: exposed)
 *   ‖ list(pending joins, in queue order) string name
 *   ‖ list(pending departures, sorted by slot) string name ‖ varuint memberId ‖ varuint slot ‖ u8 reason
 *                                              ‖ string serial (v3)
 *   ‖ list(revoked serials, oldest first) string serial
 *   ‖ bytes keytree snapshot (keytree/snapshot.ts; it carries group, arity and epoch)
 *   v2 and later:
 *   ‖ list(pending own-key refreshes, sorted by name) string name ‖ fixed32 key
 *   ‖ option(full refresh) varuint deadline ‖ varuint epoch
 *   ‖ list(revoked core serials, oldest first) string serial
 *
 * Version 1 (before post-compromise recovery) still restores: no refresh state, nobody exposed.
 * Version 2 (before the audit trail) still restores: its pending departures have no serial ('').
 *
 * Canonical: equal states give equal bytes on every replica (tests compare replicas this way).
 * Decoding checks every cross-reference (restore runs the full invariant check) and throws
 * DecodeError on malformed input.
 */
import { KEY_BYTES } from '../crypto/index.js';
import { DecodeError, Reader, Writer } from '../wire/index.js';
import { MAX_SNAPSHOT_BYTES, decodeSnapshot, encodeSnapshot } from '../keytree/index.js';
import { MAX_NAME_BYTES, MAX_SERIAL_BYTES } from './commands.js';
import { LeaseBook } from './lease-book.js';
import type { TreeOptions } from '../keytree/index.js';
import {
  DEPARTURE_REASONS,
  MAX_LEAVES_CAP,
  MAX_CORE_REVOKED,
  type LeafEntry,
  type LeafStateParts,
  type PendingDeparture,
} from './types.js';

export const LEAF_STATE_SNAPSHOT_VERSION = 3;
export const MAX_LEAF_STATE_SNAPSHOT_BYTES = MAX_SNAPSHOT_BYTES;

export function encodeLeafState(s: Readonly<LeafStateParts>): Uint8Array {
  const tree = encodeSnapshot(s.tree);
  const w = new Writer(MAX_LEAF_STATE_SNAPSHOT_BYTES, tree.length + 128 + s.entries.size * 96);
  w.u8(LEAF_STATE_SNAPSHOT_VERSION)
    .varuint(s.now)
    .varuint(s.nextMemberId)
    .varuint(s.secretGeneration)
    .fixed(s.secret.subarray(0, KEY_BYTES), KEY_BYTES);
  const entries = [...s.entries.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  w.list(entries, MAX_LEAVES_CAP, (w, e) => {
    w.string(e.name, MAX_NAME_BYTES).string(e.serial, MAX_SERIAL_BYTES).fixed(e.fingerprint, 32);
    w.varuint(e.memberId)
      .varuint(e.slot + 1)
      .varuint(e.admittedEpoch + 1)
      .varuint(s.leases.get(e.name)!)
      .u8(e.exposed ? 1 : 0);
  });
  w.list(s.pendingJoins, MAX_LEAVES_CAP, (w, n) => w.string(n, MAX_NAME_BYTES));
  const departures = [...s.pendingDepartures].sort((a, b) => a.slot - b.slot);
  w.list(departures, MAX_LEAVES_CAP, (w, d) => {
    w.string(d.name, MAX_NAME_BYTES)
      .varuint(d.memberId)
      .varuint(d.slot)
      .u8(DEPARTURE_REASONS.indexOf(d.reason))
      .string(d.serial, MAX_SERIAL_BYTES);
  });
  w.list([...s.revoked], MAX_LEAVES_CAP, (w, serial) => w.string(serial, MAX_SERIAL_BYTES));
  w.bytes(tree, MAX_SNAPSHOT_BYTES);
  const rekeys = [...s.pendingRekeys].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  w.list(rekeys, MAX_LEAVES_CAP, (w, [name, key]) => w.string(name, MAX_NAME_BYTES).fixed(key, KEY_BYTES));
  w.option(s.fullRefresh, (w, f) => w.varuint(f.deadline).varuint(f.epoch));
  w.list(s.coreRevoked, MAX_CORE_REVOKED, (w, serial) => w.string(serial, MAX_SERIAL_BYTES));
  return w.finish();
}

/**
 * Decodes a snapshot of the group and arity `treeOptions` names (given the snapshot's secret).
 * Throws DecodeError on bad bytes, or an invariant error when the bytes decode but contradict
 * themselves. The machine installs the parts (machine.ts `restore`): this module knows the
 * state's shape, not the machine.
 */
export function decodeLeafState(
  bytes: Uint8Array,
  treeOptions: (secret: Uint8Array) => TreeOptions,
): LeafStateParts {
  if (bytes.length > MAX_LEAF_STATE_SNAPSHOT_BYTES)
    throw new DecodeError('too-large', `${bytes.length} bytes`);
  const r = new Reader(bytes);
  const version = r.u8();
  if (version < 1 || version > LEAF_STATE_SNAPSHOT_VERSION)
    throw new DecodeError('bad-version', `leaf state snapshot ${version}`);
  const now = r.varuint();
  const nextMemberId = r.varuint();
  const secretGeneration = r.varuint();
  const secret = r.fixed(KEY_BYTES).slice();
  const entries = new Map<string, LeafEntry>();
  const leases = new LeaseBook();
  let prevName: string | undefined;
  r.list(MAX_LEAVES_CAP, (r) => {
    const name = r.string(MAX_NAME_BYTES);
    if (prevName !== undefined && name <= prevName)
      throw new DecodeError('non-canonical', 'entries not sorted by name');
    prevName = name;
    const serial = r.string(MAX_SERIAL_BYTES);
    const fingerprint = r.fixed(32).slice();
    const memberId = r.varuint();
    const slot = r.varuint() - 1;
    const admittedEpoch = r.varuint() - 1;
    leases.set(name, r.varuint());
    const flags = version >= 2 ? r.u8() : 0;
    if (flags > 1 || (flags === 1 && slot < 0)) throw new DecodeError('bad-value', `entry ${name} flags`);
    entries.set(name, { name, serial, fingerprint, memberId, slot, admittedEpoch, exposed: flags === 1 });
  });
  const pendingJoins = r.list(MAX_LEAVES_CAP, (r) => {
    const name = r.string(MAX_NAME_BYTES);
    if (entries.get(name)?.slot !== -1)
      throw new DecodeError('bad-value', `queued join ${name} is not pending`);
    return name;
  });
  let prevSlot = -1;
  const pendingDepartures = r.list(MAX_LEAVES_CAP, (r): PendingDeparture => {
    const name = r.string(MAX_NAME_BYTES);
    const memberId = r.varuint();
    const slot = r.varuint();
    if (slot <= prevSlot) throw new DecodeError('non-canonical', 'departures not sorted by slot');
    prevSlot = slot;
    const reason = DEPARTURE_REASONS[r.u8()];
    if (reason === undefined) throw new DecodeError('bad-value', 'departure reason');
    // v3 keeps the serial for the audit line of the batch that removes the leaf.
    const serial = version >= 3 ? r.string(MAX_SERIAL_BYTES) : '';
    return { name, memberId, slot, reason, serial };
  });
  const revoked = new Set(r.list(MAX_LEAVES_CAP, (r) => r.string(MAX_SERIAL_BYTES)));
  const treeBytes = r.bytes(MAX_SNAPSHOT_BYTES);
  const pendingRekeys = new Map<string, Uint8Array>();
  let fullRefresh: LeafStateParts['fullRefresh'];
  let coreRevoked: string[] = [];
  if (version >= 2) {
    let prevRekey: string | undefined;
    r.list(MAX_LEAVES_CAP, (r) => {
      const name = r.string(MAX_NAME_BYTES);
      if (prevRekey !== undefined && name <= prevRekey)
        throw new DecodeError('non-canonical', 'refreshes not sorted by name');
      prevRekey = name;
      if ((entries.get(name)?.slot ?? -1) < 0)
        throw new DecodeError('bad-value', `refresh queued for ${name}, not admitted`);
      pendingRekeys.set(name, r.fixed(KEY_BYTES).slice());
    });
    fullRefresh = r.option((r) => ({ deadline: r.varuint(), epoch: r.varuint() }));
    coreRevoked = r.list(MAX_CORE_REVOKED, (r) => r.string(MAX_SERIAL_BYTES));
  }
  r.end();
  const tree = decodeSnapshot(treeBytes, treeOptions(secret));
  const parts: LeafStateParts = {
    tree,
    now,
    nextMemberId,
    secret,
    secretGeneration,
    entries,
    leases,
    pendingJoins,
    pendingDepartures,
    revoked,
    pendingRekeys,
    fullRefresh,
    coreRevoked,
  };
  return parts;
}
