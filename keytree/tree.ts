/**
 * The LKH leaf key tree held by the core group: packed storage, operations, batch rekey.
 *
 * Storage: one `Level` per tree level, each a 32-byte-key buffer plus typed arrays of key
 * versions and subtree member counts, sized to the level's capacity at the current height
 * (≈ 40 B per leaf slot + 40 B per internal node). A node has a key iff its count is > 0.
 * Versions only ever grow (they survive compaction), so (level, index, version) names one key
 * for the lifetime of the tree.
 *
 * Batch semantics (one batch → one epoch):
 *   - ops apply in order; a join takes the lowest free slot (growing a level when full), a
 *     leave or eviction frees its slot, a path refresh marks a slot's path;
 *   - if the tree is then deeper than ⌈log_d n⌉ + 1, leaves above the minimal capacity move to
 *     the lowest free slots and the tree drops to the minimal height (compaction);
 *   - a leaf rekey (`rekey-leaf`) installs the member's new own key, supplied by the op (made
 *     from entropy outside the tree, leaf-key-refresh.ts), with the next version at its slot;
 *   - every node on the path of a joined, departed, moved-to or refreshed slot, and the root,
 *     gets a fresh key (a node left empty loses its key) — joins thus refresh their whole path
 *     (backward secrecy) and departures replace every key the departed leaf knew (forward
 *     secrecy; a departed slot above the compacted capacity knew only nodes that are discarded);
 *   - a replaced node above level 1 with a replaced child derives its key one-way from the
 *     most populous such child (derive.ts); other new keys come from the `KeySource` in canonical
 *     order (new leaf keys by slot, then nodes bottom-up by (level, index)), so equal ops +
 *     equal key source ⇒ equal trees;
 *   - each new key is wrapped under the current key of every other non-empty child, bottom-up.
 */
import { KEY_BYTES, type CipherSuite } from '../crypto/index.js';
import { MAX_HEIGHT, MAX_SLOTS, assertArity, maxHeight, minHeight, span } from './geometry.js';
import { deriveParentKey } from './derive.js';
import type { KeySource } from './key-source.js';
import { encodeOps, type TreeOp } from './ops.js';

const BINDING_LABEL = new TextEncoder().encode('keyglass/keytree/batch-binding/v1');
/** Genesis has no earlier root or ops to bind to; its epoch already makes the seed unique. */
const GENESIS_BINDING = new Uint8Array(32);
import {
  MAX_GROUP_BYTES,
  encodeBody,
  encodeHeader,
  type ChildWrap,
  type EpochHeader,
  type Move,
  type NodeRecord,
  type RekeyMessage,
  type Welcome,
} from './messages.js';
import { RekeySplit } from './split.js';

export interface Joined {
  /** The joiner's final slot in this epoch (after any compaction). */
  readonly slot: number;
  readonly ref: number | undefined;
}

export interface Departed {
  readonly slot: number;
  readonly kind: 'leave' | 'evict';
}

export interface BatchResult {
  readonly epoch: number;
  readonly message: RekeyMessage;
  /** `message` encoded: header ‖ body. */
  readonly encoded: Uint8Array;
  readonly split: RekeySplit;
  /** Joiners still present at the end of the batch; fetch each one's `welcome(slot)` now. */
  readonly joined: readonly Joined[];
  /** Departures by their slot at the time they left. */
  readonly departed: readonly Departed[];
  readonly moves: readonly Move[];
}

export interface TreeOptions {
  readonly suite: CipherSuite;
  readonly keySource: KeySource;
  /** Bound into every header and welcome; ≤ 64 bytes. */
  readonly group: Uint8Array;
  /** Children per node, 2..16; default 4. */
  readonly arity?: number;
}

/** Thrown for an operation that does not fit the tree (a leave of an empty slot, …). */
export class TreeOpError extends Error {
  override readonly name = 'TreeOpError';
}

/** Packed storage of one level. Exported for the snapshot codec only. */
export interface Level {
  keys: Uint8Array;
  versions: Uint32Array;
  counts: Uint32Array;
}

export class LeafKeyTree {
  readonly suite: CipherSuite;
  readonly arity: number;
  readonly group: Uint8Array;
  private keySource: KeySource;
  private _epoch = 0;
  private _height = 1;
  private _members = 0;
  private levels: Level[] = [];

