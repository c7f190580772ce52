/**
 * The fields of an X.509 v3 certificate that verification decides on, read straight from the
 * DER (RFC 5280 §4.1) with the minimal reader in der.ts: serial, subject CN, validity, and the
 * basicConstraints, keyUsage, extendedKeyUsage and subjectAltName extensions. Signatures and
 * the public key are node's business (X509Certificate); display strings (full subject and
 * issuer names, host names) are left to @peculiar/x509, off the hot path.
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

/** Reads the verification fields; throws DerError on anything malformed. */
export function readCertFields(der: Uint8Array): CertFields {
  const outer = new DerReader(der);
  const cert = new DerReader(outer.expect(TAG_SEQUENCE, 'Certificate'));
  outer.end('Certificate');
  const tbs = new DerReader(cert.expect(TAG_SEQUENCE, 'TBSCertificate'));
  tbs.optional(contextTag(0, true)); // version
  const serialHex = toHex(tbs.expect(TAG_INTEGER, 'serialNumber'));
  tbs.expect(TAG_SEQUENCE, 'signature');
  tbs.expect(TAG_SEQUENCE, 'issuer');
  const validity = new DerReader(tbs.expect(TAG_SEQUENCE, 'validity'));
  const notBefore = readTime(validity.next());
  const notAfter = readTime(validity.next());
  validity.end('validity');
  const commonName = firstCommonName(tbs.expect(TAG_SEQUENCE, 'subject'));
  tbs.expect(TAG_SEQUENCE, 'subjectPublicKeyInfo');
  tbs.optional(contextTag(1, false)); // issuerUniqueID
  tbs.optional(contextTag(2, false)); // subjectUniqueID
  const extensionsWrapper = tbs.optional(contextTag(3, true));
  tbs.end('TBSCertificate');

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
  if (extensionsWrapper === undefined) return fields;
  const wrapper = new DerReader(extensionsWrapper);
  const extensions = new DerReader(wrapper.expect(TAG_SEQUENCE, 'extensions'));
  wrapper.end('extensions');
  const seen = new Set<string>();
  while (!extensions.done) {
    const ext = new DerReader(extensions.expect(TAG_SEQUENCE, 'extension'));
    const oid = readOid(ext.expect(TAG_OID, 'extnID'));
    const critical = ext.optional(TAG_BOOLEAN);
    if (critical !== undefined) readBoolean(critical);
    const value = ext.expect(TAG_OCTET_STRING, 'extnValue');
    ext.end('extension');
    // RFC 5280 §4.2: a certificate must not include more than one instance of an extension.
    if (seen.has(oid)) throw new DerError(`extension ${oid} appears twice`);
    seen.add(oid);
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
