/**
 * The CRL file of a running key server: polled (`crlPollMs`) and loaded again on change and on
 * SIGHUP. A CRL that does not verify against the trust anchors in force is logged and the one in
 * force stays. One that loads goes to the leaf port (its TLS thread judges leaf certificates with
 * it) and to the leaf plane (welcomes and crlUpdates carry it); each newly revoked serial cuts
 * off the core peers that linked with it (core-mesh.ts) and the leaves that hold it, and the leaf
 * plane starts the full refresh a revoked core server calls for.
 */
import { unwatchFile, watchFile } from 'node:fs';
import { CrlError, readCrlFile, type CertInfo, type RevocationRegistry } from '../auth/index.js';
import type { ServerPlane } from '../leaf-plane/index.js';
import type { CoreMesh } from './core-mesh.js';
import type { GuardedEvents } from './guarded-events.js';
import type { LeafPort } from './leaf-port.js';
import type { Logger } from './log.js';
import type { ServerMetrics } from './metrics.js';

export interface CrlWatchOptions {
  /** The CRL file (config `crl`) and how often it is polled for a change. */
  readonly path: string;
  readonly pollMs: number;
  readonly revocation: RevocationRegistry;
  /** The trust anchors in force (a reload replaces them): a CRL must verify against them. */
  anchors(): readonly CertInfo[];
  readonly mesh: Pick<CoreMesh, 'revoke'>;
  readonly leafPort: Pick<LeafPort, 'crlLoaded'>;
  readonly plane: Pick<ServerPlane, 'crlInstalled' | 'pushCrl' | 'revoked'>;
  readonly metrics: ServerMetrics;
  readonly log: Logger;
  /** Runs the reloads the file watch starts: an unexpected failure is logged, not left unhandled. */
  readonly events: Pick<GuardedEvents, 'settle'>;
}

export class CrlWatch {
  private watching = false;

  constructor(private readonly opts: CrlWatchOptions) {}

  /** Polls the file from now on: a change loads it again. */
  start(): void {
    if (this.watching) return;
    this.watching = true;
    watchFile(this.opts.path, { interval: this.opts.pollMs, persistent: false }, () =>
      this.opts.events.settle('CRL reload', this.reload()),
    );
  }

  stop(): void {
    if (!this.watching) return;
    this.watching = false;
    unwatchFile(this.opts.path);
  }

  /** Loads the file again and applies what it newly revokes. */
  async reload(): Promise<void> {
    const { path, revocation, plane, metrics, log } = this.opts;
    let fresh;
    let pem;
    try {
      pem = await readCrlFile(path);
      fresh = await revocation.load(pem, this.opts.anchors());
    } catch (e) {
      if (!(e instanceof CrlError)) throw e;
      log.warn('CRL not reloaded', { path, error: e.message });
      return;
    }
    const changed = this.installed(pem, fresh.length > 0);
    log.info('CRL reloaded', { path, newlyRevoked: fresh.length });
    if (changed) log.info('CRL going out to linked leaves', { leaves: plane.pushCrl(Date.now()) });
    if (fresh.length === 0) return;
    metrics.revocations.inc(fresh.length);
    const serials = new Set(fresh.map((r) => r.serial));
    const coreServers = this.opts.mesh.revoke(serials);
    for (const name of plane.revoked(serials, coreServers, Date.now()))
      log.info('revoked leaf disconnected', { leaf: name });
  }

  /**
   * A CRL text the registry took (at start, or by reload): to the leaf port's TLS thread, and the
   * leaf plane takes the CRLs in force for its leaves. Returns whether what leaves get in band changed.
   */
  installed(pem: string, revokedSomething: boolean): boolean {
    this.opts.leafPort.crlLoaded(pem, revokedSomething);
    this.opts.metrics.crlsInstalled(this.opts.revocation.installed());
    return this.opts.plane.crlInstalled();
  }
}
