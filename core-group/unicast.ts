/**
 * unicast — reliable FIFO point-to-point messages within a view.
 *
 * Guarantees (up): a message sent to a member of the current view is delivered to it at most
 * once and in send order, and is retransmitted until acknowledged while both stay in the view.
 * Point-to-point messages are not part of the flush: at a view change unacknowledged ones are
 * dropped (counted), since the application learns of the new view and can resend.
 * Bounded: at most `windowMsgs` unacknowledged messages per destination (further sends are
 * refused: backpressure), and at most `windowMsgs` buffered out-of-order messages per source.
 * Assumes (below): an unreliable datagram service.
 */

import type { MemberKey, View, ViewId } from './ids.js';
import { sameViewId } from './ids.js';
import type { DownEvent, LayerContext, UpEvent } from './layer.js';
import { BaseLayer } from './layer.js';
import type { UnicastAckMsg, UnicastMsg } from './messages.js';

export interface UnicastConfig {
  readonly windowMsgs: number;
  readonly rtxMs: number;
}

interface Out {
  next: number;
  readonly unacked: Map<number, Uint8Array>;
}
interface In {
  expected: number;
  readonly buffer: Map<number, Uint8Array>;
}

export class Unicast extends BaseLayer {
  readonly name = 'unicast';
  private viewId: ViewId | undefined;
  private members = new Set<MemberKey>();
  private readonly out = new Map<MemberKey, Out>();
  private readonly in = new Map<MemberKey, In>();
  private lastRtx = -Infinity;
  /** Sends refused (full window or not a member) and messages dropped at view change. */
  refused = 0;
  droppedAtViewChange = 0;

  constructor(
    ctx: LayerContext,
    private readonly cfg: UnicastConfig,
  ) {
    super(ctx);
  }

  /** Whether a send to `to` would be accepted now. */
  canSend(to: MemberKey): boolean {
    return (
      this.viewId !== undefined &&
      this.members.has(to) &&
      to !== this.ctx.self &&
      (this.out.get(to)?.unacked.size ?? 0) < this.cfg.windowMsgs
    );
  }

  override up(ev: UpEvent): void {
    if (ev.type === 'frame') {
      if (ev.frame.t === 'ucast') return this.onData(ev.frame);
      if (ev.frame.t === 'uack') return this.onAck(ev.frame);
    }
    this.passUp(ev);
  }

  override down(ev: DownEvent): void {
    if (ev.type === 'unicast') return this.sendTo(ev.to, ev.payload);
    if (ev.type === 'view') this.install(ev.view);
    this.passDown(ev);
  }

  override tick(now: number): void {
    if (this.viewId === undefined || now - this.lastRtx < this.cfg.rtxMs) return;
    this.lastRtx = now;
    for (const [to, o] of this.out) {
      for (const [seq, payload] of o.unacked) {
        this.send(to, { t: 'ucast', from: this.ctx.self, to, view: this.viewId, seq, payload });
      }
    }
  }

  private install(view: View): void {
    for (const o of this.out.values()) this.droppedAtViewChange += o.unacked.size;
    this.viewId = view.id;
    this.members = new Set(view.members);
    this.out.clear();
    this.in.clear();
  }

  private sendTo(to: MemberKey, payload: Uint8Array): void {
    if (!this.canSend(to)) {
      this.refused++;
      return;
    }
    let o = this.out.get(to);
    if (o === undefined) this.out.set(to, (o = { next: 1, unacked: new Map() }));
    const seq = o.next++;
    o.unacked.set(seq, payload);
    this.send(to, { t: 'ucast', from: this.ctx.self, to, view: this.viewId!, seq, payload });
  }

  private onData(f: UnicastMsg): void {
    if (this.viewId === undefined || !sameViewId(f.view, this.viewId) || f.to !== this.ctx.self) return;
    if (!this.members.has(f.from)) return;
    let i = this.in.get(f.from);
    if (i === undefined) this.in.set(f.from, (i = { expected: 1, buffer: new Map() }));
    if (f.seq >= i.expected && f.seq < i.expected + this.cfg.windowMsgs) i.buffer.set(f.seq, f.payload);
    for (let p = i.buffer.get(i.expected); p !== undefined; p = i.buffer.get(i.expected)) {
      i.buffer.delete(i.expected);
      i.expected++;
      this.passUp({ type: 'unicast', sender: f.from, payload: p });
    }
    const ack: UnicastAckMsg = {
      t: 'uack',
      from: this.ctx.self,
      to: f.from,
      view: this.viewId,
      ack: i.expected - 1,
    };
    this.send(f.from, ack);
  }

  private onAck(f: UnicastAckMsg): void {
    if (this.viewId === undefined || !sameViewId(f.view, this.viewId) || f.to !== this.ctx.self) return;
    const o = this.out.get(f.from);
    if (o === undefined) return;
    for (const seq of o.unacked.keys()) if (seq <= f.ack) o.unacked.delete(seq);
  }
}
