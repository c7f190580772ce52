/**
 * Pairwise keys between core members, kept off the rekey's critical path.
 *
 * The rekey only ever *looks up* a cached pairwise key (`PairwiseKeyring`); establishing and
 * refreshing them happens in the background, from one of two roots behind the same interface:
 *
 * - `X25519Pairwise`: every member publishes an ephemeral X25519 public key signed with its
 *   long-term Ed25519 key (an "offer"; multicast it, or hand it over with the join exchange).
 *   The pairwise key of two members is HKDF over the X25519 shared secret, bound to a
 *   transcript of both offers (ids, epochs, expiries, public keys) ordered by member id. The
 *   derivation is symmetric in the two offers, so two members that open at the same time
 *   derive the same key: there is no race to resolve. Offers expire; `tick` re-issues one
 *   before expiry with random jitter (so a group does not renew in lockstep) and wipes each
 *   secret when its offer expires, which gives pairwise keys forward secrecy beyond one lifetime.
 * - `ExporterPairwise`: a TLS 1.3 exporter secret of the mutually authenticated link (net/tls
 *   `exportKeyingMaterial`), expanded the same way.
 *
 * Each pairwise key has a 16-byte id (a second HKDF output, so it reveals nothing about the
 * key) that wraps name, and each end keeps every key a peer may still wrap under until it
 * expires (see `X25519Pairwise` on renewal races).
 */
import {
  type CipherSuite,
  CryptoError,
  KEY_BYTES,
  X25519_BYTES,
  ED25519_SIGNATURE_BYTES,
  wipe,
  constantTimeEqual,
} from '../../crypto/index.js';
import { Writer, decode, encode, type Codec } from '../../wire/index.js';
import { compareMembers, readMember, writeMember, type MemberId } from './tree.js';

export const PAIR_KEY_ID_BYTES = 16;

export interface PairwiseKey {
  readonly peer: MemberId;
  readonly id: Uint8Array;
  readonly key: Uint8Array;
}

/** What the rekey needs: a cached key per peer, and lookup of a named (possibly previous) one. */
export interface PairwiseKeyring {
  current(peer: MemberId): PairwiseKey | undefined;
  byId(peer: MemberId, id: Uint8Array): PairwiseKey | undefined;
}

const PAIR_SALT = new TextEncoder().encode('keyglass/core-tree/pairwise/v1');
const OFFER_LABEL = new TextEncoder().encode('keyglass/core-tree/pairwise-offer/v1');

/** key ‖ id = HKDF(ikm, salt, info = context ‖ both ids in order), symmetric in the two ends. */
export function derivePairKey(
  suite: CipherSuite,
  ikm: Uint8Array,
  peer: MemberId,
  transcript: Uint8Array,
): PairwiseKey {
  const out = suite.hkdf(ikm, PAIR_SALT, transcript, KEY_BYTES + PAIR_KEY_ID_BYTES);
  return { peer, key: out.slice(0, KEY_BYTES), id: out.slice(KEY_BYTES) };
}

/** Most keys held per peer: a few renewals of either end within one offer lifetime. */
export const MAX_KEYS_PER_PEER = 16;

interface HeldKey {
  readonly key: PairwiseKey;
  /** The key is wiped at this time (ms; Infinity = only when pushed out by newer ones). */
  readonly notAfter: number;
}

/**
 * Pairwise keys per peer: the current one (to wrap under) and every other one a peer may still
 * wrap under, findable by id until it expires. A pairwise key changes whenever *either* end
 * renews, and a wrap may be delivered long after it was made (a flush resends it), so keeping
 * only "the previous" key is not enough: two renewals in a row would wipe a key a wrap in
 * flight still names.
 */
export class PairKeyStore implements PairwiseKeyring {
  private readonly keys = new Map<MemberId, { current: PairwiseKey | undefined; held: HeldKey[] }>();

