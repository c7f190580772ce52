/** Builds a signed X.509 v2 CRL with a CRL number and authority key identifier. */
import type { KeyObject } from 'node:crypto';
import { CRL_NUMBER_OID, crlReasonCode, encodeDerUnsigned } from '../auth/index.js';
import { x509 } from './x509-setup.js';
import { toSigningKey, webAlgorithmsFor } from './keys.js';

export const REVOCATION_REASONS = [
  'unspecified',
  'keyCompromise',
  'caCompromise',
  'affiliationChanged',
  'superseded',
  'cessationOfOperation',
  'privilegeWithdrawn',
] as const;
export type RevocationReason = (typeof REVOCATION_REASONS)[number];
// Every name `ca revoke` takes has its CRLReason code in auth's table (what readers print).
for (const r of REVOCATION_REASONS)
  if (crlReasonCode(r) === undefined) throw new Error(`revocation reason ${r} has no CRLReason code`);

/** Accepts RFC 5280 names case-insensitively, with or without dashes ('key-compromise'). */
export function parseRevocationReason(s: string): RevocationReason | undefined {
  const k = s.replace(/-/g, '').toLowerCase();
  return REVOCATION_REASONS.find((r) => r.toLowerCase() === k);
}

export interface CrlEntry {
  readonly serial: string;
  readonly revokedAt: Date;
  readonly reason: RevocationReason;
}

export async function buildCrl(opts: {
  caCertificateDer: Uint8Array;
  caPrivateKey: KeyObject;
  crlNumber: bigint;
  thisUpdate: Date;
  nextUpdate: Date;
  entries: readonly CrlEntry[];
}): Promise<Uint8Array> {
  const ca = new x509.X509Certificate(opts.caCertificateDer);
  const crl = await x509.X509CrlGenerator.create({
    issuer: ca.subject,
    thisUpdate: opts.thisUpdate,
    nextUpdate: opts.nextUpdate,
    signingAlgorithm: webAlgorithmsFor(opts.caPrivateKey).signAlg,
    signingKey: await toSigningKey(opts.caPrivateKey),
    entries: opts.entries.map((e) => ({
      serialNumber: e.serial.length % 2 === 1 ? `0${e.serial}` : e.serial,
      revocationDate: e.revokedAt,
      // By code, not x509.X509CrlReason[name]: that enum spells 'cACompromise', so 'caCompromise'
      // used to leave the entry without a reason.
      reason: crlReasonCode(e.reason),
    })),
    extensions: [
      await x509.AuthorityKeyIdentifierExtension.create(ca.publicKey),
      new x509.Extension(CRL_NUMBER_OID, false, encodeDerUnsigned(opts.crlNumber)),
    ],
  });
  return new Uint8Array(crl.rawData);
}
