/** `keyglass ca inspect`: a structured description of a certificate, CSR or CRL PEM file. */
import { createPublicKey } from 'node:crypto';
import {
  crlReasonName,
  parseCrl,
  describeKey,
  parseCertificate,
  parsePem,
  PemError,
  CertificateParseError,
} from '../auth/index.js';
import { x509 } from './x509-setup.js';
import { CaError } from './errors.js';

export type Inspection =
  | {
      kind: 'certificate';
      serial: string;
      subject: string;
      issuer: string;
      notBefore: string;
      notAfter: string;
      isCa: boolean;
      key: string;
      identity: string | null;
      sanUris: string[];
      dnsNames: string[];
      ipAddresses: string[];
      extKeyUsage: string[] | null;
      sha256: string;
    }
  | { kind: 'csr'; subject: string; key: string; signatureValid: boolean }
  | {
      kind: 'crl';
      issuer: string;
      thisUpdate: string;
      nextUpdate: string | null;
      crlNumber: string | null;
      /** `reason` by name as `ca list` shows it (keyCompromise…), `reasonCode` as the CRL holds it. */
      revoked: { serial: string; revokedAt: string; reason: string; reasonCode: number }[];
    };

const keyText = (kd: { keyKind: string; keyDetail: string }): string =>
  kd.keyKind === kd.keyDetail ? kd.keyKind : `${kd.keyKind} ${kd.keyDetail}`;

export async function inspectPem(text: string): Promise<Inspection[]> {
  let blocks;
  try {
    blocks = parsePem(text);
  } catch (e) {
    throw new CaError(e instanceof PemError ? e.message : String(e));
  }
  const out: Inspection[] = [];
  for (const b of blocks) {
    try {
      if (b.label === 'CERTIFICATE') {
        const c = parseCertificate(b.der);
        out.push({
          kind: 'certificate',
          serial: c.serial,
          subject: c.subject,
          issuer: c.issuer,
          notBefore: c.notBefore.toISOString(),
          notAfter: c.notAfter.toISOString(),
          isCa: c.isCa,
          key: keyText(c),
          identity: c.identity ? `${c.identity.group}/${c.identity.role}/${c.identity.name}` : null,
          sanUris: [...c.sanUris],
          dnsNames: [...c.dnsNames],
          ipAddresses: [...c.ipAddresses],
          extKeyUsage: c.extKeyUsage ? [...c.extKeyUsage] : null,
          sha256: c.sha256,
        });
      } else if (b.label === 'CERTIFICATE REQUEST' || b.label === 'NEW CERTIFICATE REQUEST') {
        const csr = new x509.Pkcs10CertificateRequest(b.der);
        const key = createPublicKey({ key: Buffer.from(csr.publicKey.rawData), format: 'der', type: 'spki' });
        let signatureValid = false;
        try {
          signatureValid = await csr.verify();
        } catch {
          signatureValid = false;
        }
        out.push({ kind: 'csr', subject: csr.subject, key: keyText(describeKey(key)), signatureValid });
      } else if (b.label === 'X509 CRL') {
        const crl = parseCrl(b.der);
        out.push({
          kind: 'crl',
          issuer: crl.issuer,
          thisUpdate: crl.thisUpdate.toISOString(),
          nextUpdate: crl.nextUpdate?.toISOString() ?? null,
          crlNumber: crl.crlNumber?.toString() ?? null,
          revoked: crl.entries.map((e) => ({
            serial: e.serial,
            revokedAt: e.revokedAt.toISOString(),
            reason: crlReasonName(e.reasonCode),
            reasonCode: e.reasonCode,
          })),
        });
      } else {
        throw new CaError(`cannot inspect a '${b.label}' PEM block`);
      }
    } catch (e) {
      if (e instanceof CaError) throw e;
      const msg = e instanceof CertificateParseError ? e.message : (e as Error).message.split('\n')[0];
      throw new CaError(`malformed ${b.label}: ${msg}`);
    }
  }
  return out;
}

export function formatInspection(i: Inspection): string {
  switch (i.kind) {
    case 'certificate':
      return [
        `certificate ${i.serial}${i.isCa ? ' (CA)' : ''}`,
        `  subject:   ${i.subject}`,
        `  issuer:    ${i.issuer}`,
        `  valid:     ${i.notBefore} .. ${i.notAfter}`,
        `  key:       ${i.key}`,
        `  identity:  ${i.identity ?? '(none)'}`,
        ...(i.dnsNames.length + i.ipAddresses.length > 0
          ? [`  hosts:     ${[...i.dnsNames, ...i.ipAddresses].join(', ')}`]
          : []),
        `  sha256:    ${i.sha256}`,
      ].join('\n');
    case 'csr':
      return [
        `certificate request`,
        `  subject:   ${i.subject}`,
        `  key:       ${i.key}`,
        `  signature: ${i.signatureValid ? 'valid' : 'INVALID'}`,
      ].join('\n');
    case 'crl':
      return [
        `CRL number ${i.crlNumber ?? '(none)'}`,
        `  issuer:    ${i.issuer}`,
        `  updated:   ${i.thisUpdate}, next ${i.nextUpdate ?? '(none)'}`,
        `  revoked:   ${i.revoked.length}`,
        ...i.revoked.map((r) => `    ${r.serial}  ${r.revokedAt}  ${r.reason}`),
      ].join('\n');
  }
}