  /**
   * Holds `k` until `notAfter` and makes it the key to wrap under unless `current` is false.
   * Returns false (and stores nothing) when a key with the same id is held already.
   */
  install(k: PairwiseKey, notAfter = Infinity, current = true): boolean {
    let slot = this.keys.get(k.peer);
    if (slot === undefined) {
      slot = { current: undefined, held: [] };
      this.keys.set(k.peer, slot);
    }
    const same = slot.held.find((h) => constantTimeEqual(h.key.id, k.id));
    if (same !== undefined) {
      if (current) slot.current = same.key;
      return false;
    }
    slot.held.push({ key: k, notAfter });
    if (current) slot.current = k;
    this.retainNewest(k.peer, MAX_KEYS_PER_PEER);
    return true;
  }

  /** Keeps only the `count` newest keys with `peer`, and always the current one. */
  protected retainNewest(peer: MemberId, count: number): void {
    const slot = this.keys.get(peer);
    if (slot === undefined) return;
    while (slot.held.length > count) {
      const i = slot.held.findIndex((h) => h.key !== slot.current);
      const [gone] = slot.held.splice(i, 1);
      if (gone !== undefined) wipe(gone.key.key);
    }
  }

  /** Wipes every key whose `notAfter` has passed. */
  protected expire(now: number): void {
    for (const [peer, slot] of this.keys) {
      const kept: HeldKey[] = [];
      for (const h of slot.held) {
        if (h.notAfter > now) kept.push(h);
        else wipe(h.key.key);
      }
      slot.held = kept;
      if (slot.current !== undefined && !kept.some((h) => h.key === slot.current)) slot.current = undefined;
      if (kept.length === 0) this.keys.delete(peer);
    }
  }

  current(peer: MemberId): PairwiseKey | undefined {
    return this.keys.get(peer)?.current;
  }

  byId(peer: MemberId, id: Uint8Array): PairwiseKey | undefined {
    return this.keys.get(peer)?.held.find((h) => constantTimeEqual(h.key.id, id))?.key;
  }

  /** Every key held with `peer`, oldest first. */
  held(peer: MemberId): PairwiseKey[] {
    return (this.keys.get(peer)?.held ?? []).map((h) => h.key);
  }

  forget(peer: MemberId): void {
    const slot = this.keys.get(peer);
    if (slot === undefined) return;
    for (const h of slot.held) wipe(h.key.key);
    this.keys.delete(peer);
  }

  peers(): MemberId[] {
    return [...this.keys.keys()];
  }
}

// ── TLS exporter root ──────────────────────────────────────────────────────────────────────

/** Label to pass to `exportKeyingMaterial` so both ends export the same secret. */
export const EXPORTER_LABEL = 'EXPORTER-keyglass-core-tree-pairwise';

export class ExporterPairwise extends PairKeyStore {
  constructor(
    private readonly suite: CipherSuite,
    private readonly me: MemberId,
  ) {
    super();
  }

  /** Installs the key from a link's exporter secret (≥ 32 bytes); `generation` counts re-handshakes. */
  installExporter(peer: MemberId, secret: Uint8Array, generation: number): PairwiseKey {
    if (secret.length < KEY_BYTES) throw new CryptoError('bad-length', 'exporter secret must be ≥ 32 bytes');
    const [lo, hi] = compareMembers(this.me, peer) < 0 ? [this.me, peer] : [peer, this.me];
    const w = new Writer(1024).string('exporter', 16);
    writeMember(w, lo);
    writeMember(w, hi);
    w.varuint(generation);
    const k = derivePairKey(this.suite, secret, peer, w.finish());
    this.install(k);
    this.retainNewest(peer, 2); // a re-handshake replaces the link: its previous key stays for wraps in flight
    return k;
  }
}

// ── authenticated X25519 root ──────────────────────────────────────────────────────────────

