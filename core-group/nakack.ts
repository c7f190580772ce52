/**
 * nakack — reliable per-sender FIFO multicast within a view, with NAK-driven retransmission,
 * stability-based garbage collection and a bounded send window.
 *
 * Guarantees (up): in the current view, each member's multicasts are delivered to every member
 * that stays in the view, in the sender's order, exactly once (sequence numbers per sender per
 * view; duplicates and other views' messages are dropped). Every member keeps each message it
 * received until it is *stable* — received by every member, as reported by the periodic STATUS
 * vectors — so any survivor can hand it on during a flush. On `freeze` it stops sending and
 * delivering and reports what it holds (`flushReport`); `store` + `deliverCut` then complete
 * exactly the agreed cut, after which it emits `viewEnd`.
 * Flow control: a member may have at most `windowMsgs` unstable messages of its own (ORDER
 * records of the sequencer are exempt: they are bounded by the other members' windows), and a
 * receiver buffers at most `windowMsgs` messages past a gap per sender. A slow member therefore
 * slows the senders (their window stops opening) instead of growing anyone's memory. A member
 * alone in its view frees each own message as soon as it is delivered (nobody reports STATUS).
 * Assumes (below): an unreliable datagram service that may lose, duplicate and reorder.
 */

import type { MemberKey, View, ViewId } from './ids.js';
import { sameViewId } from './ids.js';
import type { DownEvent, LayerContext, UpEvent } from './layer.js';
import { BaseLayer } from './layer.js';
import type { Channel, DataMsg, FlushedMsg, NakMsg, StatusMsg } from './messages.js';
import { Channel as Ch } from './messages.js';

export interface NakackConfig {
  /** Max unstable own messages, and max buffered messages past a gap per sender. */
  readonly windowMsgs: number;
  readonly statusMs: number;
  readonly nakMs: number;
  /** Max messages asked for (and resent) per NAK. */
  readonly maxNakBatch: number;
}

interface Stored {
  readonly ch: Channel;
  readonly payload: Uint8Array;
}

interface Stream {
  readonly store: Map<number, Stored>;
  /** Highest seq received with no gap before it. */
  contig: number;
  delivered: number;
  /** Highest seq anyone says exists. */
  knownHigh: number;
  /** Everything ≤ this is stable (held by all) and garbage-collected once delivered. */
  stable: number;
  lastNak: number;
}

export class ReliableFifo extends BaseLayer {
  readonly name = 'nakack';
  private viewId: ViewId | undefined;
  private members: readonly MemberKey[] = [];
  private readonly index = new Map<MemberKey, number>();
  private streams: Stream[] = [];
  private selfIdx = -1;
  private readonly statusOf = new Map<MemberKey, readonly number[]>();
  private frozen = false;
  private lastStatus = -Infinity;
  private lastFree = -1;
  /** Messages delivered up, for metrics. */
  delivered = 0;

  constructor(
    ctx: LayerContext,
    private readonly cfg: NakackConfig,
  ) {
    super(ctx);
  }

  /** Messages currently retained (all senders): bounded by members × windowMsgs (+ ORDER records). */
  get retained(): number {
    let n = 0;
    for (const s of this.streams) n += s.store.size;
    return n;
  }

  override up(ev: UpEvent): void {
    if (ev.type !== 'frame') return this.passUp(ev);
    const f = ev.frame;
    if (f.t === 'data') return this.onData(f);
    if (f.t === 'status') return this.onStatus(f);
    if (f.t === 'nak') return this.onNak(f);
    this.passUp(ev);
  }

  override down(ev: DownEvent): void {
    switch (ev.type) {
      case 'view':
        this.install(ev.view);
        break;
      case 'multicast':
        return this.multicast(ev.ch, ev.payload);
      case 'freeze':
        this.freeze();
        break;
      case 'store':
        return this.storeFlushed(ev.msgs);
      case 'deliverCut':
        return this.deliverCut(ev.cut, ev.resendUnordered);
    }
    this.passDown(ev);
  }

