/**
 * GroupMember — the assembled stack and the application API.
 *
 * Stack, lowest first: fd · nakack · unicast · total · gms · flow. The member is sans-IO: the
 * host feeds it bytes (`receive`) and time (`tick`, every `tickMs`), and gives it a `send` to a
 * transport name; the application gets upcalls. The same member runs over the simulator
 * (sim/) and over a real Transport<string> (names are the peers' verified identities).
 *
 * Identity: `name#incarnation`. A host starts a process with an incarnation larger than any
 * earlier one of the same name (e.g. boot counter × 2^20, or boot time); when the group excludes
 * this member while it was alive, the member rejoins by itself as incarnation + 1, with a fresh
 * stack, and receives the group's state again (`setState`) in the view that admits it.
 */

import { DecodeError } from '../wire/index.js';
import { FailureDetector } from './fd.js';
import type { FdConfig } from './fd.js';
import { FlowControl } from './flow.js';
import type { FlowConfig } from './flow.js';
import { Membership } from './gms.js';
import type { GmsConfig, GmsStats } from './gms.js';
import type { MembershipMemory, MemberKey, StateVersion, View } from './ids.js';
import { memberKey, nameOf } from './ids.js';
import type { BaseLayer, DownEvent, LayerContext, UpEvent } from './layer.js';
import { Channel, decodeFrame, encodeFrame, MAX_PAYLOAD_BYTES } from './messages.js';
import type { Frame } from './messages.js';
import { ReliableFifo } from './nakack.js';
import type { NakackConfig } from './nakack.js';
import { CoreRekey, MAX_APP_PAYLOAD_BYTES } from './rekey.js';
import { PairwiseBook } from './pairwise-book.js';
import { SecureLink } from './secure.js';
import type { SecureStats } from './secure.js';
import type { CoreKeyConfig, CoreKeyInfo, RekeyStats } from './rekey.js';
import type { CoreKeyState, PairwiseKey } from '../keytree/index.js';
import { TotalOrder } from './total.js';
import { Unicast } from './unicast.js';
import type { UnicastConfig } from './unicast.js';

export type ChannelName = 'fifo' | 'ordered';

export interface Delivery {
  readonly sender: MemberKey;
  readonly channel: ChannelName;
  /** The sender's sequence number in the view (FIFO channel and ordered channel share it). */
  readonly seq: number;
  readonly payload: Uint8Array;
  /**
   * Ordered only: delivered at a flush after an ORDER record whose message this member's
   * component never received. From here until the next view this member's ordered stream is a
   * branch, not a prefix of the view's total order (another component may deliver the skipped
   * message); a state version must not count such deliveries as if they extended the prefix.
   */
  readonly afterGap?: boolean;
}

/** Upcalls to the application. Called synchronously from `receive`/`tick`; must not re-enter. */
export interface GroupApp {
  /** A view was installed (after `setState` when this member is admitted by it). */
  view(view: View, self: MemberKey): void;
  deliver(d: Delivery): void;
  unicast(sender: MemberKey, payload: Uint8Array): void;
  /** A flush began: multicasts are queued (bounded) until the next `unblock`. */
  block(): void;
  unblock(): void;
  /** The replicated state, as of the end of the current view's deliveries. */
  getState(): Uint8Array;
  /**
   * The version of the committed state (see StateVersion): the newest one leads every merge, so
   * state never flows from an older version to a newer. Without it every state ranks equal.
   */
  stateVersion?(): StateVersion;
  /** Replaces the state with a merge coordinator's, at `version` (the application keeps both). */
  setState(state: Uint8Array, version: StateVersion): void;
  /**
   * Keys on only: a core key was committed, at the same point of the ordered stream on every
   * member of the view. With keys on, `unblock` follows the view's first `key`, not `view`.
   */
  key?(key: CoreKeyInfo): void;
}

export interface GroupHost {
  now(): number;
  /** Best-effort datagram to a member's transport name. */
  send(toName: string, bytes: Uint8Array): void;
}

