/**
 * PKCS#12 bundles for Java keystores and Windows tooling. node-forge's own `toPkcs12Asn1`
 * accepts only RSA keys (it re-encodes the key and certificate itself), so we assemble the
 * PFX with forge's ASN.1 layer and keep the contents opaque: the certificates go in as
 * their DER, the key as the same EncryptedPrivateKeyInfo as our key files (PBES2,
 * PBKDF2-HMAC-SHA256 at KEY_KDF_ITERATIONS, AES-256-CBC), and the MAC is HMAC-SHA256 under the
 * RFC 7292 PKCS#12 key derivation at as many iterations. The MAC matters as much as the key
 * bag: it is keyed by the same password, so a cheap MAC would be a cheap offline guessing
 * oracle. Works for Ed25519, P-256 and RSA alike; `openssl pkcs12` (3.0) reads it without -legacy.
 */
import { createHash, createHmac, randomBytes, type KeyObject } from 'node:crypto';
import forge from 'node-forge';
import { checkNewPassphrase, encryptPkcs8, KEY_KDF_ITERATIONS } from '../auth/index.js';

const { asn1 } = forge;
const OID = {
  data: '1.2.840.113549.1.7.1',
  pkcs8ShroudedKeyBag: '1.2.840.113549.1.12.10.1.2',
  certBag: '1.2.840.113549.1.12.10.1.3',
  x509Certificate: '1.2.840.113549.1.9.22.1',
  localKeyId: '1.2.840.113549.1.9.21',
  friendlyName: '1.2.840.113549.1.9.20',
  sha256: '2.16.840.1.101.3.4.2.1',
};
/**
 * Each PKCS#12-KDF iteration is one SHA-256 compression, half of a PBKDF2-HMAC iteration, so
 * a guess against the MAC costs an attacker about half a guess against the key bag. Not more:
 * node hashes one block per call (~0.7 s for 600,000 here), and some PKCS#12 readers cap the count.
 */
const MAC_ITERATIONS = KEY_KDF_ITERATIONS;

type Asn1 = forge.asn1.Asn1;
const U = asn1.Class.UNIVERSAL;
const T = asn1.Type;
const bin = (b: Uint8Array): string => Buffer.from(b).toString('latin1');
const seq = (items: Asn1[]): Asn1 => asn1.create(U, T.SEQUENCE, true, items);
const set = (items: Asn1[]): Asn1 => asn1.create(U, T.SET, true, items);
const oid = (o: string): Asn1 => asn1.create(U, T.OID, false, asn1.oidToDer(o).getBytes());
const octets = (b: string): Asn1 => asn1.create(U, T.OCTETSTRING, false, b);
const explicit0 = (inner: Asn1): Asn1 => asn1.create(asn1.Class.CONTEXT_SPECIFIC, 0, true, [inner]);
const integer = (n: number): Asn1 => asn1.create(U, T.INTEGER, false, asn1.integerToDer(n).getBytes());
const der = (a: Asn1): string => asn1.toDer(a).getBytes();

/** ContentInfo of type data wrapping a SafeContents. */
const dataContentInfo = (safeContents: Asn1): Asn1 =>
  seq([oid(OID.data), explicit0(octets(der(safeContents)))]);

export interface Pkcs12Input {
  readonly privateKey: KeyObject;
  /** Leaf first, then the CA chain. */
  readonly certificatesDer: readonly Uint8Array[];
  readonly password: string;
  readonly friendlyName?: string;
}

export function buildPkcs12(input: Pkcs12Input): Uint8Array {
  checkNewPassphrase(input.password, 'PKCS#12 password');
  const leaf = input.certificatesDer[0];
  if (!leaf) throw new RangeError('a PKCS#12 bundle needs the certificate');
  const attrs: Asn1[] = [
    seq([oid(OID.localKeyId), set([octets(bin(createHash('sha1').update(leaf).digest()))])]),
  ];
  if (input.friendlyName) {
    attrs.push(seq([oid(OID.friendlyName), set([asn1.create(U, T.BMPSTRING, false, input.friendlyName)])]));
  }
  const certBags = input.certificatesDer.map((c, i) =>
    seq([
      oid(OID.certBag),
      explicit0(seq([oid(OID.x509Certificate), explicit0(octets(bin(c)))])),
      ...(i === 0 ? [set(attrs)] : []),
    ]),
  );
  const encryptedKey = encryptPkcs8(
    input.privateKey.export({ format: 'der', type: 'pkcs8' }),
    input.password,
  );
  const keyBag = seq([oid(OID.pkcs8ShroudedKeyBag), explicit0(asn1.fromDer(bin(encryptedKey))), set(attrs)]);
  const authSafe = seq([dataContentInfo(seq(certBags)), dataContentInfo(seq([keyBag]))]);
  const authSafeDer = der(authSafe);

  const salt = randomBytes(16);
  const macKey = pkcs12MacKey(input.password, salt, MAC_ITERATIONS);
  const mac = createHmac('sha256', macKey).update(Buffer.from(authSafeDer, 'latin1')).digest();
  macKey.fill(0);
  const macData = seq([
    seq([seq([oid(OID.sha256), asn1.create(U, T.NULL, false, '')]), octets(bin(mac))]),
    octets(bin(salt)),
    integer(MAC_ITERATIONS),
  ]);
  const pfx = seq([integer(3), seq([oid(OID.data), explicit0(octets(authSafeDer))]), macData]);
  return new Uint8Array(Buffer.from(der(pfx), 'latin1'));
}

/**
 * RFC 7292 B.2 with SHA-256 (u = 32, v = 64), ID 3 (MAC key), for a 32-byte key: one block A1,
 * so no I-adjustment rounds. forge's generateKey does the same in JavaScript, ~3x slower.
 */
function pkcs12MacKey(password: string, salt: Buffer, iterations: number): Buffer {
  const v = 64;
  // BMPString (UTF-16BE) with a two-byte NUL terminator, as RFC 7292 B.1 and OpenSSL encode it.
  const pw = Buffer.concat([Buffer.from(password, 'utf16le').swap16(), Buffer.alloc(2)]);
  const repeat = (b: Buffer): Buffer => {
    const out = Buffer.alloc(v * Math.ceil(b.length / v));
    for (let i = 0; i < out.length; i++) out[i] = b[i % b.length] as number;
    return out;
  };
  let a = createHash('sha256').update(Buffer.alloc(v, 3)).update(repeat(salt)).update(repeat(pw)).digest();
  for (let i = 1; i < iterations; i++) a = createHash('sha256').update(a).digest();
  return a;
}
