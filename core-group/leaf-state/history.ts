/**
 * The signed epochs a core server keeps to route rekey parts and to serve catch-up.
 *
 * Each cut is signed once by the emitting server (Ed25519 over keytree `signedBytes(header)`);
 * the history keeps the header, signature and the split (which derives any leaf's part with its
 * Merkle proof) of the last `maxEpochs` epochs, within `maxBytes` of encoded rekey messages. A
 * catch-up walks forward from the leaf's slot, following compaction moves epoch by epoch; a gap
 * the history no longer covers, or a slot no part addresses, answers `rejoin`.
 *
 * Not replicated state: a replica restored from a snapshot starts with an empty history, and its
 * leaves that need older epochs re-join (a fresh welcome), which is always correct.
 */
import type { CipherSuite } from '../../crypto/index.js';
import { encodePart, type RekeySplit } from '../../keytree/index.js';
import { MAX_CATCH_UP_EPOCHS, type CatchUpReply, type RekeyPush } from '../../gossip-edge/index.js';
import type { BatchOutput } from './machine.js';

export const DEFAULT_HISTORY_EPOCHS = 64;
export const DEFAULT_HISTORY_BYTES = 64 * 1024 * 1024;

interface SignedEpoch {
  readonly epoch: number;
  readonly header: Uint8Array;
  readonly signer: Uint8Array;
  readonly signature: Uint8Array;
  readonly split: RekeySplit;
  readonly bytes: number;
}

/** Signs a batch's header: what every leaf verifies before applying a part. */
export function signBatch(suite: CipherSuite, seed: Uint8Array, batch: BatchOutput): Uint8Array {
  return suite.ed25519Sign(seed, batch.toSign);
}

export class RekeyHistory {
  private readonly epochs: SignedEpoch[] = [];
  private bytes = 0;

  constructor(
    readonly maxEpochs = DEFAULT_HISTORY_EPOCHS,
    readonly maxBytes = DEFAULT_HISTORY_BYTES,
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
    };
    this.epochs.push(entry);
    this.bytes += entry.bytes;
    while (this.epochs.length > this.maxEpochs || (this.bytes > this.maxBytes && this.epochs.length > 1)) {
      this.bytes -= this.epochs.shift()!.bytes;
    }
  }

  clear(): void {
    this.epochs.length = 0;
    this.bytes = 0;
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
    const part = e.split.part(id);
    return {
      push: { header: e.header, signer: e.signer, signature: e.signature, parts: [encodePart(part)] },
      slotAfter: part.movedFrom !== undefined ? part.index : slot,
    };
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
