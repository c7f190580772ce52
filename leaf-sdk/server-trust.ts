/**
 * Which core servers a leaf trusts, and as whom it links to them — LeafClient's mutual TLS:
 * our leaf credentials, the trust anchors and intermediates, and the CRLs for the TLS verifier.
 *
 * The CRLs live in the session's RevocationRegistry, which the verifier reads at every handshake,
 * so a core server a held CRL revokes is refused there (with `requireFreshCrl`, also one whose
 * issuer's CRL is past nextUpdate). CRLs are verified here against our anchors: given as PEM
 * (`trust.crlPem`, `updateCrl`) or sent in band as DER (welcomes, `crlUpdate` frames: verified off
 * the frame path, one batch after another in arrival order). Each server is remembered as the
 * verifier accepted it (certificate, issuer) so that the session can check a live link again when
 * a newer CRL arrives. Which CRL is installed, and what it revokes, is LeafSession's.
 */
import {
  CrlError,
  MutualTls,
  PeerVerifier,
  credentialsFromPem,
  formatIdentity,
  parseCertificatesPem,
  trustAnchorsFromPem,
  verifyCrl,
  verifyCrlPem,
  type AcceptedPeer,
  type CertInfo,
  type RevocationRegistry,
  type VerifiedCrl,
} from '../auth/index.js';
import type { LeafConnectOptions } from './client-api.js';

export interface ServerTrustOptions {
  /** The CRLs held (the session's): read live at every handshake. */
  readonly revocation: RevocationRegistry;
  readonly requireFreshCrl: boolean;
  /** A core server was refused at the handshake as revoked (counted by the client). */
  readonly onRevoked: () => void;
}

export class ServerTrust {
  /** Our identity on links (keyglass://<group>/leaf/<name>). */
  readonly local: string;
  private readonly mtls: MutualTls;
  /** CAs a CRL may come from: our anchors and intermediates. */
  private readonly crlIssuers: readonly CertInfo[];
  /**
   * Core servers as the TLS verifier accepted them, by link identity. Bounded by the core
   * servers' identities (one entry each, the newest certificate).
   */
  private readonly accepted = new Map<string, AcceptedPeer>();
  /** In-band CRLs are verified one batch after another, in arrival order. */
  private crlQueue: Promise<void> = Promise.resolve();

  /** Throws on credentials that do not load or are not a leaf's, and on unreadable trust anchors. */
  constructor(
    target: Pick<LeafConnectOptions, 'credentials' | 'trust'>,
    private readonly opts: ServerTrustOptions,
  ) {
    const c = target.credentials;
    const creds = 'privateKey' in c ? c : credentialsFromPem(c.certPem, c.keyPem, c.passphrase);
    if (creds.identity === undefined || creds.identity.role !== 'leaf')
      throw new RangeError(
        'LeafClient: credentials must carry a leaf identity (keyglass://<group>/leaf/<name>)',
      );
    const anchors = trustAnchorsFromPem(target.trust.caPem);
    const intermediates =
      target.trust.intermediatesPem !== undefined ? parseCertificatesPem(target.trust.intermediatesPem) : [];
    this.crlIssuers = [...anchors, ...intermediates];
    const verifier = new PeerVerifier({
      anchors,
      intermediates,
      group: target.trust.group ?? creds.identity.group,
      revocation: opts.revocation,
      refuseStaleCrl: opts.requireFreshCrl,
    });
    this.mtls = new MutualTls(creds, verifier);
    this.local = formatIdentity(creds.identity);
  }

  /** node:tls context options for links to core servers (our certificate and key). */
  tlsOptions(): ReturnType<MutualTls['contextOptions']> {
    return this.mtls.contextOptions();
  }

  /** The TLS transport's `identify`: only a `core` server of our group, not revoked, is accepted. */
  identifyServer(): ReturnType<MutualTls['transportIdentify']> {
    return this.mtls.transportIdentify(
      { roles: ['core'], peerSide: 'server' },
      (reason) => {
        if (reason === 'revoked') this.opts.onRevoked();
      },
      (peer) => this.accepted.set(formatIdentity(peer.identity), peer),
    );
  }

  /** The server `peer` (link identity) as the verifier last accepted it. */
  acceptedServer(peer: string): AcceptedPeer | undefined {
    return this.accepted.get(peer);
  }

  /** Verifies the CRL(s) of a PEM text; CrlError if one does not verify or there is none. */
  async verifyPem(pem: string): Promise<VerifiedCrl[]> {
    const verified = await verifyCrlPem(pem, this.crlIssuers);
    if (verified.length === 0) throw new CrlError('no X509 CRL PEM block');
    return verified;
  }

  /**
   * Verifies CRLs a server sent (DER) after the batches before them; `done` gets those that
   * verified and why each other one did not. `failed`: an error that is not a CRL's fault.
   */
  verifyInOrder(
    ders: readonly Uint8Array[],
    done: (verified: VerifiedCrl[], invalid: string[]) => void,
    failed: (error: Error) => void,
  ): void {
    this.crlQueue = this.crlQueue
      .then(async () => {
        const verified: VerifiedCrl[] = [];
        const invalid: string[] = [];
        for (const der of ders) {
          try {
            verified.push(await verifyCrl(der, this.crlIssuers));
          } catch (e) {
            if (!(e instanceof CrlError)) throw e;
            invalid.push(e.message);
          }
        }
        done(verified, invalid);
      })
      .catch((e: unknown) => failed(e as Error));
  }
}