  override tick(now: number): void {
    if (this.viewId === undefined) return;
    // No STATUS while frozen: what others may garbage-collect must never exceed what this member
    // reported in its FLUSH_OK, or the coordinator could find a message nobody reported.
    if (!this.frozen && now - this.lastStatus >= this.cfg.statusMs) {
      this.lastStatus = now;
      const contig = this.streams.map((s) => s.contig);
      const st: StatusMsg = { t: 'status', from: this.ctx.self, view: this.viewId, contig };
      for (const m of this.members) if (m !== this.ctx.self) this.send(m, st);
    }
    for (let i = 0; i < this.streams.length; i++) {
      const s = this.streams[i]!;
      if (i === this.selfIdx || s.knownHigh <= s.contig || now - s.lastNak < this.cfg.nakMs) continue;
      s.lastNak = now;
      const sender = this.members[i]!;
      const hi = Math.min(s.knownHigh, s.contig + this.cfg.maxNakBatch);
      this.send(sender, {
        t: 'nak',
        from: this.ctx.self,
        to: sender,
        view: this.viewId,
        sender,
        lo: s.contig + 1,
        hi,
      });
    }
  }

  private install(view: View): void {
    this.viewId = view.id;
    this.members = view.members;
    this.index.clear();
    view.members.forEach((m, i) => this.index.set(m, i));
    this.selfIdx = this.index.get(this.ctx.self) ?? -1;
    if (this.selfIdx < 0) throw new Error('nakack: view does not include self');
    this.streams = view.members.map(() => ({
      store: new Map(),
      contig: 0,
      delivered: 0,
      knownHigh: 0,
      stable: 0,
      lastNak: -Infinity,
    }));
    this.statusOf.clear();
    this.frozen = false;
    this.lastFree = -1;
    this.announceWindow();
  }

  private multicast(ch: Channel, payload: Uint8Array): void {
    if (this.viewId === undefined || this.frozen)
      throw new Error('nakack: multicast while frozen or viewless');
    const own = this.streams[this.selfIdx]!;
    if (ch !== Ch.Order && this.freeWindow() <= 0) throw new Error('nakack: multicast past the send window');
    const seq = own.contig + 1;
    own.store.set(seq, { ch, payload });
    own.contig = own.knownHigh = seq;
    const msg: DataMsg = { t: 'data', from: this.ctx.self, view: this.viewId, seq, ch, payload };
    for (const m of this.members) if (m !== this.ctx.self) this.send(m, msg);
    this.deliverReady(this.selfIdx);
    // Alone in the view, a message delivered here is held by every member: no STATUS will ever
    // come to say so, and without this the window would close for good after windowMsgs sends.
    // flow took this message off the window it was last told: tell it the figure again even when
    // it did not change (alone, the message is collected at once and the window is whole again),
    // or flow's count runs down to 0 and a member alone never sends again.
    this.lastFree = -1;
    if (this.members.length === 1) this.collectGarbage();
    else this.announceWindow();
  }

  private onData(f: DataMsg): void {
    if (this.viewId === undefined || !sameViewId(f.view, this.viewId)) return;
    const i = this.index.get(f.from);
    if (i === undefined || i === this.selfIdx) return;
    const s = this.streams[i]!;
    if (f.seq <= s.contig || f.seq > s.contig + this.cfg.windowMsgs || s.store.has(f.seq)) return;
    s.store.set(f.seq, { ch: f.ch, payload: f.payload });
    if (f.seq > s.knownHigh) s.knownHigh = f.seq;
    this.advance(s);
    if (!this.frozen) this.deliverReady(i);
  }

  private advance(s: Stream): void {
    while (s.store.has(s.contig + 1)) s.contig++;
  }

  private deliverReady(i: number, upTo = this.streams[i]!.contig): void {
    const s = this.streams[i]!;
    const sender = this.members[i]!;
    while (s.delivered < upTo) {
      const seq = s.delivered + 1;
      const m = s.store.get(seq);
      if (m === undefined) throw new Error(`nakack: ${sender}#${seq} missing below contig`);
      s.delivered = seq;
      this.delivered++;
      this.passUp({ type: 'deliver', sender, seq, ch: m.ch, payload: m.payload });
    }
  }

