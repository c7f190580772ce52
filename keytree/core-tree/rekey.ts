/**
 * The distributed core-tree rekey (after Rodeh, Birman and Dolev), as a sans-IO state machine:
 * one `CoreTreeMember` per core server. Inputs are the view change (`start`), messages from the
 * authenticated transport (`receive`) and `retry` once missing pairwise keys exist; outputs are
 * effects — point-to-point sends, multicasts, and `installed` with the new committed state.
 *
 * Delivery contract (what the virtual-synchrony layer provides): every `multicast` is delivered
 * to all members of the view, the sender included, in one total order; `send` is reliable FIFO.
 *
 * Rounds, counted in the benchmark:
 *   R0  report    (merges only) one representative per foreign lineage sends the leader the
 *                 cut of its committed tree. Members without a tree (joiners) send nothing.
 *   R1  announce  the leader multicasts the new symbolic tree, plus "grants": the key of each
 *                 retained piece's new parent, wrapped under the pairwise key of the piece's
 *                 subleader. If no piece needs a subleader, the bundle follows in this round.
 *   R2  piece     each subleader wraps that parent key under its piece's (old) subtree key and
 *                 sends it to the leader.
 *   R3  bundle    the leader multicasts ONE bundle: every fresh key wrapped under its children's
 *                 keys (fresh keys, piece keys via R2, pairwise keys for singletons).
 *   R4  ack       each member decrypts its path bottom-up and acks with a key confirmation.
 *   R5  commit    after all acks match, the leader multicasts the commit; on its delivery every
 *                 member switches to the new key at the same point of the total order.
 *
 * Who generates: the leader generates every fresh key (one CSPRNG draw), so fresh keys need no
 * agreement; subleaders only re-wrap. Keys of retained pieces are never sent anywhere.
 *
 * Pairwise keys are only looked up here. A singleton (joiner) needs one with the leader; a piece
 * needs one between the leader and any of its members (the smallest such member is the
 * subleader). When one is missing the leader emits `need-pairwise` and waits for `retry`.
 *
 * Abort: `start` of a new view (or `abort`) discards every pending key and message of the old
 * session; messages of other sessions are ignored. A member only switches on `commit`, and the
 * commit is sent only after every member confirmed the same key, so no member ever uses a key
 * that its view does not share. Failures surface as exceptions from `receive` (`DecodeError`
 * for malformed bytes, `CryptoError` for a wrap that does not open, `CoreTreeError` for a
 * message that contradicts the protocol); the caller reports the sender to membership, and the
 * next view starts over.
 */
import { KEY_BYTES, constantTimeEqual, wipe, type CipherSuite } from '../../crypto/index.js';
import { Writer } from '../../wire/index.js';
import {
  LINEAGE_BYTES,
  MAX_SESSION_BYTES,
  decodeCoreRekey,
  encodeCoreRekey,
  openWrap,
  sealWrap,
  type CoreRekeyMessage,
  type KeyRef,
  type LineageReport,
  type Wrap,
} from './messages.js';
import type { PairwiseKeyring } from './pairwise.js';
import { hex, lineageTag, soloState, type CoreKeyState } from './state.js';
import {
  asPiece,
  compareMembers,
  cut,
  leaf,
  membersOf,
  mergePieces,
  pathOf,
  innerNodes,
  type MemberId,
  type NodeId,
  type SymInner,
  type SymTree,
} from './tree.js';

export type CoreTreeErrorCode =
  | 'not-leader' // a leader-only message came from someone else, or reached a non-leader
  | 'bad-tree' // the announced tree does not match the view or this member's committed tree
  | 'bad-report' // a lineage report contradicts the view
  | 'missing-wrap' // the bundle has no wrap this member can open for a node on its path
  | 'missing-pairwise' // a wrap names a pairwise key this member does not hold
  | 'confirm-mismatch' // a member confirmed a different key
  | 'out-of-order'; // a message arrived in a phase where it cannot occur

export class CoreTreeError extends Error {
  override readonly name = 'CoreTreeError';
  constructor(
    readonly code: CoreTreeErrorCode,
    message: string,
  ) {
    super(`${code}: ${message}`);
  }
}

