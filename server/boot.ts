/**
 * What a server settles before it joins anything: its incarnation, its rekey-signing key and its
 * core identity key.
 */
import type { KeyObject, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SECRET_FILE_MODE } from '../auth/index.js';
import { StorageError, type Storage } from '../leaf-plane/index.js';
import { INCARNATIONS_PER_GENERATION } from './config.js';

export class ServerStartError extends Error {
  override readonly name = 'ServerStartError';
}

/** The rekey-signing seed: the configured seed file, or else the certificate's own Ed25519 key. */
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
  return ed25519SeedOf(key);
}

/**
 * The core identity seed: the certificate's own Ed25519 key, always. Core peers check this
 * server's pairwise offers against the public key of the certificate they saw on the TLS link,
 * so a separately configured seed could not be verified by anyone.
 */
export function coreIdentitySeedOf(key: KeyObject): Uint8Array {
  if (key.asymmetricKeyType !== 'ed25519')
    throw new ServerStartError(
      `credentials.key: a core server's certificate key must be Ed25519 (the core key is authenticated by it), found ${key.asymmetricKeyType ?? 'unknown'}`,
    );
  return ed25519SeedOf(key);
}

function ed25519SeedOf(key: KeyObject): Uint8Array {
  const d = key.export({ format: 'jwk' }).d;
  if (d === undefined) throw new ServerStartError('credentials.key: no private Ed25519 scalar');
  return new Uint8Array(Buffer.from(d, 'base64url'));
}

/** The raw Ed25519 public key of a certificate, or undefined when its key is of another type. */
export function certificateVerifyKey(cert: X509Certificate): Uint8Array | undefined {
  const key = cert.publicKey;
  if (key.asymmetricKeyType !== 'ed25519') return undefined;
  const x = key.export({ format: 'jwk' }).x;
  return x === undefined ? undefined : new Uint8Array(Buffer.from(x, 'base64url'));
}

/**
 * The incarnations this data dir has handed out. A member key (name#incarnation) must never be
 * reused: the group would take a restarted server for the member it replaced. The stack itself
 * moves on to incarnation + 1 when it rejoins after an exclusion, in memory, inside a single
 * event, and may put the new key on the wire before the server hears of it. So the file holds a
 * RESERVATION, not the current value: the incarnation in use plus one, made durable before that
 * one can be used. A boot takes the reservation plus one (the first boot in a generation takes the
 * generation's first incarnation, which the genesis founders name), and every change of the
 * stack's incarnation reserves the next one before anything else happens in this process.
 */
/** The file holds one decimal number (≤ 16 digits) and a newline; a little slack for whitespace. */
const MAX_INCARNATION_FILE_BYTES = 64;

export class IncarnationRecord {
  private reserved: number;

  private constructor(
    private readonly storage: Storage,
    readonly path: string,
    private incarnation: number,
  ) {
    this.reserved = incarnation;
    this.reserve(incarnation + 1);
  }

  /** This boot's incarnation, with the next one reserved durably before it returns. */
  static boot(storage: Storage, dataDir: string, generation: number): IncarnationRecord {
    const path = join(dataDir, 'incarnation');
    const first = generation * INCARNATIONS_PER_GENERATION;
    let next = first;
    let bytes: Uint8Array | undefined;
    try {
      bytes = storage.read(path, MAX_INCARNATION_FILE_BYTES);
    } catch (e) {
      if (e instanceof StorageError && e.code === 'too-large')
        throw new ServerStartError(`dataDir: ${path} is corrupt`);
      throw e;
    }
    if (bytes !== undefined) {
      const text = new TextDecoder().decode(bytes).trim();
      if (!/^[0-9]{1,16}$/.test(text)) throw new ServerStartError(`dataDir: ${path} is corrupt`);
      const last = Number(text);
      if (last >= first + INCARNATIONS_PER_GENERATION)
        throw new ServerStartError(
          `generation: ${generation} is older than this data dir's (${Math.floor(last / INCARNATIONS_PER_GENERATION)})`,
        );
      if (last >= first) next = last + 1;
    }
    return new IncarnationRecord(storage, path, next);
  }

  get current(): number {
    return this.incarnation;
  }

  /**
   * The stack now runs as `incarnation` (an in-memory rejoin): reserve the one after it. Returns
   * false when nothing changed. The stack moves one step per event and the server calls this
   * after every event, so the new incarnation was always reserved already; a jump past the
   * reservation is a bug and throws (after recording it, so no restart reuses it).
   */
  advance(incarnation: number): boolean {
    if (incarnation === this.incarnation) return false;
    if (incarnation < this.incarnation)
      throw new Error(`incarnation went back from ${this.incarnation} to ${incarnation}`);
    const wasReserved = incarnation <= this.reserved;
    this.incarnation = incarnation;
    this.reserve(incarnation + 1);
    if (!wasReserved) throw new Error(`incarnation ${incarnation} was used before it was reserved`);
    return true;
  }

  private reserve(n: number): void {
    if (n <= this.reserved) return;
    this.storage.replace(this.path, new TextEncoder().encode(`${n}\n`), SECRET_FILE_MODE);
    this.reserved = n;
  }
}
