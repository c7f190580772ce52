/**
 * Certificate revocation from X.509 v2 CRLs. A CRL is accepted only when its signature
 * verifies under one of the known issuers (whose keyUsage, if present, allows cRLSign) and
 * its CRL number does not go backwards (a replayed old CRL cannot un-revoke anyone).
 * `RevocationRegistry` is reloadable at run time and tells listeners which serials a
 * new CRL revoked, so live connections of those identities can be closed.
 *
 * CRLs are read with the minimal DER reader (der.ts) and their signatures checked by node's
 * crypto: a leaf verifies every CRL its servers hand it, and a leaf application must not load
 * a general ASN.1 stack (@peculiar/x509 and its global `Reflect` polyfill) for that.
 */
import { readFile } from 'node:fs/promises';
import { verify as verifySignature, constants as cryptoConstants, type KeyObject } from 'node:crypto';
import { KU_CRL_SIGN, normalizeSerial, type CertInfo } from './certificate.js';
import { parsePem, PemError } from './pem.js';
import {
  DerError,
  DerReader,
  TAG_BIT_STRING,
  TAG_ENUMERATED,
  TAG_GENERALIZED_TIME,
  TAG_INTEGER,
  TAG_OID,
  TAG_SEQUENCE,
  TAG_UTC_TIME,
  contextTag,
  readOid,
  readSmallUnsigned,
  readTime,
  toHex,
} from './der.js';
import { readExtensionList, readExtensions } from './cert-fields.js';
import { renderName } from './x509-names.js';

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

/**
 * CRLReason codes (RFC 5280 §5.3.1) by the names `keyglass ca` uses (camelCase, as `ca revoke
 * --reason` takes them). 7 is unused.
 */
export const CRL_REASON_NAMES: Readonly<Record<number, string>> = {
  0: 'unspecified',
  1: 'keyCompromise',
  2: 'caCompromise',
  3: 'affiliationChanged',
  4: 'superseded',
  5: 'cessationOfOperation',
  6: 'certificateHold',
  8: 'removeFromCRL',
  9: 'privilegeWithdrawn',
  10: 'aaCompromise',
};

/** The name of a CRLReason code; an unknown code is shown as `reason N`. */
export function crlReasonName(code: number): string {
  return CRL_REASON_NAMES[code] ?? `reason ${code}`;
}

/** The CRLReason code of a name from CRL_REASON_NAMES, or undefined. */
export function crlReasonCode(name: string): number | undefined {
  for (const [code, n] of Object.entries(CRL_REASON_NAMES)) if (n === name) return Number(code);
  return undefined;
}

const OID_REASON_CODE = '2.5.29.21';

/** One entry of a CRL as read, before any decision. */
export interface CrlEntryRead {
  readonly serial: string;
  readonly revokedAt: Date;
  /** The CRLReason code; 0 (unspecified) when the entry has no reasonCode extension. */
  readonly reasonCode: number;
}

/** A CRL's fields, read but not verified (parseCrl); verifyCrl decides whether to trust them. */
export interface ParsedCrl {
  /** The issuer name as text, as CertInfo.subject renders names. */
  readonly issuer: string;
  readonly thisUpdate: Date;
  readonly nextUpdate: Date | undefined;
  readonly crlNumber: bigint | undefined;
  readonly entries: readonly CrlEntryRead[];
  /** What the signature covers (the whole TBSCertList element), the algorithm and the signature. */
  readonly signed: Uint8Array;
  readonly signatureAlgorithm: Uint8Array;
  readonly signature: Uint8Array;
}

/**
 * Reads an X.509 v2 CRL (RFC 5280 §5.1) from DER; throws CrlError on anything malformed, and on
 * more than MAX_CRL_ENTRIES entries (counted while reading: a huge CRL is refused early).
 */
