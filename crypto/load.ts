import type { FastSuiteOptions } from './backend-fast.js';
import type { CipherSuite } from './suite.js';

export type Backend = 'fast' | 'noble';
export const BACKENDS: readonly Backend[] = ['fast', 'noble'];

const loaded = new Map<Backend, Promise<CipherSuite>>();

/**
 * The process-wide suite for a backend, created once. Backends load lazily so a
 * browser bundle that only asks for 'noble' never pulls in node:crypto or libsodium.
 */
export function loadSuite(backend: Backend = 'fast'): Promise<CipherSuite> {
  let suite = loaded.get(backend);
  if (suite === undefined) {
    suite = create(backend);
    loaded.set(backend, suite);
    suite.catch(() => loaded.delete(backend)); // a failed load may be retried
  }
  return suite;
}

async function create(backend: Backend): Promise<CipherSuite> {
  switch (backend) {
    case 'fast':
      return (await import('./backend-fast.js')).createFastSuite();
    case 'noble':
      return (await import('./backend-noble.js')).createNobleSuite();
    default:
      throw new TypeError(
        `unknown crypto backend '${String(backend)}' (expected one of ${BACKENDS.join(', ')})`,
      );
  }
}

/**
 * A fresh, unshared fast suite with tuning overrides (e.g. pinning its AEAD engine), for
 * tests and benchmarks that compare the engines. Production code uses `loadSuite()`.
 */
export async function createTunedFastSuite(options: FastSuiteOptions): Promise<CipherSuite> {
  return (await import('./backend-fast.js')).createFastSuite(options);
}