export interface ViewChange {
  /** Unique per view (e.g. the view id); binds every message and wrap of this rekey. */
  readonly session: Uint8Array;
  readonly leader: MemberId;
  readonly members: readonly MemberId[];
  /** Each member's `lineageTag()` as carried by the view change (undefined: no tree to bring). */
  readonly lineages: ReadonlyMap<MemberId, Uint8Array | undefined>;
  /** Replace every key, leaf to root (periodic deep refresh); otherwise at least the root. */
  readonly fullRefresh?: boolean;
}

export type CoreRekeyEffect =
  | { readonly type: 'send'; readonly to: MemberId; readonly message: Uint8Array }
  | { readonly type: 'multicast'; readonly message: Uint8Array }
  | { readonly type: 'need-pairwise'; readonly peers: readonly MemberId[] }
  | { readonly type: 'installed'; readonly state: CoreKeyState };

export interface CoreTreeMemberOptions {
  readonly suite: CipherSuite;
  readonly state: CoreKeyState;
  readonly pairwise: PairwiseKeyring;
}

/** Leader-only bookkeeping of one session. */
interface LeaderSession {
  readonly reportsAwaited: Map<MemberId, string>; // representative → lineage tag (hex)
  readonly reports: LineageReport[];
  fresh?: Map<NodeId, Uint8Array>;
  wraps?: Wrap[];
  /** Piece root id → [subleader, parent id] still owed in R2. */
  awaitingPieces?: Map<NodeId, readonly [MemberId, NodeId]>;
  acksAwaited?: Set<MemberId>;
}

interface Pending {
  readonly tree: SymTree;
  readonly epoch: number;
  readonly lineage: Uint8Array;
  /** Fresh node keys learned before the bundle (from a grant). */
  readonly granted: Map<NodeId, Uint8Array>;
  result?: {
    readonly pathKeys: Map<NodeId, Uint8Array>;
    readonly groupKey: Uint8Array;
    readonly confirm: Uint8Array;
  };
}

interface Session {
  readonly view: ViewChange;
  readonly id: Uint8Array;
  readonly inView: ReadonlySet<MemberId>;
  readonly leader: LeaderSession | undefined;
  pending?: Pending;
}

/** Messages that arrive before their view is started (views install at slightly different times). */
const MAX_EARLY_MESSAGES = 256;
const CONFIRM_LABEL = new TextEncoder().encode('keyglass/core-tree/confirm/v1');

export class CoreTreeMember {
  private readonly suite: CipherSuite;
  private readonly pairwise: PairwiseKeyring;
  private committed: CoreKeyState;
  private session: Session | undefined;
  private early: Array<{ from: MemberId; message: CoreRekeyMessage }> = [];

  constructor(o: CoreTreeMemberOptions) {
    this.suite = o.suite;
    this.pairwise = o.pairwise;
    this.committed = o.state;
  }

  get me(): MemberId {
    return this.committed.me;
  }

  /** The committed state: the key this member uses until the next commit. */
  get state(): CoreKeyState {
    return this.committed;
  }

  get rekeying(): boolean {
    return this.session !== undefined;
  }

  /** What to carry in the view change for this member (see `ViewChange.lineages`). */
  lineageTag(): Uint8Array | undefined {
    return lineageTag(this.committed);
  }

  /** Discards the session in progress and every fresh key it holds. */
  abort(): void {
    const s = this.session;
    this.session = undefined;
    if (s?.leader?.fresh !== undefined) for (const k of s.leader.fresh.values()) wipe(k);
    if (s?.pending !== undefined) for (const k of s.pending.granted.values()) wipe(k);
  }

  /** A new view is installed: abort any rekey in progress and start this view's. */
  start(view: ViewChange): CoreRekeyEffect[] {
    this.abort();
    if (view.session.length === 0 || view.session.length > MAX_SESSION_BYTES)
      throw new RangeError(`session must be 1..${MAX_SESSION_BYTES} bytes`);
    const inView = new Set(view.members);
    if (inView.size !== view.members.length || !inView.has(this.me) || !inView.has(view.leader))
      throw new RangeError('view must list distinct members including this member and the leader');
    if (inView.size === 1) {
      this.install(soloState(this.suite, this.me, this.committed.epoch + 1), new Set());
      return [{ type: 'installed', state: this.committed }];
    }
    const isLeader = view.leader === this.me;
    const reps = foreignRepresentatives(view);
    this.session = {
      view,
      id: view.session.slice(),
      inView,
      leader: isLeader ? { reportsAwaited: reps, reports: [] } : undefined,
    };
    const out: CoreRekeyEffect[] = [];
    if (!isLeader && reps.has(this.me)) {
      const pieces = cut(
        this.committed.tree,
        (m) => inView.has(m) && sameLineage(view, m, this.committed.lineage),
      );
      const report = { lineage: this.committed.lineage, epoch: this.committed.epoch, pieces };
      out.push(this.send(view.leader, { type: 'report', session: view.session, report }));
    }
    if (isLeader && reps.size === 0) out.push(...this.announce());
    const early = this.early;
    this.early = [];
    for (const e of early)
      if (sameSession(e.message.session, view.session)) out.push(...this.handle(e.from, e.message));
    return out;
  }

