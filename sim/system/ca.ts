/**
 * The system simulation's certificate authority: it revokes leaf and core-server serials by
 * issuing numbered CRLs, as `keyglass ca revoke` does. The machines take VerifiedCrl values: a
 * server's registry holds the newest one it loaded, a leaf session installs what its host verified.
 * A CRL's `der` stands for the signed bytes — a seeded identifier, not a DER encoding — and
 * "verifying" one (the host's job, against its trust anchors) is finding it among those this CA
 * issued: a forged or altered CRL is unknown and fails. No protocol logic: which CRL wins, what it
 * revokes and what follows are the shipped registry's and session's.
 */
import type { AcceptedPeer, CertInfo, VerifiedCrl } from '../../auth/index.js';
import { Rng } from '../../net/sim/index.js';

/** Time the CRLs cover (their nextUpdate is far after any run). */
const VALIDITY_MS = 30 * 24 * 3600 * 1000;

export class SimCa {
  /** The CA certificate as a verifier reports it: only `sha256` (the registry's key) and the serial are read. */
  readonly issuer = { sha256: 'keyglass-sim-ca', serial: '1', commonName: 'sim-ca' } as unknown as CertInfo;
  private readonly issued = new Map<string, VerifiedCrl>();
  private readonly rng: Rng;
  private revokedSerials = new Map<string, { serial: string }>();
  private newest: VerifiedCrl | undefined;

  constructor(seed: number) {
    this.rng = Rng.seeded(seed).fork('sim-ca');
  }

  /** The CRLs issued so far, oldest first (a rollback replays an older one). */
  readonly history: VerifiedCrl[] = [];

  /** The newest CRL (none before the first revocation). */
  get current(): VerifiedCrl | undefined {
    return this.newest;
  }

  isRevoked(serial: string): boolean {
    return this.revokedSerials.has(serial);
  }

  /** Issues the next CRL, which adds `serials`; returns it. */
  revoke(serials: readonly string[], nowMs: number): VerifiedCrl {
    this.revokedSerials = new Map(this.revokedSerials);
    for (const s of serials) this.revokedSerials.set(s, { serial: s });
    const crlNumber = BigInt(this.history.length + 1);
    const der = this.rng.bytes(48);
    der.set(new TextEncoder().encode(`sim-crl ${crlNumber}`));
    const crl = {
      issuer: this.issuer,
      thisUpdate: new Date(nowMs),
      nextUpdate: new Date(nowMs + VALIDITY_MS),
      crlNumber,
      revoked: this.revokedSerials,
      der,
    } as unknown as VerifiedCrl;
    this.issued.set(hex(der), crl);
    this.history.push(crl);
    this.newest = crl;
    return crl;
  }

  /** What a host's verification of in-band CRL bytes finds: the CRL this CA issued, or why not. */
  verify(der: Uint8Array): VerifiedCrl | string {
    return this.issued.get(hex(der)) ?? 'not signed by the sim CA';
  }

  /** A server certificate as a leaf's TLS verifier accepted it (serial `serial`, issued by this CA). */
  acceptedServer(name: string, serial: string): AcceptedPeer {
    return {
      ok: true,
      identity: { kind: 'core', name },
      certificate: { serial, commonName: name, sha256: `sim-cert-${serial}` },
      issuer: this.issuer,
    } as unknown as AcceptedPeer;
  }
}

function hex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}
