/**
 * PKCS#12 bundles for Java keystores and Windows tooling. node-forge's own `toPkcs12Asn1`
 * accepts only RSA keys (it re-encodes the key and certificate itself), so we assemble the
 * PFX with forge's ASN.1 layer and keep the contents opaque: the certificates go in as
 * their DER, the key as node's PKCS#8 EncryptedPrivateKeyInfo (PBES2, PBKDF2-HMAC-SHA256,
 * AES-256-CBC — what OpenSSL 3 writes), and the MAC is HMAC-SHA256 under the RFC 7292
 * PKCS#12 key derivation. Works for Ed25519, P-256 and RSA alike.
 */
import { createHash, createHmac, randomBytes, type KeyObject } from 'node:crypto';
import forge from 'node-forge';

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
const MAC_ITERATIONS = 2048;

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
  if (input.password.length === 0) throw new RangeError('a PKCS#12 bundle needs a non-empty password');
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
  const encryptedKey = input.privateKey.export({
    format: 'der',
    type: 'pkcs8',
    cipher: 'aes-256-cbc',
    passphrase: input.password,
  });
  const keyBag = seq([oid(OID.pkcs8ShroudedKeyBag), explicit0(asn1.fromDer(bin(encryptedKey))), set(attrs)]);
  const authSafe = seq([dataContentInfo(seq(certBags)), dataContentInfo(seq([keyBag]))]);
  const authSafeDer = der(authSafe);

  const salt = randomBytes(16);
  const macKey = forge.pkcs12.generateKey(
    input.password,
    new forge.util.ByteStringBuffer(bin(salt)),
    3,
    MAC_ITERATIONS,
    32,
    forge.md.sha256.create(),
  );
  const mac = createHmac('sha256', Buffer.from(macKey.getBytes(), 'latin1'))
    .update(Buffer.from(authSafeDer, 'latin1'))
    .digest();
  const macData = seq([
    seq([seq([oid(OID.sha256), asn1.create(U, T.NULL, false, '')]), octets(bin(mac))]),
    octets(bin(salt)),
    integer(MAC_ITERATIONS),
  ]);
  const pfx = seq([integer(3), seq([oid(OID.data), explicit0(octets(authSafeDer))]), macData]);
  return new Uint8Array(Buffer.from(der(pfx), 'latin1'));
}
