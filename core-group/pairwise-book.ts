/**
 * A member's pairwise keys and what it knows of its peers' offers. Lives as long as the process
 * (pairwise keys belong to the name's Ed25519 identity key), across rejoins as new incarnations.
 * Offers arrive two ways — inside the view (the rekey layer's lineage round) and on the link
 * (secure.ts, for peers with which no key is shared yet) — and are accepted here only.
 */
import type { CipherSuite } from '../crypto/index.js';
import { constantTimeEqual, wipe } from '../crypto/index.js';
import { X25519Pairwise, type PairwiseKey, type PairwiseOffer } from '../keytree/index.js';

export interface PairwiseBookConfig {
  readonly suite: CipherSuite;
  readonly identitySeed: Uint8Array;
  readonly verifyKeyOf: (name: string) => Uint8Array | undefined;
  readonly random: () => number;
  readonly pairwiseLifetimeMs?: number;
  readonly pairwiseRenewBeforeMs?: number;
  readonly pairwiseJitterMs?: number;
}

/** Previous processes of one peer name whose keys are kept (see `retired`). */
export const MAX_RETIRED_PROCESSES = 4;

interface RetiredProcess {
  readonly keys: PairwiseKey[];
  /** Expiry of the process's last offer held here: no key of it is valid after. */
  readonly notAfter: number;
}

export class PairwiseBook {
  readonly ring: X25519Pairwise;
  /** The offer each peer's key was derived from (by name). */
  private readonly held = new Map<string, { readonly epoch: number; readonly notAfter: number }>();
  accepted = 0;
  rejected = 0;
  /**
   * Keys of a peer's previous processes, newest last. A flush's cut may deliver a dead process's
   * messages after the name has restarted more than once (seed 5593: two restarts while the
   * first one's view was still being flushed), so one previous process is not enough. Each is
   * kept until its last offer expires — the forward-secrecy bound renewals already have — and at
   * most MAX_RETIRED_PROCESSES per name (a crash loop drops the oldest).
   */
  private readonly retired = new Map<string, RetiredProcess[]>();
  /** Called after a new pairwise key exists (the rekey leader may be waiting for it). */
  onAccepted: (name: string) => void = () => {};

  constructor(
    cfg: PairwiseBookConfig,
    readonly name: string,
  ) {
    this.ring = new X25519Pairwise({
      suite: cfg.suite,
      me: name,
      sign: (m) => cfg.suite.ed25519Sign(cfg.identitySeed, m),
      verifyKeyOf: cfg.verifyKeyOf,
      random: cfg.random,
      ...(cfg.pairwiseLifetimeMs !== undefined ? { lifetimeMs: cfg.pairwiseLifetimeMs } : {}),
      ...(cfg.pairwiseRenewBeforeMs !== undefined ? { renewBeforeMs: cfg.pairwiseRenewBeforeMs } : {}),
      ...(cfg.pairwiseJitterMs !== undefined ? { jitterMs: cfg.pairwiseJitterMs } : {}),
    });
  }

  /** This member's current offer (issued on the first `tick`). */
  offer(now: number): PairwiseOffer {
    this.ring.tick(Math.floor(now));
    this.expireRetired(now);
    return this.ring.offer as PairwiseOffer;
  }

  /** A pairwise key by id: the current or previous one, or one of the peer's previous process. */
  byId(name: string, id: Uint8Array): PairwiseKey | undefined {
    const current = this.ring.byId(name, id);
    if (current !== undefined) return current;
    for (const p of this.retired.get(name) ?? []) {
      const k = p.keys.find((x) => constantTimeEqual(x.id, id));
      if (k !== undefined) return k;
    }
    return undefined;
  }

  /** The peer's process restarted: keep the dead one's keys (copies) beside the new ones. */
  private retire(name: string, notAfter: number): void {
    const keys = this.ring.held(name).map((k) => ({ ...k, key: k.key.slice() }));
    if (keys.length === 0) return;
    const list = this.retired.get(name) ?? [];
    list.push({ keys, notAfter });
    while (list.length > MAX_RETIRED_PROCESSES) for (const k of list.shift()!.keys) wipe(k.key);
    this.retired.set(name, list);
  }

  private expireRetired(now: number): void {
    for (const [name, list] of this.retired) {
      const kept = list.filter((p) => p.notAfter > now);
      for (const p of list) if (!kept.includes(p)) for (const k of p.keys) wipe(k.key);
      if (kept.length === 0) this.retired.delete(name);
      else this.retired.set(name, kept);
    }
  }

  /**
   * A peer's offer. Newer means a larger epoch or a later expiry: a restarted process starts its
   * epochs over but its offer expires later than any of the dead process's (a replayed old offer
   * never does). Returns whether a new pairwise key was derived.
   */
  accept(offer: PairwiseOffer, now: number): boolean {
    if (offer.member === this.name) return false;
    const held = this.held.get(offer.member);
    if (held !== undefined && offer.epoch <= held.epoch && offer.notAfter <= held.notAfter) return false;
    try {
      let verdict = this.ring.receive(offer, Math.floor(now));
      if (verdict === 'stale') {
        // Verified, later expiry, epochs started over: a restarted process. Forget the dead one.
        this.retire(offer.member, held?.notAfter ?? 0);
        this.ring.removePeer(offer.member);
        verdict = this.ring.receive(offer, Math.floor(now));
      }
      if (verdict !== 'accepted') return false;
    } catch (e) {
      if ((e as Error).name !== 'PairwiseError') throw e;
      this.rejected++;
      return false;
    }
    this.held.set(offer.member, { epoch: offer.epoch, notAfter: offer.notAfter });
    this.accepted++;
    this.onAccepted(offer.member);
    return true;
  }
}