  private constructor(opts: TreeOptions) {
    assertArity(opts.arity ?? 4);
    if (opts.group.length > MAX_GROUP_BYTES)
      throw new RangeError(`group id exceeds ${MAX_GROUP_BYTES} bytes`);
    this.suite = opts.suite;
    this.arity = opts.arity ?? 4;
    this.group = opts.group.slice();
    this.keySource = opts.keySource;
  }

  /**
   * Genesis: epoch 0 with `members` leaves in slots 0..members−1 and keys for every non-empty
   * node. No rekey message exists for it; every member gets `welcome(slot)`.
   */
  static create(opts: TreeOptions, members = 0): LeafKeyTree {
    const tree = new LeafKeyTree(opts);
    tree._height = minHeight(tree.arity, members);
    tree.checkCapacity(tree._height);
    tree.allocate(tree._height);
    for (let l = 0; l <= tree._height; l++) {
      const per = span(tree.arity, l);
      const counts = tree.levels[l]!.counts;
      for (let i = 0; i * per < members; i++) counts[i] = Math.min(per, members - i * per);
    }
    tree._members = members;
    const nodes: number[][] = [];
    for (let l = 0; l <= tree._height; l++) {
      const occupied: number[] = [];
      const counts = tree.levels[l]!.counts;
      for (let i = 0; i < counts.length && counts[i]! > 0; i++) occupied.push(i);
      nodes.push(occupied);
    }
    tree.assignKeys(0, nodes);
    return tree;
  }

  /** Rebuilds a tree from restored storage (see snapshot.ts). */
  static fromParts(opts: TreeOptions, epoch: number, height: number, levels: Level[]): LeafKeyTree {
    const tree = new LeafKeyTree(opts);
    tree._epoch = epoch;
    tree._height = height;
    tree.levels = levels;
    tree._members = levels[height]!.counts[0]!;
    return tree;
  }

  get epoch(): number {
    return this._epoch;
  }

  get height(): number {
    return this._height;
  }

  get members(): number {
    return this._members;
  }

  /** The current leaf group key (a copy), or undefined while the tree is empty. */
  groupKey(): Uint8Array | undefined {
    return this.nodeKeyOf(this._height, 0)?.slice();
  }

  rootVersion(): number {
    return this.levels[this._height]!.versions[0]!;
  }

  isOccupied(slot: number): boolean {
    return (
      Number.isInteger(slot) && slot >= 0 && slot < span(this.arity, this._height) && this.count(0, slot) > 0
    );
  }

  /** The next batches draw keys from `source` (the core secret rotated with the core key). */
  setKeySource(source: KeySource): void {
    this.keySource = source;
  }

  /** Read-only view of storage for the snapshot codec. */
  storage(): readonly Level[] {
    return this.levels;
  }

  /** The path keys of the member at `slot` in the current epoch. */
  welcome(slot: number): Welcome {
    if (!this.isOccupied(slot)) throw new TreeOpError(`slot ${slot} is empty`);
    const keys = [];
    for (let l = 0; l <= this._height; l++) {
      const index = Math.floor(slot / span(this.arity, l));
      keys.push({ version: this.levels[l]!.versions[index]!, key: this.nodeKeyOf(l, index)!.slice() });
    }
    return { group: this.group, epoch: this._epoch, arity: this.arity, height: this._height, slot, keys };
  }

