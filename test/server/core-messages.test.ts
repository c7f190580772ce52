/** Core messages: a signer announcement carries its server's certificate serial, bounded. */
import test from 'ava';
import { DecodeError } from '../../wire/index.js';
import { decodeCoreMessage, encodeCoreMessage } from '../../server/index.js';

test('a signer announcement names its certificate serial; truncated or oversize ones are refused', (t) => {
  const value = { name: 'core-1', publicKey: new Uint8Array(32).fill(7), serial: '3f9a0c' };
  const bytes = encodeCoreMessage({ kind: 'signer', value });
  t.deepEqual(decodeCoreMessage(bytes), { kind: 'signer', value });
  // Without its serial (the pre-issue-17 layout) the announcement does not decode.
  t.throws(() => decodeCoreMessage(bytes.subarray(0, bytes.length - value.serial.length - 1)), {
    instanceOf: DecodeError,
  });
  t.throws(() => encodeCoreMessage({ kind: 'signer', value: { ...value, serial: 'a'.repeat(65) } }), {
    instanceOf: RangeError,
  });
});
