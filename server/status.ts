/**
 * What a key server shows its operator of the core stack and the leaf plane: the metrics, the
 * readiness and the log lines of the stack's upcalls (view installed, core key committed, flush
 * started), the timing of the plane's commits and fan-outs, and the status document (the admin
 * endpoint's /status, KeyServer.status()).
 */
import {
  versionText,
  type CoreKeyInfo,
  type GroupMember,
  type MemberKey,
  type View,
} from '../core-group/index.js';
import type { LeafStateMachine, ServerPlane } from '../leaf-plane/index.js';
import type { Logger } from './log.js';
import type { ServerMetrics } from './metrics.js';
import type { Readiness } from './readiness.js';

export interface ServerStatus {
  readonly name: string;
  readonly member: MemberKey;
  readonly view: { readonly id: string; readonly members: readonly MemberKey[]; readonly primary: boolean };
  readonly coordinator: boolean;
  /** Generation of the committed core key: equal on every member of a keyed view; 0 before the first. */
  readonly coreEpoch: number;
  readonly leafEpoch: number;
  /**
   * Version of the committed leaf state (generation.step.applied.extra, PrimaryRecord): after an
   * outage the newest one among the servers is the state they all adopt.
   */
  readonly stateVersion: string;
  /** Generation of the leaf tree's key-derivation secret (follows the core key in primary views). */
  readonly leafKeyGeneration: number;
  readonly leaves: number;
  readonly sessions: number;
  readonly pendingBatch: number;
  /**
   * The last leaf batch this server applied: its epoch, when (ms since the Unix epoch), and how
   * long handing it to this server's leaves took (signing, every TLS push encrypted and written,
   * the relay's datagrams sent, welcomes): the server's share of a rekey's latency.
   */
  readonly lastBatch:
    { readonly epoch: number; readonly appliedAtMs: number; readonly fanOutMs: number } | undefined;
  readonly signers: readonly string[];
  readonly links: readonly string[];
}

/** The stack's upcalls and the plane's timed work, as the operator sees them. */
export class StackObserver {
  /** Generation of the committed core key (status coreEpoch). */
  private coreEpoch = 0;
  /** How long handing the last released batch to this server's leaves took (status). */
  private lastFanOutMs = 0;
  /** When the current view was installed, until its first core key commits (rekey duration). */
  private viewInstalledAt: number | undefined;
  /** When the flush that will end in the next view started (view-change duration). */
  private blockedAt: number | undefined;

  constructor(
    private readonly metrics: ServerMetrics,
    private readonly readiness: Readiness,
    private readonly log: Logger,
  ) {}

  viewInstalled(view: View, self: MemberKey, now: number): void {
    this.metrics.viewSize.set(view.members.length);
    this.metrics.viewChanges.inc();
    this.metrics.primary.set(view.primary ? 1 : 0);
    this.readiness.viewInstalled(viewText(view), view.primary);
    this.viewInstalledAt = performance.now();
    if (this.blockedAt !== undefined) {
      this.metrics.viewChangeSeconds.observe((now - this.blockedAt) / 1000);
      this.blockedAt = undefined;
    }
    this.log.info('view installed', {
      view: viewText(view),
      members: view.members,
      primary: view.primary,
      self,
    });
  }

  keyCommitted(info: CoreKeyInfo): void {
    this.coreEpoch = info.epoch;
    this.metrics.coreEpoch.set(info.epoch);
    this.metrics.coreRekeys.inc({ cause: info.refresh ? 'refresh' : 'view' });
    if (!info.refresh && this.viewInstalledAt !== undefined)
      this.metrics.coreRekeySeconds.observe((performance.now() - this.viewInstalledAt) / 1000);
    this.viewInstalledAt = undefined;
    const view = `${info.view.epoch}@${info.view.coord}`;
    this.readiness.keyCommitted(view);
    this.log.info('core key committed', { epoch: info.epoch, view, refresh: info.refresh });
  }

  /** A flush started (the stack blocked); the first one since the last view counts. */
  blocked(now: number): void {
    this.blockedAt ??= now;
  }

  /** The plane's PlaneHost.timed: a commit's duration is a metric, a fan-out's goes to status. */
  timed<T>(what: 'commit' | 'fanOut', work: () => T): T {
    const started = performance.now();
    try {
      return work();
    } finally {
      const ms = performance.now() - started;
      if (what === 'commit') this.metrics.commitSeconds.observe(ms / 1000);
      else this.lastFanOutMs = ms;
    }
  }

  status(
    name: string,
    member: Pick<GroupMember, 'view' | 'self'>,
    plane: ServerPlane,
    machine: LeafStateMachine,
    links: readonly string[],
  ): ServerStatus {
    const v = member.view;
    return {
      name,
      member: member.self,
      view: { id: `${v.id.epoch}@${v.id.coord}`, members: v.members, primary: v.primary },
      coordinator: plane.isCoordinator,
      coreEpoch: this.coreEpoch,
      leafEpoch: machine.epoch,
      stateVersion: versionText(plane.stateVersion()),
      leafKeyGeneration: machine.secretGeneration,
      leaves: machine.members,
      sessions: plane.edge.sessionCount,
      pendingBatch: machine.pendingChanges,
      lastBatch: plane.lastBatch && { ...plane.lastBatch, fanOutMs: this.lastFanOutMs },
      signers: plane.signerNames,
      links,
    };
  }
}

function viewText(v: View): string {
  return `${v.id.epoch}@${v.id.coord}`;
}
