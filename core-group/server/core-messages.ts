/**
 * What core servers multicast to each other through the GroupMember stack (its payloads):
 *   commands  leaf-state commands, on the ordered channel: the replicated input (a server packs
 *             the commands of one event-loop turn into one message, see command-outbox.ts)
 *   data      a sealed data envelope a leaf published, on the FIFO channel: relayed to every leaf
 *   signer    a server's rekey-signing public key, on the FIFO channel after each view change
 * Canonical and bounded like every other codec (payloads stay under the stack's 64 KiB).
 */
import { ED25519_PUBLIC_BYTES } from '../../crypto/index.js';
import {
  bytes,
  decode,
  encode,
  fixedBytes,
  list,
  string,
  struct,
  union,
  type CodecValue,
} from '../../wire/index.js';
import { MAX_PAYLOAD_BYTES } from '../messages.js';

/** Largest sealed envelope the core relays (its payload must fit one stack message). */
export const MAX_RELAYED_ENVELOPE_BYTES = MAX_PAYLOAD_BYTES - 64;

/** Bytes of one encoded leaf-state command carried in `commands`. */
export const MAX_COMMAND_BYTES = MAX_PAYLOAD_BYTES - 32;
/** Commands in one `commands` message (the payload bound usually binds first). */
export const MAX_COMMANDS_PER_MESSAGE = 4096;

export const CoreMessage = union({
  commands: [1, struct({ commands: list(MAX_COMMANDS_PER_MESSAGE, bytes(MAX_COMMAND_BYTES)) })],
  data: [2, struct({ origin: string(64), envelope: bytes(MAX_RELAYED_ENVELOPE_BYTES) })],
  signer: [3, struct({ name: string(64), publicKey: fixedBytes(ED25519_PUBLIC_BYTES) })],
});
export type CoreMessage = CodecValue<typeof CoreMessage>;

export function encodeCoreMessage(m: CoreMessage): Uint8Array {
  return encode(CoreMessage, m, MAX_PAYLOAD_BYTES);
}

/** Throws DecodeError only. */
export function decodeCoreMessage(b: Uint8Array): CoreMessage {
  return decode(CoreMessage, b);
}
