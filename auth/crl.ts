/**
 * Certificate revocation from X.509 v2 CRLs. A CRL is accepted only when its signature
 * verifies under one of the known issuers (whose keyUsage, if present, allows cRLSign) and
 * its CRL number does not go backwards (a replayed old CRL cannot un-revoke anyone).
 * `RevocationRegistry` is reloadable at run time and tells listeners which serials a
 * new CRL revoked, so live connections of those identities can be closed.
 */
import { readFile } from 'node:fs/promises';
import { x509 } from './x509-setup.js';
import { KU_CRL_SIGN, normalizeSerial, type CertInfo } from './certificate.js';
import { parsePem, PemError } from './pem.js';

export const CRL_NUMBER_OID = '2.5.29.20';
const MAX_CRL_ENTRIES = 1_000_000;

export class CrlError extends Error {
  override readonly name = 'CrlError';
}

export interface RevokedEntry {
  readonly serial: string;
  readonly revokedAt: Date;
  readonly reason: string;
}

export interface VerifiedCrl {
  readonly issuer: CertInfo;
  readonly thisUpdate: Date;
  readonly nextUpdate: Date | undefined;
  readonly crlNumber: bigint | undefined;
  readonly revoked: ReadonlyMap<string, RevokedEntry>;
  /** The CRL as signed (DER): what a server hands its leaves in band. */
  readonly der: Uint8Array;
}

export type RevocationStatus = 'good' | 'revoked' | 'stale' | 'unknown';

/** Decodes a DER INTEGER (the CRL number's extnValue), non-negative, at most 20 octets (RFC 5280). */
export function decodeDerUnsigned(der: Uint8Array): bigint {
  if (der.length < 3 || der[0] !== 0x02) throw new CrlError('CRL number is not a DER INTEGER');
  const len = der[1] as number;
  if (len > 21 || len + 2 !== der.length) throw new CrlError('CRL number has a bad length');
  if (((der[2] as number) & 0x80) !== 0) throw new CrlError('CRL number is negative');
  let v = 0n;
  for (let i = 2; i < der.length; i++) v = (v << 8n) | BigInt(der[i] as number);
  return v;
}

/** Encodes a non-negative integer as a DER INTEGER. */
export function encodeDerUnsigned(v: bigint): Uint8Array {
  if (v < 0n) throw new RangeError('negative');
  const bytes: number[] = [];
  let x = v;
  do {
    bytes.unshift(Number(x & 0xffn));
    x >>= 8n;
  } while (x > 0n);
  if (((bytes[0] as number) & 0x80) !== 0) bytes.unshift(0);
  return Uint8Array.from([0x02, bytes.length, ...bytes]);
}

const REASON_NAMES: Readonly<Record<number, string>> = Object.fromEntries(
  Object.entries(x509.X509CrlReason)
    .filter(([, v]) => typeof v === 'number')
    .map(([k, v]) => [v as number, k]),
);

/** Parses one CRL (PEM or DER) and verifies it against `issuers`. */
export async function verifyCrl(
  input: string | Uint8Array,
  issuers: readonly CertInfo[],
): Promise<VerifiedCrl> {
  let der: Uint8Array;
  if (typeof input === 'string') {
    let blocks;
    try {
      blocks = parsePem(input);
    } catch (e) {
      throw new CrlError(e instanceof PemError ? e.message : String(e));
    }
    if (blocks.length !== 1 || blocks[0]?.label !== 'X509 CRL')
      throw new CrlError('expected exactly one X509 CRL PEM block');
    der = blocks[0].der;
  } else {
    der = input;
  }
  let crl: InstanceType<typeof x509.X509Crl>;
  try {
    crl = new x509.X509Crl(der);
  } catch (e) {
    throw new CrlError(`CRL does not parse: ${(e as Error).message}`);
  }
  const candidates = issuers.filter((c) => c.subject === crl.issuer);
  if (candidates.length === 0) throw new CrlError(`CRL issuer '${crl.issuer}' is not a trusted CA`);
  let issuer: CertInfo | undefined;
  for (const c of candidates) {
    let ok = false;
    try {
      ok = await crl.verify({ publicKey: new x509.X509Certificate(c.der).publicKey });
    } catch {
      ok = false;
    }
    if (ok) {
      issuer = c;
      break;
    }
  }
  if (!issuer) throw new CrlError(`CRL signature does not verify under '${crl.issuer}'`);
  if (issuer.keyUsage !== undefined && (issuer.keyUsage & KU_CRL_SIGN) === 0) {
    throw new CrlError(`CRL issuer '${crl.issuer}' may not sign CRLs (keyUsage lacks cRLSign)`);
  }
  const numberExt = crl.extensions.find((e) => e.type === CRL_NUMBER_OID);
  const crlNumber = numberExt ? decodeDerUnsigned(new Uint8Array(numberExt.value)) : undefined;
  const entries = crl.entries;
  if (entries.length > MAX_CRL_ENTRIES) throw new CrlError(`CRL has more than ${MAX_CRL_ENTRIES} entries`);
  const revoked = new Map<string, RevokedEntry>();
  for (const e of entries) {
    const serial = normalizeSerial(e.serialNumber);
    revoked.set(serial, {
      serial,
      revokedAt: e.revocationDate,
      reason: REASON_NAMES[e.reason ?? 0] ?? 'unspecified',
    });
  }
  return {
    issuer,
    thisUpdate: crl.thisUpdate,
    nextUpdate: crl.nextUpdate,
    crlNumber,
    revoked,
    der: new Uint8Array(der),
  };
}

