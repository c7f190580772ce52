/**
 * The XChaCha20 extension (draft-irtf-cfrg-xchacha-03 §2.3): subkey = HChaCha20(key, nonce[0..16]),
 * inner ChaCha20-Poly1305 nonce = 0x00000000 ‖ nonce[16..24]. Lets the fast backend run XChaCha
 * on node's native ChaCha20-Poly1305 for large messages.
 *
 * HChaCha20 comes from @noble/ciphers: libsodium-wrappers (non-sumo) does not export
 * `crypto_core_hchacha20` at runtime although its types declare it. Scratch word buffers are
 * reused (allocation dominated the cost: 0.4 M/s with fresh arrays vs 1.2 M/s reused) and
 * wiped after every call.
 */
import { hchacha } from '@noble/ciphers/chacha.js';
import { wipe } from './bytes.js';

const SIGMA = Uint32Array.of(0x61707865, 0x3320646e, 0x79622d32, 0x6b206574); // "expand 32-byte k"
const keyWords = new Uint32Array(8);
const nonceWords = new Uint32Array(4);
const outWords = new Uint32Array(8);
const keyView = new Uint8Array(keyWords.buffer);
const nonceView = new Uint8Array(nonceWords.buffer);
const outView = new Uint8Array(outWords.buffer);

// Byte views over word buffers read words in host order; HChaCha20 is defined little-endian.
const littleEndianHost = new Uint8Array(Uint32Array.of(1).buffer)[0] === 1;

/** HChaCha20(key, nonce[0..16]) → 32-byte subkey. The caller wipes the result after use. */
export function hchacha20(key: Uint8Array, nonce: Uint8Array): Uint8Array {
  if (!littleEndianHost) throw new Error('hchacha20: big-endian hosts are not supported by the fast backend');
  keyView.set(key);
  nonceView.set(nonce.subarray(0, 16));
  hchacha(SIGMA, keyWords, nonceWords, outWords);
  const subkey = outView.slice();
  wipe(keyWords, nonceWords, outWords);
  return subkey;
}

/** The 12-byte inner nonce: four zero bytes then the last 8 bytes of the 24-byte XChaCha nonce. */
export function innerNonce(xnonce: Uint8Array): Uint8Array {
  const n = new Uint8Array(12);
  n.set(xnonce.subarray(16, 24), 4);
  return n;
}
