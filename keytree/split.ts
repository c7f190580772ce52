/**
 * Cutting a rekey body into parts addressed by subtree.
 *
 * The replaced ("refreshed") nodes of a batch form an upward-closed set: every ancestor of a
 * refreshed node is refreshed. A leaf needs exactly the wraps on its path from the highest
 * node it still holds up to the root. So the parts are the *frontier*: one part for each wrap
 * whose child has no record in this batch (a child whose key did not change, or a leaf), named
 * by that child C = (level, index). It covers the slots [index·d^level, (index+1)·d^level) and
 * carries the wraps from C's parent up to the root — one per level, never more than the tree
 * height, whatever the batch size. Frontier subtrees are disjoint, so every current leaf is
 * under exactly one part; a router maps slot → part by binary search over the sorted ranges
 * (`partIdFor`). A leaf moved by compaction looks up its *old* slot: its part is addressed to
 * its new slot and carries `movedFrom`.
 *
 * Parts are a pure function of header fields and body, so any holder of the full message (a
 * core server, an edge relay) derives the same parts and proofs.
 */
import type { CipherSuite } from '../crypto/index.js';
import { DecodeError } from '../wire/index.js';
import { merkleLevels, merkleProof, partDigest, partsRoot, pathDigest, rootDigest } from './digest.js';
import { nodeKey, span } from './geometry.js';
import type { ChildWrap, NodeRecord, PathWrap, RekeyBody, RekeyPart } from './messages.js';

/** The header fields a split depends on. */
export interface SplitContext {
  readonly group: Uint8Array;
  readonly epoch: number;
  readonly arity: number;
  readonly height: number;
  readonly rootVersion: number;
}

interface Frontier {
  readonly level: number;
  readonly index: number;
  readonly start: number;
  readonly parent: NodeRecord;
  readonly wrap: ChildWrap;
  readonly movedFrom: number | undefined;
}

export class RekeySplit {
  private constructor(
    private readonly ctx: SplitContext,
    private readonly records: ReadonlyMap<number, NodeRecord>,
    private readonly frontier: readonly Frontier[],
    private readonly levels: Uint8Array[][],
    private readonly movedTo: ReadonlyMap<number, number>,
    /** The header's partsRoot: the Merkle root over all part digests, bound to their count. */
    readonly root: Uint8Array,
  ) {}

  /**
   * Derives the parts of a body. Throws `DecodeError('bad-value')` when the body is not a
   * consistent batch (a record whose parent has no record or no wrap for it, a root record
   * missing while others exist, a move to a slot without a part).
   */
  static plan(suite: CipherSuite, ctx: SplitContext, body: RekeyBody): RekeySplit {
    const d = ctx.arity;
    const records = new Map<number, NodeRecord>();
    for (const rec of body.records) records.set(nodeKey(rec.level, rec.index), rec);

    // Path digests, top-down (records are stored bottom-up).
    const digests = new Map<number, Uint8Array>();
    for (let i = body.records.length - 1; i >= 0; i--) {
      const rec = body.records[i]!;
      if (rec.level === ctx.height) {
        if (rec.version !== ctx.rootVersion)
          throw new DecodeError('bad-value', 'root record version differs from header');
        digests.set(
          nodeKey(rec.level, rec.index),
          rootDigest(suite, ctx.group, ctx.epoch, ctx.height, rec.version),
        );
        continue;
      }
      const parentKey = nodeKey(rec.level + 1, Math.floor(rec.index / d));
      const parent = records.get(parentKey);
      const up = parent === undefined ? undefined : stepTo(parent, rec.index % d, rec.version);
      if (parent === undefined || up === undefined) {
        throw new DecodeError(
          'bad-value',
          `record (${rec.level}, ${rec.index}) has no refreshed parent built on it`,
        );
      }
      if (up.childVersion !== rec.version)
        throw new DecodeError('bad-value', `record (${rec.level}, ${rec.index}) version mismatch`);
      digests.set(
        nodeKey(rec.level, rec.index),
        pathDigest(suite, digests.get(parentKey)!, rec.level, rec.index, up),
      );
    }
    for (const rec of body.records) {
      if (
        rec.derivedFrom !== undefined &&
        !records.has(nodeKey(rec.level - 1, rec.index * d + rec.derivedFrom))
      ) {
        throw new DecodeError(
          'bad-value',
          `record (${rec.level}, ${rec.index}) derives from a child that was not refreshed`,
        );
      }
    }

    const movedFromByTarget = new Map<number, number>();
    const movedTo = new Map<number, number>();
    for (const m of body.moves) {
      if (movedTo.has(m.from)) throw new DecodeError('bad-value', `slot ${m.from} moves twice`);
      movedFromByTarget.set(m.to, m.from);
      movedTo.set(m.from, m.to);
    }

    const frontier: Frontier[] = [];
    for (const rec of body.records) {
      const level = rec.level - 1;
      for (const wrap of rec.wraps) {
        const index = rec.index * d + wrap.child;
        if (level > 0 && records.has(nodeKey(level, index))) continue;
        const movedFrom = level === 0 ? movedFromByTarget.get(index) : undefined;
        frontier.push({ level, index, start: index * span(d, level), parent: rec, wrap, movedFrom });
      }
    }
    frontier.sort((a, b) => a.start - b.start);
    let covered = 0;
    for (const f of frontier) if (f.movedFrom !== undefined) covered++;
    if (covered !== body.moves.length)
      throw new DecodeError('bad-value', 'a move targets a slot without a part');

    const partDigests = frontier.map((f) =>
      partDigest(
        suite,
        digests.get(nodeKey(f.parent.level, f.parent.index))!,
        f.level,
        f.index,
        f.movedFrom,
        step(f.parent, f.wrap),
      ),
    );
    const levels = merkleLevels(suite, partDigests);
    const root = partsRoot(suite, frontier.length, levels[levels.length - 1]![0]!);
    return new RekeySplit(ctx, records, frontier, levels, movedTo, root);
  }

