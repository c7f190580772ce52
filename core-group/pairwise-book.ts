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

export class PairwiseBook {
  readonly ring: X25519Pairwise;
  /** The offer each peer's key was derived from (by name). */
  private readonly held = new Map<string, { readonly epoch: number; readonly notAfter: number }>();
  accepted = 0;
  rejected = 0;
  /**
   * Keys of a peer's previous process, kept until its next offer: messages sealed by the dead
   * process may still be delivered by the survivors of its view (a flush's cut).
   */
  private readonly retired = new Map<string, PairwiseKey[]>();
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
    return this.ring.offer as PairwiseOffer;
  }

  /** A pairwise key by id: the current or previous one, or one of the peer's previous process. */
  byId(name: string, id: Uint8Array): PairwiseKey | undefined {
    return this.ring.byId(name, id) ?? this.retired.get(name)?.find((k) => constantTimeEqual(k.id, id));
  }

  private retire(name: string): void {
    for (const k of this.retired.get(name) ?? []) wipe(k.key);
    this.retired.set(
      name,
      this.ring.held(name).map((k) => ({ ...k, key: k.key.slice() })),
    );
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
        this.retire(offer.member);
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