  /** The leader retries its announcement after `need-pairwise` was satisfied. */
  retry(): CoreRekeyEffect[] {
    const s = this.session;
    if (s?.leader === undefined || s.leader.fresh !== undefined || s.leader.reportsAwaited.size > 0)
      return [];
    return this.announce();
  }

  /** A message from `from` (authenticated by the transport). */
  receive(from: MemberId, bytes: Uint8Array): CoreRekeyEffect[] {
    const message = decodeCoreRekey(bytes);
    const s = this.session;
    if (s === undefined || !sameSession(message.session, s.id)) {
      // Possibly for a view this member has not installed yet; bounded, oldest dropped.
      if (this.early.length >= MAX_EARLY_MESSAGES) this.early.shift();
      this.early.push({ from, message });
      return [];
    }
    return this.handle(from, message);
  }

  private handle(from: MemberId, m: CoreRekeyMessage): CoreRekeyEffect[] {
    const s = this.session as Session;
    if (!s.inView.has(from)) return []; // not a member of this view: ignore
    switch (m.type) {
      case 'report':
        return this.onReport(s, from, m.report);
      case 'announce':
        return this.onAnnounce(s, from, m);
      case 'piece':
        return this.onPiece(s, from, m.wrap);
      case 'bundle':
        return this.onBundle(s, from, m.wraps);
      case 'ack':
        return this.onAck(s, from, m.confirm);
      case 'commit':
        return this.onCommit(s, from);
    }
  }

  // ── leader: R0 reports, R1 announce ─────────────────────────────────────────────────────

  private onReport(s: Session, from: MemberId, report: LineageReport): CoreRekeyEffect[] {
    const L = requireLeader(s, this.me);
    const tag = L.reportsAwaited.get(from);
    if (tag === undefined) throw new CoreTreeError('out-of-order', `unexpected report from '${from}'`);
    if (tag !== hex(report.lineage)) throw new CoreTreeError('bad-report', `lineage of '${from}' changed`);
    for (const piece of report.pieces) {
      for (const m of membersOf(piece)) {
        const t = s.view.lineages.get(m);
        if (!s.inView.has(m) || t === undefined || hex(t) !== tag)
          throw new CoreTreeError('bad-report', `'${m}' is not in lineage ${tag} of this view`);
      }
    }
    L.reportsAwaited.delete(from);
    L.reports.push(report);
    return L.reportsAwaited.size === 0 ? this.announce() : [];
  }

