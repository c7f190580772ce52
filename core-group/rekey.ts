/**
 * rekey — the core key, replaced on every view (Rodeh's tree rekey run over this stack).
 *
 * Sits between gms and flow. After each view install it runs one `CoreTreeMember` session in the
 * new view (leader = the view's coordinator) and holds the application's traffic (flow stays
 * blocked, `unblock` is withheld) until the new key is committed; a further view aborts the
 * session and starts over. A periodic refresh replaces the key inside a view without holding
 * traffic (everyone still shares the old key meanwhile).
 *
 * Rounds of one view's rekey, on top of the core-tree's R0..R5:
 *   L   every member multicasts (fifo) its lineage tag and its current pairwise offer, bound to
 *       the view. Once a member holds every member's L it starts its core-tree session; so all
 *       members start with the same lineage map, and the leader holds every joiner's pairwise
 *       offer before it announces (pairwise keys never wait on a round of their own).
 * The lineage is exchanged inside the new view rather than in FLUSH_OK on purpose: a flush may
 * deliver the old view's commit in its cut *after* a member reported its tag, so a tag taken
 * during the flush can be stale; the tag after the cut is the same on every survivor of a view
 * (virtual synchrony), and that is what L carries.
 *
 * Channels: announce, bundle, commit and refresh are multicast on the ordered channel (the
 * commit is one position of the total order, so every member switches at the same point of the
 * application's ordered stream); reports, pieces and acks go point-to-point. Every payload of
 * this layer and of the application is prefixed with one byte saying whose it is.
 *
 * Bounded: the own-multicast queue holds at most a few messages per session (L, announce,
 * bundle, commit, refresh); it is cleared on every view.
 */

import type { CipherSuite } from '../crypto/index.js';
import { CryptoError, wipe } from '../crypto/index.js';
import type { PairwiseBook } from './pairwise-book.js';
import type { SealedInfo } from './secure.js';
import {
  CoreTreeMember,
  decodeOffer,
  encodeOffer,
  soloState,
  type CoreKeyState,
  type CoreRekeyEffect,
  type PairwiseKeyring,
} from '../keytree/index.js';
import { DecodeError, Reader, Writer } from '../wire/index.js';
import type { MemberKey, View, ViewId } from './ids.js';
import { nameOf, sameViewId, viewIdText } from './ids.js';
import type { DownEvent, LayerContext, UpEvent } from './layer.js';
export type { CoreKeyInfo } from './layer.js';
import { BaseLayer } from './layer.js';
import { Channel, MAX_PAYLOAD_BYTES } from './messages.js';

/** First byte of every payload crossing this layer. */
export const PayloadOwner = { App: 0, Rekey: 1 } as const;
/** Largest application payload when keys are on (one byte goes to the owner prefix). */
export const MAX_APP_PAYLOAD_BYTES = MAX_PAYLOAD_BYTES - 1;

const Kind = { Lineage: 0, Tree: 1, Refresh: 2, Offer: 3 } as const;
const MAX_TAG_BYTES = 32;
const MAX_OFFER_BYTES = 512;
const MAX_OWN_QUEUE = 16;
const SESSION_LABEL = new TextEncoder().encode('keyglass/core-group/rekey-session/v1');

export interface CoreKeyConfig {
  readonly suite: CipherSuite;
  /** This member's long-term Ed25519 seed (certificate key, or configured). */
  readonly identitySeed: Uint8Array;
  /** A member name's verified Ed25519 public key, or undefined (then it cannot be keyed with). */
  readonly verifyKeyOf: (name: string) => Uint8Array | undefined;
  /** Uniform [0,1) for pairwise renewal jitter (injected so simulations replay). */
  readonly random: () => number;
  /** Replace the core key inside a view this often (ms); 0 or absent = only on view changes. */
  readonly refreshMs?: number;
  /** Pairwise offer lifetime and renewal (X25519Pairwise defaults: 1 h, renew 10 min before ± 5 min). */
  readonly pairwiseLifetimeMs?: number;
  readonly pairwiseRenewBeforeMs?: number;
  readonly pairwiseJitterMs?: number;
  /** A retired core key still opens frames this long after the next commit (default 2 s). */
  readonly transitionMs?: number;
  /** Observes every core-tree message this member sends, with its view (the simulation's secrecy checker). */
  readonly observeRekey?: (message: Uint8Array, view: readonly MemberKey[]) => void;
  /** Observes every sealed frame (metrics; the simulation's checkers). */
  readonly observeSealed?: (info: SealedInfo) => void;
}

