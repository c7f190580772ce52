/**
 * The uniform layer interface (Ensemble style).
 *
 * A stack is a list of layers, lowest first. Each layer sees every event that crosses it: events
 * going *up* come from the network or from layers below (a frame arrived, a member is suspected,
 * a message is deliverable); events going *down* come from the application or layers above (send
 * a multicast, freeze for a flush, install a view). A layer handles the events it owns and passes
 * everything else on unchanged. Layers are sans-IO: time comes from `tick(now)`, output leaves
 * through `send` events that the bottom of the stack hands to the host, and upcalls leave the top.
 */

import type { MemberKey, StateVersion, View, ViewId } from './ids.js';
import type { Channel, FlushedMsg, Frame } from './messages.js';

export type UpEvent =
  /** A decoded frame from the network (the bottom emits these). */
  | { readonly type: 'frame'; readonly frame: Frame }
  /** fd → gms: a member of the current view stopped answering. */
  | { readonly type: 'suspect'; readonly member: MemberKey }
  /** nakack → total → app: a message is deliverable (FIFO per sender, exactly once). */
  | {
      readonly type: 'deliver';
      readonly sender: MemberKey;
      readonly seq: number;
      readonly ch: Channel;
      readonly payload: Uint8Array;
      /** total: an ordered message delivered at a flush after a skipped ORDER record (see Delivery). */
      readonly afterGap?: boolean;
    }
  /** nakack → total: every message of the view's cut has been delivered; total flushes its leftovers. */
  | { readonly type: 'viewEnd'; readonly view: ViewId; readonly resendUnordered: boolean }
  /** nakack → gms: answer to `freeze`: what this member holds of the current view. */
  | {
      readonly type: 'flushReport';
      readonly view: ViewId;
      readonly contig: readonly number[];
      readonly msgs: readonly FlushedMsg[];
    }
  /** nakack → flow: how many more multicasts the send window accepts now. */
  | { readonly type: 'sendWindow'; readonly free: number }
  /** unicast → app. */
  | { readonly type: 'unicast'; readonly sender: MemberKey; readonly payload: Uint8Array }
  /** gms → app. */
  | { readonly type: 'block' }
  | { readonly type: 'view'; readonly view: View; readonly self: MemberKey }
  | { readonly type: 'setState'; readonly state: Uint8Array; readonly version: StateVersion }
  /** rekey → flow → app: the view's first core key is committed; traffic may flow (keys on only). */
  | { readonly type: 'unblock' }
  /** rekey → app: a core key was committed (at one point of the total order on every member). */
  | { readonly type: 'key'; readonly key: CoreKeyInfo }
  /** gms → host: this incarnation was excluded; the host must rejoin with a new incarnation. */
  | { readonly type: 'excluded'; readonly by: MemberKey };

export type DownEvent =
  /** Any layer → bottom: put a frame on the wire to one member (by key; the host maps key → address). */
  | { readonly type: 'send'; readonly to: MemberKey; readonly frame: Frame }
  /** Send an already-encoded frame to one transport address (hellos go to names, not keys). */
  | { readonly type: 'sendName'; readonly toName: string; readonly frame: Frame }
  /** app → nakack: multicast in the current view. Only sent when the window has room. */
  | { readonly type: 'multicast'; readonly ch: Channel; readonly payload: Uint8Array }
  /** app → unicast. */
  | { readonly type: 'unicast'; readonly to: MemberKey; readonly payload: Uint8Array }
  /** gms → below: stop sending and delivering in the current view; nakack answers `flushReport`. */
  | { readonly type: 'freeze' }
  /** gms → nakack: messages of the current view this member lacked, from the coordinator. */
  | { readonly type: 'store'; readonly msgs: readonly FlushedMsg[] }
  /** gms → nakack: deliver exactly up to `cut` (then nakack emits viewEnd). */
  | { readonly type: 'deliverCut'; readonly cut: readonly number[]; readonly resendUnordered: boolean }
  /** gms → all below: a new view is installed; reset per-view state. */
  | { readonly type: 'view'; readonly view: View };

/** What every layer may use; the host provides it. */
export interface LayerContext {
  readonly self: MemberKey;
  now(): number;
}

export interface Layer {
  readonly name: string;
  up(ev: UpEvent): void;
  down(ev: DownEvent): void;
  /** Periodic work (retransmission, timeouts); the host calls it every `tickMs`. */
  tick(now: number): void;
}

/** Base class: wiring to the neighbours; pass-through by default. */
export abstract class BaseLayer implements Layer {
  abstract readonly name: string;
  private upFn: (ev: UpEvent) => void = () => {};
  private downFn: (ev: DownEvent) => void = () => {};

  constructor(protected readonly ctx: LayerContext) {}

  /** Called once by the stack. */
  connect(up: (ev: UpEvent) => void, down: (ev: DownEvent) => void): void {
    this.upFn = up;
    this.downFn = down;
  }

  protected passUp(ev: UpEvent): void {
    this.upFn(ev);
  }

  protected passDown(ev: DownEvent): void {
    this.downFn(ev);
  }

  protected send(to: MemberKey, frame: Frame): void {
    this.downFn({ type: 'send', to, frame });
  }

  up(ev: UpEvent): void {
    this.passUp(ev);
  }

  down(ev: DownEvent): void {
    this.passDown(ev);
  }

  tick(_now: number): void {}
}

/** What the application learns at each commit (the `key` upcall). */
export interface CoreKeyInfo {
  /**
   * The key's generation: strictly increasing at each member and equal on every member of the
   * view (the next one after the largest any member of the view held). Feed it to the leaf
   * tree's `setKeySecret(generation, leafSecret)`. (The core tree's own epoch may repeat at a
   * member after a merge that admits it as a singleton, so it is not used for this.)
   */
  readonly epoch: number;
  /** Public name of this key (the committed tree's lineage tag, random per commit). */
  readonly keyId: Uint8Array;
  readonly view: ViewId;
  /**
   * The committed core key itself (a copy the application owns: it derives what it needs — the
   * leaf plane its leaf-tree secret, leaf-plane `leafTreeSecret` — and wipes it).
   */
  readonly coreKey: Uint8Array;
  /** True when this key replaced the previous one inside the same view (periodic refresh). */
  readonly refresh: boolean;
}