  private announce(): CoreRekeyEffect[] {
    const s = this.session as Session;
    const L = s.leader as LeaderSession;
    const tree = mergePieces(this.pieces(s, L), this.me);
    const missing: MemberId[] = [];
    const fresh = new Map<NodeId, Uint8Array>();
    const freshNodes = innerNodes(tree).filter((n) => n.prev === undefined);
    const material = this.suite.randomBytes(freshNodes.length * KEY_BYTES);
    freshNodes.forEach((n, i) => fresh.set(n.id, material.slice(i * KEY_BYTES, (i + 1) * KEY_BYTES)));
    wipe(material);
    const oldKeys = this.committed.pathKeys;
    const wraps: Wrap[] = [];
    const grants: Wrap[] = [];
    const awaiting = new Map<NodeId, readonly [MemberId, NodeId]>();
    const wrap = (target: NodeId, under: KeyRef, kek: Uint8Array): Wrap =>
      sealWrap(this.suite, s.id, target, under, kek, fresh.get(target) as Uint8Array);
    for (const n of freshNodes) {
      for (const c of [n.left, n.right]) {
        if (c.kind === 'leaf') {
          if (c.member === this.me) continue;
          const pk = this.pairwise.current(c.member);
          if (pk === undefined) missing.push(c.member);
          else wraps.push(wrap(n.id, { kind: 'pair', member: c.member, keyId: pk.id }, pk.key));
        } else if (c.prev === undefined) {
          wraps.push(wrap(n.id, { kind: 'node', id: c.id }, fresh.get(c.id) as Uint8Array));
        } else {
          const members = membersOf(c);
          if (members.includes(this.me)) {
            const kek = oldKeys.get(c.prev);
            if (kek === undefined) throw new Error(`invariant: leader lacks key of its piece ${c.prev}`);
            wraps.push(wrap(n.id, { kind: 'node', id: c.id }, kek));
            continue;
          }
          const sub = members.sort(compareMembers).find((m) => this.pairwise.current(m) !== undefined);
          if (sub === undefined) {
            missing.push(members[0] as MemberId);
            continue;
          }
          const pk = this.pairwise.current(sub) as NonNullable<ReturnType<PairwiseKeyring['current']>>;
          grants.push(wrap(n.id, { kind: 'pair', member: sub, keyId: pk.id }, pk.key));
          awaiting.set(c.id, [sub, n.id]);
        }
      }
    }
    if (missing.length > 0) {
      for (const k of fresh.values()) wipe(k);
      return [{ type: 'need-pairwise', peers: missing.sort(compareMembers) }];
    }
    L.fresh = fresh;
    L.wraps = wraps;
    L.awaitingPieces = awaiting;
    L.acksAwaited = new Set(s.view.members.filter((m) => m !== this.me));
    const epoch = Math.max(this.committed.epoch, ...L.reports.map((r) => r.epoch)) + 1;
    const lineage = this.suite.randomBytes(LINEAGE_BYTES);
    const out: CoreRekeyEffect[] = [
      this.multicast({ type: 'announce', session: s.id, epoch, lineage, tree, grants }),
    ];
    if (awaiting.size === 0) out.push(this.multicast({ type: 'bundle', session: s.id, wraps }));
    return out;
  }

  /** The retained pieces and singletons the new tree is merged from. */
  private pieces(s: Session, L: LeaderSession): SymTree[] {
    const covered = new Set<MemberId>();
    const pieces: SymTree[] = [];
    const add = (p: SymTree): void => {
      for (const m of membersOf(p)) {
        if (covered.has(m)) throw new CoreTreeError('bad-report', `'${m}' is in two pieces`);
        covered.add(m);
      }
      pieces.push(p);
    };
    if (this.lineageTag() !== undefined)
      for (const p of cut(
        this.committed.tree,
        (m) => s.inView.has(m) && sameLineage(s.view, m, this.committed.lineage),
      ))
        add(asPiece(p));
    for (const r of L.reports) for (const p of r.pieces) add(asPiece(p));
    for (const m of s.view.members) if (!covered.has(m)) add(leaf(m));
    if (s.view.fullRefresh === true) return s.view.members.map(leaf);
    const only = pieces[0];
    // Nothing changed: split at the root so that the core key is still replaced.
    if (pieces.length === 1 && only !== undefined && only.kind === 'inner') return [only.left, only.right];
    return pieces;
  }

  // ── every member: R1 announce, R2 piece (subleaders), R3 bundle, R4 ack, R5 commit ───────

  private onAnnounce(
    s: Session,
    from: MemberId,
    m: Extract<CoreRekeyMessage, { type: 'announce' }>,
  ): CoreRekeyEffect[] {
    if (from !== s.view.leader) throw new CoreTreeError('not-leader', `announce from '${from}'`);
    if (s.pending !== undefined) throw new CoreTreeError('out-of-order', 'second announce');
    const members = membersOf(m.tree);
    if (members.length !== s.inView.size || !members.every((x) => s.inView.has(x)))
      throw new CoreTreeError('bad-tree', 'announced tree does not hold exactly the view');
    if (this.lineageTag() !== undefined && m.epoch <= this.committed.epoch)
      throw new CoreTreeError('bad-tree', `epoch ${m.epoch} is not new`);
    const path = pathOf(m.tree, this.me) as SymInner[];
    for (const n of path) {
      if (n.prev !== undefined && !this.committed.pathKeys.has(n.prev))
        throw new CoreTreeError('bad-tree', `retained node ${n.id} is not on this member's committed path`);
    }
    const pending: Pending = { tree: m.tree, epoch: m.epoch, lineage: m.lineage, granted: new Map() };
    s.pending = pending;
    if (s.leader !== undefined) return [];
    const out: CoreRekeyEffect[] = [];
    for (const g of m.grants) {
      if (g.under.kind !== 'pair' || g.under.member !== this.me) continue;
      // The grant is for the parent of this member's piece root (its topmost retained node).
      const i = path.findIndex((n, j) => n.prev !== undefined && path[j + 1]?.prev === undefined);
      const piece = path[i];
      const parent = path[i + 1];
      if (piece === undefined || parent === undefined || parent.id !== g.target)
        throw new CoreTreeError('bad-tree', `grant for node ${g.target} is not above this member's piece`);
      const key = openWrap(this.suite, s.id, g, this.pairKey(from, g.under.keyId));
      pending.granted.set(g.target, key);
      const kek = this.committed.pathKeys.get(piece.prev as NodeId) as Uint8Array;
      const wrap = sealWrap(this.suite, s.id, g.target, { kind: 'node', id: piece.id }, kek, key);
      out.push(this.send(from, { type: 'piece', session: s.id, wrap }));
    }
    return out;
  }

