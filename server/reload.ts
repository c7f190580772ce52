/**
 * SIGHUP: what a running key server takes from its config files again — trust anchors, its own
 * certificate and key, the CRL (crl-watch.ts) and the log level — and what needs a restart.
 * Every piece is checked as at start-up; a bad one keeps its old value and says why, the others
 * still apply. planReload loads and compares; TrustInForce holds the anchors and credentials in
 * force and builds each port's TLS from them; KeyServer applies a plan.
 */
import {
  CredentialError,
  MutualTls,
  PeerVerifier,
  loadCredentials,
  loadTrustAnchors,
  type CertInfo,
  type Credentials,
  type RevocationRegistry,
} from '../auth/index.js';
import type { ServerConfig } from './config.js';
import type { Logger } from './log.js';

/** Fields a reload applies; any other change is reported as needing a restart. */
const RELOADED_FIELDS = new Set(['credentials', 'trustAnchors', 'logLevel']);

export interface ReloadPlan {
  /** New trust anchors, when the file changed and loads. */
  readonly anchors?: readonly CertInfo[];
  /** New credentials, when the certificate or key changed and they load and fit this server. */
  readonly creds?: Credentials;
  /** Human-readable changes that will apply. */
  readonly changes: string[];
  /** Pieces refused, with why (their old value stays). */
  readonly problems: string[];
  /** Changed fields that take effect only after a restart. */
  readonly restartNeeded: string[];
}

const sameDer = (a: readonly CertInfo[], b: readonly CertInfo[]): boolean =>
  a.length === b.length && a.every((x, i) => Buffer.from(x.der).equals(Buffer.from(b[i]!.der)));

/**
 * Loads what `next` names and compares it with what runs (`current`, `anchors`, `creds`).
 * Never throws for a bad file: it lands in `problems`.
 */
export function planReload(
  current: ServerConfig,
  next: ServerConfig,
  anchors: readonly CertInfo[],
  creds: Credentials,
): ReloadPlan {
  const changes: string[] = [];
  const problems: string[] = [];
  const restartNeeded = Object.keys(next).filter(
    (k) =>
      !RELOADED_FIELDS.has(k) &&
      JSON.stringify((current as unknown as Record<string, unknown>)[k], mapsAsObjects) !==
        JSON.stringify((next as unknown as Record<string, unknown>)[k], mapsAsObjects),
  );
  let newAnchors: readonly CertInfo[] | undefined;
  try {
    const loaded = loadTrustAnchors(next.trustAnchors);
    if (loaded.length === 0)
      throw new CredentialError('malformed', `trustAnchors: ${next.trustAnchors} holds no certificate`);
    if (!sameDer(loaded, anchors)) {
      newAnchors = loaded;
      changes.push(`trustAnchors: ${loaded.length} anchor(s) from ${next.trustAnchors}`);
    }
  } catch (e) {
    problems.push(`trustAnchors: ${(e as Error).message}`);
  }
  let newCreds: Credentials | undefined;
  try {
    const loaded = loadCredentials({
      certFile: next.credentials.cert,
      keyFile: next.credentials.key,
      ...(next.credentials.passphrase !== undefined ? { passphrase: next.credentials.passphrase } : {}),
    });
    const id = loaded.identity;
    const want = creds.identity;
    if (
      id === undefined ||
      want === undefined ||
      id.group !== want.group ||
      id.role !== want.role ||
      id.name !== want.name
    )
      throw new Error(
        `${next.credentials.cert} names ${id ? `${id.group}/${id.role}/${id.name}` : 'no identity'}, this server is ${want ? `${want.group}/${want.role}/${want.name}` : '?'}`,
      );
    if (loaded.certChainPem !== creds.certChainPem || loaded.keyPem !== creds.keyPem) {
      newCreds = loaded;
      const keyChanged = !loaded.privateKey.equals(creds.privateKey);
      changes.push(
        `certificate: serial ${loaded.certificate.serial}, not after ${loaded.certificate.notAfter.toISOString()}${keyChanged ? ', new key' : ''}`,
      );
    }
  } catch (e) {
    problems.push(`credentials: ${(e as Error).message}`);
  }
  if (next.logLevel !== current.logLevel) changes.push(`logLevel: ${current.logLevel} → ${next.logLevel}`);
  return {
    ...(newAnchors !== undefined ? { anchors: newAnchors } : {}),
    ...(newCreds !== undefined ? { creds: newCreds } : {}),
    changes,
    problems,
    restartNeeded,
  };
}

/** The trust anchors and credentials a running server uses; a reload replaces them (take). */
export class TrustInForce {
  /**
   * The credentials the core port presents. Their key is this server's core identity key (peers
   * verify its pairwise offers against the certificate of the link), which the stack holds for
   * the process lifetime: a reloaded certificate with the SAME key replaces these; one with a new
   * key serves the leaf port only, until a restart.
   */
  private coreCreds: Credentials;

  constructor(
    /** The credentials the leaf port presents: the newest that loaded. */
    public creds: Credentials,
    public anchors: readonly CertInfo[],
    private readonly revocation: RevocationRegistry,
    /** Peers are of this group and pass this admission policy. */
    private readonly cfg: Pick<ServerConfig, 'group' | 'admissionPolicy'>,
  ) {
    this.coreCreds = creds;
  }

  /** The TLS of each port, from the anchors and credentials in force (one verifier for both). */
  mutualTls(): { core: MutualTls; leaf: MutualTls } {
    const { group, admissionPolicy: policy } = this.cfg;
    const verifier = new PeerVerifier({
      anchors: this.anchors,
      group,
      revocation: this.revocation,
      ...(policy !== undefined ? { policy } : {}),
    });
    const leaf = new MutualTls(this.creds, verifier);
    return { core: this.coreCreds === this.creds ? leaf : new MutualTls(this.coreCreds, verifier), leaf };
  }

  /** Takes the anchors and credentials of `plan`; returns whether anything changed. */
  take(plan: ReloadPlan, log: Logger): boolean {
    if (plan.anchors === undefined && plan.creds === undefined) return false;
    if (plan.anchors !== undefined) this.anchors = plan.anchors;
    if (plan.creds !== undefined) {
      this.creds = plan.creds;
      if (plan.creds.privateKey.equals(this.coreCreds.privateKey)) this.coreCreds = plan.creds;
      else
        log.warn(
          'reload: new key serves the leaf port; core links keep the old certificate until a restart',
          {
            detail: "the certificate key is this server's core identity key, fixed for the process lifetime",
          },
        );
    }
    return true;
  }
}

function mapsAsObjects(_key: string, value: unknown): unknown {
  return value instanceof Map ? Object.fromEntries(value) : value;
}
