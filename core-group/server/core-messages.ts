/**
 * What core servers multicast to each other through the GroupMember stack (its payloads):
 *   command   a leaf-state command, on the ordered channel: the replicated input
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
  string,
  struct,
  union,
  type CodecValue,
} from '../../wire/index.js';
import { MAX_PAYLOAD_BYTES } from '../messages.js';

/** Largest sealed envelope the core relays (its payload must fit one stack message). */
export const MAX_RELAYED_ENVELOPE_BYTES = MAX_PAYLOAD_BYTES - 64;

export const CoreMessage = union({
  command: [1, struct({ command: bytes(MAX_PAYLOAD_BYTES - 16) })],
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