  /** Applies `ops` as one batch, producing the next epoch. Validates every op before mutating. */
  applyBatch(ops: readonly TreeOp[]): BatchResult {
    this.validate(ops);
    const d = this.arity;
    const epoch = this._epoch + 1;
    const binding = this.batchBinding(epoch, ops);
    const joined = new Map<number, number | undefined>(); // slot → ref
    const departed: Departed[] = [];
    const marked = new Set<number>(); // slots whose path is refreshed (final geometry decides)

    for (const op of ops) {
      switch (op.kind) {
        case 'join': {
          const slot = this.takeFreeSlot();
          joined.set(slot, op.ref);
          marked.add(slot);
          break;
        }
        case 'leave':
        case 'evict':
          this.addCount(op.slot, -1);
          this._members--;
          this.wipeKey(0, op.slot);
          joined.delete(op.slot);
          departed.push({ slot: op.slot, kind: op.kind });
          marked.add(op.slot);
          break;
        case 'refresh-path':
          marked.add(op.slot);
          break;
        case 'rekey-leaf': {
          // The member's own key: replaced in place (a later compaction moves it with the leaf).
          const leaves = this.levels[0]!;
          leaves.keys.set(op.key, op.slot * KEY_BYTES);
          leaves.versions[op.slot]!++;
          marked.add(op.slot);
          break;
        }
        case 'refresh-root':
          break;
      }
    }

    const moves = this.compactIfTooDeep(joined, marked);
    const capacity = span(d, this._height);

    // The union of affected paths, per level; the root is always replaced.
    const dirty: Set<number>[] = [];
    for (let l = 0; l <= this._height; l++) dirty.push(new Set());
    dirty[this._height]!.add(0);
    for (const slot of marked) {
      if (slot >= capacity) continue; // discarded by compaction: nothing of it survives
      for (let l = 1; l <= this._height; l++) {
        const index = Math.floor(slot / span(d, l));
        if (dirty[l]!.has(index)) break;
        dirty[l]!.add(index);
      }
    }

    const fresh: number[][] = [[...joined.keys()].sort((a, b) => a - b)];
    for (let l = 1; l <= this._height; l++) {
      const replaced: number[] = [];
      for (const index of [...dirty[l]!].sort((a, b) => a - b)) {
        if (this.count(l, index) > 0) replaced.push(index);
        else this.wipeKey(l, index);
      }
      fresh.push(replaced);
    }
    const records = this.rekey(epoch, fresh, binding);
    this._epoch = epoch;
    const body = { records, moves };
    const bodyBytes = encodeBody(body);
    const rootVersion = this.rootVersion();
    const ctx = { group: this.group, epoch, arity: d, height: this._height, rootVersion };
    const split = RekeySplit.plan(this.suite, ctx, body);
    const header: EpochHeader = {
      ...ctx,
      partCount: split.count,
      partsRoot: split.root,
      bodyDigest: this.suite.sha256(bodyBytes),
    };
    const headerBytes = encodeHeader(header);
    const encoded = new Uint8Array(headerBytes.length + bodyBytes.length);
    encoded.set(headerBytes);
    encoded.set(bodyBytes, headerBytes.length);
    return {
      epoch,
      message: { header, body },
      encoded,
      split,
      joined: [...joined].map(([slot, ref]) => ({ slot, ref })).sort((a, b) => a.slot - b.slot),
      departed,
      moves,
    };
  }

  // ── batch steps ──────────────────────────────────────────────────────────────────────────

  /** Rejects a batch that names an empty slot, so a failed batch leaves the tree untouched. */
  private validate(ops: readonly TreeOp[]): void {
    const gone = new Set<number>();
    const rekeyed = new Set<number>();
    for (const op of ops) {
      if (op.kind === 'rekey-leaf') {
        if (op.key.length !== KEY_BYTES) throw new TreeOpError(`rekey-leaf: key of ${op.key.length} bytes`);
        if (rekeyed.has(op.slot)) throw new TreeOpError(`rekey-leaf: slot ${op.slot} twice in one batch`);
        rekeyed.add(op.slot);
      }
      if (
        op.kind === 'leave' ||
        op.kind === 'evict' ||
        op.kind === 'refresh-path' ||
        op.kind === 'rekey-leaf'
      ) {
        // A slot freed earlier in the batch may be refilled by a later join, so only ops on
        // slots that are occupied now and not yet freed are accepted; joins never target a slot.
        if (!this.isOccupied(op.slot) || gone.has(op.slot))
          throw new TreeOpError(`${op.kind}: slot ${op.slot} is not a member`);
        if (op.kind === 'leave' || op.kind === 'evict') gone.add(op.slot);
      }
    }
  }

  /** Lowest free slot, growing the tree by a level when it is full. */
  private takeFreeSlot(): number {
    const d = this.arity;
    if (this._members === span(d, this._height)) this.grow();
    let index = 0;
    for (let l = this._height; l > 0; l--) {
      const cap = span(d, l - 1);
      let child = index * d;
      while (this.count(l - 1, child) >= cap) child++;
      index = child;
    }
    this.addCount(index, 1);
    this._members++;
    return index;
  }

  private grow(): void {
    const h = this._height + 1;
    this.checkCapacity(h);
    this._height = h;
    this.allocate(h);
    this.levels[h]!.counts[0] = this._members;
  }

