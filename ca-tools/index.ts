/** ca-tools/ — the certificate authority behind `keyglass ca`: issuance, revocation, CRLs, the on-disk store. */
export {
  CertificateAuthority,
  caPaths,
  DEFAULT_CA_DAYS,
  DEFAULT_CERT_DAYS,
  DEFAULT_CRL_DAYS,
  BACKDATE_MS,
  MAX_ISSUE_BATCH,
  type CaPaths,
  type InitOptions,
  type IssueRequest,
  type IssueResult,
  type RevokeSelector,
} from './authority.js';
export { CaError } from './errors.js';
export {
  KEY_ALGORITHMS,
  DEFAULT_KEY_ALGORITHM,
  isKeyAlgorithm,
  generateKeyPair,
  type KeyAlgorithm,
  type KeyPair,
} from './keys.js';
export {
  buildCertificate,
  randomSerial,
  CA_KEY_USAGE,
  MEMBER_KEY_USAGE,
  MEMBER_EKU,
  type CertificateSpec,
  type Issuer,
} from './certificate-builder.js';
export {
  buildCrl,
  parseRevocationReason,
  REVOCATION_REASONS,
  type RevocationReason,
  type CrlEntry,
} from './crl-builder.js';
export { verifyCsr, type VerifiedCsr } from './csr.js';
export { buildPkcs12, type Pkcs12Input } from './pkcs12.js';
export { inspectPem, formatInspection, type Inspection } from './inspect.js';
export { effectiveStatus, type CertRecord, type CertStatus, type StoreData } from './store.js';
export { x509 } from './x509-setup.js';