  private onPiece(s: Session, from: MemberId, wrap: Wrap): CoreRekeyEffect[] {
    const L = requireLeader(s, this.me);
    const pieceId = wrap.under.kind === 'node' ? wrap.under.id : undefined;
    const owed = pieceId === undefined ? undefined : L.awaitingPieces?.get(pieceId);
    if (owed === undefined || owed[0] !== from || owed[1] !== wrap.target)
      throw new CoreTreeError('out-of-order', `unexpected piece wrap from '${from}'`);
    L.awaitingPieces?.delete(pieceId as NodeId);
    (L.wraps as Wrap[]).push(wrap);
    if ((L.awaitingPieces as Map<NodeId, unknown>).size > 0) return [];
    return [this.multicast({ type: 'bundle', session: s.id, wraps: L.wraps as Wrap[] })];
  }

  private onBundle(s: Session, from: MemberId, wraps: readonly Wrap[]): CoreRekeyEffect[] {
    if (from !== s.view.leader) throw new CoreTreeError('not-leader', `bundle from '${from}'`);
    const p = s.pending;
    if (p === undefined || p.result !== undefined)
      throw new CoreTreeError('out-of-order', 'bundle without announce');
    const byTarget = new Map<NodeId, Wrap[]>();
    for (const w of wraps) {
      const list = byTarget.get(w.target);
      if (list === undefined) byTarget.set(w.target, [w]);
      else list.push(w);
    }
    const known = new Map<NodeId, Uint8Array>();
    const fresh = s.leader?.fresh;
    let below: SymTree = leaf(this.me);
    for (const n of pathOf(p.tree, this.me) as SymInner[]) {
      const key =
        n.prev !== undefined
          ? (this.committed.pathKeys.get(n.prev) as Uint8Array)
          : (fresh?.get(n.id) ?? p.granted.get(n.id) ?? this.unwrapFor(s, n, below, known, byTarget));
      known.set(n.id, key);
      below = n;
    }
    const root = p.tree as SymInner;
    const groupKey = known.get(root.id) as Uint8Array;
    const confirm = this.confirmation(s, p, groupKey);
    p.result = { pathKeys: known, groupKey, confirm };
    if (s.leader === undefined) return [this.send(from, { type: 'ack', session: s.id, confirm })];
    return this.maybeCommit(s);
  }

  /** Opens the wrap of `n`'s key under the key of `below` (its child on this member's path). */
  private unwrapFor(
    s: Session,
    n: SymInner,
    below: SymTree,
    known: ReadonlyMap<NodeId, Uint8Array>,
    byTarget: ReadonlyMap<NodeId, Wrap[]>,
  ): Uint8Array {
    for (const w of byTarget.get(n.id) ?? []) {
      if (below.kind === 'leaf' && w.under.kind === 'pair' && w.under.member === this.me)
        return openWrap(this.suite, s.id, w, this.pairKey(s.view.leader, w.under.keyId));
      if (below.kind === 'inner' && w.under.kind === 'node' && w.under.id === below.id)
        return openWrap(this.suite, s.id, w, known.get(below.id) as Uint8Array);
    }
    throw new CoreTreeError('missing-wrap', `no wrap of node ${n.id} for '${this.me}'`);
  }

