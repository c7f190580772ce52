/**
 * The signed epochs a core server keeps to route rekey parts and to serve catch-up.
 *
 * Each cut is signed once by the emitting server (Ed25519 over keytree `signedBytes(header)`);
 * the history keeps the header, signature and the split (which derives any leaf's part with its
 * Merkle proof) of the last `maxEpochs` epochs, within `maxBytes` of encoded rekey messages. A
 * catch-up walks forward from the leaf's slot, following compaction moves epoch by epoch; a gap
 * the history no longer covers, or a slot no part addresses, answers `rejoin`.
 *
 * Encoded parts are cached per epoch (within `maxCachedPartBytes` over the whole history): a
 * part covers a subtree, so the leaves under it — pushed one by one, or catching up the same
 * epochs — cost one build (its wraps and Merkle proof), not one each.
 *
 * Not replicated state: a replica restored from a snapshot starts with an empty history, and its
 * leaves that need older epochs re-join (a fresh welcome), which is always correct.
 */
import type { CipherSuite } from '../crypto/index.js';
import { encodePart, type RekeySplit } from '../keytree/index.js';
import { MAX_CATCH_UP_EPOCHS, type CatchUpReply, type RekeyPush } from '../gossip-edge/index.js';
import type { BatchOutput } from './machine.js';

export const DEFAULT_HISTORY_EPOCHS = 64;
export const DEFAULT_HISTORY_BYTES = 64 * 1024 * 1024;
export const DEFAULT_CACHED_PART_BYTES = 16 * 1024 * 1024;

interface SignedEpoch {
  readonly epoch: number;
  readonly header: Uint8Array;
  readonly signer: Uint8Array;
  readonly signature: Uint8Array;
  readonly split: RekeySplit;
  readonly bytes: number;
  /** Encoded parts built so far, by part id. */
  readonly parts: Map<number, Uint8Array>;
  partBytes: number;
}

/** Signs a batch's header: what every leaf verifies before applying a part. */
export function signBatch(suite: CipherSuite, seed: Uint8Array, batch: BatchOutput): Uint8Array {
  return suite.ed25519Sign(seed, batch.toSign);
}

export class RekeyHistory {
  private readonly epochs: SignedEpoch[] = [];
  private bytes = 0;
  private cachedPartBytes = 0;

  constructor(
    readonly maxEpochs = DEFAULT_HISTORY_EPOCHS,
    readonly maxBytes = DEFAULT_HISTORY_BYTES,
    readonly maxCachedPartBytes = DEFAULT_CACHED_PART_BYTES,
  ) {
    if (!(Number.isInteger(maxEpochs) && maxEpochs >= 1)) throw new RangeError('maxEpochs must be ≥ 1');
  }

  get newest(): number | undefined {
    return this.epochs[this.epochs.length - 1]?.epoch;
  }

  get oldest(): number | undefined {
    return this.epochs[0]?.epoch;
  }

  /** Records a signed batch; epochs must arrive in order without gaps (a gap resets the history). */
  record(batch: BatchOutput, signer: Uint8Array, signature: Uint8Array): void {
    const newest = this.newest;
    if (newest !== undefined && batch.epoch !== newest + 1) this.clear();
    const entry: SignedEpoch = {
      epoch: batch.epoch,
      header: batch.headerBytes,
      signer,
      signature,
      split: batch.rekey.split,
      bytes: batch.rekey.encoded.length,
      parts: new Map(),
      partBytes: 0,
    };
    this.epochs.push(entry);
    this.bytes += entry.bytes;
    while (this.epochs.length > this.maxEpochs || (this.bytes > this.maxBytes && this.epochs.length > 1)) {
      const gone = this.epochs.shift()!;
      this.bytes -= gone.bytes;
      this.cachedPartBytes -= gone.partBytes;
    }
  }

  clear(): void {
    this.epochs.length = 0;
    this.bytes = 0;
    this.cachedPartBytes = 0;
  }

  /**
   * The push for a leaf that held `slot` before `epoch` was cut, and its slot afterwards
   * (compaction may move it); undefined when the history lacks the epoch or no part covers the slot.
   */
  pushFor(epoch: number, slot: number): { push: RekeyPush; slotAfter: number } | undefined {
    const oldest = this.oldest;
    if (oldest === undefined || epoch < oldest || epoch > this.newest!) return undefined;
    const e = this.epochs[epoch - oldest]!;
    const id = e.split.partIdFor(slot);
    if (id === undefined) return undefined;
    let part = e.parts.get(id);
    if (part === undefined) {
      part = encodePart(e.split.part(id));
      if (this.cachedPartBytes + part.length <= this.maxCachedPartBytes) {
        e.parts.set(id, part);
        e.partBytes += part.length;
        this.cachedPartBytes += part.length;
      }
    }
    return {
      push: { header: e.header, signer: e.signer, signature: e.signature, parts: [part] },
      slotAfter: e.split.slotAfter(slot),
    };
  }

  /**
   * Where the leaf that held `slot` before `fromEpoch` is after the newest epoch (following
   * compaction moves; no part is built), or undefined when the history does not cover fromEpoch.
   * A server serves a catch-up only when this is the slot the registry holds for the asking leaf
   * now: a leaf gets the parts of its own path, not another leaf's.
   */
  slotNow(fromEpoch: number, slot: number): number | undefined {
    const oldest = this.oldest;
    if (oldest === undefined || fromEpoch < oldest) return undefined;
    let at = slot;
    for (let i = fromEpoch - oldest; i < this.epochs.length; i++) at = this.epochs[i]!.split.slotAfter(at);
    return at;
  }

  /**
   * Pushes for epochs fromEpoch.. (at most MAX_CATCH_UP_EPOCHS; the leaf asks again for more),
   * or `rejoin` when the history does not reach back to fromEpoch or loses the slot.
   */
  catchUp(fromEpoch: number, slot: number): CatchUpReply {
    const newest = this.newest;
    if (newest !== undefined && fromEpoch > newest) return { pushes: [], rejoin: false }; // nothing newer yet
    if (newest === undefined || fromEpoch < this.oldest!) return { pushes: [], rejoin: true };
    const pushes: RekeyPush[] = [];
    let at = slot;
    for (let e = fromEpoch; e <= newest && pushes.length < MAX_CATCH_UP_EPOCHS; e++) {
      const p = this.pushFor(e, at);
      if (p === undefined) return { pushes: [], rejoin: true };
      pushes.push(p.push);
      at = p.slotAfter;
    }
    return { pushes, rejoin: false };
  }
}