export interface StackConfig {
  readonly tickMs: number;
  readonly fd: FdConfig;
  readonly nakack: NakackConfig;
  readonly unicast: UnicastConfig;
  readonly flow: FlowConfig;
  readonly gms: Omit<GmsConfig, 'founders' | 'peers' | 'getState' | 'stateVersion' | 'memory'>;
}

/** Defaults sized for a LAN or the simulator's few-ms links. */
export const DEFAULT_STACK_CONFIG: StackConfig = {
  tickMs: 10,
  fd: { heartbeatMs: 100, minTimeoutMs: 400, maxTimeoutMs: 1500 },
  nakack: { windowMsgs: 64, statusMs: 100, nakMs: 40, maxNakBatch: 64 },
  unicast: { windowMsgs: 64, rtxMs: 60 },
  flow: { maxQueued: 256 },
  gms: { rtxMs: 60, flushTimeoutMs: 800, helloMs: 250, lagTimeoutMs: 1500 },
};

export interface GroupMemberOptions {
  readonly name: string;
  readonly incarnation: number;
  /** Member keys of the founders' first incarnations: the genesis primary view. */
  readonly founders: readonly MemberKey[];
  /** Transport names of every possible member. */
  readonly peers: readonly string[];
  readonly config?: StackConfig;
  /** Core key on: rekey on every view (and periodically), application traffic held until keyed. */
  readonly keys?: CoreKeyConfig;
  /**
   * Durable knowledge of the primary sequence for this name. With it, majorities count names and
   * a group whose servers all restarted becomes primary again by itself. Without it a new
   * incarnation (restart or rejoin) forgets the primary sequence while its name still counts:
   * only for hosts whose processes never restart (unit tests, benchmarks).
   */
  readonly memory?: MembershipMemory;
}

export interface MemberStats extends GmsStats {
  readonly decodeErrors: number;
  readonly rejoins: number;
  readonly delivered: number;
  readonly refused: number;
  /** Own ordered messages resent after a flush left them unordered, and others' dropped. */
  readonly resent: number;
  readonly droppedUnordered: number;
}

interface Stack {
  readonly self: MemberKey;
  readonly layers: readonly BaseLayer[];
  readonly gms: Membership;
  readonly flow: FlowControl;
  readonly nakack: ReliableFifo;
  readonly unicast: Unicast;
  readonly total: TotalOrder;
  readonly rekey: CoreRekey | undefined;
}

export class GroupMember {
  private stack!: Stack;
  private incarnation: number;
  private readonly cfg: StackConfig;
  private lastFrame: Frame | undefined;
  private lastBytes: Uint8Array | undefined;
  private decodeErrors = 0;
  private rejoins = 0;
  private refusedTotal = 0;
  private deliveredTotal = 0;
  private started = false;
  private pendingRejoin = false;
  /** Pairwise keys are per name (identity), so they outlive incarnations. */
  private readonly pairwise: PairwiseBook | undefined;
  /** Keys on: every frame on the wire is sealed (secure.ts). */
  private readonly link: SecureLink | undefined;
  private unauthenticSender = 0;

  constructor(
    private readonly opts: GroupMemberOptions,
    private readonly host: GroupHost,
    private readonly app: GroupApp,
  ) {
    this.cfg = opts.config ?? DEFAULT_STACK_CONFIG;
    this.incarnation = opts.incarnation;
    const keys = opts.keys;
    if (keys !== undefined) {
      const book = new PairwiseBook(keys, opts.name);
      const link = new SecureLink(
        keys.suite,
        opts.name,
        book,
        () => host.now(),
        keys.transitionMs ?? 2_000,
        Math.max(this.cfg.gms.rtxMs, 50),
        keys.observeSealed,
      );
      book.onAccepted = (name) => {
        link.pairwiseAdded(name);
        this.stack.rekey?.pairwiseAdded();
      };
      this.pairwise = book;
      this.link = link;
    } else {
      this.pairwise = undefined;
      this.link = undefined;
    }
    this.stack = this.build();
  }

  get self(): MemberKey {
    return this.stack.self;
  }

  get view(): View {
    return this.stack.gms.currentView;
  }

  get blocked(): boolean {
    return this.stack.flow.isBlocked;
  }