export interface RekeyStats {
  rekeysCommitted: number;
  rekeysAborted: number;
  refreshes: number;
  /** Messages the core-tree refused (malformed, contradicting the protocol, wraps that did not open). */
  errors: number;
  pairwiseWaits: number;
  offersAccepted: number;
  offersRejected: number;
}

/**
 * Pairwise keys live as long as the process (by member *name*: the identity key is the name's);
 * the core tree speaks in member keys (`name#incarnation`), so it sees the keyring through this
 * adapter.
 */
function byName(book: PairwiseBook): PairwiseKeyring {
  return {
    current: (m) => {
      const k = book.ring.current(nameOf(m));
      return k === undefined ? undefined : { ...k, peer: m };
    },
    byId: (m, id) => {
      const k = book.byId(nameOf(m), id);
      return k === undefined ? undefined : { ...k, peer: m };
    },
  };
}

interface Session {
  readonly view: View;
  readonly round: number;
  readonly id: Uint8Array;
  /** Lineage messages received (member → tag or null for "no tree"). */
  readonly tags: Map<MemberKey, Uint8Array | null>;
  /** Largest key generation reported in lineage messages (or this member's, for a refresh). */
  maxGeneration: number;
  started: boolean;
  /** The view's first session holds application traffic until it commits. */
  readonly holds: boolean;
}

export class CoreRekey extends BaseLayer {
  readonly name = 'rekey';
  private readonly tree: CoreTreeMember;
  private readonly suite: CipherSuite;
  private session: Session | undefined;
  private view: View | undefined;
  private frozen = true;
  private holding = true;
  private free = 0;
  private draining = false;
  private readonly own: { ch: Channel; payload: Uint8Array }[] = [];
  private committedView: ViewId | undefined;
  private committedAt = 0;
  private round = 0;
  /** Epoch of the own pairwise offer last sent to the view. */
  private offerEpochSent = 0;
  /** Generation of the committed key (see CoreKeyInfo.epoch). */
  private generation = 0;
  readonly stats: RekeyStats = {
    rekeysCommitted: 0,
    rekeysAborted: 0,
    refreshes: 0,
    errors: 0,
    pairwiseWaits: 0,
    offersAccepted: 0,
    offersRejected: 0,
  };
  lastError: string | undefined;

  constructor(
    ctx: LayerContext,
    private readonly cfg: CoreKeyConfig,
    private readonly book: PairwiseBook,
    private readonly canUnicast: (to: MemberKey) => boolean,
  ) {
    super(ctx);
    this.suite = cfg.suite;
    book.offer(ctx.now());
    this.tree = new CoreTreeMember({
      suite: cfg.suite,
      pairwise: byName(book),
      state: soloState(cfg.suite, ctx.self),
    });
  }

  /** The committed core-key state (tests and the simulation's checkers read it). */
  get state(): CoreKeyState {
    return this.tree.state;
  }

  /** True while the application's traffic is held for the view's first rekey. */
  get isHolding(): boolean {
    return this.holding;
  }

  override up(ev: UpEvent): void {
    switch (ev.type) {
      case 'deliver': {
        const owner = ev.payload[0];
        const body = ev.payload.subarray(1);
        if (owner === PayloadOwner.App) return this.passUp({ ...ev, payload: body });
        if (owner === PayloadOwner.Rekey) return this.onRekey(ev.sender, body, ev.ch);
        this.stats.errors++;
        return;
      }
      case 'unicast': {
        const owner = ev.payload[0];
        const body = ev.payload.subarray(1);
        if (owner === PayloadOwner.App) return this.passUp({ ...ev, payload: body });
        if (owner === PayloadOwner.Rekey) return this.onRekey(ev.sender, body, undefined);
        this.stats.errors++;
        return;
      }
      case 'sendWindow':
        this.free = ev.free;
        if (!this.draining) this.drain();
        return this.passUp({ type: 'sendWindow', free: this.own.length > 0 ? 0 : this.free });
      case 'block':
        this.frozen = true;
        return this.passUp(ev);
      case 'view':
        this.passUp(ev);
        return this.onView(ev.view);
      default:
        return this.passUp(ev);
    }
  }

  override down(ev: DownEvent): void {
    if (ev.type === 'multicast' || ev.type === 'unicast') {
      if (ev.payload.length > MAX_APP_PAYLOAD_BYTES)
        throw new RangeError(`payload exceeds ${MAX_APP_PAYLOAD_BYTES} bytes`);
      return this.passDown({ ...ev, payload: prefixed(PayloadOwner.App, ev.payload) });
    }
    this.passDown(ev);
  }

