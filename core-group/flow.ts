/**
 * flow — the application's send queue: backpressure and blocking around flushes.
 *
 * Guarantees (up, to the application): `offer` either accepts a multicast — it will be sent in
 * the current or a later view of this incarnation, in offer order — or refuses it (returns false)
 * because `maxQueued` messages already wait. Messages wait while the member is blocked by a flush
 * (between `block` and the next `view`) or while nakack's send window is closed, so neither a
 * flush nor a slow member makes this member's memory grow past the cap.
 * Assumes (below): `sendWindow` events announcing how many multicasts nakack accepts, `block`
 * before a flush freezes the view and `view` after a new view is installed.
 */

import type { DownEvent, LayerContext, UpEvent } from './layer.js';
import { BaseLayer } from './layer.js';
import type { Channel } from './messages.js';

export interface FlowConfig {
  readonly maxQueued: number;
  /**
   * Stay blocked after a view until an explicit `unblock` event (the rekey layer sends it once
   * the view's core key is committed). Off by default: unblock on `view`.
   */
  readonly holdUntilUnblock?: boolean;
}

export class FlowControl extends BaseLayer {
  readonly name = 'flow';
  private readonly queue: { ch: Channel; payload: Uint8Array }[] = [];
  private head = 0;
  private free = 0;
  private blocked = true;
  refused = 0;

  constructor(
    ctx: LayerContext,
    private readonly cfg: FlowConfig,
  ) {
    super(ctx);
  }

  get queued(): number {
    return this.queue.length - this.head;
  }

  get isBlocked(): boolean {
    return this.blocked;
  }

  /** Accepts a multicast into the bounded queue, or refuses it (backpressure). */
  offer(ch: Channel, payload: Uint8Array): boolean {
    if (this.queued >= this.cfg.maxQueued) {
      this.refused++;
      return false;
    }
    this.queue.push({ ch, payload });
    this.drain();
    return true;
  }

  override up(ev: UpEvent): void {
    if (ev.type === 'sendWindow') {
      this.free = ev.free;
      this.drain();
      return;
    }
    if (ev.type === 'block') this.blocked = true;
    this.passUp(ev);
    if ((ev.type === 'view' && this.cfg.holdUntilUnblock !== true) || ev.type === 'unblock') {
      this.blocked = false;
      this.drain();
    }
  }

  override down(ev: DownEvent): void {
    this.passDown(ev);
  }

  private drain(): void {
    while (!this.blocked && this.free > 0 && this.head < this.queue.length) {
      const m = this.queue[this.head]!;
      this.head++;
      this.free--; // nakack's sendWindow event (synchronous) replaces this with the exact figure
      this.passDown({ type: 'multicast', ch: m.ch, payload: m.payload });
    }
    if (this.head > 256 && this.head * 2 > this.queue.length) {
      this.queue.splice(0, this.head);
      this.head = 0;
    }
  }
}
