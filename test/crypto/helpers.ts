/** Shared fixtures for the crypto tests: every backend variant, hex helpers, a seeded byte source. */
import { createTunedFastSuite, loadSuite, type CipherSuite } from '../../crypto/index.js';

export function hex(s: string): Uint8Array {
  const clean = s.replace(/\s+/g, '');
  if (clean.length % 2 !== 0 || /[^0-9a-f]/i.test(clean)) throw new Error(`bad hex: ${s.slice(0, 20)}…`);
  return Uint8Array.from(clean.match(/../g) ?? [], (b) => parseInt(b, 16));
}

export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

export function utf8(s: string): Uint8Array {
  return new TextEncoder().encode(s);
}

export function fill(length: number, byte: number): Uint8Array {
  return new Uint8Array(length).fill(byte);
}

/** bytes(start, start+1, …) of the given length, as the RFC test cases spell "0x00..0x4f". */
export function counting(start: number, length: number): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => (start + i) & 0xff);
}

/**
 * Every way a suite can be served: both public backends, plus the fast backend pinned to
 * each of its AEAD engines so official vectors exercise libsodium and node paths alike.
 */
export async function allSuites(): Promise<CipherSuite[]> {
  return [
    await loadSuite('fast'),
    await loadSuite('noble'),
    await createTunedFastSuite({ sodiumAeadMaxBytes: -1 }), // always node:crypto (HChaCha20 subkey)
    await createTunedFastSuite({ sodiumAeadMaxBytes: Number.POSITIVE_INFINITY }), // always libsodium
  ];
}

/** Deterministic byte source (splitmix32) so cross-backend failures are reproducible from the seed. */
export class SeededBytes {
  #state: number;
  constructor(seed: number) {
    this.#state = seed >>> 0;
  }
  next32(): number {
    let z = (this.#state = (this.#state + 0x9e3779b9) >>> 0);
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  }
  int(maxExclusive: number): number {
    return this.next32() % maxExclusive;
  }
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.next32() & 0xff;
    return out;
  }
}