  override tick(now: number): void {
    this.sendOfferIfRenewed();
    const refreshMs = this.cfg.refreshMs ?? 0;
    const v = this.view;
    if (
      refreshMs > 0 &&
      v !== undefined &&
      v.id.coord === this.ctx.self &&
      this.session === undefined &&
      this.own.length === 0 && // one refresh request in flight at most (the window may be closed)
      this.committedView !== undefined &&
      sameViewId(this.committedView, v.id) &&
      now - this.committedAt >= refreshMs
    ) {
      this.committedAt = now; // one refresh request per interval even if it is slow to order
      const w = new Writer(16).u8(Kind.Refresh).varuint(this.round + 1);
      this.queue(Channel.Ordered, w.finish());
    }
  }

  // ── view change ────────────────────────────────────────────────────────────────────────────

  private onView(view: View): void {
    if (this.session !== undefined && !this.session.started) this.stats.rekeysAborted++;
    else if (this.tree.rekeying) this.stats.rekeysAborted++;
    this.tree.abort();
    this.view = view;
    this.frozen = false;
    this.own.length = 0;
    this.round = 0;
    this.holding = true;
    this.session = this.newSession(view, 0, true);
    const offer = this.book.offer(this.ctx.now());
    this.offerEpochSent = offer.epoch;
    const tag = this.tree.lineageTag();
    const w = new Writer(1024).u8(Kind.Lineage).bytes(this.session.id, 32).varuint(this.generation);
    w.option(tag, (ww, t) => ww.bytes(t, MAX_TAG_BYTES));
    w.bytes(encodeOffer(offer), MAX_OFFER_BYTES);
    this.queue(Channel.Fifo, w.finish());
  }

  private newSession(view: View, round: number, holds: boolean): Session {
    const w = new Writer(256).fixed(SESSION_LABEL, SESSION_LABEL.length);
    w.string(viewIdText(view.id), 128).varuint(round);
    const id = this.suite.sha256(w.finish());
    return { view, round, id, tags: new Map(), maxGeneration: this.generation, started: false, holds };
  }

  // ── messages of this layer ─────────────────────────────────────────────────────────────────

  private onRekey(sender: MemberKey, body: Uint8Array, ch: Channel | undefined): void {
    try {
      const r = new Reader(body);
      const kind = r.u8();
      if (kind === Kind.Tree) {
        // Multicasts of the core tree must be totally ordered (the commit is a point of the order).
        if (ch !== undefined && ch !== Channel.Ordered)
          throw new DecodeError('bad-value', 'core-tree multicast off the ordered channel');
        return this.effects(this.tree.receive(sender, body.subarray(1)));
      }
      if (ch === undefined) throw new DecodeError('bad-tag', `rekey kind ${kind} point-to-point`);
      if (kind === Kind.Lineage) {
        const session = r.bytes(32);
        const generation = r.varuint();
        const tag = r.option((rr) => rr.bytes(MAX_TAG_BYTES).slice());
        const offer = r.bytes(MAX_OFFER_BYTES).slice();
        r.end();
        this.onOffer(sender, offer);
        const s = this.session;
        if (s === undefined || s.started || !equalBytes(session, s.id)) return;
        s.tags.set(sender, tag ?? null);
        s.maxGeneration = Math.max(s.maxGeneration, generation);
        return this.maybeStart(s);
      }
      if (kind === Kind.Offer) {
        const offer = r.bytes(MAX_OFFER_BYTES).slice();
        r.end();
        return this.onOffer(sender, offer);
      }
      if (kind === Kind.Refresh) {
        const round = r.varuint();
        r.end();
        const v = this.view;
        if (
          v === undefined ||
          sender !== v.id.coord ||
          round !== this.round + 1 ||
          this.session !== undefined
        )
          return;
        this.round = round;
        this.stats.refreshes++;
        const s = this.newSession(v, round, false);
        const tag = this.tree.lineageTag();
        for (const m of v.members) s.tags.set(m, tag ?? null);
        this.session = s;
        return this.maybeStart(s);
      }
      throw new DecodeError('bad-tag', `rekey kind ${kind}`);
    } catch (e) {
      if (!(e instanceof DecodeError || e instanceof CryptoError || (e as Error).name === 'CoreTreeError'))
        throw e;
      this.stats.errors++;
      this.lastError = `${sender} at ${this.ctx.now().toFixed(1)} ms: ${(e as Error).message}`;
    }
  }

  private onOffer(sender: MemberKey, bytes: Uint8Array): void {
    const offer = decodeOffer(bytes);
    if (offer.member !== nameOf(sender)) {
      this.stats.offersRejected++;
      return;
    }
    if (this.book.accept(offer, this.ctx.now())) this.stats.offersAccepted++;
  }