export function parseCrl(der: Uint8Array): ParsedCrl {
  try {
    const outer = new DerReader(der);
    const list = new DerReader(outer.expect(TAG_SEQUENCE, 'CertificateList'));
    outer.end('CertificateList');
    const tbsElement = list.next();
    if (tbsElement.tag !== TAG_SEQUENCE) throw new DerError('TBSCertList: expected a SEQUENCE');
    const signatureAlgorithm = list.next();
    if (signatureAlgorithm.tag !== TAG_SEQUENCE)
      throw new DerError('signatureAlgorithm: expected a SEQUENCE');
    const signatureBits = list.expect(TAG_BIT_STRING, 'signatureValue');
    list.end('CertificateList');
    if (signatureBits.length < 1 || signatureBits[0] !== 0)
      throw new DerError('signature is not whole octets');

    const tbs = new DerReader(tbsElement.body);
    const version = tbs.optional(TAG_INTEGER);
    if (version !== undefined && readSmallUnsigned(version) !== 1)
      throw new DerError('CRL version is not v2');
    const innerAlgorithm = tbs.next();
    // RFC 5280 §5.1.1.2: the signed algorithm must be the one outside (no algorithm substitution).
    if (
      innerAlgorithm.tag !== TAG_SEQUENCE ||
      !Buffer.from(innerAlgorithm.raw).equals(signatureAlgorithm.raw)
    )
      throw new DerError('the signature algorithm inside and outside the CRL differ');
    const issuer = renderName(tbs.expect(TAG_SEQUENCE, 'issuer'));
    const thisUpdate = readTime(tbs.next());
    const nextTag = tbs.peekTag();
    const nextUpdate =
      nextTag === TAG_UTC_TIME || nextTag === TAG_GENERALIZED_TIME ? readTime(tbs.next()) : undefined;
    const revokedList = tbs.optional(TAG_SEQUENCE);
    const extensions = readExtensions(tbs.optional(contextTag(0, true)));
    tbs.end('TBSCertList');

    const entries: CrlEntryRead[] = [];
    if (revokedList !== undefined) {
      const r = new DerReader(revokedList);
      while (!r.done) {
        if (entries.length === MAX_CRL_ENTRIES)
          throw new CrlError(`CRL has more than ${MAX_CRL_ENTRIES} entries`);
        const entry = new DerReader(r.expect(TAG_SEQUENCE, 'revoked certificate'));
        const serial = normalizeSerial(toHex(entry.expect(TAG_INTEGER, 'userCertificate')));
        const revokedAt = readTime(entry.next());
        const entryExtensions = entry.optional(TAG_SEQUENCE);
        entry.end('revoked certificate');
        let reasonCode = 0;
        const reason =
          entryExtensions && readExtensionList(entryExtensions).find((e) => e.oid === OID_REASON_CODE);
        if (reason) {
          const rr = new DerReader(reason.value);
          reasonCode = readSmallUnsigned(rr.expect(TAG_ENUMERATED, 'reasonCode'));
          rr.end('reasonCode');
        }
        entries.push({ serial, revokedAt, reasonCode });
      }
    }
    const numberExt = extensions.find((e) => e.oid === CRL_NUMBER_OID);
    return {
      issuer,
      thisUpdate,
      nextUpdate,
      crlNumber: numberExt ? decodeDerUnsigned(numberExt.value) : undefined,
      entries,
      signed: tbsElement.raw,
      signatureAlgorithm: signatureAlgorithm.body,
      signature: signatureBits.subarray(1),
    };
  } catch (e) {
    if (e instanceof CrlError) throw e;
    throw new CrlError(`CRL does not parse: ${(e as Error).message}`);
  }
}

const HASH_OIDS: Readonly<Record<string, string>> = {
  '2.16.840.1.101.3.4.2.1': 'sha256',
  '2.16.840.1.101.3.4.2.2': 'sha384',
  '2.16.840.1.101.3.4.2.3': 'sha512',
};
/** Signature algorithms without parameters: OID → the digest node's verify takes (null: Edwards). */
const SIMPLE_SIGNATURES: Readonly<Record<string, string | null>> = {
  '1.3.101.112': null, // Ed25519
  '1.3.101.113': null, // Ed448
  '1.2.840.10045.4.3.2': 'sha256', // ecdsa-with-SHA256
  '1.2.840.10045.4.3.3': 'sha384',
  '1.2.840.10045.4.3.4': 'sha512',
  '1.2.840.113549.1.1.11': 'sha256', // sha256WithRSAEncryption
  '1.2.840.113549.1.1.12': 'sha384',
  '1.2.840.113549.1.1.13': 'sha512',
};
const OID_RSA_PSS = '1.2.840.113549.1.1.10';
const OID_MGF1 = '1.2.840.113549.1.1.8';

/**
 * Whether `signature` over `signed` verifies under `key` with the AlgorithmIdentifier `algorithm`
 * (its contents). SHA-1 and unknown algorithms are refused (CrlError): a CRL decides who is cut
 * off, and a forgeable signature would let anyone un-revoke.
 */
