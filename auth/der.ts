/**
 * A minimal, strict DER reader: exactly what certificate verification needs from a
 * TBSCertificate (serial, names, validity, extensions), no more. It exists because the general
 * ASN.1 stack (@peculiar/x509 over asn1js) costs ~2 ms per certificate, most of a leaf
 * admission's CPU; this reader walks the same bytes in microseconds.
 *
 * Strict: definite lengths only, minimal length encodings, no element running past its parent.
 * Any violation throws DerError, which callers report as a malformed certificate.
 */

export class DerError extends Error {
  override readonly name = 'DerError';
}

/**
 * One TLV: `tag` is the identifier octet (low-tag-number form only), `body` the contents, `raw`
 * the whole element (header and contents: what a signature covers).
 */
export interface DerElement {
  readonly tag: number;
  readonly body: Uint8Array;
  readonly raw: Uint8Array;
}

export const TAG_BOOLEAN = 0x01;
export const TAG_INTEGER = 0x02;
export const TAG_ENUMERATED = 0x0a;
export const TAG_BIT_STRING = 0x03;
export const TAG_OCTET_STRING = 0x04;
export const TAG_OID = 0x06;
export const TAG_UTC_TIME = 0x17;
export const TAG_GENERALIZED_TIME = 0x18;
export const TAG_SEQUENCE = 0x30;
export const TAG_SET = 0x31;
/** Context-specific tag `n`, primitive or constructed. */
export const contextTag = (n: number, constructed: boolean): number => (constructed ? 0xa0 : 0x80) | n;

/** Reads consecutive elements from a byte range (the contents of a constructed element). */
export class DerReader {
  private pos = 0;

  constructor(private readonly bytes: Uint8Array) {}

  get done(): boolean {
    return this.pos >= this.bytes.length;
  }

  /** The tag of the next element, or undefined at the end. */
  peekTag(): number | undefined {
    return this.done ? undefined : this.bytes[this.pos];
  }

  /** The next element, whole. */
  next(): DerElement {
    const b = this.bytes;
    if (this.pos + 2 > b.length) throw new DerError('truncated element');
    const start = this.pos;
    const tag = b[this.pos++] as number;
    if ((tag & 0x1f) === 0x1f) throw new DerError('high tag numbers are not supported');
    let len = b[this.pos++] as number;
    if (len & 0x80) {
      const n = len & 0x7f;
      if (n === 0) throw new DerError('indefinite length is not DER');
      if (n > 4) throw new DerError('element too long');
      if (this.pos + n > b.length) throw new DerError('truncated length');
      len = 0;
      for (let i = 0; i < n; i++) len = len * 256 + (b[this.pos++] as number);
      if (len < 0x80 || (n > 1 && len < 1 << (8 * (n - 1))))
        throw new DerError('non-minimal length encoding');
    }
    if (this.pos + len > b.length) throw new DerError('element runs past its parent');
    const body = b.subarray(this.pos, this.pos + len);
    this.pos += len;
    return { tag, body, raw: b.subarray(start, this.pos) };
  }

  /** The next element, which must carry `tag`. */
  expect(tag: number, what: string): Uint8Array {
    const e = this.next();
    if (e.tag !== tag) throw new DerError(`${what}: expected tag 0x${hex2(tag)}, got 0x${hex2(e.tag)}`);
    return e.body;
  }

  /** The next element if it carries `tag`, else undefined (nothing consumed). */
  optional(tag: number): Uint8Array | undefined {
    return this.peekTag() === tag ? this.next().body : undefined;
  }

  /** Fails unless every byte was consumed. */
  end(what: string): void {
    if (!this.done) throw new DerError(`${what}: trailing bytes`);
  }
}

const hex2 = (n: number): string => n.toString(16).padStart(2, '0');

export function readOid(body: Uint8Array): string {
  if (body.length === 0) throw new DerError('empty OID');
  const arcs: number[] = [];
  let v = 0;
  for (let i = 0; i < body.length; i++) {
    const byte = body[i] as number;
    if (v === 0 && byte === 0x80) throw new DerError('non-minimal OID arc');
    v = v * 128 + (byte & 0x7f);
    if (v > Number.MAX_SAFE_INTEGER / 128) throw new DerError('OID arc too large');
    if ((byte & 0x80) === 0) {
      if (arcs.length === 0) {
        const first = v < 80 ? Math.floor(v / 40) : 2;
        arcs.push(first, v - first * 40);
      } else arcs.push(v);
      v = 0;
    } else if (i === body.length - 1) throw new DerError('truncated OID');
  }
  return arcs.join('.');
}

export function readBoolean(body: Uint8Array): boolean {
  if (body.length !== 1 || (body[0] !== 0 && body[0] !== 0xff)) throw new DerError('bad BOOLEAN');
  return body[0] === 0xff;
}

/** A non-negative INTEGER that fits a JS number (pathLenConstraint and the like). */
export function readSmallUnsigned(body: Uint8Array): number {
  if (body.length === 0 || body.length > 6) throw new DerError('INTEGER out of range');
  if (((body[0] as number) & 0x80) !== 0) throw new DerError('negative INTEGER');
  if (body.length > 1 && body[0] === 0 && ((body[1] as number) & 0x80) === 0)
    throw new DerError('non-minimal INTEGER');
  let v = 0;
  for (const b of body) v = v * 256 + b;
  return v;
}

