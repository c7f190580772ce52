/**
 * The package's version, read once from the package.json two folders up (dist/server/ → the
 * package root; npm always ships package.json). One reader for `keyglass --version` and
 * `keyglass_build_info`. Undefined when it cannot be read or is not a short string.
 */
import { readFileSync } from 'node:fs';

let cached: string | undefined | null = null;

export function packageVersion(): string | undefined {
  if (cached !== null) return cached;
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as unknown;
    const v = (pkg as { version?: unknown }).version;
    cached = typeof v === 'string' && v.length > 0 && v.length <= 64 ? v : undefined;
  } catch {
    cached = undefined;
  }
  return cached;
}