  get tickMs(): number {
    return this.cfg.tickMs;
  }

  get stats(): MemberStats {
    return {
      ...this.stack.gms.stats,
      decodeErrors: this.decodeErrors,
      rejoins: this.rejoins,
      delivered: this.deliveredTotal,
      refused: this.refusedTotal + this.stack.flow.refused,
      resent: this.stack.total.resent,
      droppedUnordered: this.stack.total.droppedUnordered,
    };
  }

  /** Keys on: the committed core-key state (for tests, simulation checkers and the secure layer). */
  get coreKey(): CoreKeyState | undefined {
    return this.stack.rekey?.state;
  }

  get secureStats(): (SecureStats & { readonly unauthenticSender: number }) | undefined {
    return this.link === undefined
      ? undefined
      : { ...this.link.stats, unauthenticSender: this.unauthenticSender };
  }

  /** Keys on: every pairwise key held now (the simulation's secrecy checker). */
  pairwiseKeys(): PairwiseKey[] {
    const ring = this.pairwise?.ring;
    if (ring === undefined) return [];
    return ring.peers().flatMap((p) => ring.held(p));
  }

  get rekeyStats(): RekeyStats | undefined {
    return this.stack.rekey?.stats;
  }

  /** The last message the core tree refused, for diagnostics. */
  get rekeyError(): string | undefined {
    return this.stack.rekey?.lastError;
  }

  /** Messages retained for retransmission (bounded by members × window). */
  get retained(): number {
    return this.stack.nakack.retained;
  }

  /** Installs the boot view (this member alone); call once before anything else. */
  start(): void {
    if (this.started) throw new Error('GroupMember already started');
    this.started = true;
    this.stack.gms.start();
  }

  /** Multicast to the current view. False = refused (send queue full): backpressure. */
  multicast(channel: ChannelName, payload: Uint8Array): boolean {
    this.checkPayload(payload);
    return this.stack.flow.offer(channel === 'ordered' ? Channel.Ordered : Channel.Fifo, payload);
  }

  /** Reliable FIFO point-to-point within the current view. False = refused (not a member, or window full). */
  send(to: MemberKey, payload: Uint8Array): boolean {
    this.checkPayload(payload);
    if (!this.stack.unicast.canSend(to)) {
      this.refusedTotal++;
      return false;
    }
    (this.stack.rekey ?? this.stack.gms).down({ type: 'unicast', to, payload });
    return true;
  }

  private checkPayload(payload: Uint8Array): void {
    const max = this.opts.keys === undefined ? MAX_PAYLOAD_BYTES : MAX_APP_PAYLOAD_BYTES;
    if (payload.length > max) throw new RangeError(`payload of ${payload.length} bytes exceeds ${max}`);
  }

  /** Leave the group gracefully; keep calling `tick` until the others' view excludes this member, then stop. */
  leave(): void {
    this.stack.gms.leave();
  }

  /** Bytes from the network (any sender; content is authenticated by the transport below). */
  receive(bytes: Uint8Array): void {
    let inner = bytes;
    let sender: string | undefined;
    if (this.link !== undefined) {
      const opened = this.link.open(bytes);
      this.flushLink();
      if (opened === undefined) return;
      inner = opened.frame;
      sender = opened.sender;
    }
    let frame: Frame;
    try {
      frame = decodeFrame(inner);
    } catch (e) {
      if (!(e instanceof DecodeError)) throw e;
      this.decodeErrors++;
      return;
    }
    // The envelope authenticated the sender's name: the frame must not claim another.
    if (sender !== undefined && nameOf(frame.from) !== sender) {
      this.unauthenticSender++;
      return;
    }
    this.stack.layers[0]!.up({ type: 'frame', frame });
    this.afterEvent();
  }

  private flushLink(): void {
    for (const o of this.link!.takeOutput()) this.host.send(o.toName, o.bytes);
  }

  /** Drive time; the host calls this every `tickMs`. */
  tick(): void {
    const now = this.host.now();
    this.link?.tick();
    for (const l of this.stack.layers) l.tick(now);
    this.afterEvent();
  }

