/**
 * total — total order through a sequencer.
 *
 * Guarantees (up): messages of the ordered channel are delivered in one order at every member
 * that delivers them. The view's oldest member (members[0], also the coordinator) is the
 * sequencer: it multicasts ORDER records — batches of (sender, seq) in the order it FIFO-received
 * the messages — on its own reliable stream, and everyone delivers an ordered message when its
 * record comes up. Because ORDER records ride the sequencer's FIFO stream, the flush agrees on a
 * prefix of them like on any other messages. At `viewEnd` every member walks the agreed ORDER
 * prefix (skipping records whose message fell outside the cut — nobody could have delivered
 * those) and delivers nothing else: an ordered message without an agreed ORDER record is
 * dropped everywhere in that view; its sender resends it in its next view, to that view's
 * sequencer, before any newer message — when that is safe (see deliverLeftovers). (Delivering such leftovers in some fixed order instead
 * would break total order when a view's survivors split into components with different cuts:
 * one component may hold ORDER records the other lacks.) Message identity is (sender, view,
 * seq): a resent message is a new message with the same payload. FIFO messages pass straight
 * through.
 * Assumes (below): nakack's FIFO reliable delivery, `viewEnd` after the agreed cut.
 */

import type { MemberKey, View } from './ids.js';
import type { DownEvent, LayerContext, UpEvent } from './layer.js';
import { BaseLayer } from './layer.js';
import { Channel, MAX_ORDER_BATCH } from './messages.js';
import { DecodeError, Reader, Writer } from '../wire/index.js';
import { MAX_MEMBERS } from './ids.js';

interface OrderEntry {
  readonly sender: number;
  readonly seq: number;
}

export class TotalOrder extends BaseLayer {
  readonly name = 'total';
  private members: readonly MemberKey[] = [];
  private index = new Map<MemberKey, number>();
  private sequencer: MemberKey | undefined;
  /** Ordered messages received but not yet delivered, by "senderIndex:seq". */
  private readonly pending = new Map<string, { sender: MemberKey; seq: number; payload: Uint8Array }>();
  private orderQueue: OrderEntry[] = [];
  private head = 0;
  private batch: OrderEntry[] = [];
  private frozen = true;
  /** This member's own ordered messages left unordered by the last flush, to send in the next view. */
  private resend: Uint8Array[] = [];
  /** ORDER payloads that failed to decode (a bug or corruption; counted, dropped). */
  badOrders = 0;
  /** Ordered messages dropped unordered at a flush (other senders'), and own ones resent. */
  droppedUnordered = 0;
  resent = 0;

  constructor(ctx: LayerContext) {
    super(ctx);
  }

  override up(ev: UpEvent): void {
    if (ev.type === 'deliver') {
      if (ev.ch === Channel.Fifo) return this.passUp(ev);
      if (ev.ch === Channel.Ordered) {
        const i = this.index.get(ev.sender)!;
        this.pending.set(`${i}:${ev.seq}`, { sender: ev.sender, seq: ev.seq, payload: ev.payload });
        if (this.sequencer === this.ctx.self && !this.frozen) {
          this.batch.push({ sender: i, seq: ev.seq });
          if (this.batch.length >= MAX_ORDER_BATCH) this.flushBatch();
        }
        return this.tryDeliver();
      }
      if (ev.sender === this.sequencer) this.onOrder(ev.payload);
      return;
    }
    if (ev.type === 'viewEnd') {
      this.deliverLeftovers(ev.resendUnordered);
    }
    this.passUp(ev);
  }

  override down(ev: DownEvent): void {
    if (ev.type === 'view') {
      this.install(ev.view);
      this.passDown(ev);
      // Unordered leftovers of the last view go to the new sequencer first, in their old order.
      const resend = this.resend;
      this.resend = [];
      for (const payload of resend) {
        this.resent++;
        this.passDown({ type: 'multicast', ch: Channel.Ordered, payload });
      }
      return;
    }
    if (ev.type === 'freeze') {
      this.frozen = true;
      this.batch = [];
    }
    this.passDown(ev);
  }

  override tick(): void {
    if (this.batch.length > 0 && !this.frozen) this.flushBatch();
  }

  private install(view: View): void {
    if (this.pending.size > 0 || this.head < this.orderQueue.length) {
      throw new Error('total: view installed with undelivered ordered messages');
    }
    this.members = view.members;
    this.index = new Map(view.members.map((m, i) => [m, i]));
    this.sequencer = view.members[0];
    this.orderQueue = [];
    this.head = 0;
    this.batch = [];
    this.frozen = false;
  }

  private flushBatch(): void {
    const w = new Writer();
    w.list(this.batch, MAX_ORDER_BATCH, (ww, e) => {
      ww.varuint(e.sender);
      ww.varuint(e.seq);
    });
    this.batch = [];
    this.passDown({ type: 'multicast', ch: Channel.Order, payload: w.finish() });
  }

  private onOrder(payload: Uint8Array): void {
    let entries: OrderEntry[];
    try {
      const r = new Reader(payload);
      entries = r.list(MAX_ORDER_BATCH, (rr) => ({
        sender: rr.bounded(MAX_MEMBERS - 1, 'sender'),
        seq: rr.varuint(),
      }));
      r.end();
    } catch (e) {
      if (!(e instanceof DecodeError)) throw e;
      this.badOrders++;
      return;
    }
    for (const e of entries) this.orderQueue.push(e);
    this.tryDeliver();
  }

  private tryDeliver(): void {
    while (this.head < this.orderQueue.length) {
      const e = this.orderQueue[this.head]!;
      const k = `${e.sender}:${e.seq}`;
      const m = this.pending.get(k);
      if (m === undefined) break;
      this.pending.delete(k);
      this.head++;
      this.passUp({ type: 'deliver', sender: m.sender, seq: m.seq, ch: Channel.Ordered, payload: m.payload });
    }
    if (this.head > 1024 && this.head * 2 > this.orderQueue.length) {
      this.orderQueue = this.orderQueue.slice(this.head);
      this.head = 0;
    }
  }

  /**
   * End of view: the agreed ORDER prefix (skipping records of messages outside the cut). The rest
   * is resent only if the old sequencer flushed with us: then its ORDER stream in the cut is all it
   * ever sent, so no other component can have ordered (and delivered) those messages. Otherwise
   * they are dropped — resending could deliver one payload twice or in two orders across
   * components — and the sender's application sees that its own message never came back.
   */
  private deliverLeftovers(resendUnordered: boolean): void {
    this.tryDeliver();
    // After a skipped record this member's ordered stream is no longer a prefix of the view's
    // total order: another component may deliver the skipped message. Say so (Delivery.afterGap).
    let gap = false;
    for (; this.head < this.orderQueue.length; this.head++) {
      const e = this.orderQueue[this.head]!;
      const k = `${e.sender}:${e.seq}`;
      const m = this.pending.get(k);
      if (m === undefined) {
        gap = true;
        continue;
      }
      this.pending.delete(k);
      this.passUp({
        type: 'deliver',
        sender: m.sender,
        seq: m.seq,
        ch: Channel.Ordered,
        payload: m.payload,
        ...(gap ? { afterGap: true } : {}),
      });
    }
    const own = resendUnordered
      ? [...this.pending.values()].filter((m) => m.sender === this.ctx.self).sort((a, b) => a.seq - b.seq)
      : [];
    this.droppedUnordered += this.pending.size - own.length;
    this.resend = own.map((m) => m.payload);
    this.pending.clear();
    this.orderQueue = [];
    this.head = 0;
  }
}
