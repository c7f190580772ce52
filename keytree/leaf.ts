/**
 * The leaf side: a member's path keys and how it follows rekeys.
 *
 * A leaf holds the keys on its path (leaf first) for one epoch. Walking up its part, it unwraps
 * each new key under the key below it, or derives it with one HMAC where the batch derived it. It accepts the message or part
 * of epoch + 1 only: the same epoch is a replay, an older one is stale, a later one means it
 * missed a batch and must catch up (gossip history or a pull) before continuing. The header is
 * trusted (its signature is checked by the caller against `signedBytes(header)`); the part is
 * checked against the header by its Merkle proof. Every failure is a `KeytreeError` naming
 * what is wrong or missing; the leaf's state is immutable, so a failed step changes nothing.
 *
 * Own-key refresh (post-compromise recovery, leaf-key-refresh.ts): a leaf may hold a few
 * *pending* own keys — keys it computed for refreshes its server ordered but that no batch has
 * applied yet. The batch that applies one wraps the leaf's parent key under it with the next
 * own-key version, so a part that starts at the leaf level under a version newer than the one
 * held (or a moved part whose wrap the held key does not open) is tried under each pending key,
 * oldest first; the one that opens it becomes the own key and older pending keys are dropped.
 * The wrap is authenticated, so a wrong candidate fails cleanly; at most MAX_PENDING_OWN_KEYS
 * candidates bound the work.
 */
import { CryptoError, constantTimeEqual, type CipherSuite } from '../crypto/index.js';
import { deriveParentKey } from './derive.js';
import { partDigest, pathDigest, rootDigest, verifyMerkle } from './digest.js';
import { KeytreeError } from './errors.js';
import { span } from './geometry.js';
import {
  encodeBody,
  type EpochHeader,
  type RekeyMessage,
  type RekeyPart,
  type VersionedKey,
  type Welcome,
} from './messages.js';
import { RekeySplit } from './split.js';

/** Own keys a leaf keeps waiting for their batch; a newer refresh pushes out the oldest. */
export const MAX_PENDING_OWN_KEYS = 4;

export class LeafKeys {
  private constructor(
    readonly group: Uint8Array,
    readonly arity: number,
    readonly epoch: number,
    readonly height: number,
    readonly slot: number,
    /** Path keys, index = level; the last is the group key. */
    private readonly path: readonly VersionedKey[],
    /** Own keys of ordered refreshes not yet applied, oldest first. */
    private readonly pending: readonly Uint8Array[] = [],
  ) {}

  /** A copy that also accepts `key` as its next own key (see the module comment). */
  withPendingOwnKey(key: Uint8Array): LeafKeys {
    if (key.length !== this.path[0]!.key.length) throw new RangeError('own key has the wrong length');
    const pending = [...this.pending, key.slice()].slice(-MAX_PENDING_OWN_KEYS);
    return new LeafKeys(this.group, this.arity, this.epoch, this.height, this.slot, this.path, pending);
  }

  /**
   * `this` (fresh from a welcome) keeping the pending own keys of `before` that it does not
   * already hold: a welcome may arrive between a refresh being ordered and being applied.
   */
  carryPendingFrom(before: LeafKeys | undefined): LeafKeys {
    if (before === undefined || before.pending.length === 0) return this;
    const own = this.path[0]!.key;
    const pending = before.pending.filter((k) => !constantTimeEqual(k, own));
    return new LeafKeys(this.group, this.arity, this.epoch, this.height, this.slot, this.path, pending);
  }

  /** Number of pending own keys (diagnostics and tests). */
  get pendingOwnKeys(): number {
    return this.pending.length;
  }

  static fromWelcome(w: Welcome): LeafKeys {
    if (w.keys.length !== w.height + 1)
      throw new KeytreeError('wrong-group', 'welcome key count does not match its height');
    return new LeafKeys(
      w.group.slice(),
      w.arity,
      w.epoch,
      w.height,
      w.slot,
      w.keys.map((k) => ({ version: k.version, key: k.key.slice() })),
    );
  }

  /** The leaf group key of `epoch` (a copy). */
  groupKey(): Uint8Array {
    return this.path[this.height]!.key.slice();
  }

