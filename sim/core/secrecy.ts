/**
 * key-secrecy over a whole simulation run (forward and backward secrecy of the core key).
 *
 * Adversary for a core key K committed in view V: every key that any member whose name is not
 * in V ever held (a name is one server identity: its incarnations share a process and its
 * pairwise keys, so an earlier incarnation of a member of V is that member, not an adversary) (path keys, core keys, pairwise keys) — departed and not-yet-joined members,
 * and the other side of a partition — plus all rekey traffic of the run. The check: K is not in
 * the closure of that knowledge under "a key that opens a wrap yields the wrapped key".
 *
 * The closure is computed as in the core-tree driver (sim/core-tree-driver.ts), made
 * affordable for thousands of wraps: each wrap is opened once with its true KEK, found among
 * the pairwise key it names, keys unwrapped earlier in the same session, and keys held by the
 * members of the view it was sent in (the only members that can legitimately open it); this
 * gives the exact graph KEK → key, and each adversary's closure is reachability in it. A wrap
 * that none of these opens is counted (`unopened`) and tried against every key ever held.
 */
import type { CipherSuite } from '../../crypto/index.js';
import type { CoreKeyState, PairwiseKey, Wrap } from '../../keytree/index.js';
import { decodeCoreRekey, openWrap } from '../../keytree/index.js';
import type { Property } from './checkers.js';

/** `name#incarnation` → name (plain ids, as in the core-tree driver, are names). */
const nameOf = (m: string): string => m.split('#')[0]!;

interface SentWrap {
  readonly session: Uint8Array;
  readonly wrap: Wrap;
  readonly view: readonly string[];
}

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');

export class KeyKnowledge {
  private readonly wraps: SentWrap[] = [];
  /** Incarnation → key hex → key (everything it ever held). */
  private readonly heldBy = new Map<string, Map<string, Uint8Array>>();
  private readonly pairById = new Map<string, Uint8Array>();
  /** Committed core keys with the view they were committed in. */
  private readonly committed = new Map<
    string,
    { readonly view: string; readonly members: ReadonlySet<string> }
  >();
  unopened = 0;

  constructor(private readonly suite: CipherSuite) {}

  /** A core-tree message sent in a view with these members. */
  message(bytes: Uint8Array, view: readonly string[]): void {
    const m = decodeCoreRekey(bytes);
    const list =
      m.type === 'announce' ? m.grants : m.type === 'bundle' ? m.wraps : m.type === 'piece' ? [m.wrap] : [];
    for (const wrap of list) this.wrap(m.session, wrap, view);
  }

  wrap(session: Uint8Array, wrap: Wrap, view: readonly string[]): void {
    this.wraps.push({ session, wrap, view });
  }

  /** What `member` holds now. */
  held(member: string, state: CoreKeyState | undefined, pairwise: readonly PairwiseKey[]): void {
    let known = this.heldBy.get(member);
    if (known === undefined) this.heldBy.set(member, (known = new Map()));
    const add = (k: Uint8Array): void => void known.set(hex(k), k.slice());
    if (state !== undefined) {
      add(state.groupKey);
      for (const k of state.pathKeys.values()) add(k);
    }
    for (const pk of pairwise) {
      add(pk.key);
      this.pairById.set(hex(pk.id), pk.key.slice());
    }
  }

  /** A core key committed in view `view` (by its members). */
  commit(key: Uint8Array, view: string, members: readonly string[]): void {
    const h = hex(key);
    if (!this.committed.has(h)) this.committed.set(h, { view, members: new Set(members) });
  }

  check(report: (p: Property, detail: string) => void): void {
    const edges = this.graph();
    for (const [key, { view, members }] of this.committed) {
      const start: string[] = [];
      const names = new Set([...members].map(nameOf));
      for (const [m, keys] of this.heldBy) if (!names.has(nameOf(m))) start.push(...keys.keys());
      const reach = new Set<string>();
      while (start.length > 0) {
        const k = start.pop()!;
        if (reach.has(k)) continue;
        reach.add(k);
        for (const next of edges.get(k) ?? []) start.push(next);
      }
      if (reach.has(key)) report('key-secrecy', `the core key of ${view} is derivable by members outside it`);
    }
  }

  private graph(): Map<string, string[]> {
    const edges = new Map<string, string[]>();
    const learned = new Map<string, Uint8Array>(); // session/node → key
    const tryOpen = (w: SentWrap, kek: Uint8Array | undefined): Uint8Array | undefined => {
      if (kek === undefined) return undefined;
      try {
        return openWrap(this.suite, w.session, w.wrap, kek);
      } catch {
        return undefined;
      }
    };
    const record = (w: SentWrap, kek: Uint8Array, key: Uint8Array): void => {
      const k = hex(kek);
      const list = edges.get(k) ?? [];
      list.push(hex(key));
      edges.set(k, list);
      learned.set(`${hex(w.session)}/${w.wrap.target}`, key);
    };
    const byView = new Map<string, Uint8Array[]>();
    const candidatesOf = (view: readonly string[]): Uint8Array[] => {
      const id = view.join(',');
      let c = byView.get(id);
      if (c === undefined) {
        c = view.flatMap((m) => [...(this.heldBy.get(m)?.values() ?? [])]);
        byView.set(id, c);
      }
      return c;
    };
    // Wraps are in send order: keys a wrap needs were unwrapped earlier in the same session.
    const rest: SentWrap[] = [];
    for (const w of this.wraps) {
      const u = w.wrap.under;
      let kek: Uint8Array | undefined;
      let key: Uint8Array | undefined;
      const first =
        u.kind === 'pair' ? this.pairById.get(hex(u.keyId)) : learned.get(`${hex(w.session)}/${u.id}`);
      if ((key = tryOpen(w, first)) !== undefined) kek = first;
      else if (u.kind === 'node') {
        for (const c of candidatesOf(w.view)) if ((key = tryOpen(w, c)) !== undefined && (kek = c)) break;
      }
      if (kek !== undefined && key !== undefined) record(w, kek, key);
      else rest.push(w);
    }
    const all = [...this.heldBy.values()].flatMap((m) => [...m.values()]);
    for (const w of rest) {
      const kek = all.find((c) => tryOpen(w, c) !== undefined);
      if (kek === undefined) this.unopened++;
      else record(w, kek, tryOpen(w, kek)!);
    }
    return edges;
  }
}