/** Verifies every CRL of a PEM text (at least one; nothing but X509 CRL blocks) against `issuers`. */
export async function verifyCrlPem(pemText: string, issuers: readonly CertInfo[]): Promise<VerifiedCrl[]> {
  let blocks;
  try {
    blocks = parsePem(pemText);
  } catch (e) {
    throw new CrlError(e instanceof PemError ? e.message : String(e));
  }
  const verified: VerifiedCrl[] = [];
  for (const b of blocks) {
    if (b.label !== 'X509 CRL') throw new CrlError(`expected X509 CRL PEM, found ${b.label}`);
    verified.push(await verifyCrl(b.der, issuers));
  }
  return verified;
}

export interface NewlyRevoked {
  readonly issuerFingerprint: string;
  readonly serial: string;
}

export type RevocationListener = (revoked: readonly NewlyRevoked[]) => void;

/**
 * The CRLs in force, one per issuing CA (keyed by the CA certificate's SHA-256 fingerprint).
 * Replacing a CRL is atomic: lookups see the old set or the new one, never a mix.
 */
/** A CRL file's text (PEM), or a CrlError naming the file. */
export async function readCrlFile(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    throw new CrlError(`cannot read CRL ${path} (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}

export class RevocationRegistry {
  private readonly byIssuer = new Map<string, VerifiedCrl>();
  private readonly listeners = new Set<RevocationListener>();

  /** Verifies and installs CRLs (a PEM text may hold several); returns the serials newly revoked. */
  async load(pemText: string, issuers: readonly CertInfo[]): Promise<NewlyRevoked[]> {
    return this.install(await verifyCrlPem(pemText, issuers));
  }

  /**
   * Installs CRLs already verified (verifyCrl): all or none. Throws CrlError when one of them
   * is older (lower CRL number) than the one installed for its issuer; an equal number replaces
   * it harmlessly. Returns the serials newly revoked.
   */
  install(verified: readonly VerifiedCrl[]): NewlyRevoked[] {
    // Check every CRL before installing any: a bad file changes nothing.
    for (const v of verified) {
      if (this.isOlder(v)) {
        const cur = this.byIssuer.get(v.issuer.sha256)!;
        throw new CrlError(
          `CRL number ${String(v.crlNumber)} is older than the installed ${cur.crlNumber} (replayed CRL?)`,
        );
      }
    }
    const fresh: NewlyRevoked[] = [];
    for (const v of verified) {
      const cur = this.byIssuer.get(v.issuer.sha256);
      for (const serial of v.revoked.keys()) {
        if (!cur?.revoked.has(serial)) fresh.push({ issuerFingerprint: v.issuer.sha256, serial });
      }
      this.byIssuer.set(v.issuer.sha256, v);
    }
    if (fresh.length > 0) for (const l of this.listeners) l(fresh);
    return fresh;
  }

  /** Whether `v` would roll its issuer's CRL back (a lower CRL number, or none after a numbered one). */
  isOlder(v: VerifiedCrl): boolean {
    const cur = this.byIssuer.get(v.issuer.sha256);
    return cur?.crlNumber !== undefined && (v.crlNumber === undefined || v.crlNumber < cur.crlNumber);
  }

  /** Whether `v` is newer than the CRL installed for its issuer (or the first one of that issuer). */
  isNewer(v: VerifiedCrl): boolean {
    const cur = this.byIssuer.get(v.issuer.sha256);
    if (cur === undefined) return true;
    if (v.crlNumber === undefined || cur.crlNumber === undefined) return false;
    return v.crlNumber > cur.crlNumber;
  }

  /** `load` from a file (e.g. on SIGHUP or a file watch); unreadable files are CrlErrors too. */
  async loadFile(path: string, issuers: readonly CertInfo[]): Promise<NewlyRevoked[]> {
    return this.load(await readCrlFile(path), issuers);
  }

  status(issuer: CertInfo, serial: string, now: Date): RevocationStatus {
    const crl = this.byIssuer.get(issuer.sha256);
    if (!crl) return 'unknown';
    if (crl.revoked.has(serial)) return 'revoked';
    if (crl.nextUpdate !== undefined && crl.nextUpdate.getTime() < now.getTime()) return 'stale';
    return 'good';
  }

  crlFor(issuer: CertInfo): VerifiedCrl | undefined {
    return this.byIssuer.get(issuer.sha256);
  }

  /**
   * Whether any installed CRL lists `serial`. For keys known by certificate serial alone (core
   * servers' rekey-signing keys, registered leaves): a serial another trusted CA revoked also
   * counts, which errs on the side of refusing (serials of `keyglass ca` are random 128-bit).
   */
  isRevokedSerial(serial: string): boolean {
    for (const crl of this.byIssuer.values()) if (crl.revoked.has(serial)) return true;
    return false;
  }

  /** The CRLs in force, one per issuer. */
  installed(): VerifiedCrl[] {
    return [...this.byIssuer.values()];
  }

  /** Subscribes to newly revoked serials; returns the unsubscribe function. */
  onRevoked(listener: RevocationListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
