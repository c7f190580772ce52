/**
 * The adversary of DESIGN §Threat model, for departed leaves: it holds everything a leaf knew
 * when it left or was revoked (its path keys, the last group keys it held) and sees every
 * packet afterwards — every rekey message and every published envelope, not just what a server
 * would still send it. It tries the real code paths with that material:
 *
 *   - follow the rekey: `LeafKeys.processMessage` on each full rekey message after departure;
 *   - read data: open each envelope of an epoch at or after its eviction with its own keyring,
 *     then with every group key it held re-labelled as the envelope's epoch.
 *
 * Forward secrecy holds iff every one of these attempts fails; the verdict counts successes.
 */
import type { CipherSuite } from '../../crypto/index.js';
import { DataEnvelopeError, DataKeyring, DataOpener, decodeDataEnvelope } from '../../gossip-edge/index.js';
import { KeytreeError, type LeafKeys } from '../../keytree/index.js';
import type { BatchOutput } from '../../leaf-plane/index.js';
import type { DemoRecorder } from './recorder.js';

interface Departed {
  readonly name: string;
  keys: LeafKeys;
  readonly heldKeys: readonly { epoch: number; key: Uint8Array }[];
  /** First epoch without this leaf; undefined until its departure batch is cut. */
  evictedEpoch: number | undefined;
  readonly keyring: DataKeyring;
  readonly opener: DataOpener;
}

export class Eavesdropper {
  private readonly departed = new Map<string, Departed>();
  private readonly evictedAt = new Map<string, number>();
  private newestEpoch = 0;
  /** Envelopes already judged (every replica relays each one); grows with the run's publishes only. */
  private readonly seenData = new Set<string>();
  private lastBatch: BatchOutput | undefined;

  constructor(
    private readonly suite: CipherSuite,
    private readonly recorder: DemoRecorder,
  ) {}

  get count(): number {
    return this.departed.size;
  }

  /** A leaf left or was revoked: from now on it is the adversary's. */
  adopt(name: string, keys: LeafKeys, heldKeys: readonly { epoch: number; key: Uint8Array }[]): void {
    if (this.departed.has(name)) return;
    // The adversary keeps every key it held, for good: no window, no grace period, frozen clock.
    const keyring = new DataKeyring(this.suite, { previousEpochs: 64, now: () => 0 });
    for (const h of heldKeys) keyring.install(h.epoch, h.key);
    const dep: Departed = {
      name,
      keys,
      heldKeys: [...heldKeys],
      evictedEpoch: this.evictedAt.get(name),
      keyring,
      opener: new DataOpener(this.suite, keyring),
    };
    this.departed.set(name, dep);
    // Told of its eviction after the batch was cut (the evicted frame): try that batch too.
    if (this.lastBatch !== undefined) this.tryRekey(dep, this.lastBatch);
  }

  evictionEpoch(name: string): number | undefined {
    return this.evictedAt.get(name);
  }

  /** Every replica reports each batch; the first report of an epoch counts. */
  onBatch(batch: BatchOutput): void {
    if (batch.epoch <= this.newestEpoch) return;
    this.newestEpoch = batch.epoch;
    this.lastBatch = batch;
    for (const d of batch.evicted) {
      this.evictedAt.set(d.name, batch.epoch);
      const dep = this.departed.get(d.name);
      if (dep !== undefined) dep.evictedEpoch = batch.epoch;
    }
    for (const dep of this.departed.values()) this.tryRekey(dep, batch);
  }

  private tryRekey(dep: Departed, batch: BatchOutput): void {
    if (dep.evictedEpoch === undefined || batch.epoch < dep.evictedEpoch) return;
    try {
      dep.keys = dep.keys.processMessage(this.suite, batch.rekey.message);
      this.recorder.sniffed(dep.name, 'rekey', true, undefined);
    } catch (e) {
      if (!(e instanceof KeytreeError)) throw e;
      this.recorder.sniffed(dep.name, 'rekey', false, e.code);
    }
  }

  /** Every replica relays each envelope; the first copy counts. */
  onData(envelope: Uint8Array): void {
    const h = decodeDataEnvelope(envelope).header;
    const id = `${h.sender}/${h.seq}/${h.epoch}`;
    if (this.seenData.has(id)) return;
    this.seenData.add(id);
    for (const dep of this.departed.values()) {
      if (dep.evictedEpoch === undefined || h.epoch < dep.evictedEpoch) continue; // sent while it was a member
      let reason = this.tryOpen(dep.opener, envelope);
      for (const held of dep.heldKeys) {
        if (reason === undefined) break;
        const ring = new DataKeyring(this.suite, { now: Date.now, previousEpochs: 0 });
        ring.install(h.epoch, held.key); // pretend an old group key is the new epoch's
        reason = this.tryOpen(new DataOpener(this.suite, ring), envelope);
      }
      this.recorder.sniffed(dep.name, 'data', reason === undefined, reason);
    }
  }

  /** undefined = it opened (a secrecy failure); else the reason it did not. */
  private tryOpen(opener: DataOpener, envelope: Uint8Array): string | undefined {
    try {
      opener.open(envelope);
      return undefined;
    } catch (e) {
      if (!(e instanceof DataEnvelopeError)) throw e;
      return e.reason;
    }
  }
}