  private onAck(s: Session, from: MemberId, confirm: Uint8Array): CoreRekeyEffect[] {
    const L = requireLeader(s, this.me);
    const mine = s.pending?.result?.confirm;
    if (L.acksAwaited === undefined || mine === undefined || !L.acksAwaited.has(from))
      throw new CoreTreeError('out-of-order', `unexpected ack from '${from}'`);
    if (!constantTimeEqual(mine, confirm))
      throw new CoreTreeError('confirm-mismatch', `'${from}' holds another key`);
    L.acksAwaited.delete(from);
    return this.maybeCommit(s);
  }

  private maybeCommit(s: Session): CoreRekeyEffect[] {
    const L = s.leader as LeaderSession;
    if (s.pending?.result === undefined || (L.acksAwaited as Set<MemberId>).size > 0) return [];
    return [this.multicast({ type: 'commit', session: s.id })];
  }

  private onCommit(s: Session, from: MemberId): CoreRekeyEffect[] {
    if (from !== s.view.leader) throw new CoreTreeError('not-leader', `commit from '${from}'`);
    const p = s.pending;
    if (p?.result === undefined)
      throw new CoreTreeError('out-of-order', 'commit before this member decrypted');
    const retained = new Set(innerNodes(p.tree).flatMap((n) => (n.prev === undefined ? [] : [n.prev])));
    const state: CoreKeyState = {
      me: this.me,
      epoch: p.epoch,
      lineage: p.lineage,
      tree: p.tree,
      pathKeys: p.result.pathKeys,
      groupKey: p.result.groupKey,
    };
    this.session = undefined;
    this.install(state, retained);
    return [{ type: 'installed', state }];
  }

  // ── helpers ───────────────────────────────────────────────────────────────────────────────

  /** Switches to `next`, wiping the old keys that `next` does not keep. */
  private install(next: CoreKeyState, retained: ReadonlySet<NodeId>): void {
    const old = this.committed;
    for (const [id, k] of old.pathKeys) if (!retained.has(id)) wipe(k);
    if (old.tree.kind === 'leaf') wipe(old.groupKey);
    this.committed = next;
  }

  private pairKey(peer: MemberId, keyId: Uint8Array): Uint8Array {
    const pk = this.pairwise.byId(peer, keyId);
    if (pk === undefined)
      throw new CoreTreeError('missing-pairwise', `no pairwise key ${hex(keyId)} with '${peer}'`);
    return pk.key;
  }

  private confirmation(s: Session, p: Pending, groupKey: Uint8Array): Uint8Array {
    const w = new Writer(256).fixed(CONFIRM_LABEL, CONFIRM_LABEL.length);
    w.bytes(s.id, MAX_SESSION_BYTES).varuint(p.epoch).fixed(p.lineage, LINEAGE_BYTES);
    return this.suite.hmacSha256(groupKey, w.finish());
  }

  private send(to: MemberId, message: CoreRekeyMessage): CoreRekeyEffect {
    return { type: 'send', to, message: encodeCoreRekey(message) };
  }

  private multicast(message: CoreRekeyMessage): CoreRekeyEffect {
    return { type: 'multicast', message: encodeCoreRekey(message) };
  }
}

function requireLeader(s: Session, me: MemberId): LeaderSession {
  if (s.leader === undefined)
    throw new CoreTreeError('not-leader', `'${me}' is not the leader of this rekey`);
  return s.leader;
}

/**
 * Whether `m` still holds the tree of `lineage`: a member that committed another tree since (in
 * another partition) is in this tree only as a stale leaf, and must be cut like a departed one.
 */
function sameLineage(view: ViewChange, m: MemberId, lineage: Uint8Array): boolean {
  const t = view.lineages.get(m);
  return t !== undefined && constantTimeEqual(t, lineage);
}

function sameSession(a: Uint8Array, b: Uint8Array): boolean {
  return constantTimeEqual(a, b);
}

/**
 * One representative (the smallest member) per lineage other than the leader's: they report
 * their cut trees. Every member computes the same map from the view.
 */
function foreignRepresentatives(view: ViewChange): Map<MemberId, string> {
  const leaderTag = view.lineages.get(view.leader);
  const leaderHex = leaderTag === undefined ? undefined : hex(leaderTag);
  const reps = new Map<string, MemberId>();
  for (const m of view.members) {
    const t = view.lineages.get(m);
    if (t === undefined || m === view.leader) continue;
    const h = hex(t);
    if (h === leaderHex) continue;
    const cur = reps.get(h);
    if (cur === undefined || compareMembers(m, cur) < 0) reps.set(h, m);
  }
  return new Map([...reps].map(([h, m]) => [m, h]));
}