  get count(): number {
    return this.frontier.length;
  }

  /** The slot after this batch of the leaf at `slot` before it (compaction moves some leaves). */
  slotAfter(slot: number): number {
    return this.movedTo.get(slot) ?? slot;
  }

  /** The part a leaf at `slot` (its slot before this batch) needs, or undefined if none covers it. */
  partIdFor(slot: number): number | undefined {
    const target = this.movedTo.get(slot) ?? slot;
    let lo = 0;
    let hi = this.frontier.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const f = this.frontier[mid]!;
      if (target < f.start) hi = mid - 1;
      else if (target >= f.start + span(this.ctx.arity, f.level)) lo = mid + 1;
      else return f.movedFrom === undefined || f.movedFrom === slot ? mid : undefined;
    }
    return undefined;
  }

  /** Builds part `id` with its Merkle proof. */
  part(id: number): RekeyPart {
    const f = this.frontier[id];
    if (f === undefined) throw new RangeError(`part ${id} of ${this.frontier.length}`);
    const d = this.ctx.arity;
    const wraps: PathWrap[] = [step(f.parent, f.wrap)];
    let rec = f.parent;
    while (rec.level < this.ctx.height) {
      const parent = this.records.get(nodeKey(rec.level + 1, Math.floor(rec.index / d)))!;
      wraps.push(stepTo(parent, rec.index % d, rec.version)!);
      rec = parent;
    }
    return {
      epoch: this.ctx.epoch,
      level: f.level,
      index: f.index,
      movedFrom: f.movedFrom,
      wraps,
      position: id,
      proof: merkleProof(this.levels, id),
    };
  }

  /** The slot range [start, end) part `id` covers. */
  range(id: number): { start: number; end: number } {
    const f = this.frontier[id];
    if (f === undefined) throw new RangeError(`part ${id} of ${this.frontier.length}`);
    return { start: f.start, end: f.start + span(this.ctx.arity, f.level) };
  }
}

/** How `parent` delivers its key to its refreshed child at `child` (version `childVersion`). */
function stepTo(parent: NodeRecord, child: number, childVersion: number): PathWrap | undefined {
  if (parent.derivedFrom === child)
    return { parentVersion: parent.version, childVersion, wrapped: undefined };
  const wrap = parent.wraps.find((w) => w.child === child);
  return wrap === undefined ? undefined : step(parent, wrap);
}

function step(parent: NodeRecord, wrap: ChildWrap): PathWrap {
  return { parentVersion: parent.version, childVersion: wrap.childVersion, wrapped: wrap.wrapped };
}
