/**
 * Forward/backward secrecy checker for the leaf tree (tests now, the simulator later).
 *
 * Feed it every epoch in order: the rekey message (none for genesis), the welcomes handed to
 * joiners, and the slots that departed. It tracks which member held which slot during which
 * epochs. Given a coalition of members, `derive` computes everything the coalition can learn
 * from all keys its members were ever given plus every rekey message ever sent — by actually
 * unwrapping and deriving, so a wrap under the wrong key is caught too — and `check` asserts that each
 * derived key was created in an epoch during which at least one coalition member was a member
 * (a member is present from its join epoch up to, not including, the epoch that removes it).
 * So departed members read nothing after they leave (forward secrecy), joiners nothing from
 * before they join (backward secrecy), and no coalition learns more than the union of its
 * members' legitimate epochs.
 *
 * Compromise adversary (post-compromise recovery): `deriveAfterCompromise` starts from every key
 * of the tree at epoch E (`treeKeys`: what a revoked core server or a stolen data directory
 * held) and follows every later rekey message. Own-key refreshes (`rekeyed`, made from entropy
 * outside the tree) are known to their member only; once every leaf present at E has been
 * refreshed and the paths above refreshed after that, nothing new is derivable.
 */
import type { CipherSuite } from '../crypto/index.js';
import { deriveParentKey } from './derive.js';
import type { RekeyMessage, Welcome } from './messages.js';
import type { LeafKeyTree } from './tree.js';
import { span } from './geometry.js';

export interface EpochRecord {
  readonly epoch: number;
  /** Absent for genesis (epoch 0). */
  readonly message?: RekeyMessage;
  readonly welcomes: readonly Welcome[];
  /** Slots of members removed in this epoch's batch, as they were when they left. */
  readonly departed: readonly number[];
  /** Own-key refreshes of this batch (`rekey-leaf`): slot before any move, new version, key. */
  readonly rekeyed?: readonly { slot: number; version: number; key: Uint8Array }[];
}

/** Every key of a tree at its current epoch, by id: what its holder could hand an adversary. */
export interface Compromise {
  readonly epoch: number;
  readonly keys: ReadonlyMap<string, Uint8Array>;
}

export interface MemberSpan {
  readonly id: number;
  readonly joinEpoch: number;
  /** The epoch of the batch that removed it; undefined while it is a member. */
  leaveEpoch: number | undefined;
}

export interface SecrecyViolation {
  readonly keyId: string;
  readonly createdEpoch: number;
}

interface Stored {
  readonly epoch: number;
  readonly message: RekeyMessage | undefined;
  readonly welcomes: readonly { member: number; welcome: Welcome }[];
  readonly rekeyed: readonly { member: number; id: string; key: Uint8Array }[];
  /** Leaf key ids of moved members: same bytes under a new name. */
  readonly aliases: readonly { from: string; to: string }[];
}

export function keyId(level: number, index: number, version: number): string {
  return `${level}/${index}/${version}`;
}

export class SecrecyChecker {
  private readonly history: Stored[] = [];
  private readonly spans: MemberSpan[] = [];
  private readonly created = new Map<string, number>();
  private readonly slotMember = new Map<number, number>();
  private readonly leafVersion = new Map<number, number>();

  constructor(private readonly suite: CipherSuite) {}

  record(rec: EpochRecord): void {
    const expected = this.history.length;
    if (rec.epoch !== expected) throw new RangeError(`epoch ${rec.epoch} recorded, expected ${expected}`);
    if ((rec.message === undefined) !== (rec.epoch === 0))
      throw new RangeError('exactly genesis has no message');
    for (const slot of rec.departed) {
      const member = this.slotMember.get(slot);
      if (member === undefined) continue; // joined and left within this batch
      this.spans[member]!.leaveEpoch = rec.epoch;
      this.slotMember.delete(slot);
    }
    const rekeyed: { member: number; id: string; key: Uint8Array }[] = [];
    for (const r of rec.rekeyed ?? []) {
      const member = this.slotMember.get(r.slot);
      if (member === undefined) continue; // rekeyed, then removed in the same batch
      const id = keyId(0, r.slot, r.version);
      this.leafVersion.set(r.slot, r.version);
      this.created.set(id, rec.epoch);
      rekeyed.push({ member, id, key: r.key.slice() });
    }
    const aliases: { from: string; to: string }[] = [];
    for (const m of rec.message?.body.moves ?? []) {
      const member = this.slotMember.get(m.from);
      if (member === undefined) throw new RangeError(`move from empty slot ${m.from}`);
      this.slotMember.delete(m.from);
      this.slotMember.set(m.to, member);
      aliases.push({ from: keyId(0, m.from, this.leafVersion.get(m.from)!), to: keyId(0, m.to, m.version) });
      this.leafVersion.set(m.to, m.version);
      this.created.set(keyId(0, m.to, m.version), rec.epoch);
    }
    for (const r of rec.message?.body.records ?? [])
      this.created.set(keyId(r.level, r.index, r.version), rec.epoch);
    const welcomes = rec.welcomes.map((welcome) => {
      const member = this.spans.length;
      this.spans.push({ id: member, joinEpoch: rec.epoch, leaveEpoch: undefined });
      this.slotMember.set(welcome.slot, member);
      welcome.keys.forEach((k, level) => {
        const id = keyId(level, Math.floor(welcome.slot / welcome.arity ** level), k.version);
        if (!this.created.has(id)) this.created.set(id, rec.epoch);
      });
      this.leafVersion.set(welcome.slot, welcome.keys[0]!.version);
      return { member, welcome };
    });
    this.history.push({ epoch: rec.epoch, message: rec.message, welcomes, rekeyed, aliases });
  }