  /** Version of the key this leaf holds at `level` (for diagnostics and tests). */
  versionAt(level: number): number | undefined {
    return this.path[level]?.version;
  }

  /** Applies a full rekey message: checks its body digest, finds this leaf's part and applies it. */
  processMessage(suite: CipherSuite, msg: RekeyMessage): LeafKeys {
    const h = msg.header;
    this.checkHeader(h);
    if (!constantTimeEqual(suite.sha256(encodeBody(msg.body)), h.bodyDigest)) {
      throw new KeytreeError('bad-proof', 'rekey body does not match the header digest');
    }
    const split = RekeySplit.plan(suite, h, msg.body);
    const id = split.partIdFor(this.slot);
    if (id === undefined) {
      throw new KeytreeError('missing', `no part of epoch ${h.epoch} covers slot ${this.slot}`, [
        { kind: 'part', epoch: h.epoch, slot: this.slot },
      ]);
    }
    return this.processPart(suite, h, split.part(id));
  }

  /** Applies one part of the next epoch. */
  processPart(suite: CipherSuite, h: EpochHeader, part: RekeyPart): LeafKeys {
    this.checkHeader(h);
    const d = this.arity;
    const moved = part.movedFrom !== undefined;
    if (part.epoch !== h.epoch)
      throw new KeytreeError('not-addressed', `part of epoch ${part.epoch} under header of epoch ${h.epoch}`);
    if (moved ? part.movedFrom !== this.slot : Math.floor(this.slot / span(d, part.level)) !== part.index) {
      throw new KeytreeError(
        'not-addressed',
        `part (${part.level}, ${part.index}) does not cover slot ${this.slot}`,
      );
    }
    const newSlot = moved ? part.index : this.slot;
    if (part.level > this.height || part.level >= h.height || newSlot >= span(d, h.height)) {
      throw new KeytreeError(
        'not-addressed',
        `part (${part.level}, ${part.index}) is outside this leaf's tree`,
      );
    }
    if (part.wraps.length !== h.height - part.level) {
      throw new KeytreeError(
        'bad-proof',
        `part has ${part.wraps.length} wraps for ${h.height - part.level} levels`,
      );
    }
    verifyPartProof(suite, h, part, newSlot);

    // The key the part starts from: unchanged in this batch (a moved leaf keeps its leaf key),
    // or at the leaf level a pending own key that this batch installed.
    const first = part.wraps[0]!;
    const held = this.path[part.level]!;
    const ownRekeyed =
      part.level === 0 && this.pending.length > 0 && (moved || first.childVersion > held.version);
    if (!moved && !ownRekeyed && held.version !== first.childVersion) {
      throw new KeytreeError(
        'missing',
        `part builds on version ${first.childVersion} at level ${part.level}, leaf holds ${held.version}`,
        [{ kind: 'key', level: part.level, index: part.index, version: first.childVersion }],
      );
    }
    // Candidates for the key under which the first wrap was made, in the order tried.
    const candidates = moved ? [held.key, ...this.pending] : ownRekeyed ? [...this.pending] : [held.key];
    if (first.wrapped === undefined) throw new KeytreeError('bad-proof', 'a part starts with a wrap');
    let used = -1;
    let start: Uint8Array | undefined;
    for (let c = 0; c < candidates.length && start === undefined; c++) {
      try {
        start = unwrap(suite, candidates[c]!, first.wrapped, part.level + 1, first.childVersion);
        used = c;
      } catch (e) {
        if (!(e instanceof KeytreeError) || c === candidates.length - 1) throw e;
      }
    }
    const own = candidates[used]!;
    const path: VersionedKey[] = this.path.slice(0, part.level + 1);
    if (moved || own !== held.key) path[0] = { version: first.childVersion, key: own };
    path.push({ version: first.parentVersion, key: start! });
    let kek = start!;
    for (let i = 1; i < part.wraps.length; i++) {
      const step = part.wraps[i]!;
      const level = part.level + 1 + i;
      const key =
        step.wrapped === undefined
          ? deriveParentKey(suite, kek, level, Math.floor(newSlot / span(d, level)), step.parentVersion)
          : unwrap(suite, kek, step.wrapped, level, step.childVersion);
      path.push({ version: step.parentVersion, key });
      kek = key;
    }
    // A pending key now in use, and every older one, is done with.
    const pendingUsed = own === held.key ? -1 : this.pending.indexOf(own);
    const pending = this.pending.slice(pendingUsed + 1);
    return new LeafKeys(this.group, d, h.epoch, h.height, newSlot, path, pending);
  }