  /**
   * Restores depth ≤ ⌈log_d n⌉ + 1 after departures: moves every leaf above the minimal
   * capacity to the lowest free slot (in slot order) and drops the upper levels.
   */
  private compactIfTooDeep(joined: Map<number, number | undefined>, marked: Set<number>): Move[] {
    const d = this.arity;
    if (this._height <= maxHeight(d, this._members)) return [];
    const target = minHeight(d, this._members);
    const capacity = span(d, target);
    const leaves = this.levels[0]!;
    const moves: Move[] = [];
    let free = 0;
    const oldCapacity = span(d, this._height);
    for (let from = capacity; from < oldCapacity; from++) {
      if (leaves.counts[from] === 0) continue;
      while (leaves.counts[free]! > 0) free++;
      const to = free;
      this.addCount(from, -1);
      this.addCount(to, 1);
      leaves.keys.copyWithin(to * KEY_BYTES, from * KEY_BYTES, (from + 1) * KEY_BYTES);
      this.wipeKey(0, from);
      marked.add(to);
      if (joined.has(from)) {
        // A joiner learns its final slot from its welcome: no move record.
        joined.set(to, joined.get(from));
        joined.delete(from);
      } else {
        leaves.versions[to]!++;
        moves.push({ from, to, version: leaves.versions[to]! });
      }
    }
    // Everything outside the compacted tree is now empty; drop its keys and counts.
    for (let l = 0; l <= this._height; l++) {
      const lv = this.levels[l]!;
      const keep = l <= target ? span(d, target - l) : 0;
      lv.keys.fill(0, keep * KEY_BYTES);
      lv.counts.fill(0, keep);
    }
    this._height = target;
    return moves;
  }

  /** Genesis: a fresh key for every listed node, in canonical order (leaves, then bottom-up). */
  private assignKeys(epoch: number, fresh: readonly (readonly number[])[]): void {
    let total = 0;
    for (const nodes of fresh) total += nodes.length;
    const material = this.drawKeys(epoch, total, GENESIS_BINDING);
    let at = 0;
    fresh.forEach((nodes, l) => {
      const lv = this.levels[l]!;
      for (const index of nodes) {
        lv.keys.set(material.subarray(at, at + KEY_BYTES), index * KEY_BYTES);
        lv.versions[index]!++;
        at += KEY_BYTES;
      }
    });
    material.fill(0);
  }

  /**
   * Replaces the keys of `fresh` (joined leaf slots at level 0, then non-empty internal nodes
   * per level, ascending) and returns one record per internal node, bottom-up. A node above
   * level 1 with a refreshed child derives its key from the most populous such child (derive.ts);
   * every other node draws a fresh key from the key source, in canonical order. Each new key
   * is wrapped under every other non-empty child's current key.
   */
  private rekey(epoch: number, fresh: readonly (readonly number[])[], binding: Uint8Array): NodeRecord[] {
    const d = this.arity;
    const derivedFrom: (number | undefined)[][] = [[]];
    let drawn = fresh[0]!.length;
    for (let l = 1; l < fresh.length; l++) {
      const below = l >= 2 ? fresh[l - 1]! : [];
      const plan: (number | undefined)[] = [];
      let at = 0;
      for (const index of fresh[l]!) {
        // Derive from the refreshed child with the most members (ties: lowest index), so
        // most leaves under this node take an HMAC rather than an unwrap.
        while (at < below.length && below[at]! < index * d) at++;
        let child: number | undefined;
        let best = 0;
        for (; at < below.length && below[at]! < (index + 1) * d; at++) {
          const members = this.count(l - 1, below[at]!);
          if (members > best) {
            best = members;
            child = below[at]! - index * d;
          }
        }
        plan.push(child);
        if (child === undefined) drawn++;
      }
      derivedFrom.push(plan);
    }
    const material = this.drawKeys(epoch, drawn, binding);
    let at = 0;
    const take = (): Uint8Array => material.subarray(at, (at += KEY_BYTES));

    const leaves = this.levels[0]!;
    for (const slot of fresh[0]!) {
      leaves.keys.set(take(), slot * KEY_BYTES);
      leaves.versions[slot]!++;
    }
    const records: NodeRecord[] = [];
    for (let l = 1; l < fresh.length; l++) {
      const lv = this.levels[l]!;
      const below = this.levels[l - 1]!;
      fresh[l]!.forEach((index, i) => {
        const version = ++lv.versions[index]!;
        const from = derivedFrom[l]![i];
        const key =
          from === undefined
            ? take()
            : deriveParentKey(this.suite, this.nodeKeyOf(l - 1, index * d + from)!, l, index, version);
        lv.keys.set(key, index * KEY_BYTES);
        const wraps: ChildWrap[] = [];
        for (let c = 0; c < d; c++) {
          const child = index * d + c;
          if (c === from || this.count(l - 1, child) === 0) continue;
          const kek = below.keys.subarray(child * KEY_BYTES, (child + 1) * KEY_BYTES);
          wraps.push({
            child: c,
            childVersion: below.versions[child]!,
            wrapped: this.suite.wrapKey(kek, key),
          });
        }
        if (from !== undefined) key.fill(0);
        records.push({ level: l, index, version, derivedFrom: from, wraps });
      });
    }
    material.fill(0);
    return records;
  }

