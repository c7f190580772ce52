/**
 * fd — heartbeat failure detector with an adaptive timeout.
 *
 * Guarantees (up): every member of the current view that falls silent — no frame of any kind
 * for longer than its timeout — is reported once as `suspect`; a member whose name reappears
 * with a higher incarnation (it restarted) is suspected at once. Suspicion is sticky for the
 * rest of the view: a suspected member is removed by the next view change and must rejoin,
 * which keeps membership from flapping. The timeout adapts per peer like TCP's RTO: the mean
 * inter-arrival gap plus four deviations plus one heartbeat period, clamped to
 * [minTimeoutMs, maxTimeoutMs] — so lossy links get more patience, up to a hard bound that
 * makes liveness time bounded.
 * Assumes (below): nothing; any frame stamped with the current view (or a flush round) counts as
 * a sign of life. Sends a heartbeat to every
 * other view member every heartbeatMs.
 */

import type { MemberKey, View, ViewId } from './ids.js';
import { incarnationOf, nameOf, sameViewId } from './ids.js';
import type { DownEvent, LayerContext, UpEvent } from './layer.js';
import { BaseLayer } from './layer.js';
import type { Frame } from './messages.js';

export interface FdConfig {
  readonly heartbeatMs: number;
  readonly minTimeoutMs: number;
  readonly maxTimeoutMs: number;
}

interface Peer {
  lastHeard: number;
  meanGap: number;
  devGap: number;
  suspected: boolean;
}

export class FailureDetector extends BaseLayer {
  readonly name = 'fd';
  private readonly peers = new Map<MemberKey, Peer>();
  private readonly byName = new Map<string, MemberKey>();
  private viewId: ViewId | undefined;
  private lastBeat = -Infinity;

  constructor(
    ctx: LayerContext,
    private readonly cfg: FdConfig,
  ) {
    super(ctx);
  }

  /** Current timeout for a peer (exposed for tests and metrics). */
  timeoutOf(member: MemberKey): number | undefined {
    const p = this.peers.get(member);
    return p && this.timeout(p);
  }

  override up(ev: UpEvent): void {
    if (ev.type === 'frame' && this.isSignOfLife(ev.frame)) this.heard(ev.frame.from);
    this.passUp(ev);
  }

  override down(ev: DownEvent): void {
    if (ev.type === 'view') this.monitor(ev.view);
    this.passDown(ev);
  }

  override tick(now: number): void {
    if (this.viewId === undefined) return;
    if (now - this.lastBeat >= this.cfg.heartbeatMs) {
      this.lastBeat = now;
      for (const to of this.peers.keys())
        this.send(to, { t: 'hb', from: this.ctx.self, to, view: this.viewId });
    }
    for (const [m, p] of this.peers) {
      if (!p.suspected && now - p.lastHeard > this.timeout(p)) this.suspect(m, p);
    }
  }

  private monitor(view: View): void {
    const now = this.ctx.now();
    this.viewId = view.id;
    const old = new Map(this.peers);
    this.peers.clear();
    this.byName.clear();
    for (const m of view.members) {
      if (m === this.ctx.self) continue;
      const prev = old.get(m);
      // A fresh grace period for everyone: the view change itself may have kept peers busy. A
      // peer new to this member starts at the longest timeout (like TCP's initial RTO) and adapts
      // down as it is heard: a joiner's first moments (state transfer, restoring a large leaf
      // registry) stall it longest, and a short first timeout excluded joiners in a loop.
      this.peers.set(m, {
        lastHeard: now,
        meanGap: prev?.meanGap ?? this.cfg.heartbeatMs,
        devGap: prev?.devGap ?? this.cfg.maxTimeoutMs / 4,
        suspected: false,
      });
      this.byName.set(nameOf(m), m);
    }
  }

  /**
   * Frames that show the sender still shares our view: anything stamped with our view id, and the
   * flush rounds (which move views forward). Not hellos, nor frames of other views: a member that
   * left our view may keep sending those, and must still be suspected.
   */
  private isSignOfLife(f: Frame): boolean {
    if (f.t === 'hello' || f.t === 'excluded') return false;
    if ('view' in f) return this.viewId !== undefined && sameViewId(f.view, this.viewId);
    return true;
  }

  private heard(from: MemberKey): void {
    const p = this.peers.get(from);
    const now = this.ctx.now();
    if (p !== undefined) {
      if (p.suspected) return;
      const gap = now - p.lastHeard;
      p.meanGap += (gap - p.meanGap) / 8;
      p.devGap += (Math.abs(gap - p.meanGap) - p.devGap) / 4;
      p.lastHeard = now;
      return;
    }
    // A newer incarnation of a member's name proves the old incarnation is gone.
    const old = this.byName.get(nameOf(from));
    if (old !== undefined && incarnationOf(from) > incarnationOf(old)) {
      const op = this.peers.get(old);
      if (op && !op.suspected) this.suspect(old, op);
    }
  }

  private timeout(p: Peer): number {
    const t = p.meanGap + 4 * p.devGap + this.cfg.heartbeatMs;
    return Math.min(this.cfg.maxTimeoutMs, Math.max(this.cfg.minTimeoutMs, t));
  }

  private suspect(m: MemberKey, p: Peer): void {
    p.suspected = true;
    this.passUp({ type: 'suspect', member: m });
  }
}
