/**
 * The symbolic core key tree: a binary tree whose leaves are members and whose inner nodes
 * stand for keys. It carries no key material — only shape, node ids and which inner nodes
 * keep the key they had in the previous epoch.
 *
 * A view change cuts the committed tree to its maximal subtrees that hold no departed member
 * (`cut`), then merges those pieces and singleton joiners back together (`mergePieces`) with an
 * AVL join that never rotates: a shorter tree descends into the *shorter* child of the taller
 * one, so every node stays AVL-balanced (children's heights differ by ≤ 1) and the height stays
 * ≤ 1.44·log2(n + 2). Every node the join rebuilds has a new leaf set and so gets a fresh key;
 * nodes of the pieces are kept untouched and keep their keys (`prev` names the id they had).
 *
 * Node ids are renumbered canonically (preorder, from 1) in every epoch, so ids never collide
 * — not even when the pieces come from two groups that merge, each with its own numbering:
 * `prev` is resolved by each member along its own path, where it is unambiguous.
 */
import { DecodeError, type Reader, type Writer } from '../../wire/index.js';

export type MemberId = string;
export type NodeId = number;

/** Caps that bound every tree we build or decode. */
export const MAX_MEMBERS = 1024;
export const MAX_MEMBER_ID_BYTES = 128;
/** AVL height bound for MAX_MEMBERS leaves is 14; foreign trees are refused beyond this. */
export const MAX_TREE_HEIGHT = 24;

export interface SymLeaf {
  readonly kind: 'leaf';
  readonly member: MemberId;
  readonly height: 0;
  readonly size: 1;
}

export interface SymInner {
  readonly kind: 'inner';
  /** Canonical id in this epoch (0 only inside a merge, before `renumber`). */
  readonly id: NodeId;
  /** The id this node had in its previous tree when it keeps its key; undefined = fresh key. */
  readonly prev: NodeId | undefined;
  /**
   * The member that generated this key. It knows the key without being below the node, so
   * the node must be re-keyed when the keyer leaves, exactly as when a member below it leaves.
   */
  readonly keyer: MemberId;
  readonly left: SymTree;
  readonly right: SymTree;
  readonly height: number;
  readonly size: number;
}

export type SymTree = SymLeaf | SymInner;

export function leaf(member: MemberId): SymLeaf {
  return { kind: 'leaf', member, height: 0, size: 1 };
}

export function inner(
  left: SymTree,
  right: SymTree,
  id: NodeId,
  prev: NodeId | undefined,
  keyer: MemberId,
): SymInner {
  return {
    kind: 'inner',
    id,
    prev,
    keyer,
    left,
    right,
    height: Math.max(left.height, right.height) + 1,
    size: left.size + right.size,
  };
}

/** Code-unit order on member ids: the same on every member, so tie-breaks agree. */
export function compareMembers(a: MemberId, b: MemberId): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function membersOf(tree: SymTree): MemberId[] {
  const out: MemberId[] = [];
  const walk = (t: SymTree): void => {
    if (t.kind === 'leaf') out.push(t.member);
    else {
      walk(t.left);
      walk(t.right);
    }
  };
  walk(tree);
  return out;
}

export function smallestMember(tree: SymTree): MemberId {
  let best: MemberId | undefined;
  for (const m of membersOf(tree)) if (best === undefined || compareMembers(m, best) < 0) best = m;
  return best as MemberId;
}

/** Inner nodes from `member`'s leaf up to the root (bottom-up); undefined if absent. */
export function pathOf(tree: SymTree, member: MemberId): SymInner[] | undefined {
  if (tree.kind === 'leaf') return tree.member === member ? [] : undefined;
  const below = pathOf(tree.left, member) ?? pathOf(tree.right, member);
  if (below === undefined) return undefined;
  below.push(tree);
  return below;
}

export function innerNodes(tree: SymTree): SymInner[] {
  const out: SymInner[] = [];
  const walk = (t: SymTree): void => {
    if (t.kind === 'leaf') return;
    out.push(t);
    walk(t.left);
    walk(t.right);
  };
  walk(tree);
  return out;
}

/** True when every node's children differ in height by at most one. */
export function isAvl(tree: SymTree): boolean {
  if (tree.kind === 'leaf') return true;
  return Math.abs(tree.left.height - tree.right.height) <= 1 && isAvl(tree.left) && isAvl(tree.right);
}

/** The AVL worst case: height < 1.4405·log2(n + 2) − 0.3277. */
export function avlHeightBound(members: number): number {
  return Math.floor(1.4405 * Math.log2(members + 2) - 0.3277);
}

/**
 * Maximal subtrees of `tree` whose members and keyers all satisfy `keep`, left to right, as
 * they are (with their ids; `asPiece` turns one into a retained piece for `mergePieces`).
 */
export function cut(tree: SymTree, keep: (m: MemberId) => boolean): SymTree[] {
  const out: SymTree[] = [];
  const walk = (t: SymTree): boolean => {
    // Returns whether all of t is kept; emits kept maximal children of partially kept nodes.
    if (t.kind === 'leaf') return keep(t.member);
    const l = walk(t.left);
    const r = walk(t.right);
    if (l && r && keep(t.keyer)) return true;
    if (l) out.push(t.left);
    if (r) out.push(t.right);
    return false;
  };
  if (walk(tree)) out.push(tree);
  return out;
}

