/** What a server settles before it joins anything: its incarnation and its rekey-signing key. */
import type { KeyObject } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileDurable, SECRET_FILE_MODE } from '../../auth/index.js';
import { INCARNATIONS_PER_GENERATION } from './config.js';

export class ServerStartError extends Error {
  override readonly name = 'ServerStartError';
}

/** The rekey-signing seed: the certificate's own Ed25519 key, or a configured seed file. */
export function signingSeedOf(key: KeyObject, file: string | undefined): Uint8Array {
  if (file !== undefined) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8').trim();
    } catch (e) {
      throw new ServerStartError(
        `signingKeyFile: cannot read ${file} (${(e as NodeJS.ErrnoException).code})`,
      );
    }
    if (!/^[0-9a-fA-F]{64}$/.test(text))
      throw new ServerStartError('signingKeyFile: must hold 64 hex digits (an Ed25519 seed)');
    return new Uint8Array(Buffer.from(text, 'hex'));
  }
  if (key.asymmetricKeyType !== 'ed25519')
    throw new ServerStartError(
      `signingKeyFile: required because the certificate key is ${key.asymmetricKeyType ?? 'unknown'}, not Ed25519`,
    );
  const d = key.export({ format: 'jwk' }).d;
  if (d === undefined) throw new ServerStartError('credentials.key: no private Ed25519 scalar');
  return new Uint8Array(Buffer.from(d, 'base64url'));
}

/**
 * This boot's incarnation: the generation's first on the first boot in it, else one more than the
 * last (recorded durably before the server joins anything).
 */
export function nextIncarnation(dataDir: string, generation: number): number {
  const path = join(dataDir, 'incarnation');
  const first = generation * INCARNATIONS_PER_GENERATION;
  let next = first;
  if (existsSync(path)) {
    const text = readFileSync(path, 'utf8').trim();
    if (!/^[0-9]{1,16}$/.test(text)) throw new ServerStartError(`dataDir: ${path} is corrupt`);
    const last = Number(text);
    if (last >= first + INCARNATIONS_PER_GENERATION)
      throw new ServerStartError(
        `generation: ${generation} is older than this data dir's (${Math.floor(last / INCARNATIONS_PER_GENERATION)})`,
      );
    if (last >= first) next = last + 1;
  }
  writeFileDurable(path, `${next}\n`, SECRET_FILE_MODE);
  return next;
}
