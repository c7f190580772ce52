/**
 * The fields of an X.509 v3 certificate that verification decides on, read straight from the
 * DER (RFC 5280 §4.1) with the minimal reader in der.ts: serial, subject CN, validity, and the
 * basicConstraints, keyUsage, extendedKeyUsage and subjectAltName extensions. Signatures and
 * the public key are node's business (X509Certificate). Display strings (full subject and
 * issuer names, host names) are read only on demand (readCertDisplayFields, x509-names.ts).
 */
import {
  DerError,
  DerReader,
  TAG_BIT_STRING,
  TAG_BOOLEAN,
  TAG_INTEGER,
  TAG_OCTET_STRING,
  TAG_OID,
  TAG_SEQUENCE,
  TAG_SET,
  contextTag,
  latin1,
  readBoolean,
  readDirectoryString,
  readNamedBits,
  readOid,
  readSmallUnsigned,
  readTime,
  toHex,
} from './der.js';
import { readSanHosts, renderName } from './x509-names.js';

const OID_CN = '2.5.4.3';
const OID_BASIC_CONSTRAINTS = '2.5.29.19';
const OID_KEY_USAGE = '2.5.29.15';
const OID_EXT_KEY_USAGE = '2.5.29.37';
const OID_SUBJECT_ALT_NAME = '2.5.29.17';
/** GeneralName [6] uniformResourceIdentifier, IMPLICIT IA5String. */
const GN_URI = contextTag(6, false);

export interface CertFields {
  /** The serial's content octets in hex (lower case, as encoded: a leading 00 may remain). */
  readonly serialHex: string;
  /** The first CN of the subject, if any. */
  readonly commonName: string | undefined;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly isCa: boolean;
  readonly pathLength: number | undefined;
  readonly keyUsage: number | undefined;
  readonly extKeyUsage: readonly string[] | undefined;
  readonly sanUris: readonly string[];
}

/** The parts of a TBSCertificate (RFC 5280 §4.1) the readers below look into, as DER contents. */
interface TbsParts {
  readonly serial: Uint8Array;
  readonly issuer: Uint8Array;
  readonly validity: Uint8Array;
  readonly subject: Uint8Array;
  /** Each extension's OID and extnValue contents, checked for duplicates (RFC 5280 §4.2). */
  readonly extensions: readonly { readonly oid: string; readonly value: Uint8Array }[];
}

function readTbsParts(der: Uint8Array): TbsParts {
  const outer = new DerReader(der);
  const cert = new DerReader(outer.expect(TAG_SEQUENCE, 'Certificate'));
  outer.end('Certificate');
  const tbs = new DerReader(cert.expect(TAG_SEQUENCE, 'TBSCertificate'));
  tbs.optional(contextTag(0, true)); // version
  const serial = tbs.expect(TAG_INTEGER, 'serialNumber');
  tbs.expect(TAG_SEQUENCE, 'signature');
  const issuer = tbs.expect(TAG_SEQUENCE, 'issuer');
  const validity = tbs.expect(TAG_SEQUENCE, 'validity');
  const subject = tbs.expect(TAG_SEQUENCE, 'subject');
  tbs.expect(TAG_SEQUENCE, 'subjectPublicKeyInfo');
  tbs.optional(contextTag(1, false)); // issuerUniqueID
  tbs.optional(contextTag(2, false)); // subjectUniqueID
  const extensionsWrapper = tbs.optional(contextTag(3, true));
  tbs.end('TBSCertificate');
  return { serial, issuer, validity, subject, extensions: readExtensions(extensionsWrapper) };
}

/** Extensions ::= SEQUENCE OF Extension, inside the [3] (or a CRL's [0]) EXPLICIT wrapper. */
export function readExtensions(wrapperBody: Uint8Array | undefined): { oid: string; value: Uint8Array }[] {
  if (wrapperBody === undefined) return [];
  const wrapper = new DerReader(wrapperBody);
  const list = wrapper.expect(TAG_SEQUENCE, 'extensions');
  wrapper.end('extensions');
  return readExtensionList(list);
}

/** The contents of an Extensions SEQUENCE: each extension's OID and extnValue contents. */
export function readExtensionList(body: Uint8Array): { oid: string; value: Uint8Array }[] {
  const extensions = new DerReader(body);
  const seen = new Set<string>();
  const out: { oid: string; value: Uint8Array }[] = [];
  while (!extensions.done) {
    const ext = new DerReader(extensions.expect(TAG_SEQUENCE, 'extension'));
    const oid = readOid(ext.expect(TAG_OID, 'extnID'));
    const critical = ext.optional(TAG_BOOLEAN);
    if (critical !== undefined) readBoolean(critical);
    const value = ext.expect(TAG_OCTET_STRING, 'extnValue');
    ext.end('extension');
    // RFC 5280 §4.2 (and §5.2): no extension may appear more than once.
    if (seen.has(oid)) throw new DerError(`extension ${oid} appears twice`);
    seen.add(oid);
    out.push({ oid, value });
  }
  return out;
}

