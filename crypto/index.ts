/** crypto/ — the one cipher suite everyone uses: `const suite = await loadSuite()`. */
export * from './suite.js';
export { loadSuite, createTunedFastSuite, BACKENDS, type Backend } from './load.js';
export { SODIUM_AEAD_MAX_BYTES } from './tuning.js';
export type { FastSuiteOptions } from './backend-fast.js';
export { constantTimeEqual, wipe, concatBytes, ownBytes } from './bytes.js';
export { randomBytes, randomXNonce, MAX_RANDOM_BYTES, UniformInts } from './random.js';
export {
  WRAP_MIN_KEY_BYTES,
  WRAP_MAX_KEY_BYTES,
  HKDF_MAX_OUTPUT_BYTES,
  HKDF_MAX_INFO_BYTES,
} from './checked-suite.js';
