/**
 * Inputs of the replicated leaf state machine. The core group delivers them in total order
 * (and each replica logs them durably, store.ts), so every primary replica applies the same
 * sequence and holds the same registry, tree and keys.
 *
 *   admit(name, serial, fingerprint, now)   a leaf passed TLS + admission checks on some server
 *   leave(name)                             the leaf said goodbye
 *   revoke(serial | name, immediate)        a CRL or an operator revoked a certificate
 *   renewLeases([{name, until}])            lease renewals, batched by the receiving server
 *   tick(now)                               advances the replicated clock (lease expiry)
 *   cutBatch(epoch, now)                    batch boundary: produce epoch `epoch` if anything changed
 *   setKeySecret(generation, secret)        the key-derivation secret rotated with the core key
 *   refreshLeafKeys([{name, admittedEpoch, key}])  new own keys of linked leaves (post-compromise
 *                                           recovery; keytree/leaf-key-refresh.ts), batched by
 *                                           the server the leaves are linked to
 *   revokeCore(serial, now, windowMs)       a core server was revoked: full refresh within windowMs
 *
 * Times are ms since the Unix epoch as chosen by the ordering server (not the local clock of a
 * replica: that would break determinism). `refreshLeafKeys` carries leaf keys: it travels only
 * inside the core, under the core key, like the rest of the total order. `setKeySecret` carries
 * a secret: it is never sent on the network; each replica feeds it locally at the commit point of a core rekey, which
 * sits at the same position of the total order everywhere (see machine.ts).
 */
import { KEY_BYTES } from '../crypto/index.js';
import {
  bool,
  bytes32,
  decode,
  encode,
  fixedBytes,
  list,
  string,
  struct,
  union,
  varuint,
  type CodecValue,
} from '../wire/index.js';

export const MAX_NAME_BYTES = 64;
export const MAX_SERIAL_BYTES = 64;
/** Renewals one command may carry (the receiving server batches per interval). */
export const MAX_RENEWALS_PER_COMMAND = 4096;
/** Own-key refreshes one command may carry. */
export const MAX_REFRESHES_PER_COMMAND = 512;

const name = string(MAX_NAME_BYTES);
const serial = string(MAX_SERIAL_BYTES);

export const LeafCommand = union({
  admit: [1, struct({ name, serial, fingerprint: bytes32, now: varuint })],
  leave: [2, struct({ name })],
  revoke: [
    3,
    struct({
      target: union({ serial: [1, serial], name: [2, name] }),
      immediate: bool,
    }),
  ],
  renewLeases: [4, struct({ renewals: list(MAX_RENEWALS_PER_COMMAND, struct({ name, until: varuint })) })],
  tick: [5, struct({ now: varuint })],
  cutBatch: [6, struct({ epoch: varuint, now: varuint })],
  setKeySecret: [7, struct({ generation: varuint, secret: fixedBytes(KEY_BYTES) })],
  refreshLeafKeys: [
    8,
    struct({
      refreshes: list(
        MAX_REFRESHES_PER_COMMAND,
        struct({ name, admittedEpoch: varuint, key: fixedBytes(KEY_BYTES) }),
      ),
    }),
  ],
  revokeCore: [9, struct({ serial, now: varuint, windowMs: varuint })],
});
export type LeafCommand = CodecValue<typeof LeafCommand>;
export type LeafCommandKind = LeafCommand['kind'];

/** Largest encoded command (a full renewal batch of 64-byte names). */
export const MAX_COMMAND_BYTES = 4096 * (MAX_NAME_BYTES + 12) + 64;

export function encodeCommand(cmd: LeafCommand): Uint8Array {
  return encode(LeafCommand, cmd, MAX_COMMAND_BYTES);
}

/** Throws DecodeError only. */
export function decodeCommand(bytes: Uint8Array): LeafCommand {
  return decode(LeafCommand, bytes);
}