  members(): readonly MemberSpan[] {
    return this.spans;
  }

  /** The member holding `slot` now. */
  memberAt(slot: number): number | undefined {
    return this.slotMember.get(slot);
  }

  /**
   * Every key an adversary handed the whole tree at `c.epoch` (plus every later rekey message)
   * derives, by id; with `coalition`, also what those members were given.
   */
  deriveAfterCompromise(c: Compromise, coalition: readonly number[] = []): Map<string, Uint8Array> {
    return this.derive(coalition, c);
  }

  /** When the key `id` was created (undefined: unknown id). */
  createdEpoch(id: string): number | undefined {
    return this.created.get(id);
  }

  /** Every key the coalition can derive, by id, with its bytes. */
  derive(coalition: readonly number[], compromise?: Compromise): Map<string, Uint8Array> {
    const inside = new Set(coalition);
    const known = new Map<string, Uint8Array>(compromise?.keys ?? []);
    for (const step of this.history) {
      if (compromise !== undefined && step.epoch <= compromise.epoch) continue;
      for (const r of step.rekeyed) if (inside.has(r.member)) known.set(r.id, r.key);
      for (const { member, welcome } of step.welcomes) {
        if (!inside.has(member)) continue;
        welcome.keys.forEach((k, level) =>
          known.set(keyId(level, Math.floor(welcome.slot / welcome.arity ** level), k.version), k.key),
        );
      }
      for (const a of step.aliases) {
        const key = known.get(a.from);
        if (key !== undefined) known.set(a.to, key);
      }
      const msg = step.message;
      if (msg === undefined) continue;
      const d = msg.header.arity;
      const refreshed = new Map<string, number>(); // "level/index" → new version in this batch
      for (const rec of msg.body.records) refreshed.set(`${rec.level}/${rec.index}`, rec.version);
      for (const rec of msg.body.records) {
        const id = keyId(rec.level, rec.index, rec.version);
        if (known.has(id)) continue;
        if (rec.derivedFrom !== undefined) {
          const childIndex = rec.index * d + rec.derivedFrom;
          const childVersion = refreshed.get(`${rec.level - 1}/${childIndex}`);
          const child =
            childVersion === undefined
              ? undefined
              : known.get(keyId(rec.level - 1, childIndex, childVersion));
          if (child !== undefined) {
            known.set(id, deriveParentKey(this.suite, child, rec.level, rec.index, rec.version));
            continue;
          }
        }
        for (const w of rec.wraps) {
          const kek = known.get(keyId(rec.level - 1, rec.index * d + w.child, w.childVersion));
          if (kek === undefined) continue;
          // A wrap that fails under the key it names is a tree bug, not adversary knowledge.
          known.set(id, this.suite.unwrapKey(kek, w.wrapped));
          break;
        }
      }
    }
    return known;
  }

  /** Derived keys created in epochs where no coalition member was present. */
  violations(coalition: readonly number[]): SecrecyViolation[] {
    const spans = coalition.map((m) => {
      const s = this.spans[m];
      if (s === undefined) throw new RangeError(`unknown member ${m}`);
      return s;
    });
    const present = (epoch: number): boolean =>
      spans.some((s) => s.joinEpoch <= epoch && (s.leaveEpoch === undefined || epoch < s.leaveEpoch));
    const out: SecrecyViolation[] = [];
    for (const id of this.derive(coalition).keys()) {
      const createdEpoch = this.created.get(id);
      if (createdEpoch === undefined) throw new Error(`derived key ${id} was never created`);
      if (!present(createdEpoch)) out.push({ keyId: id, createdEpoch });
    }
    return out;
  }

  /** Throws when the coalition can derive a key it must not read. */
  check(coalition: readonly number[]): void {
    const v = this.violations(coalition);
    if (v.length > 0) {
      const sample = v.slice(0, 5).map((x) => `${x.keyId}@${x.createdEpoch}`);
      throw new Error(
        `secrecy violated by coalition [${coalition.join(', ')}]: ${v.length} keys, e.g. ${sample.join(', ')}`,
      );
    }
  }
}

/** Every key held by `tree` now (every non-empty node, leaves included), by id. */
export function treeKeys(tree: LeafKeyTree): Compromise {
  const keys = new Map<string, Uint8Array>();
  const levels = tree.storage();
  for (let l = 0; l <= tree.height; l++) {
    const lv = levels[l]!;
    const size = span(tree.arity, tree.height - l);
    for (let i = 0; i < size; i++) {
      if ((lv.counts[i] ?? 0) === 0) continue;
      keys.set(keyId(l, i, lv.versions[i]!), lv.keys.slice(i * 32, (i + 1) * 32));
    }
  }
  return { epoch: tree.epoch, keys };
}