  /** A new pairwise key exists: the leader may be waiting for it. */
  pairwiseAdded(): void {
    this.effects(this.tree.retry());
  }

  private maybeStart(s: Session): void {
    if (s.started || !s.view.members.every((m) => s.tags.has(m))) return;
    s.started = true;
    const leader = s.view.members.includes(s.view.id.coord) ? s.view.id.coord : s.view.members[0]!;
    const lineages = new Map<string, Uint8Array | undefined>();
    for (const [m, t] of s.tags) lineages.set(m, t ?? undefined);
    this.effects(this.tree.start({ session: s.id, leader, members: s.view.members, lineages }));
  }

  /**
   * A renewed own offer goes to the view at once, on the fifo channel, ahead of anything this
   * member sends next: every later wrap made under keys derived from it reaches each peer after
   * the offer. (Renewal can happen inside any event: the link also asks for the current offer.)
   * Peers keep the previous pairwise key meanwhile; outsiders get the offer on the link.
   */
  private sendOfferIfRenewed(): void {
    const offer = this.book.offer(this.ctx.now());
    if (offer.epoch === this.offerEpochSent) return;
    this.offerEpochSent = offer.epoch;
    if (this.view === undefined || this.frozen) return; // the next view's lineage round carries it
    const w = new Writer(MAX_OFFER_BYTES + 8).u8(Kind.Offer).bytes(encodeOffer(offer), MAX_OFFER_BYTES);
    this.queue(Channel.Fifo, w.finish());
  }

  private effects(effects: readonly CoreRekeyEffect[]): void {
    this.sendOfferIfRenewed();
    for (const e of effects) {
      if ((e.type === 'multicast' || e.type === 'send') && this.cfg.observeRekey !== undefined)
        this.cfg.observeRekey(e.message, this.view?.members ?? []);
      switch (e.type) {
        case 'multicast':
          this.queue(Channel.Ordered, concat(Kind.Tree, e.message));
          break;
        case 'send':
          if (this.canUnicast(e.to))
            this.passDown({
              type: 'unicast',
              to: e.to,
              payload: prefixed(PayloadOwner.Rekey, concat(Kind.Tree, e.message)),
            });
          break;
        case 'need-pairwise':
          // Offers come with the lineage round; a missing one arrives with a late L message.
          this.stats.pairwiseWaits++;
          break;
        case 'installed':
          this.onInstalled(e.state);
          break;
      }
    }
  }

  private onInstalled(state: CoreKeyState): void {
    const s = this.session;
    const v = this.view;
    if (v === undefined) throw new Error('rekey: installed without a view');
    this.session = undefined;
    this.stats.rekeysCommitted++;
    this.committedView = v.id;
    this.committedAt = this.ctx.now();
    this.generation = (s?.maxGeneration ?? this.generation) + 1;
    this.passUp({
      type: 'key',
      key: {
        epoch: this.generation,
        keyId: state.lineage.slice(),
        view: v.id,
        coreKey: state.groupKey.slice(),
        refresh: s?.holds !== true,
      },
    });
    // Installed inside a flush's cut (the old view's commit): stay held until the next view's key.
    if (this.holding && !this.frozen) {
      this.holding = false;
      this.passUp({ type: 'unblock' });
    }
  }

  // ── own multicasts: before the application's, within nakack's window ───────────────────────

  private queue(ch: Channel, body: Uint8Array): void {
    if (this.own.length >= MAX_OWN_QUEUE) throw new Error('rekey: own multicast queue overflow');
    this.own.push({ ch, payload: prefixed(PayloadOwner.Rekey, body) });
    if (!this.draining) this.drain();
  }

  private drain(): void {
    this.draining = true;
    try {
      while (!this.frozen && this.free > 0 && this.own.length > 0) {
        const m = this.own.shift()!;
        this.free--;
        this.passDown({ type: 'multicast', ch: m.ch, payload: m.payload });
      }
    } finally {
      this.draining = false;
    }
    if (this.own.length === 0 && !this.frozen) this.passUp({ type: 'sendWindow', free: this.free });
  }

  /** Wipes key material held by this layer (the stack is being discarded). */
  dispose(): void {
    this.tree.abort();
    const st = this.tree.state;
    wipe(st.groupKey, ...st.pathKeys.values());
  }
}

function prefixed(owner: number, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(body.length + 1);
  out[0] = owner;
  out.set(body, 1);
  return out;
}

function concat(kind: number, body: Uint8Array): Uint8Array {
  return prefixed(kind, body);
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