  private onStatus(f: StatusMsg): void {
    if (this.viewId === undefined || !sameViewId(f.view, this.viewId)) return;
    if (!this.index.has(f.from) || f.contig.length !== this.members.length) return;
    this.statusOf.set(f.from, f.contig);
    for (let i = 0; i < this.streams.length; i++) {
      const s = this.streams[i]!;
      if (f.contig[i]! > s.knownHigh) s.knownHigh = f.contig[i]!;
    }
    this.collectGarbage();
  }

  /** stable[i] = min over all members' reported contig[i]; GC what is stable and delivered. */
  private collectGarbage(): void {
    if (this.statusOf.size < this.members.length - 1) return;
    for (let i = 0; i < this.streams.length; i++) {
      const s = this.streams[i]!;
      let stable = s.contig;
      for (const v of this.statusOf.values()) stable = Math.min(stable, v[i]!);
      const limit = Math.min(stable, s.delivered);
      for (let q = s.stable + 1; q <= limit; q++) s.store.delete(q);
      if (limit > s.stable) s.stable = limit;
    }
    this.announceWindow();
  }

  private freeWindow(): number {
    const own = this.streams[this.selfIdx]!;
    return this.cfg.windowMsgs - (own.contig - own.stable);
  }

  private announceWindow(): void {
    if (this.frozen || this.viewId === undefined) return;
    const free = Math.max(0, this.freeWindow());
    if (free === this.lastFree) return;
    this.lastFree = free;
    this.passUp({ type: 'sendWindow', free });
  }

  private onNak(f: NakMsg): void {
    // Only the original sender answers: a relayed copy would make a dead sender look alive.
    if (this.viewId === undefined || !sameViewId(f.view, this.viewId) || f.sender !== this.ctx.self) return;
    if (!this.index.has(f.from)) return;
    const own = this.streams[this.selfIdx]!;
    const hi = Math.min(f.hi, f.lo + this.cfg.maxNakBatch - 1);
    for (let seq = f.lo; seq <= hi; seq++) {
      const m = own.store.get(seq);
      if (m !== undefined) {
        this.send(f.from, {
          t: 'data',
          from: this.ctx.self,
          view: this.viewId,
          seq,
          ch: m.ch,
          payload: m.payload,
        });
      }
    }
  }

  private freeze(): void {
    if (this.viewId === undefined) return;
    this.frozen = true;
    const msgs: FlushedMsg[] = [];
    for (let i = 0; i < this.streams.length; i++) {
      const s = this.streams[i]!;
      for (let seq = s.stable + 1; seq <= s.contig; seq++) {
        const m = s.store.get(seq);
        if (m) msgs.push({ sender: this.members[i]!, seq, ch: m.ch, payload: m.payload });
      }
    }
    this.passUp({ type: 'flushReport', view: this.viewId, contig: this.streams.map((s) => s.contig), msgs });
  }

  private storeFlushed(msgs: readonly FlushedMsg[]): void {
    for (const m of msgs) {
      const i = this.index.get(m.sender);
      if (i === undefined) continue;
      const s = this.streams[i]!;
      if (m.seq > s.contig && !s.store.has(m.seq)) s.store.set(m.seq, { ch: m.ch, payload: m.payload });
    }
    for (const s of this.streams) this.advance(s);
  }

  private deliverCut(cut: readonly number[], resendUnordered: boolean): void {
    if (this.viewId === undefined) return;
    if (cut.length !== this.streams.length) throw new Error('nakack: cut does not match the view');
    for (let i = 0; i < this.streams.length; i++) {
      const s = this.streams[i]!;
      if (s.contig < cut[i]! || s.delivered > cut[i]!) {
        throw new Error(`nakack: cut ${cut[i]} for ${this.members[i]} outside [${s.delivered}, ${s.contig}]`);
      }
      this.deliverReady(i, cut[i]!);
    }
    this.passUp({ type: 'viewEnd', view: this.viewId, resendUnordered });
  }
}
