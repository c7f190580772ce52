/**
 * Opening a core key server's process state, before any socket: credentials (with a clear line
 * for a wrong passphrase or identity), trust anchors and CRL, signing and core identity seeds,
 * the data dir's lock, incarnation record, leaf store and primary record. And `bound`, the one
 * start-up line for a listener that could not be bound.
 */
import { FileStorage } from './file-storage.js';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { loadSuite, type CipherSuite } from '../crypto/index.js';
import {
  CredentialError,
  DirLockedError,
  RevocationRegistry,
  ensureDir,
  keyProtectionWarning,
  loadCredentials,
  loadTrustAnchors,
  lockDirForProcess,
  readCrlFile,
  type CertInfo,
  type Credentials,
  type DirLock,
} from '../auth/index.js';
import { versionText } from '../core-group/index.js';
import { LeafStateMachine, LeafStore } from '../leaf-plane/index.js';
import { IncarnationRecord, ServerStartError, coreIdentitySeedOf, signingSeedOf } from './boot.js';
import type { ServerConfig } from './config.js';
import type { Logger } from './log.js';
import { PrimaryRecord } from './primary-record.js';

export interface OpenedServer {
  readonly suite: CipherSuite;
  readonly creds: Credentials;
  readonly anchors: readonly CertInfo[];
  readonly revocation: RevocationRegistry;
  /** The CRL file's text at start, if there is one. */
  readonly crlPem: string | undefined;
  readonly signingSeed: Uint8Array;
  readonly identitySeed: Uint8Array;
  /** Held for the process lifetime: one process per data dir. */
  readonly dirLock: DirLock;
  readonly incarnation: IncarnationRecord;
  readonly machine: LeafStateMachine;
  readonly store: LeafStore;
  readonly record: PrimaryRecord;
}

export async function openServer(cfg: ServerConfig, log: Logger): Promise<OpenedServer> {
  const suite = await loadSuite();
  let creds: Credentials;
  try {
    creds = loadCredentials({
      certFile: cfg.credentials.cert,
      keyFile: cfg.credentials.key,
      ...(cfg.credentials.passphrase !== undefined ? { passphrase: cfg.credentials.passphrase } : {}),
    });
  } catch (e) {
    // "wrong passphrase for private key" alone does not say which file: name it.
    if (e instanceof CredentialError && e.kind === 'bad-passphrase')
      throw new ServerStartError(`credentials.key: ${e.message} ${cfg.credentials.key}`);
    throw e;
  }
  // Keys written by earlier releases (2,048 PBKDF2 iterations) still load; say how to fix them.
  const weakKey = keyProtectionWarning(creds.keyProtection, cfg.credentials.key);
  if (weakKey !== undefined) log.warn('private key weakly protected', { detail: weakKey });
  const id = creds.identity;
  if (id === undefined || id.role !== 'core' || id.group !== cfg.group || id.name !== cfg.name)
    throw new ServerStartError(
      `credentials.cert: expected identity ${cfg.group}/core/${cfg.name}, found ${id ? `${id.group}/${id.role}/${id.name}` : 'none'}`,
    );
  const anchors = loadTrustAnchors(cfg.trustAnchors);
  const revocation = new RevocationRegistry();
  const crlPem = cfg.crl !== undefined && existsSync(cfg.crl) ? await readCrlFile(cfg.crl) : undefined;
  if (crlPem !== undefined) await revocation.load(crlPem, anchors);
  const signingSeed = signingSeedOf(creds.privateKey, cfg.signingKeyFile);
  const identitySeed = coreIdentitySeedOf(creds.privateKey);

  ensureDir(cfg.dataDir, 0o700);
  // One process per data dir, for this process's lifetime (a copied unit, a botched deploy).
  let dirLock: DirLock;
  try {
    dirLock = lockDirForProcess(cfg.dataDir);
  } catch (e) {
    if (!(e instanceof DirLockedError)) throw e;
    throw new ServerStartError(`dataDir: ${e.message}; another keyglass server uses this data directory`);
  }
  try {
    const storage = new FileStorage();
    const incarnation = IncarnationRecord.boot(storage, cfg.dataDir, cfg.generation);
    const machine = new LeafStateMachine({
      suite,
      group: new TextEncoder().encode(cfg.group),
      secret: new Uint8Array(randomBytes(32)),
      leaseMs: cfg.leaseMs,
    });
    const store = LeafStore.openForServer(storage, join(cfg.dataDir, 'leaf-state'), machine, { suite });
    const record = PrimaryRecord.open(storage, cfg.dataDir, cfg.generation, store.index, log, machine.epoch);
    log.info('store opened', {
      epoch: machine.epoch,
      leaves: machine.members,
      replayed: store.opened.replayed,
      incarnation: incarnation.current,
      stateVersion: versionText(record.stateVersion(store.index)),
      lastPrimary: record.load()?.lastPrimary.members ?? 'none',
    });
    return {
      suite,
      creds,
      anchors,
      revocation,
      crlPem,
      signingSeed,
      identitySeed,
      dirLock,
      incarnation,
      machine,
      store,
      record,
    };
  } catch (e) {
    dirLock.release();
    throw e;
  }
}

/** Listens, or names the config field and address that could not be bound (one start-up line). */
export async function bound<T>(
  field: string,
  addr: { host: string; port: number },
  listening: Promise<T>,
): Promise<T> {
  try {
    return await listening;
  } catch (e) {
    // The leaf port's TLS thread reports its listen failure as text: find the code in it.
    const code =
      (e as NodeJS.ErrnoException).code ??
      /\b(EADDRINUSE|EACCES|EADDRNOTAVAIL)\b/.exec((e as Error).message)?.[1];
    const why =
      code === 'EADDRINUSE'
        ? 'is already in use'
        : code === 'EACCES'
          ? 'needs privileges this process lacks'
          : code === 'EADDRNOTAVAIL'
            ? 'is not an address of this host'
            : `cannot be bound (${code ?? (e as Error).message})`;
    throw new ServerStartError(`${field}: ${addr.host}:${addr.port} ${why}`);
  }
}