/** Reads the verification fields; throws DerError on anything malformed. */
export function readCertFields(der: Uint8Array): CertFields {
  const parts = readTbsParts(der);
  const serialHex = toHex(parts.serial);
  const validity = new DerReader(parts.validity);
  const notBefore = readTime(validity.next());
  const notAfter = readTime(validity.next());
  validity.end('validity');
  const commonName = firstCommonName(parts.subject);

  const fields = {
    serialHex,
    commonName,
    notBefore,
    notAfter,
    isCa: false,
    pathLength: undefined as number | undefined,
    keyUsage: undefined as number | undefined,
    extKeyUsage: undefined as string[] | undefined,
    sanUris: [] as string[],
  };
  for (const { oid, value } of parts.extensions) {
    switch (oid) {
      case OID_BASIC_CONSTRAINTS: {
        const bc = readBasicConstraints(value);
        fields.isCa = bc.isCa;
        fields.pathLength = bc.isCa ? bc.pathLength : undefined;
        break;
      }
      case OID_KEY_USAGE: {
        const r = new DerReader(value);
        fields.keyUsage = readNamedBits(r.expect(TAG_BIT_STRING, 'keyUsage'));
        r.end('keyUsage');
        break;
      }
      case OID_EXT_KEY_USAGE:
        fields.extKeyUsage = readEku(value);
        break;
      case OID_SUBJECT_ALT_NAME:
        fields.sanUris = readSanUris(value);
        break;
    }
  }
  return fields;
}

/** What a certificate shows a person: the full names and the host names. */
export interface CertDisplayFields {
  readonly subject: string;
  readonly issuer: string;
  readonly dnsNames: readonly string[];
  readonly ipAddresses: readonly string[];
}

/** Reads the display fields (read on demand: verification never needs them); throws DerError. */
export function readCertDisplayFields(der: Uint8Array): CertDisplayFields {
  const parts = readTbsParts(der);
  const san = parts.extensions.find((e) => e.oid === OID_SUBJECT_ALT_NAME);
  return {
    subject: renderName(parts.subject),
    issuer: renderName(parts.issuer),
    ...(san ? readSanHosts(san.value) : { dnsNames: [], ipAddresses: [] }),
  };
}

/** Name ::= SEQUENCE OF SET OF AttributeTypeAndValue; the first CN value, in order. */
function firstCommonName(name: Uint8Array): string | undefined {
  const rdns = new DerReader(name);
  let cn: string | undefined;
  while (!rdns.done) {
    const rdn = new DerReader(rdns.expect(TAG_SET, 'RelativeDistinguishedName'));
    while (!rdn.done) {
      const atv = new DerReader(rdn.expect(TAG_SEQUENCE, 'AttributeTypeAndValue'));
      const type = readOid(atv.expect(TAG_OID, 'attribute type'));
      const value = atv.next();
      atv.end('AttributeTypeAndValue');
      if (type === OID_CN && cn === undefined) cn = readDirectoryString(value);
    }
  }
  return cn;
}

function readBasicConstraints(value: Uint8Array): { isCa: boolean; pathLength: number | undefined } {
  const outer = new DerReader(value);
  const r = new DerReader(outer.expect(TAG_SEQUENCE, 'basicConstraints'));
  outer.end('basicConstraints');
  const ca = r.optional(TAG_BOOLEAN);
  const len = r.optional(TAG_INTEGER);
  r.end('basicConstraints');
  return {
    isCa: ca !== undefined && readBoolean(ca),
    pathLength: len !== undefined ? readSmallUnsigned(len) : undefined,
  };
}

function readEku(value: Uint8Array): string[] {
  const outer = new DerReader(value);
  const r = new DerReader(outer.expect(TAG_SEQUENCE, 'extKeyUsage'));
  outer.end('extKeyUsage');
  const oids: string[] = [];
  while (!r.done) oids.push(readOid(r.expect(TAG_OID, 'KeyPurposeId')));
  return oids;
}

/** The uniformResourceIdentifier entries of GeneralNames, in order (other name forms skipped). */
function readSanUris(value: Uint8Array): string[] {
  const outer = new DerReader(value);
  const r = new DerReader(outer.expect(TAG_SEQUENCE, 'subjectAltName'));
  outer.end('subjectAltName');
  const uris: string[] = [];
  while (!r.done) {
    const gn = r.next();
    if (gn.tag === GN_URI) uris.push(latin1(gn.body));
  }
  return uris;
}
