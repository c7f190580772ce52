/** auth/ — identities, X.509 credential verification, admission policy, revocation, mutual TLS. */
export {
  ROLES,
  isRole,
  isValidName,
  identityUri,
  parseIdentityUri,
  formatIdentity,
  type Identity,
  type Role,
} from './identity.js';
export { REFUSAL_REASONS, PeerRefusedError, reasonFromNodeTlsCode, type RefusalReason } from './refusal.js';
export { parsePem, toPem, pemBlocksOf, PemError, MAX_PEM_FILE_BYTES, type PemBlock } from './pem.js';
export {
  parseCertificate,
  parseCertificatesPem,
  normalizeSerial,
  isIssuedBy,
  describeKey,
  CertificateParseError,
  EKU_SERVER_AUTH,
  EKU_CLIENT_AUTH,
  KU_DIGITAL_SIGNATURE,
  KU_KEY_CERT_SIGN,
  KU_CRL_SIGN,
  type CertInfo,
  type KeyKind,
  type KeyDescription,
} from './certificate.js';
export {
  verifyCrl,
  verifyCrlPem,
  parseCrl,
  CRL_REASON_NAMES,
  crlReasonName,
  crlReasonCode,
  RevocationRegistry,
  readCrlFile,
  CrlError,
  CRL_NUMBER_OID,
  encodeDerUnsigned,
  decodeDerUnsigned,
  type VerifiedCrl,
  type RevokedEntry,
  type RevocationStatus,
  type NewlyRevoked,
  type ParsedCrl,
  type CrlEntryRead,
} from './crl.js';
export {
  PeerVerifier,
  keyWeakness,
  DEFAULT_CLOCK_SKEW_MS,
  DEFAULT_PATH_CACHE_SIZE,
  MIN_RSA_BITS,
  type VerifierOptions,
  type PeerExpectation,
  type PeerVerdict,
  type AcceptedPeer,
  type RefusedPeer,
} from './verify.js';
export {
  parseAdmissionPolicy,
  policyRefusal,
  globMatch,
  ADMIT_ALL_POLICY,
  PolicyError,
  type AdmissionPolicy,
  type GroupRule,
} from './policy.js';
export {
  loadCredentials,
  credentialsFromPem,
  loadTrustAnchors,
  trustAnchorsFromPem,
  decodePrivateKey,
  encodePrivateKey,
  describeKeyProtection,
  weakKeyFileWarning,
  checkNewPassphrase,
  newPassphraseProblem,
  MIN_PASSPHRASE_CHARS,
  keyMatchesCertificate,
  readTextFile,
  CredentialError,
  KEY_CIPHER,
  type Credentials,
  type CredentialFiles,
  type CredentialErrorKind,
} from './credentials.js';
export {
  encryptPkcs8,
  keyProtectionWeakness,
  keyProtectionWarning,
  reencryptHint,
  KEY_KDF_ITERATIONS,
  MAX_KEY_KDF_ITERATIONS,
  type KeyProtection,
} from './key-encryption.js';
export {
  MutualTls,
  chainFromPeerCertificate,
  DEFAULT_HANDSHAKE_TIMEOUT_MS,
  type ServerHandlers,
  type ConnectOptions,
  type RefusalEvent,
} from './mtls.js';
export { LiveConnections, type EvictionHandler } from './live-connections.js';
export {
  stageFile,
  writeFileDurable,
  writeFilesDurable,
  ensureDir,
  SECRET_FILE_MODE,
  PUBLIC_FILE_MODE,
  type StagedFile,
} from './durable-file.js';
export { withDirLock, lockDirForProcess, DirLockedError, type DirLock } from './dir-lock.js';
