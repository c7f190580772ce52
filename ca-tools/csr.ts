/**
 * PKCS#10 certificate requests: a member generates its key on its own machine and sends
 * only the CSR. The CA takes the public key from it after checking the request's
 * self-signature (proof the requester holds the key) and the key's strength; the
 * identity (name, group, role) comes from the operator's command, never from the CSR.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { keyWeakness, describeKey, parsePem, PemError } from '../auth/index.js';
import { x509 } from './x509-setup.js';
import { CaError } from './errors.js';

export interface VerifiedCsr {
  readonly subject: string;
  readonly publicKey: KeyObject;
}

export async function verifyCsr(pem: string): Promise<VerifiedCsr> {
  let blocks;
  try {
    blocks = parsePem(pem);
  } catch (e) {
    throw new CaError(`CSR: ${e instanceof PemError ? e.message : String(e)}`);
  }
  const block = blocks[0];
  if (
    blocks.length !== 1 ||
    !block ||
    (block.label !== 'CERTIFICATE REQUEST' && block.label !== 'NEW CERTIFICATE REQUEST')
  ) {
    throw new CaError('CSR: expected exactly one CERTIFICATE REQUEST PEM block');
  }
  let csr: InstanceType<typeof x509.Pkcs10CertificateRequest>;
  let publicKey: KeyObject;
  try {
    csr = new x509.Pkcs10CertificateRequest(block.der);
    publicKey = createPublicKey({ key: Buffer.from(csr.publicKey.rawData), format: 'der', type: 'spki' });
  } catch (e) {
    throw new CaError(`CSR does not parse (${(e as Error).message.split('\n')[0]})`);
  }
  let valid = false;
  try {
    valid = await csr.verify();
  } catch {
    valid = false;
  }
  if (!valid)
    throw new CaError('CSR signature does not verify (the request was altered or not signed by its key)');
  const weak = keyWeakness(describeKey(publicKey));
  if (weak) throw new CaError(`CSR key refused: ${weak}`);
  return { subject: csr.subject, publicKey };
}
