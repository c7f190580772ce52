/**
 * Measured tuning constants for the fast backend (dependency-free so the public face can
 * export them without loading node:crypto or libsodium).
 *
 * SODIUM_AEAD_MAX_BYTES: messages up to this size go to libsodium, larger ones to node's
 * native ChaCha20-Poly1305 (XChaCha via an HChaCha20 subkey). Measured with
 * `npm run bench -- crypto` (case aead.crossover, engines interleaved): libsodium wins at
 * 2 KiB (51 k vs 36 k ops/s), node wins from 4 KiB (28 k vs 22 k) and pulls away above
 * (16 KiB: 17 k vs 6 k); the crossover sits between, so the threshold is 3 KiB.
 */
export const SODIUM_AEAD_MAX_BYTES = 3072;