  private afterEvent(): void {
    if (!this.pendingRejoin) return;
    this.pendingRejoin = false;
    // Excluded while alive: rejoin as a new incarnation with a fresh stack.
    this.rejoins++;
    this.incarnation++;
    this.stack.rekey?.dispose();
    this.stack = this.build();
    this.stack.gms.start();
  }

  private build(): Stack {
    const self = memberKey(this.opts.name, this.incarnation);
    const ctx: LayerContext = { self, now: () => this.host.now() };
    const fd = new FailureDetector(ctx, this.cfg.fd);
    const nakack = new ReliableFifo(ctx, this.cfg.nakack);
    const unicast = new Unicast(ctx, this.cfg.unicast);
    const total = new TotalOrder(ctx);
    const gms = new Membership(ctx, {
      ...this.cfg.gms,
      founders: this.opts.founders,
      peers: this.opts.peers.filter((p) => p !== this.opts.name),
      getState: () => this.app.getState(),
      stateVersion: () => this.app.stateVersion?.() ?? [],
      ...(this.opts.memory !== undefined ? { memory: this.opts.memory } : {}),
    });
    const keys = this.opts.keys;
    const flow = new FlowControl(
      ctx,
      keys === undefined ? this.cfg.flow : { ...this.cfg.flow, holdUntilUnblock: true },
    );
    const rekey =
      keys === undefined ? undefined : new CoreRekey(ctx, keys, this.pairwise!, (to) => unicast.canSend(to));
    const layers: BaseLayer[] = [fd, nakack, unicast, total, gms, ...(rekey ? [rekey] : []), flow];
    layers.forEach((l, i) => {
      const above = layers[i + 1];
      const below = layers[i - 1];
      l.connect(
        above ? (ev) => above.up(ev) : (ev) => this.top(self, ev),
        below ? (ev) => below.down(ev) : (ev) => this.bottom(self, ev),
      );
    });
    return { self, layers, gms, flow, nakack, unicast, total, rekey };
  }

  /** Bottom of the stack: encode and hand to the host. */
  private bottom(self: MemberKey, ev: DownEvent): void {
    if (self !== this.stack.self) return; // a discarded incarnation
    if (ev.type === 'view') this.link?.setView(ev.view.members);
    if (ev.type === 'send') this.transmit(nameOf(ev.to), ev.frame);
    else if (ev.type === 'sendName') this.transmit(ev.toName, ev.frame);
  }

  private transmit(toName: string, frame: Frame): void {
    // A multicast sends one frame object to every member: encode it once.
    if (frame !== this.lastFrame) {
      this.lastFrame = frame;
      this.lastBytes = encodeFrame(frame);
    }
    if (this.link === undefined) return this.host.send(toName, this.lastBytes!);
    const sealed = this.link.seal(toName, this.lastBytes!);
    if (sealed !== undefined) this.host.send(toName, sealed);
    this.flushLink();
  }

  /** Top of the stack: upcalls. */
  private top(self: MemberKey, ev: UpEvent): void {
    if (self !== this.stack.self) return;
    switch (ev.type) {
      case 'deliver':
        this.deliveredTotal++;
        this.app.deliver({
          sender: ev.sender,
          channel: ev.ch === Channel.Ordered ? 'ordered' : 'fifo',
          seq: ev.seq,
          payload: ev.payload,
          ...(ev.afterGap === true ? { afterGap: true } : {}),
        });
        return;
      case 'unicast':
        return this.app.unicast(ev.sender, ev.payload);
      case 'block':
        return this.app.block();
      case 'view':
        this.app.view(ev.view, ev.self);
        if (this.opts.keys === undefined) this.app.unblock();
        return;
      case 'unblock':
        return this.app.unblock();
      case 'key':
        if (this.stack.rekey !== undefined) this.link?.setKey(this.stack.rekey.state);
        return this.app.key?.(ev.key);
      case 'setState':
        return this.app.setState(ev.state, ev.version);
      case 'excluded':
        this.pendingRejoin = true;
        return;
      default:
        return;
    }
  }
}
