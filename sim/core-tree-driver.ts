/**
 * In-process driver for the core-tree rekey: real crypto, no network. It plays the view layer:
 * installs views on every member, delivers multicasts to all members (sender included) and
 * sends point-to-point, all through one FIFO queue — which is a total order — and counts
 * rounds (waves of messages caused by the previous wave), messages and bytes.
 *
 * It also records what a secrecy adversary may hold: every key each member ever held (path
 * keys, core keys, pairwise keys) and every rekey message, so tests can compute the closure of
 * a member's knowledge by trial-unwrapping every wrap ever sent.
 */
import { type CipherSuite } from '../crypto/index.js';
import {
  CoreTreeMember,
  X25519Pairwise,
  decodeCoreRekey,
  openWrap,
  soloState,
  type CoreKeyState,
  type CoreRekeyEffect,
  type MemberId,
  type Wrap,
} from '../keytree/index.js';

export interface RekeyStats {
  /** Waves of messages until every member installed (0 for a solo view). */
  readonly rounds: number;
  /** Logical messages: a multicast counts once. */
  readonly messages: number;
  readonly bytes: number;
  /** The bundle's size (the one multicast that carries the wraps). */
  readonly bundleBytes: number;
  readonly installed: boolean;
}

export interface ViewOptions {
  readonly leader?: MemberId;
  readonly fullRefresh?: boolean;
  /** Stop delivering after this many deliveries: the view fails mid-rekey. */
  readonly crashAfterDeliveries?: number;
  /** The view fails just before the commit is delivered. */
  readonly withholdCommit?: boolean;
}

interface Node {
  readonly member: CoreTreeMember;
  readonly pairwise: X25519Pairwise;
  readonly seed: Uint8Array;
}

interface SentWrap {
  readonly session: Uint8Array;
  readonly wrap: Wrap;
}

type Envelope = { readonly from: MemberId; readonly effect: CoreRekeyEffect };

export class CoreCluster {
  readonly nodes = new Map<MemberId, Node>();
  private readonly verifyKeys = new Map<MemberId, Uint8Array>();
  /** Every wrap ever sent, with its session: the adversary sees all traffic. */
  readonly wraps: SentWrap[] = [];
  /** Copies of every key each member ever held (path, core and pairwise keys). */
  readonly knownBy = new Map<MemberId, Map<string, Uint8Array>>();
  /** Committed core keys, one per installed view, with that view's members. */
  readonly history: Array<{ readonly members: ReadonlySet<MemberId>; readonly key: Uint8Array }> = [];
  /** Current view per group handle (members). */
  private sessionCounter = 0;
  recordSecrets = true;
  /** Pairwise key (hex) → its public id (hex): wraps name the id, so an adversary can look it up. */
  private readonly pairKeyIds = new Map<string, string>();
  /** How often a leader had to wait for a pairwise key (joiners whose offer had not arrived). */
  pairwiseWaits = 0;

  constructor(
    readonly suite: CipherSuite,
    private readonly now: () => number = () => 0,
  ) {}

  /** A fresh server alone in its view; offers pairwise keys to every existing node (background). */
  addNode(id: MemberId, establishPairwise = true): void {
    if (this.nodes.has(id)) throw new Error(`duplicate node ${id}`);
    const seed = this.suite.randomBytes(32);
    this.verifyKeys.set(id, this.suite.ed25519PublicKey(seed));
    const pairwise = new X25519Pairwise({
      suite: this.suite,
      me: id,
      sign: (m) => this.suite.ed25519Sign(seed, m),
      verifyKeyOf: (m) => this.verifyKeys.get(m),
      random: Math.random,
    });
    pairwise.tick(this.now());
    const member = new CoreTreeMember({ suite: this.suite, pairwise, state: soloState(this.suite, id) });
    this.nodes.set(id, { member, pairwise, seed });
    if (establishPairwise) for (const other of this.nodes.keys()) if (other !== id) this.pair(id, other);
  }

  /** Exchanges the two nodes' current offers (what the background offer multicast does). */
  pair(a: MemberId, b: MemberId): void {
    const na = this.node(a);
    const nb = this.node(b);
    na.pairwise.receive(nb.pairwise.offer!, this.now());
    nb.pairwise.receive(na.pairwise.offer!, this.now());
  }

  node(id: MemberId): Node {
    const n = this.nodes.get(id);
    if (n === undefined) throw new Error(`no node ${id}`);
    return n;
  }

  state(id: MemberId): CoreKeyState {
    return this.node(id).member.state;
  }

  /** Installs a view on `members` and runs its rekey to completion (or to the injected crash). */
  viewChange(members: readonly MemberId[], o: ViewOptions = {}): RekeyStats {
    const sorted = [...members].sort();
    const leader = o.leader ?? (sorted[0] as MemberId);
    const session = new Uint8Array(16);
    new DataView(session.buffer).setUint32(0, ++this.sessionCounter);
    session.set(this.suite.randomBytes(12), 4);
    const lineages = new Map(members.map((m) => [m, this.node(m).member.lineageTag()]));
    const view = { session, leader, members, lineages, fullRefresh: o.fullRefresh ?? false };
    let wave: Envelope[] = [];
    const installed = new Set<MemberId>();
    const take = (from: MemberId, effects: CoreRekeyEffect[], into: Envelope[]): void => {
      for (const effect of effects) {
        if (effect.type === 'installed') installed.add(from);
        else if (effect.type === 'need-pairwise') {
          this.pairwiseWaits++;
          for (const p of effect.peers) this.pair(from, p);
          take(from, this.node(from).member.retry(), into);
        } else into.push({ from, effect });
      }
    };
    for (const m of members) take(m, this.node(m).member.start(view), wave);
    let rounds = 0;
    let messages = 0;
    let bytes = 0;
    let bundleBytes = 0;
    let deliveries = 0;
    const limit = o.crashAfterDeliveries ?? Number.POSITIVE_INFINITY;
    while (wave.length > 0 && deliveries < limit) {
      rounds++;
      const next: Envelope[] = [];
      for (const { from, effect } of wave) {
        if (effect.type !== 'send' && effect.type !== 'multicast') continue;
        messages++;
        bytes += effect.message.length;
        this.recordWraps(effect.message);
        const m = decodeCoreRekey(effect.message);
        if (m.type === 'bundle') bundleBytes = effect.message.length;
        if (m.type === 'commit' && o.withholdCommit === true) continue;
        const targets = effect.type === 'send' ? [effect.to] : members;
        for (const t of targets) {
          if (deliveries++ >= limit) break;
          take(t, this.node(t).member.receive(from, effect.message), next);
        }
      }
      wave = next;
    }
    const done = installed.size === members.length;
    if (done) this.recordInstall(members);
    if (this.recordSecrets) for (const m of members) this.recordKnown(m);
    return { rounds, messages, bytes, bundleBytes, installed: done };
  }

