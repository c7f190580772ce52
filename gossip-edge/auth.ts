/**
 * Authentication of gossip control traffic.
 *
 * Every envelope carries a MAC under a key derived from the leaf group key of its epoch:
 *   macKey(e) = HKDF-SHA256(ikm = groupKey(e), salt = ∅, info = "keyglass gossip mac" ‖ u64be(e))
 *   tag       = HMAC-SHA256(macKey(e), authenticatedBytes(envelope))[0..16)
 * Only holders of the epoch's group key (admitted, not evicted leaves, and the core) can make a
 * tag verify. WHICH epochs a node accepts (current + a short window, each previous epoch only
 * for a grace period after it was retired) is the node's policy (node.ts); an Authenticator
 * only knows which keys it holds.
 */
import { constantTimeEqual, type CipherSuite } from '../crypto/index.js';
import { authenticatedBytes, envelopeCore, frameOf, macInput, macInputOfFrame } from './codec.js';
import { MAC_BYTES, type Envelope, type MacTag } from './messages.js';

export interface Authenticator<P = Uint8Array> {
  /** The tag for `env` under `env.epoch`, or undefined if this holder lacks that epoch's key. */
  tag(env: Omit<Envelope<P>, 'tag'>): MacTag | undefined;
  /** True iff the holder has the key of `env.epoch` and the tag verifies. */
  verify(env: Envelope<P>): boolean;
  /** Does this holder have the key of `epoch`? */
  holds(epoch: number): boolean;
}

const INFO_PREFIX = new TextEncoder().encode('keyglass gossip mac');
const EMPTY = new Uint8Array(0);

export function macKeyInfo(epoch: number): Uint8Array {
  const info = new Uint8Array(INFO_PREFIX.length + 8);
  info.set(INFO_PREFIX);
  new DataView(info.buffer).setBigUint64(INFO_PREFIX.length, BigInt(epoch));
  return info;
}

/**
 * The real MAC path over the codec's canonical bytes. Keeps the derived keys of at most
 * `maxEpochs` epochs (the newest ones): installing a newer key forgets the oldest.
 */
export class MacAuthenticator implements Authenticator<Uint8Array> {
  private readonly keys = new Map<number, Uint8Array>();

  constructor(
    private readonly suite: CipherSuite,
    private readonly maxEpochs = 4,
  ) {
    if (!(Number.isInteger(maxEpochs) && maxEpochs >= 1)) throw new RangeError('maxEpochs must be ≥ 1');
  }

  /** Installs the leaf group key of `epoch` (derives the MAC key; the group key is not kept). */
  install(epoch: number, groupKey: Uint8Array): void {
    if (!(Number.isSafeInteger(epoch) && epoch >= 0)) throw new RangeError(`bad epoch ${epoch}`);
    this.keys.set(epoch, this.suite.hkdf(groupKey, EMPTY, macKeyInfo(epoch), 32));
    while (this.keys.size > this.maxEpochs) this.keys.delete(Math.min(...this.keys.keys()));
  }

  holds(epoch: number): boolean {
    return this.keys.has(epoch);
  }

  tag(env: Omit<Envelope, 'tag'>): Uint8Array | undefined {
    const key = this.keys.get(env.epoch);
    if (key === undefined) return undefined;
    return this.suite.hmacSha256(key, authenticatedBytes(env)).subarray(0, MAC_BYTES);
  }

  /** The frame of `env` with its tag, encoding it once; undefined without the epoch's key. */
  seal(env: Omit<Envelope, 'tag'>): Uint8Array | undefined {
    const core = envelopeCore(env);
    const tag = this.tagCore(env.epoch, core);
    return tag === undefined ? undefined : frameOf(core, tag);
  }

  /** The tag of an envelope already encoded as `core` (codec.ts envelopeCore). */
  tagCore(epoch: number, core: Uint8Array): Uint8Array | undefined {
    return this.tagBytes(epoch, macInput(core));
  }

  /** Checks a received frame's tag over the bytes that arrived (no re-encoding). */
  verifyFrame(epoch: number, frame: Uint8Array, tag: Uint8Array): boolean {
    return this.verifyBytes(epoch, macInputOfFrame(frame), tag);
  }

  verify(env: Envelope): boolean {
    if (typeof env.tag === 'number' || env.tag.length !== MAC_BYTES) return false;
    const expected = this.tag(env);
    return expected !== undefined && constantTimeEqual(expected, env.tag);
  }

  /**
   * A tag over other gossip-tier bytes (address hints) under the same epoch key. The caller
   * domain-separates `bytes` from envelope bytes (a distinct prefix), so no tag verifies as both.
   */
  tagBytes(epoch: number, bytes: Uint8Array): Uint8Array | undefined {
    const key = this.keys.get(epoch);
    return key === undefined ? undefined : this.suite.hmacSha256(key, bytes).subarray(0, MAC_BYTES);
  }

  verifyBytes(epoch: number, bytes: Uint8Array, tag: Uint8Array): boolean {
    const expected = this.tagBytes(epoch, bytes);
    return expected !== undefined && tag.length === MAC_BYTES && constantTimeEqual(expected, tag);
  }
}

/**
 * The MAC as the million-node simulation models it: a tag is the number token(secret, epoch)
 * and verifies iff it equals the token of an epoch the verifier holds. This keeps the property
 * that matters to the protocol (only holders of the epoch key produce accepted traffic; an
 * outsider's or an evicted leaf's guess fails) without hashing every message. It does NOT
 * bind the tag to the message bytes, so tampering is tested on the real path (MacAuthenticator).
 */
export class ModelAuthenticator implements Authenticator<unknown> {
  private readonly epochs = new Set<number>();

  constructor(private readonly secret: number) {}

  static token(secret: number, epoch: number): number {
    let h = Math.imul(secret ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(epoch + 1, 0xc2b2ae35);
    h ^= h >>> 16;
    h = Math.imul(h, 0x7feb352d);
    h ^= h >>> 15;
    return h >>> 0;
  }

  install(epoch: number): void {
    this.epochs.add(epoch);
  }

  /** Forgets everything below `epoch` (an eviction never learns later ones anyway). */
  forgetBelow(epoch: number): void {
    for (const e of this.epochs) if (e < epoch) this.epochs.delete(e);
  }

  holds(epoch: number): boolean {
    return this.epochs.has(epoch);
  }

  tag(env: Omit<Envelope<unknown>, 'tag'>): number | undefined {
    return this.epochs.has(env.epoch) ? ModelAuthenticator.token(this.secret, env.epoch) : undefined;
  }

  verify(env: Envelope<unknown>): boolean {
    return this.epochs.has(env.epoch) && env.tag === ModelAuthenticator.token(this.secret, env.epoch);
  }
}