/**
 * A named-bit BIT STRING as flags: bit i (RFC 5280 numbering, e.g. keyUsage digitalSignature = 0)
 * becomes 1 << i.
 */
export function readNamedBits(body: Uint8Array): number {
  if (body.length === 0) throw new DerError('empty BIT STRING');
  const unused = body[0] as number;
  if (unused > 7 || (body.length === 1 && unused !== 0)) throw new DerError('bad BIT STRING padding');
  let flags = 0;
  const bits = (body.length - 1) * 8 - unused;
  for (let i = 0; i < bits && i < 31; i++) {
    if (((body[1 + (i >> 3)] as number) >> (7 - (i & 7))) & 1) flags |= 1 << i;
  }
  return flags;
}

/** UTCTime (YYMMDDHHMMSSZ, years 1950–2049) or GeneralizedTime (YYYYMMDDHHMMSS[.f]Z). */
export function readTime(e: DerElement): Date {
  const s = latin1(e.body);
  const m =
    e.tag === TAG_UTC_TIME
      ? /^(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z$/.exec(s)
      : e.tag === TAG_GENERALIZED_TIME
        ? /^(\d{4})(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(\.\d+)?Z$/.exec(s)
        : null;
  if (m === null) throw new DerError(`bad time '${s}'`);
  let year = Number(m[1]);
  if (e.tag === TAG_UTC_TIME) year += year < 50 ? 2000 : 1900;
  const [mon, day, h, min, sec] = [m[2], m[3], m[4], m[5], m[6]].map(Number) as [
    number,
    number,
    number,
    number,
    number,
  ];
  const ms = m[7] !== undefined ? Math.floor(Number(`0${m[7]}`) * 1000) : 0;
  const d = new Date(Date.UTC(year, mon - 1, day, h, min, sec, ms));
  if (d.getUTCMonth() !== mon - 1 || d.getUTCDate() !== day || h > 23 || min > 59 || sec > 59)
    throw new DerError(`bad time '${s}'`);
  return d;
}

/** A directory string (the string types X.520 attributes use) as text. */
export function readDirectoryString(e: DerElement): string {
  switch (e.tag) {
    case 0x0c: // UTF8String
      return new TextDecoder('utf-8', { fatal: true }).decode(e.body);
    case 0x13: // PrintableString
    case 0x16: // IA5String
    case 0x14: // TeletexString (treated as Latin-1, as most decoders do)
      return latin1(e.body);
    case 0x1e: // BMPString, UTF-16BE
      if (e.body.length % 2 !== 0) throw new DerError('odd BMPString');
      return String.fromCharCode(
        ...Array.from(
          { length: e.body.length / 2 },
          (_, i) => ((e.body[2 * i] as number) << 8) | (e.body[2 * i + 1] as number),
        ),
      );
    case 0x1c: {
      // UniversalString, UTF-32BE
      if (e.body.length % 4 !== 0) throw new DerError('bad UniversalString');
      const v = new DataView(e.body.buffer, e.body.byteOffset, e.body.length);
      return String.fromCodePoint(...Array.from({ length: e.body.length / 4 }, (_, i) => v.getUint32(4 * i)));
    }
    default:
      throw new DerError(`unsupported string type 0x${hex2(e.tag)}`);
  }
}

export function latin1(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.length).toString('latin1');
}

export function toHex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.length).toString('hex');
}

/**
 * DER writing, just enough to build the small structures Keyglass emits itself (a PKCS#8
 * EncryptedPrivateKeyInfo): one TLV with a minimal length, OIDs, non-negative INTEGERs.
 */
export function derTlv(tag: number, ...bodies: readonly Uint8Array[]): Buffer {
  const body = Buffer.concat(bodies);
  const n = body.length;
  const len =
    n < 0x80
      ? [n]
      : n < 0x100
        ? [0x81, n]
        : n < 0x10000
          ? [0x82, n >> 8, n & 0xff]
          : [0x83, n >> 16, (n >> 8) & 0xff, n & 0xff];
  if (n >= 1 << 24) throw new DerError('element too long to write');
  return Buffer.concat([Buffer.from([tag, ...len]), body]);
}

export function derOid(oid: string): Buffer {
  const arcs = oid.split('.').map(Number);
  if (arcs.length < 2 || arcs.some((a) => !Number.isSafeInteger(a) || a < 0))
    throw new DerError(`bad OID ${oid}`);
  const out: number[] = [];
  const first = (arcs[0] as number) * 40 + (arcs[1] as number);
  for (const arc of [first, ...arcs.slice(2)]) {
    const bytes = [arc % 128];
    for (let v = Math.floor(arc / 128); v > 0; v = Math.floor(v / 128)) bytes.unshift(0x80 | (v % 128));
    out.push(...bytes);
  }
  return derTlv(TAG_OID, Buffer.from(out));
}

/** A non-negative INTEGER up to 2^48 (the inverse of readSmallUnsigned). */
export function derSmallUnsigned(n: number): Buffer {
  if (!Number.isSafeInteger(n) || n < 0 || n >= 2 ** 48) throw new DerError(`INTEGER ${n} out of range`);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v % 256);
  if (bytes.length === 0 || (bytes[0] as number) & 0x80) bytes.unshift(0);
  return derTlv(TAG_INTEGER, Buffer.from(bytes));
}