function checkSignature(
  algorithm: Uint8Array,
  signed: Uint8Array,
  signature: Uint8Array,
  key: KeyObject,
): boolean {
  const r = new DerReader(algorithm);
  const oid = readOid(r.expect(TAG_OID, 'signature algorithm'));
  if (oid in SIMPLE_SIGNATURES) {
    // RFC 8410 / 5758: no parameters; RFC 4055: NULL for RSA PKCS#1 v1.5.
    const params = r.done ? undefined : r.next();
    r.end('signature algorithm');
    if (params !== undefined && !(params.tag === 0x05 && params.body.length === 0))
      throw new CrlError(`signature algorithm ${oid} has unexpected parameters`);
    return verifySignature(SIMPLE_SIGNATURES[oid] ?? null, signed, key, signature);
  }
  if (oid === OID_RSA_PSS) {
    const { hash, saltLength } = readPssParams(r.expect(TAG_SEQUENCE, 'RSASSA-PSS-params'));
    r.end('signature algorithm');
    return verifySignature(
      hash,
      signed,
      { key, padding: cryptoConstants.RSA_PKCS1_PSS_PADDING, saltLength },
      signature,
    );
  }
  throw new CrlError(`CRL signature algorithm ${oid} is not supported`);
}

/** RSASSA-PSS-params (RFC 4055): a SHA-2 hash, MGF1 with the same hash, any salt length, trailer 1. */
function readPssParams(body: Uint8Array): { hash: string; saltLength: number } {
  const r = new DerReader(body);
  const algorithmOid = (b: Uint8Array): string => {
    const a = new DerReader(b);
    return readOid(a.expect(TAG_OID, 'algorithm'));
  };
  const explicit = (n: number): Uint8Array | undefined => {
    const w = r.optional(contextTag(n, true));
    if (w === undefined) return undefined;
    const inner = new DerReader(w);
    const e = inner.next();
    inner.end('RSASSA-PSS-params');
    return e.tag === TAG_SEQUENCE ? e.body : e.raw;
  };
  const hashAlg = explicit(0);
  const mgf = explicit(1);
  const salt = explicit(2);
  const trailer = explicit(3);
  r.end('RSASSA-PSS-params');
  const hash = hashAlg === undefined ? undefined : HASH_OIDS[algorithmOid(hashAlg)];
  if (hash === undefined) throw new CrlError('RSASSA-PSS CRL signatures must use SHA-256, -384 or -512');
  if (mgf === undefined) throw new CrlError('RSASSA-PSS with the default MGF (SHA-1) is not supported');
  const m = new DerReader(mgf);
  if (readOid(m.expect(TAG_OID, 'maskGenAlgorithm')) !== OID_MGF1)
    throw new CrlError('RSASSA-PSS: MGF is not MGF1');
  if (HASH_OIDS[algorithmOid(m.expect(TAG_SEQUENCE, 'MGF1 hash'))] !== hash)
    throw new CrlError('RSASSA-PSS: the MGF1 hash differs from the message hash');
  const intOf = (raw: Uint8Array): number => {
    const i = new DerReader(raw);
    return readSmallUnsigned(i.expect(TAG_INTEGER, 'INTEGER'));
  };
  if (trailer !== undefined && intOf(trailer) !== 1) throw new CrlError('RSASSA-PSS: trailerField is not 1');
  return { hash, saltLength: salt === undefined ? 20 : intOf(salt) };
}

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
  const crl = parseCrl(der);
  const candidates = issuers.filter((c) => c.subject === crl.issuer);
  if (candidates.length === 0) throw new CrlError(`CRL issuer '${crl.issuer}' is not a trusted CA`);
  let issuer: CertInfo | undefined;
  for (const c of candidates) {
    let ok = false;
    try {
      ok = checkSignature(crl.signatureAlgorithm, crl.signed, crl.signature, c.publicKey);
    } catch (e) {
      if (e instanceof CrlError) throw e;
      ok = false; // a key of another type than the algorithm's, a malformed signature
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
  const revoked = new Map<string, RevokedEntry>();
  for (const e of crl.entries) {
    revoked.set(e.serial, { serial: e.serial, revokedAt: e.revokedAt, reason: crlReasonName(e.reasonCode) });
  }
  return {
    issuer,
    thisUpdate: crl.thisUpdate,
    nextUpdate: crl.nextUpdate,
    crlNumber: crl.crlNumber,
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