  /**
   * What this batch's fresh keys are bound to: the current root key and the batch's ops. With
   * the derived key source, two different batches at the same epoch under the same secret (a
   * store restored from an old backup, a diverged replica) then draw unrelated keys, so a leaf
   * that received keys from one can learn nothing of the other.
   */
  private batchBinding(epoch: number, ops: readonly TreeOp[]): Uint8Array {
    const root = this.nodeKeyOf(this._height, 0) ?? new Uint8Array(KEY_BYTES);
    const opsBytes = encodeOps(ops);
    const input = new Uint8Array(BINDING_LABEL.length + 8 + KEY_BYTES + opsBytes.length);
    input.set(BINDING_LABEL);
    new DataView(input.buffer).setBigUint64(BINDING_LABEL.length, BigInt(epoch));
    input.set(root, BINDING_LABEL.length + 8);
    input.set(opsBytes, BINDING_LABEL.length + 8 + KEY_BYTES);
    const digest = this.suite.sha256(input);
    input.fill(0);
    return digest;
  }

  private drawKeys(epoch: number, count: number, binding: Uint8Array): Uint8Array {
    const material = this.keySource.keys(epoch, count, binding);
    if (material.length !== count * KEY_BYTES)
      throw new Error('key source returned the wrong amount of key material');
    return material;
  }

  // ── storage ──────────────────────────────────────────────────────────────────────────────

  private checkCapacity(height: number): void {
    if (height > MAX_HEIGHT || span(this.arity, height) > MAX_SLOTS) {
      throw new TreeOpError(`tree of arity ${this.arity} cannot grow to height ${height}`);
    }
  }

  /** Sizes every level for `height`; existing content (and every version) is kept. */
  private allocate(height: number): void {
    for (let l = 0; l <= height; l++) {
      const size = span(this.arity, height - l);
      const old = this.levels[l];
      if (old !== undefined && old.counts.length >= size) continue;
      const lv: Level = {
        keys: new Uint8Array(size * KEY_BYTES),
        versions: new Uint32Array(size),
        counts: new Uint32Array(size),
      };
      if (old !== undefined) {
        lv.keys.set(old.keys);
        lv.versions.set(old.versions);
        lv.counts.set(old.counts);
      }
      this.levels[l] = lv;
    }
  }

  private count(level: number, index: number): number {
    return this.levels[level]!.counts[index] ?? 0;
  }

  private addCount(slot: number, delta: number): void {
    for (let l = 0; l <= this._height; l++) {
      const index = Math.floor(slot / span(this.arity, l));
      this.levels[l]!.counts[index]! += delta;
    }
  }

  private nodeKeyOf(level: number, index: number): Uint8Array | undefined {
    if (this.count(level, index) === 0) return undefined;
    return this.levels[level]!.keys.subarray(index * KEY_BYTES, (index + 1) * KEY_BYTES);
  }

  private wipeKey(level: number, index: number): void {
    this.levels[level]!.keys.fill(0, index * KEY_BYTES, (index + 1) * KEY_BYTES);
  }

  /** Internal consistency: counts equal the sum of children, keys exist exactly where counts > 0. */
  checkInvariants(): void {
    const d = this.arity;
    if (this._height > maxHeight(d, this._members))
      throw new Error(`height ${this._height} exceeds bound for ${this._members}`);
    for (let l = 1; l <= this._height; l++) {
      const size = span(d, this._height - l);
      for (let i = 0; i < size; i++) {
        let sum = 0;
        for (let c = 0; c < d; c++) sum += this.count(l - 1, i * d + c);
        if (sum !== this.count(l, i)) throw new Error(`count mismatch at (${l}, ${i})`);
      }
    }
    if (this.count(this._height, 0) !== this._members) throw new Error('root count differs from members');
  }
}