export interface PairwiseOffer {
  readonly member: MemberId;
  /** Strictly increasing per member; a peer ignores offers not newer than the one it holds. */
  readonly epoch: number;
  /** Milliseconds (the injected clock's unit) after which the offer must not be used. */
  readonly notAfter: number;
  readonly publicKey: Uint8Array;
  readonly signature: Uint8Array;
}

function offerBody(w: Writer, o: Omit<PairwiseOffer, 'signature'>): void {
  writeMember(w, o.member);
  w.varuint(o.epoch).varuint(o.notAfter).fixed(o.publicKey, X25519_BYTES);
}

function signedOfferBytes(o: Omit<PairwiseOffer, 'signature'>): Uint8Array {
  const w = new Writer(512).fixed(OFFER_LABEL, OFFER_LABEL.length);
  offerBody(w, o);
  return w.finish();
}

export const offerCodec: Codec<PairwiseOffer> = {
  encode(w, o) {
    offerBody(w, o);
    w.fixed(o.signature, ED25519_SIGNATURE_BYTES);
  },
  decode(r) {
    const member = readMember(r);
    const epoch = r.varuint();
    const notAfter = r.varuint();
    const publicKey = r.fixed(X25519_BYTES).slice();
    const signature = r.fixed(ED25519_SIGNATURE_BYTES).slice();
    return { member, epoch, notAfter, publicKey, signature };
  },
};

export const encodeOffer = (o: PairwiseOffer): Uint8Array => encode(offerCodec, o, 512);
export const decodeOffer = (b: Uint8Array): PairwiseOffer => decode(offerCodec, b);

export interface X25519PairwiseOptions {
  readonly suite: CipherSuite;
  readonly me: MemberId;
  /** Signs with this member's long-term Ed25519 key (the certificate key). */
  readonly sign: (message: Uint8Array) => Uint8Array;
  /** A peer's verified long-term Ed25519 public key (from its certificate), or undefined. */
  readonly verifyKeyOf: (member: MemberId) => Uint8Array | undefined;
  /** Uniform [0, 1) for renewal jitter (injected, so simulations replay). */
  readonly random: () => number;
  /** Offer lifetime; default 1 hour. */
  readonly lifetimeMs?: number;
  /** Renew this long before expiry, minus up to `jitterMs`; defaults 10 and 5 minutes. */
  readonly renewBeforeMs?: number;
  readonly jitterMs?: number;
}

export type OfferVerdict = 'accepted' | 'stale' | 'expired';

export class PairwiseError extends Error {
  override readonly name = 'PairwiseError';
}

/** One of this member's own offers and its X25519 secret, kept until the offer expires. */
interface OwnOffer {
  readonly offer: PairwiseOffer;
  readonly secret: Uint8Array;
}

/**
 * Renewal without a race. The pairwise key of two members is a function of *both* ends' offers,
 * so it changes whenever either end renews, and the two ends learn of a renewal at different
 * times: each end wraps under (its newest offer) × (the newest offer it holds of the peer), and
 * the peer must be able to open that. So every member keeps each of its own X25519 secrets, and
 * every key derived from it, until that offer's signed expiry — not just until the next renewal:
 * - a peer's offer is combined with *every* unexpired own secret, so a peer that wraps under an
 *   own offer this member has renewed since (it has not seen the renewal yet) is understood;
 * - a wrap made before one or more renewals of either end still opens when a flush delivers
 *   it late, as long as neither offer has expired (renewal is due `renewBeforeMs` ± jitter
 *   before expiry, so the window is at least that long).
 * Forward secrecy across renewals is therefore bounded by the offer lifetime, not the renewal
 * period: a secret is wiped when its offer expires.
 */
export class X25519Pairwise extends PairKeyStore {
  /** Own unexpired offers, oldest first; the last is the one published. */
  private owns: OwnOffer[] = [];
  private renewAt = 0;
  /** The newest offer held of each peer. */
  private readonly peerOffers = new Map<MemberId, PairwiseOffer>();
  private readonly lifetimeMs: number;
  private readonly renewBeforeMs: number;
  private readonly jitterMs: number;