/** The tree as a retained piece: each inner node remembers its id as `prev`, id cleared. */
export function asPiece(tree: SymTree): SymTree {
  if (tree.kind === 'leaf') return tree;
  return inner(asPiece(tree.left), asPiece(tree.right), 0, tree.id, tree.keyer);
}

/** Smallest first: height, then size, then smallest member (a total order on disjoint pieces). */
function comparePieces(a: SymTree, b: SymTree): number {
  return a.height - b.height || a.size - b.size || compareMembers(smallestMember(a), smallestMember(b));
}

/**
 * AVL join of two member-disjoint AVL trees without rotations. The shorter tree replaces the
 * shorter child along a descent of the taller one; each node on that descent is rebuilt
 * (fresh key). Since the shorter child grows by at most one and its sibling was at most one
 * taller, balance holds at every rebuilt node.
 */
export function join(a: SymTree, b: SymTree): SymTree {
  const [tall, short] = a.height >= b.height ? [a, b] : [b, a];
  if (tall.height - short.height <= 1 || tall.kind === 'leaf') return inner(tall, short, 0, undefined, '');
  const leftIsShorter =
    tall.left.height < tall.right.height ||
    (tall.left.height === tall.right.height && tall.left.size < tall.right.size);
  const [descend, other] = leftIsShorter ? [tall.left, tall.right] : [tall.right, tall.left];
  return inner(other, join(descend, short), 0, undefined, '');
}

/**
 * Merges pieces smallest first into one balanced tree with canonical ids; `keyer` generates
 * every fresh key (the rekey leader).
 */
export function mergePieces(pieces: readonly SymTree[], keyer: MemberId): SymTree {
  if (pieces.length === 0) throw new RangeError('mergePieces: no pieces');
  const sorted = [...pieces].sort(comparePieces);
  let acc = sorted[0] as SymTree;
  for (let i = 1; i < sorted.length; i++) acc = join(acc, sorted[i] as SymTree);
  return renumber(acc, keyer);
}

/** Assigns preorder ids 1, 2, … to the inner nodes and `keyer` to the fresh ones. */
export function renumber(tree: SymTree, keyer: MemberId): SymTree {
  let next = 1;
  const walk = (t: SymTree): SymTree => {
    if (t.kind === 'leaf') return t;
    const id = next++;
    const left = walk(t.left);
    return inner(left, walk(t.right), id, t.prev, t.prev === undefined ? keyer : t.keyer);
  };
  return walk(tree);
}

/**
 * Checks a tree received from elsewhere: unique members, unique nonzero ids, keyers are members.
 * A piece of a cut tree (`piece`) may name a keyer outside it: the keyer is in another retained
 * piece of the same lineage (the leader checks that every member of a piece is in its view).
 */
export function validateTree(tree: SymTree, piece = false): void {
  const members = new Set<MemberId>();
  const ids = new Set<NodeId>();
  const walk = (t: SymTree): void => {
    if (t.kind === 'leaf') {
      if (members.has(t.member)) throw new DecodeError('bad-value', `member '${t.member}' appears twice`);
      members.add(t.member);
      return;
    }
    if (t.id === 0 || ids.has(t.id))
      throw new DecodeError('bad-value', `node id ${t.id} is zero or repeated`);
    ids.add(t.id);
    walk(t.left);
    walk(t.right);
  };
  walk(tree);
  if (piece) return;
  for (const n of innerNodes(tree))
    if (!members.has(n.keyer)) throw new DecodeError('bad-value', `keyer '${n.keyer}' is not a member`);
}

// ── codec: preorder, u8 tag (0 leaf, 1 inner), depth and leaf count bounded ──────────────

export function writeMember(w: Writer, m: MemberId): void {
  w.string(m, MAX_MEMBER_ID_BYTES);
}

export function readMember(r: Reader): MemberId {
  const m = r.string(MAX_MEMBER_ID_BYTES);
  if (m.length === 0) throw new DecodeError('bad-value', 'empty member id');
  return m;
}

export function writeTree(w: Writer, tree: SymTree): void {
  if (tree.kind === 'leaf') {
    w.u8(0);
    writeMember(w, tree.member);
    return;
  }
  w.u8(1).varuint(tree.id);
  w.option(tree.prev, (x, p) => x.varuint(p));
  writeMember(w, tree.keyer);
  writeTree(w, tree.left);
  writeTree(w, tree.right);
}

/** Decodes and validates a tree (unique members, unique nonzero ids). */
export function readTree(r: Reader, piece = false): SymTree {
  let leaves = 0;
  const walk = (depth: number): SymTree => {
    if (depth > MAX_TREE_HEIGHT) throw new DecodeError('too-large', `tree deeper than ${MAX_TREE_HEIGHT}`);
    const tag = r.u8();
    if (tag === 0) {
      if (++leaves > MAX_MEMBERS) throw new DecodeError('too-large', `more than ${MAX_MEMBERS} members`);
      return leaf(readMember(r));
    }
    if (tag !== 1) throw new DecodeError('bad-tag', `tree node tag ${tag}`);
    const id = r.varuint();
    const prev = r.option((x) => x.varuint());
    const keyer = readMember(r);
    const left = walk(depth + 1);
    return inner(left, walk(depth + 1), id, prev, keyer);
  };
  const tree = walk(0);
  validateTree(tree, piece);
  return tree;
}
