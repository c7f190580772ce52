/**
 * Display strings of X.509 names, read with the minimal DER reader (der.ts): a distinguished name
 * as RFC 4514-style text and the host names (dNSName, iPAddress) of a subjectAltName. They render
 * as @peculiar/x509 renders them (the form `keyglass ca` has always printed and CRL issuers are
 * matched by), but loading that library costs a leaf application ~300 ms and installs a global
 * `Reflect` polyfill, so the leaf's path (certificates and CRLs) reads them here instead.
 */
import {
  DerError,
  DerReader,
  TAG_OID,
  TAG_SEQUENCE,
  TAG_SET,
  contextTag,
  latin1,
  readDirectoryString,
  readOid,
  toHex,
} from './der.js';

/** Short names of the attribute types @peculiar/x509 names; others print as their OID. */
const ATTRIBUTE_NAMES: Readonly<Record<string, string>> = {
  '2.5.4.3': 'CN',
  '2.5.4.7': 'L',
  '2.5.4.8': 'ST',
  '2.5.4.10': 'O',
  '2.5.4.11': 'OU',
  '2.5.4.6': 'C',
  '0.9.2342.19200300.100.1.25': 'DC',
  '1.2.840.113549.1.9.1': 'E',
  '2.5.4.42': 'G',
  '2.5.4.43': 'I',
  '2.5.4.4': 'SN',
  '2.5.4.12': 'T',
};

/** The string types an attribute value is shown as text for; any other is `#` + hex of its DER. */
const TEXT_TAGS: ReadonlySet<number> = new Set([0x0c, 0x13, 0x14, 0x16, 0x1c, 0x1e]);

/** RFC 4514 escaping as @peculiar/x509 applies it (special characters, edge spaces, one control). */
function escapeValue(v: string): string {
  return v
    .replace(/([,+"\\<>;])/g, '\\$1')
    .replace(/^([ #])/, '\\$1')
    .replace(/([ ]$)/, '\\$1')
    .replace(/([\r\n\t])/, (c) => `\\${Buffer.from(c, 'utf8').toString('hex').toUpperCase()}`);
}

/** Name ::= SEQUENCE OF RDN (`body` = the SEQUENCE's contents) as text: `CN=a, O=b`, RDNs in DER order. */
export function renderName(body: Uint8Array): string {
  const rdns = new DerReader(body);
  const parts: string[] = [];
  while (!rdns.done) {
    const rdn = new DerReader(rdns.expect(TAG_SET, 'RelativeDistinguishedName'));
    const atvs: string[] = [];
    while (!rdn.done) {
      const atv = new DerReader(rdn.expect(TAG_SEQUENCE, 'AttributeTypeAndValue'));
      const type = readOid(atv.expect(TAG_OID, 'attribute type'));
      const value = atv.next();
      atv.end('AttributeTypeAndValue');
      const text = TEXT_TAGS.has(value.tag)
        ? escapeValue(readDirectoryString(value))
        : `#${toHex(value.raw)}`;
      atvs.push(`${ATTRIBUTE_NAMES[type] ?? type}=${text}`);
    }
    parts.push(atvs.join('+'));
  }
  return parts.join(', ');
}

/** GeneralName [2] dNSName and [7] iPAddress, both IMPLICIT primitives. */
const GN_DNS = contextTag(2, false);
const GN_IP = contextTag(7, false);

/** The dNSName and iPAddress entries of a subjectAltName extension value, in order. */
export function readSanHosts(extnValue: Uint8Array): { dnsNames: string[]; ipAddresses: string[] } {
  const outer = new DerReader(extnValue);
  const r = new DerReader(outer.expect(TAG_SEQUENCE, 'subjectAltName'));
  outer.end('subjectAltName');
  const dnsNames: string[] = [];
  const ipAddresses: string[] = [];
  while (!r.done) {
    const gn = r.next();
    if (gn.tag === GN_DNS) dnsNames.push(latin1(gn.body));
    else if (gn.tag === GN_IP) ipAddresses.push(formatIp(gn.body));
  }
  return { dnsNames, ipAddresses };
}

/** An iPAddress as text: dotted IPv4, RFC 5952 IPv6 (lower case, the longest zero run as `::`). */
export function formatIp(b: Uint8Array): string {
  if (b.length === 4) return Array.from(b).join('.');
  if (b.length !== 16) throw new DerError(`iPAddress of ${b.length} octets`);
  const groups = Array.from({ length: 8 }, (_, i) =>
    (((b[2 * i] as number) << 8) | (b[2 * i + 1] as number)).toString(16),
  );
  let bestStart = -1;
  let bestLen = 1; // a single zero group is not compressed (RFC 5952 §4.2.2)
  for (let i = 0; i < 8;) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen) [bestStart, bestLen] = [i, j - i];
    i = j;
  }
  if (bestStart < 0) return groups.join(':');
  return `${groups.slice(0, bestStart).join(':')}::${groups.slice(bestStart + bestLen).join(':')}`;
}
