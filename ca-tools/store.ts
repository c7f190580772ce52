/**
 * The CA's record of issued certificates (store.json): serial, subject, identity, validity,
 * status, and revocation time and reason; plus the last CRL number. Read with full
 * validation (a hand-edited or corrupted store is refused, not half-trusted) and written
 * only through durable atomic replacement.
 */
import { isRole, isValidName, normalizeSerial, type Role } from '../auth/index.js';
import { CaError } from './errors.js';

export const STORE_FORMAT = 'keyglass-ca-store';
export const STORE_VERSION = 1;
export const MAX_RECORDS = 1_000_000;
/**
 * Largest store file read: 500 MiB, just under V8's largest string (~512 Mi characters), so an
 * oversize store gets the reader's clear error, not a failed toString. Records of the size
 * measured in a 6,000-certificate store (~490 B) fit ~10^6 of them (MAX_RECORDS); longer names
 * fit fewer. The PEM bound (1 MiB) stopped a CA at ~2,300 certificates.
 */
export const MAX_STORE_BYTES = 500 * 1024 * 1024;

export type CertStatus = 'active' | 'revoked';

export interface CertRecord {
  readonly serial: string;
  readonly subject: string;
  readonly group: string;
  readonly role: Role;
  readonly name: string;
  readonly issuedAt: string;
  readonly notBefore: string;
  readonly notAfter: string;
  readonly sha256: string;
  readonly status: CertStatus;
  readonly revokedAt: string | null;
  readonly reason: string | null;
}

export interface StoreData {
  readonly format: typeof STORE_FORMAT;
  readonly version: typeof STORE_VERSION;
  /** Number of the last CRL issued (decimal string: CRL numbers may exceed 2^53). */
  readonly crlNumber: string;
  readonly certificates: readonly CertRecord[];
}

export function emptyStore(): StoreData {
  return { format: STORE_FORMAT, version: STORE_VERSION, crlNumber: '0', certificates: [] };
}

const isIso = (v: unknown): v is string => typeof v === 'string' && !Number.isNaN(Date.parse(v));

function parseRecord(r: unknown, i: number): CertRecord {
  const bad = (field: string): never => {
    throw new CaError(`store.json: certificates[${i}].${field} is invalid`);
  };
  if (typeof r !== 'object' || r === null) return bad('(record)');
  const o = r as Record<string, unknown>;
  if (
    typeof o['serial'] !== 'string' ||
    !/^[0-9a-f]{1,40}$/.test(o['serial']) ||
    normalizeSerial(o['serial']) !== o['serial']
  )
    bad('serial');
  if (typeof o['subject'] !== 'string') bad('subject');
  if (typeof o['group'] !== 'string' || !isValidName(o['group'])) bad('group');
  if (typeof o['role'] !== 'string' || !isRole(o['role'])) bad('role');
  if (typeof o['name'] !== 'string' || !isValidName(o['name'])) bad('name');
  for (const f of ['issuedAt', 'notBefore', 'notAfter']) if (!isIso(o[f])) bad(f);
  if (typeof o['sha256'] !== 'string') bad('sha256');
  if (o['status'] !== 'active' && o['status'] !== 'revoked') bad('status');
  if (
    o['status'] === 'revoked'
      ? !isIso(o['revokedAt']) || typeof o['reason'] !== 'string'
      : o['revokedAt'] !== null || o['reason'] !== null
  ) {
    bad('revokedAt/reason');
  }
  return o as unknown as CertRecord;
}

export function parseStore(text: string): StoreData {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new CaError(`store.json is not valid JSON (${(e as Error).message})`);
  }
  if (typeof json !== 'object' || json === null) throw new CaError('store.json is not an object');
  const o = json as Record<string, unknown>;
  if (o['format'] !== STORE_FORMAT || o['version'] !== STORE_VERSION) {
    throw new CaError(`store.json is not a ${STORE_FORMAT} version ${STORE_VERSION}`);
  }
  if (typeof o['crlNumber'] !== 'string' || !/^(0|[1-9][0-9]{0,47})$/.test(o['crlNumber']))
    throw new CaError('store.json: crlNumber is invalid');
  const certs = o['certificates'];
  if (!Array.isArray(certs) || certs.length > MAX_RECORDS)
    throw new CaError('store.json: certificates must be a list');
  const records = certs.map(parseRecord);
  const serials = new Set<string>();
  for (const r of records) {
    if (serials.has(r.serial)) throw new CaError(`store.json: serial ${r.serial} appears twice`);
    serials.add(r.serial);
  }
  return { format: STORE_FORMAT, version: STORE_VERSION, crlNumber: o['crlNumber'], certificates: records };
}

export function serializeStore(s: StoreData): string {
  return `${JSON.stringify(s, null, 2)}\n`;
}

/** Active and within its validity at `now` (an active record past notAfter counts as expired). */
export function effectiveStatus(r: CertRecord, now: Date): CertStatus | 'expired' {
  if (r.status === 'revoked') return 'revoked';
  return Date.parse(r.notAfter) < now.getTime() ? 'expired' : 'active';
}