  private recordWraps(message: Uint8Array): void {
    if (!this.recordSecrets) return;
    const m = decodeCoreRekey(message);
    const list =
      m.type === 'announce' ? m.grants : m.type === 'bundle' ? m.wraps : m.type === 'piece' ? [m.wrap] : [];
    for (const wrap of list) this.wraps.push({ session: m.session, wrap });
  }

  private recordInstall(members: readonly MemberId[]): void {
    const key = this.state(members[0] as MemberId).groupKey.slice();
    this.history.push({ members: new Set(members), key });
  }

  /** Copies everything the member holds now into its adversary record. */
  private recordKnown(m: MemberId): void {
    let known = this.knownBy.get(m);
    if (known === undefined) this.knownBy.set(m, (known = new Map()));
    const s = this.state(m);
    const add = (k: Uint8Array): void => void known.set(Buffer.from(k).toString('hex'), k.slice());
    add(s.groupKey);
    for (const k of s.pathKeys.values()) add(k);
    const pw = this.node(m).pairwise;
    for (const peer of pw.peers()) {
      const pk = pw.current(peer)!;
      add(pk.key);
      this.pairKeyIds.set(hexKey(pk.key), hexKey(pk.id));
    }
  }

  /**
   * Every key derivable from `keys` and all wraps ever sent. The wraps are opened once by trial
   * unwrap with everything anyone ever held (`knowledgeGraph`); an adversary's closure is then
   * reachability from its keys over the edges "KEK opens wrap → key": a wrap opens under
   * exactly one key, so this equals trial-unwrapping every wrap with every key it learns.
   */
  closure(keys: Iterable<Uint8Array>): Set<string> {
    const edges = this.knowledgeGraph();
    const known = new Set<string>();
    const stack: string[] = [];
    for (const k of keys) stack.push(hexKey(k));
    while (stack.length > 0) {
      const h = stack.pop()!;
      if (known.has(h)) continue;
      known.add(h);
      for (const next of edges.get(h) ?? []) stack.push(next);
    }
    return known;
  }

  private graph: { wraps: number; edges: Map<string, string[]> } | undefined;

  /**
   * KEK → keys it unwraps, over every wrap sent. Candidate KEKs per wrap, from public data: the
   * pairwise key with the named id; a key unwrapped from the same session for the named node;
   * else every node key anyone held. Wraps that none opens get a final trial with all keys.
   */
  knowledgeGraph(): Map<string, string[]> {
    if (this.graph?.wraps === this.wraps.length) return this.graph.edges;
    const all = new Map<string, Uint8Array>();
    for (const known of this.knownBy.values()) for (const [h, k] of known) all.set(h, k);
    const nodeKeys = [...all].filter(([h]) => !this.pairKeyIds.has(h)).map(([, k]) => k);
    const pairById = new Map<string, Uint8Array>();
    for (const [h, id] of this.pairKeyIds) pairById.set(id, all.get(h)!);
    const edges = new Map<string, string[]>();
    const learned = new Map<string, Uint8Array>(); // session ‖ node id → key
    const tryOpen = (w: SentWrap, kek: Uint8Array): Uint8Array | undefined => {
      try {
        return openWrap(this.suite, w.session, w.wrap, kek);
      } catch {
        return undefined;
      }
    };
    const record = (w: SentWrap, kek: Uint8Array, key: Uint8Array): void => {
      const k = hexKey(kek);
      const list = edges.get(k) ?? [];
      list.push(hexKey(key));
      edges.set(k, list);
      learned.set(`${hexKey(w.session)}/${w.wrap.target}`, key);
      all.set(hexKey(key), key);
    };
    let open = this.wraps.slice();
    for (let progress = true; progress && open.length > 0;) {
      progress = false;
      const rest: SentWrap[] = [];
      for (const w of open) {
        const u = w.wrap.under;
        const candidates =
          u.kind === 'pair'
            ? [pairById.get(hexKey(u.keyId))]
            : [learned.get(`${hexKey(w.session)}/${u.id}`), ...nodeKeys];
        const kek = candidates.find((c) => c !== undefined && tryOpen(w, c) !== undefined);
        if (kek === undefined) rest.push(w);
        else {
          record(w, kek, tryOpen(w, kek)!);
          progress = true;
        }
      }
      open = rest;
    }
    for (const w of open) {
      for (const kek of all.values()) {
        const key = tryOpen(w, kek);
        if (key !== undefined) record(w, kek, key);
      }
    }
    this.graph = { wraps: this.wraps.length, edges };
    return edges;
  }
}

function hexKey(k: Uint8Array): string {
  return Buffer.from(k).toString('hex');
}