  constructor(private readonly o: X25519PairwiseOptions) {
    super();
    this.lifetimeMs = o.lifetimeMs ?? 3_600_000;
    this.renewBeforeMs = o.renewBeforeMs ?? 600_000;
    this.jitterMs = o.jitterMs ?? 300_000;
    if (this.renewBeforeMs + this.jitterMs >= this.lifetimeMs)
      throw new RangeError('renewal window exceeds lifetime');
  }

  /** This member's current offer (to publish), or undefined before the first `tick`. */
  get offer(): PairwiseOffer | undefined {
    return this.owns.at(-1)?.offer;
  }

  /**
   * Call on a timer. Wipes expired offers, secrets and keys; returns a fresh offer to publish
   * when the current one is due for renewal (or none exists) and derives its keys with every
   * peer whose offer is still valid.
   */
  tick(now: number): PairwiseOffer | undefined {
    for (const [peer, offer] of this.peerOffers) {
      if (offer.notAfter <= now) this.removePeer(peer);
    }
    const live = this.owns.filter((o) => o.offer.notAfter > now);
    for (const o of this.owns) if (!live.includes(o)) wipe(o.secret);
    this.owns = live;
    this.expire(now);
    if (this.owns.length > 0 && now < this.renewAt) return undefined;
    const { suite } = this.o;
    const secret = suite.randomBytes(X25519_BYTES);
    const body = {
      member: this.o.me,
      epoch: (this.offer?.epoch ?? 0) + 1,
      notAfter: now + this.lifetimeMs,
      publicKey: suite.x25519PublicKey(secret),
    };
    const own: OwnOffer = { offer: { ...body, signature: this.o.sign(signedOfferBytes(body)) }, secret };
    this.owns.push(own);
    this.renewAt = body.notAfter - this.renewBeforeMs - Math.floor(this.o.random() * this.jitterMs);
    for (const peerOffer of this.peerOffers.values()) this.derive(own, peerOffer, true);
    return own.offer;
  }

  /** Verifies and caches a peer's offer; derives the pairwise keys if this member has an offer. */
  receive(offer: PairwiseOffer, now: number): OfferVerdict {
    if (offer.member === this.o.me) throw new PairwiseError('offer from self');
    const verifyKey = this.o.verifyKeyOf(offer.member);
    if (verifyKey === undefined) throw new PairwiseError(`no verification key for '${offer.member}'`);
    if (!this.o.suite.ed25519Verify(verifyKey, signedOfferBytes(offer), offer.signature)) {
      throw new PairwiseError(`bad offer signature from '${offer.member}'`);
    }
    if (offer.notAfter <= now) return 'expired';
    const held = this.peerOffers.get(offer.member);
    if (held !== undefined && held.epoch >= offer.epoch) return 'stale';
    this.peerOffers.set(offer.member, offer);
    const newest = this.owns.at(-1);
    for (const own of this.owns) if (own.offer.notAfter > now) this.derive(own, offer, own === newest);
    return 'accepted';
  }

  /** Drops a peer (it left the group): its offer and keys are forgotten. */
  removePeer(peer: MemberId): void {
    this.peerOffers.delete(peer);
    this.forget(peer);
  }

  private derive(own: OwnOffer, peerOffer: PairwiseOffer, current: boolean): void {
    const shared = this.o.suite.x25519(own.secret, peerOffer.publicKey);
    const [lo, hi] =
      compareMembers(own.offer.member, peerOffer.member) < 0
        ? [own.offer, peerOffer]
        : [peerOffer, own.offer];
    const w = new Writer(1024).string('x25519', 16);
    offerBody(w, lo);
    offerBody(w, hi);
    const k = derivePairKey(this.o.suite, shared, peerOffer.member, w.finish());
    wipe(shared);
    if (!this.install(k, Math.min(own.offer.notAfter, peerOffer.notAfter), current)) wipe(k.key, k.id);
  }
}
