/**
 * Readiness of a key server, for `/readyz` and for operators: ready only while it is in a
 * primary view AND holds that view's committed core key. The stack installs a view only after
 * the state transfer that admits this server (GroupApp.setState precedes the view upcall), so a
 * keyed primary view also means any state transfer is done; the view upcall reports a transfer
 * still in progress anyway (`stateTransfer`), should the stack ever install first.
 *
 * Out of the primary component for longer than `warnAfterMs`, the server logs a warning once a
 * minute: a lone server can be live (healthz) yet useless for a long time, and a page should
 * not depend on someone watching a dashboard. Gauges: `keyglass_primary` (1 in a primary view)
 * and `keyglass_seconds_since_primary` (0 while primary; since start when never primary).
 */
import { Gauge, type Registry } from 'prom-client';
import type { Logger } from './log.js';

/** Warn when out of the primary component for this long, then every WARN_EVERY_MS. */
export const NOT_PRIMARY_WARN_AFTER_MS = 60_000;
const WARN_EVERY_MS = 60_000;

export type NotReadyReason = 'starting' | 'stopping' | 'not-primary' | 'no-core-key' | 'state-transfer';

export interface ReadinessReport {
  readonly ready: boolean;
  /** Why not ready (absent when ready). */
  readonly reason?: NotReadyReason;
  readonly detail: string;
  readonly view?: string;
  readonly secondsSincePrimary: number;
}

export class Readiness {
  private started = false;
  private stopping = false;
  private primary = false;
  private view: string | undefined;
  private keyedView: string | undefined;
  private stateTransfer = false;
  /** When this server last was in a primary view (or started, when never). */
  private lastPrimaryAt: number;
  private lastWarnAt = -Infinity;

  constructor(
    registry: Registry,
    private readonly log: Logger,
    private readonly now: () => number,
    private readonly warnAfterMs = NOT_PRIMARY_WARN_AFTER_MS,
  ) {
    this.lastPrimaryAt = now();
    const primary = (): number => (this.primary ? 1 : 0);
    const since = (): number => this.secondsSincePrimary();
    new Gauge({
      name: 'keyglass_primary',
      help: '1 while this server is in a primary view',
      registers: [registry],
      collect() {
        this.set(primary());
      },
    });
    new Gauge({
      name: 'keyglass_seconds_since_primary',
      help: 'Seconds since this server was last in a primary view (0 while it is)',
      registers: [registry],
      collect() {
        this.set(since());
      },
    });
  }

  /** The stack runs: views follow. */
  start(): void {
    this.started = true;
  }

  stop(): void {
    this.stopping = true;
  }

  /** A view was installed (`id` as the status shows it). */
  viewInstalled(id: string, primary: boolean): void {
    if (this.primary) this.lastPrimaryAt = this.now(); // the primary view ends here
    this.view = id;
    this.primary = primary;
    this.stateTransfer = false;
    if (primary) {
      this.lastPrimaryAt = this.now();
      this.lastWarnAt = -Infinity;
    }
  }

  /** A state transfer to this server began (cleared by the next view). */
  stateTransferStarted(): void {
    this.stateTransfer = true;
  }

  /** The core key of view `id` committed. */
  keyCommitted(id: string): void {
    this.keyedView = id;
  }

  secondsSincePrimary(): number {
    return this.primary ? 0 : Math.max(0, (this.now() - this.lastPrimaryAt) / 1000);
  }

  report(): ReadinessReport {
    const base = {
      secondsSincePrimary: this.secondsSincePrimary(),
      ...(this.view ? { view: this.view } : {}),
    };
    const no = (reason: NotReadyReason, detail: string): ReadinessReport => ({
      ready: false,
      reason,
      detail,
      ...base,
    });
    if (this.stopping) return no('stopping', 'the server is shutting down');
    if (!this.started || this.view === undefined) return no('starting', 'the core group has not started');
    if (!this.primary)
      return no('not-primary', 'not in a primary view: this server is cut off from a majority of the core');
    if (this.stateTransfer) return no('state-transfer', 'receiving the group state');
    if (this.keyedView !== this.view)
      return no('no-core-key', 'in a primary view whose core key has not committed yet');
    return { ready: true, detail: 'in a primary view with its core key', ...base };
  }

  /** Called about once a second: the warning while out of the primary component too long. */
  tick(): void {
    if (!this.started || this.stopping || this.primary) return;
    const now = this.now();
    if (now - this.lastPrimaryAt < this.warnAfterMs || now - this.lastWarnAt < WARN_EVERY_MS) return;
    this.lastWarnAt = now;
    this.log.warn('outside the primary component', {
      seconds: Math.round(this.secondsSincePrimary()),
      view: this.view,
      detail:
        'no leaf joins, leaves or revocations are applied here; check the links to the other core servers',
    });
  }
}
