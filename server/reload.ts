/**
 * SIGHUP: what a running key server takes from its config files again — trust anchors, its own
 * certificate and key, the CRL (KeyServer.reloadCrl) and the log level — and what needs a restart.
 * Every piece is checked as at start-up; a bad one keeps its old value and says why, the others
 * still apply. This module loads and compares; KeyServer applies.
 */
import {
  CredentialError,
  loadCredentials,
  loadTrustAnchors,
  type CertInfo,
  type Credentials,
} from '../auth/index.js';
import type { ServerConfig } from './config.js';

/** Fields a reload applies; any other change is reported as needing a restart. */
const RELOADED_FIELDS = new Set(['credentials', 'trustAnchors', 'logLevel']);

export interface ReloadPlan {
  /** New trust anchors, when the file changed and loads. */
  readonly anchors?: readonly CertInfo[];
  /** New credentials, when the certificate or key changed and they load and fit this server. */
  readonly creds?: Credentials;
  /** Human-readable changes that will apply. */
  readonly changes: string[];
  /** Pieces refused, with why (their old value stays). */
  readonly problems: string[];
  /** Changed fields that take effect only after a restart. */
  readonly restartNeeded: string[];
}

const sameDer = (a: readonly CertInfo[], b: readonly CertInfo[]): boolean =>
  a.length === b.length && a.every((x, i) => Buffer.from(x.der).equals(Buffer.from(b[i]!.der)));

/**
 * Loads what `next` names and compares it with what runs (`current`, `anchors`, `creds`).
 * Never throws for a bad file: it lands in `problems`.
 */
export function planReload(
  current: ServerConfig,
  next: ServerConfig,
  anchors: readonly CertInfo[],
  creds: Credentials,
): ReloadPlan {
  const changes: string[] = [];
  const problems: string[] = [];
  const restartNeeded = Object.keys(next).filter(
    (k) =>
      !RELOADED_FIELDS.has(k) &&
      JSON.stringify((current as unknown as Record<string, unknown>)[k], mapsAsObjects) !==
        JSON.stringify((next as unknown as Record<string, unknown>)[k], mapsAsObjects),
  );
  let newAnchors: readonly CertInfo[] | undefined;
  try {
    const loaded = loadTrustAnchors(next.trustAnchors);
    if (loaded.length === 0)
      throw new CredentialError('malformed', `trustAnchors: ${next.trustAnchors} holds no certificate`);
    if (!sameDer(loaded, anchors)) {
      newAnchors = loaded;
      changes.push(`trustAnchors: ${loaded.length} anchor(s) from ${next.trustAnchors}`);
    }
  } catch (e) {
    problems.push(`trustAnchors: ${(e as Error).message}`);
  }
  let newCreds: Credentials | undefined;
  try {
    const loaded = loadCredentials({
      certFile: next.credentials.cert,
      keyFile: next.credentials.key,
      ...(next.credentials.passphrase !== undefined ? { passphrase: next.credentials.passphrase } : {}),
    });
    const id = loaded.identity;
    const want = creds.identity;
    if (
      id === undefined ||
      want === undefined ||
      id.group !== want.group ||
      id.role !== want.role ||
      id.name !== want.name
    )
      throw new Error(
        `${next.credentials.cert} names ${id ? `${id.group}/${id.role}/${id.name}` : 'no identity'}, this server is ${want ? `${want.group}/${want.role}/${want.name}` : '?'}`,
      );
    if (loaded.certChainPem !== creds.certChainPem || loaded.keyPem !== creds.keyPem) {
      newCreds = loaded;
      const keyChanged = !loaded.privateKey.equals(creds.privateKey);
      changes.push(
        `certificate: serial ${loaded.certificate.serial}, not after ${loaded.certificate.notAfter.toISOString()}${keyChanged ? ', new key' : ''}`,
      );
    }
  } catch (e) {
    problems.push(`credentials: ${(e as Error).message}`);
  }
  if (next.logLevel !== current.logLevel) changes.push(`logLevel: ${current.logLevel} → ${next.logLevel}`);
  return {
    ...(newAnchors !== undefined ? { anchors: newAnchors } : {}),
    ...(newCreds !== undefined ? { creds: newCreds } : {}),
    changes,
    problems,
    restartNeeded,
  };
}

function mapsAsObjects(_key: string, value: unknown): unknown {
  return value instanceof Map ? Object.fromEntries(value) : value;
}
