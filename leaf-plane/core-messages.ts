/**
 * What core servers multicast to each other through the GroupMember stack (its payloads):
 *   commands  leaf-state commands, on the ordered channel: the replicated input (a server packs
 *             the commands of one event-loop turn into one message, see command-outbox.ts)
 *   data      a sealed data envelope a leaf published, on the FIFO channel: relayed to every leaf
 *   signer    a server's rekey-signing public key and its certificate serial, on the FIFO
 *             channel after each view change
 *   durable   the leaf epoch a server's replica holds durably in the named view, on the FIFO
 *             channel after each commit that cut a batch and at each primary view: batches are
 *             released to leaves once a majority of the primary view holds them (server-plane.ts)
 * Canonical and bounded like every other codec (payloads stay under what the keyed stack takes
 * from the application, MAX_APP_PAYLOAD_BYTES).
 */
import { ED25519_PUBLIC_BYTES } from '../crypto/index.js';
import {
  bytes,
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
import { MAX_APP_PAYLOAD_BYTES } from '../core-group/index.js';

/** Largest core message: one application payload of the keyed stack. */
export const MAX_CORE_MESSAGE_BYTES = MAX_APP_PAYLOAD_BYTES;

/** Largest sealed envelope the core relays: a `data` message adds tag, origin (≤ 65) and a length. */
export const MAX_RELAYED_ENVELOPE_BYTES = MAX_CORE_MESSAGE_BYTES - 128;

/** Bytes of one encoded leaf-state command carried in `commands`. */
export const MAX_COMMAND_BYTES = MAX_CORE_MESSAGE_BYTES - 32;
/** Commands in one `commands` message (the payload bound usually binds first). */
export const MAX_COMMANDS_PER_MESSAGE = 4096;

export const CoreMessage = union({
  commands: [1, struct({ commands: list(MAX_COMMANDS_PER_MESSAGE, bytes(MAX_COMMAND_BYTES)) })],
  data: [2, struct({ origin: string(64), envelope: bytes(MAX_RELAYED_ENVELOPE_BYTES) })],
  signer: [3, struct({ name: string(64), publicKey: fixedBytes(ED25519_PUBLIC_BYTES), serial: string(64) })],
  durable: [4, struct({ view: string(160), epoch: varuint })],
});
export type CoreMessage = CodecValue<typeof CoreMessage>;

export function encodeCoreMessage(m: CoreMessage): Uint8Array {
  return encode(CoreMessage, m, MAX_CORE_MESSAGE_BYTES);
}

/** Throws DecodeError only. */
export function decodeCoreMessage(b: Uint8Array): CoreMessage {
  return decode(CoreMessage, b);
}