  private checkHeader(h: EpochHeader): void {
    if (!constantTimeEqual(h.group, this.group) || h.arity !== this.arity) {
      throw new KeytreeError('wrong-group', 'header is for another group or tree arity');
    }
    if (h.epoch === this.epoch) throw new KeytreeError('replay', `epoch ${h.epoch} already applied`);
    if (h.epoch < this.epoch)
      throw new KeytreeError('stale-epoch', `epoch ${h.epoch} is older than ${this.epoch}`);
    if (h.epoch > this.epoch + 1) {
      throw new KeytreeError(
        'out-of-order',
        `epoch ${h.epoch} after ${this.epoch}: epochs ${this.epoch + 1}..${h.epoch - 1} are missing`,
      );
    }
  }
}

/**
 * Checks that `part` is one of the parts `h` signs, at its position (its Merkle proof against
 * `h.partsRoot`, its digest chain from the root down to its subtree), without any leaf key:
 * anyone holding a signed header can tell a genuine part from a relabelled or forged one (a
 * gossip relay before it stores or forwards an item). `slot`: any slot under the part's
 * subtree (default: the first; a moved part's is its new slot `index`). Throws
 * KeytreeError('bad-proof' | 'not-addressed').
 */
export function verifyPartProof(
  suite: CipherSuite,
  h: EpochHeader,
  part: RekeyPart,
  slot = part.index * span(h.arity, part.level),
): void {
  const d = h.arity;
  if (part.epoch !== h.epoch)
    throw new KeytreeError('not-addressed', `part of epoch ${part.epoch} under header of epoch ${h.epoch}`);
  if (part.level >= h.height || part.index >= span(d, h.height - part.level))
    throw new KeytreeError('not-addressed', `part (${part.level}, ${part.index}) is outside the tree`);
  if (part.wraps.length !== h.height - part.level)
    throw new KeytreeError(
      'bad-proof',
      `part has ${part.wraps.length} wraps for ${h.height - part.level} levels`,
    );
  if (part.position >= h.partCount)
    throw new KeytreeError('bad-proof', `part ${part.position} of ${h.partCount}`);
  const top = part.wraps[part.wraps.length - 1]!;
  if (top.parentVersion !== h.rootVersion)
    throw new KeytreeError('bad-proof', 'part root version differs from header');
  let digest = rootDigest(suite, h.group, h.epoch, h.height, h.rootVersion);
  for (let level = h.height - 1; level > part.level; level--) {
    const i = level - part.level;
    if (part.wraps[i]!.childVersion !== part.wraps[i - 1]!.parentVersion) {
      throw new KeytreeError('bad-proof', `part versions do not chain at level ${level}`);
    }
    digest = pathDigest(suite, digest, level, Math.floor(slot / span(d, level)), part.wraps[i]!);
  }
  const leafDigest = partDigest(suite, digest, part.level, part.index, part.movedFrom, part.wraps[0]!);
  if (!verifyMerkle(suite, leafDigest, part.position, h.partCount, part.proof, h.partsRoot)) {
    throw new KeytreeError('bad-proof', `part ${part.position} does not match the signed part root`);
  }
}

function unwrap(
  suite: CipherSuite,
  kek: Uint8Array,
  wrapped: Uint8Array,
  level: number,
  kekVersion: number,
): Uint8Array {
  try {
    return suite.unwrapKey(kek, wrapped);
  } catch (e) {
    if (e instanceof CryptoError) {
      throw new KeytreeError(
        'unwrap-failed',
        `key at level ${level} did not unwrap under version ${kekVersion}`,
      );
    }
    throw e;
  }
}
