/**
 * secure — every core frame on the wire is AEAD-sealed (keys on). Sits under the whole stack,
 * on encoded frames, per destination.
 *
 * What authenticates what:
 *   CORE  sealed under a traffic key derived from a committed core key:
 *         k = HKDF(core key, salt = key id, info = label ‖ sender name), so every sender has its
 *         own key and nonce space; nonce = this process's frame counter. Used for a destination
 *         that has shown (in an authenticated header) that it holds that core key, and only while
 *         every holder of the key (the committed tree's members) is in the current view: once a
 *         view excludes a member, the old key protects nothing more until the new key commits.
 *   PAIR  sealed under a traffic key derived the same way from the pairwise key of the two
 *         members (X25519 between Ed25519-signed offers; or a TLS exporter). Everything else:
 *         membership control before a shared core key exists (hello, propose, flush-ok,
 *         prepare, commit to joiners), the rekey's own traffic to joiners, and the first frames
 *         after a view change until the new core key is committed.
 *   OFFER a signed pairwise offer in the clear: self-authenticating (Ed25519 identity key), and
 *         carries nothing else. Sent to a peer with which no pairwise key exists yet; the frame
 *         that needed it waits (bounded) until the answer arrives.
 * Header (all authenticated as AAD): kind ‖ key id ‖ sender name ‖ the core key id the sender
 * holds and accepts now (zeros if none) ‖ counter. The receiver checks that the decoded frame's sender is the header's name.
 *
 * Replays: a sliding window per (sender, key) drops repeats and anything older than the window.
 * Retired keys: the previous core key still opens (and is still used toward peers that have not
 * switched) for `transitionMs` after the next commit; after that its frames are dropped and
 * counted (`staleKey`), and its traffic keys are wiped.
 */
import type { CipherSuite } from '../crypto/index.js';
import { wipe } from '../crypto/index.js';
import type { CoreKeyState } from '../keytree/index.js';
import { PAIR_KEY_ID_BYTES, decodeOffer, encodeOffer, membersOf } from '../keytree/index.js';
import { DecodeError, Reader, Writer } from '../wire/index.js';
import type { MemberKey } from './ids.js';
import { MAX_MEMBERS, MAX_NAME_BYTES } from './ids.js';
import type { PairwiseBook } from './pairwise-book.js';

export const SecureKind = { Core: 0x20, Pair: 0x21, Offer: 0x22 } as const;
const ID_BYTES = 16;
const NO_KEY = new Uint8Array(ID_BYTES);
const NONCE_BYTES = 12;
const REPLAY_WINDOW = 1024;
const MAX_WINDOWS = 4 * MAX_MEMBERS;
const MAX_PENDING_PER_PEER = 8;
const MAX_OFFER_BYTES = 512;
const CORE_LABEL = new TextEncoder().encode('keyglass/core-group/traffic/core/v1');
const PAIR_LABEL = new TextEncoder().encode('keyglass/core-group/traffic/pair/v1');

export interface SecureStats {
  sealedCore: number;
  sealedPair: number;
  opened: number;
  /** Dropped: no key for the header's key id, or the key's holders are not all in the view. */
  unknownKey: number;
  /** Dropped: sealed under a retired core key past the transition. */
  staleKey: number;
  replays: number;
  /** Dropped: authentication failed or malformed envelope. */
  forged: number;
  plaintext: number;
  offersSent: number;
  waitingForPairwise: number;
}

/** What a sealing observer sees (metrics; the simulation's key checkers). */
export interface SealedInfo {
  readonly to: string;
  readonly kind: 'core' | 'pair';
  /** Hex of the core key id (lineage) or of the pairwise key id. */
  readonly keyId: string;
}

interface CoreKeyRef {
  readonly id: Uint8Array;
  readonly idHex: string;
  readonly groupKey: Uint8Array;
  readonly holders: readonly MemberKey[];
  readonly traffic: Map<string, Uint8Array>;
  retiredAt?: number;
}

class ReplayWindow {
  private top = 0;
  private readonly seen = new Uint8Array(REPLAY_WINDOW);

  /** True if `seq` is new (and records it). */
  check(seq: number): boolean {
    if (seq + REPLAY_WINDOW <= this.top) return false;
    if (seq > this.top) {
      for (let s = Math.max(this.top + 1, seq - REPLAY_WINDOW + 1); s <= seq; s++)
        this.seen[s % REPLAY_WINDOW] = 0;
      this.top = seq;
    }
    const i = seq % REPLAY_WINDOW;
    if (this.seen[i] === 1) return false;
    this.seen[i] = 1;
    return true;
  }
}

export class SecureLink {
  private current: CoreKeyRef | undefined;
  private previous: CoreKeyRef | undefined;
  private viewMembers: ReadonlySet<MemberKey> = new Set();
  private counter = 0;
  /** Core key id (hex) each peer last showed it holds. */
  private readonly peerHolds = new Map<string, string>();
  private readonly windows = new Map<string, ReplayWindow>();
  private readonly pending = new Map<string, Uint8Array[]>();
  private readonly lastOffer = new Map<string, number>();
  private readonly out: { toName: string; bytes: Uint8Array }[] = [];
  /** A multicast frame goes to every member: under a core key, seal it once for all of them. */
  private lastPlain: Uint8Array | undefined;
  private lastSealed: { readonly idHex: string; readonly bytes: Uint8Array } | undefined;
  /** Pairwise traffic keys by pair key id ‖ sender (derived once). */
  private readonly pairTraffic = new Map<string, Uint8Array>();
  readonly stats: SecureStats = {
    sealedCore: 0,
    sealedPair: 0,
    opened: 0,
    unknownKey: 0,
    staleKey: 0,
    replays: 0,
    forged: 0,
    plaintext: 0,
    offersSent: 0,
    waitingForPairwise: 0,
  };

  constructor(
    private readonly suite: CipherSuite,
    private readonly name: string,
    private readonly book: PairwiseBook,
    private readonly now: () => number,
    private readonly transitionMs: number,
    private readonly offerRetryMs: number,
    private readonly observe?: (info: SealedInfo) => void,
  ) {}

  /** The view below which frames are now sent (the bottom sees the `view` event first). */
  setView(members: readonly MemberKey[]): void {
    this.viewMembers = new Set(members);
  }

  /** The committed core-key state; a new lineage replaces the current key, which is retired. */
  setKey(state: CoreKeyState): void {
    if (state.tree.kind === 'leaf') return; // a member alone shares no key
    const idHex = hex(state.lineage);
    if (this.current?.idHex === idHex) return;
    if (this.previous !== undefined) this.forget(this.previous);
    this.previous = this.current;
    if (this.previous !== undefined) this.previous.retiredAt = this.now();
    this.current = {
      id: state.lineage.slice(),
      idHex,
      groupKey: state.groupKey.slice(),
      holders: membersOf(state.tree),
      traffic: new Map(),
    };
  }

  /** Frames to put on the wire besides the sealed ones (offers, frames that waited for a key). */
  takeOutput(): { toName: string; bytes: Uint8Array }[] {
    return this.out.splice(0, this.out.length);
  }

  tick(): void {
    const p = this.previous;
    if (p !== undefined && this.now() - (p.retiredAt ?? 0) > this.transitionMs) {
      this.forget(p);
      this.previous = undefined;
    }
  }

  /** A new pairwise key with `name`: send what waited for it. */
  pairwiseAdded(name: string): void {
    const waiting = this.pending.get(name);
    if (waiting === undefined) return;
    this.pending.delete(name);
    for (const frame of waiting) {
      const sealed = this.seal(name, frame);
      if (sealed !== undefined) this.out.push({ toName: name, bytes: sealed });
    }
  }

  /** Seals one encoded frame for `toName`; undefined if it must wait for a pairwise key. */
  seal(toName: string, frame: Uint8Array): Uint8Array | undefined {
    const held = this.peerHolds.get(toName);
    for (const k of [this.current, this.previous]) {
      if (k !== undefined && held === k.idHex && this.usable(k)) {
        this.stats.sealedCore++;
        this.observe?.({ to: toName, kind: 'core', keyId: k.idHex });
        if (frame === this.lastPlain && this.lastSealed?.idHex === k.idHex) return this.lastSealed.bytes;
        const bytes = this.sealWith(SecureKind.Core, k.id, this.trafficKey(k, this.name), frame);
        this.lastPlain = frame;
        this.lastSealed = { idHex: k.idHex, bytes };
        return bytes;
      }
    }
    const pk = this.book.ring.current(toName);
    if (pk !== undefined) {
      this.stats.sealedPair++;
      this.observe?.({ to: toName, kind: 'pair', keyId: hex(pk.id) });
      return this.sealWith(SecureKind.Pair, pk.id, this.pairKey(pk.key, pk.id, this.name), frame);
    }
    this.stats.waitingForPairwise++;
    const q = this.pending.get(toName) ?? [];
    if (q.length >= MAX_PENDING_PER_PEER) q.shift();
    q.push(frame);
    this.pending.set(toName, q);
    this.sendOffer(toName, true);
    return undefined;
  }

  /** Opens an envelope; returns the frame and its authenticated sender name, or undefined. */
  open(bytes: Uint8Array): { sender: string; frame: Uint8Array } | undefined {
    try {
      const r = new Reader(bytes);
      const kind = r.u8();
      if (kind === SecureKind.Offer) {
        const wantsReply = r.bool();
        const offer = decodeOffer(r.bytes(MAX_OFFER_BYTES));
        r.end();
        this.book.accept(offer, this.now());
        if (wantsReply) this.sendOffer(offer.member, false);
        return undefined;
      }
      if (kind !== SecureKind.Core && kind !== SecureKind.Pair) {
        this.stats.plaintext++;
        return undefined;
      }
      const keyId = r.fixed(kind === SecureKind.Core ? ID_BYTES : PAIR_KEY_ID_BYTES);
      const sender = r.string(MAX_NAME_BYTES);
      const holds = r.fixed(ID_BYTES);
      const seq = r.varuint();
      const headerEnd = r.offset;
      const key = this.openingKey(kind, keyId, sender);
      if (key === undefined) return undefined;
      const aad = bytes.subarray(0, headerEnd);
      const frame = this.suite.chachaOpen(key, nonceOf(seq), bytes.subarray(headerEnd), aad);
      const window = this.windowOf(`${sender}/${hex(keyId)}`);
      if (!window.check(seq)) {
        this.stats.replays++;
        return undefined;
      }
      this.stats.opened++;
      if (equal(holds, NO_KEY)) this.peerHolds.delete(sender);
      else this.peerHolds.set(sender, hex(holds));
      return { sender, frame };
    } catch (e) {
      if (e instanceof DecodeError || (e as Error).name === 'CryptoError') {
        this.stats.forged++;
        return undefined;
      }
      throw e;
    }
  }

  private openingKey(kind: number, keyId: Uint8Array, sender: string): Uint8Array | undefined {
    if (kind === SecureKind.Pair) {
      const pk = this.book.byId(sender, keyId);
      if (pk === undefined) {
        this.stats.unknownKey++;
        this.sendOffer(sender, true); // the peer may hold an offer of ours we no longer have
        return undefined;
      }
      return this.pairKey(pk.key, pk.id, sender);
    }
    const idHex = hex(keyId);
    const k =
      this.current?.idHex === idHex
        ? this.current
        : this.previous?.idHex === idHex
          ? this.previous
          : undefined;
    if (k === undefined || !this.usable(k)) {
      this.stats.unknownKey++;
      return undefined;
    }
    if (k === this.previous && this.now() - (k.retiredAt ?? 0) > this.transitionMs) {
      this.stats.staleKey++;
      return undefined;
    }
    return this.trafficKey(k, sender);
  }

  /** A core key protects traffic only while every member holding it is in the current view. */
  private usable(k: CoreKeyRef): boolean {
    return k.holders.every((m) => this.viewMembers.has(m));
  }

  private sealWith(kind: number, keyId: Uint8Array, key: Uint8Array, frame: Uint8Array): Uint8Array {
    const seq = ++this.counter;
    const w = new Writer(128).u8(kind).fixed(keyId, keyId.length).string(this.name, MAX_NAME_BYTES);
    // Advertise the core key only while it is usable here: a peer then uses it toward this member
    // only when this member will also accept it (both see every holder in their views).
    const holds = this.current !== undefined && this.usable(this.current) ? this.current.id : NO_KEY;
    w.fixed(holds, ID_BYTES).varuint(seq);
    const header = w.finish();
    const sealed = this.suite.chachaSeal(key, nonceOf(seq), frame, header);
    const out = new Uint8Array(header.length + sealed.length);
    out.set(header);
    out.set(sealed, header.length);
    return out;
  }

  private trafficKey(k: CoreKeyRef, sender: string): Uint8Array {
    let t = k.traffic.get(sender);
    if (t === undefined) {
      if (k.traffic.size >= MAX_MEMBERS) k.traffic.clear();
      t = this.suite.hkdf(k.groupKey, k.id, concat(CORE_LABEL, sender), 32);
      k.traffic.set(sender, t);
    }
    return t;
  }

  private pairKey(key: Uint8Array, id: Uint8Array, sender: string): Uint8Array {
    const tag = `${hex(id)}/${sender}`;
    let t = this.pairTraffic.get(tag);
    if (t === undefined) {
      if (this.pairTraffic.size >= MAX_WINDOWS) {
        const [oldest, k] = this.pairTraffic.entries().next().value as [string, Uint8Array];
        wipe(k);
        this.pairTraffic.delete(oldest);
      }
      t = this.suite.hkdf(key, id, concat(PAIR_LABEL, sender), 32);
      this.pairTraffic.set(tag, t);
    }
    return t;
  }

  private sendOffer(toName: string, wantsReply: boolean): void {
    const now = this.now();
    if (now - (this.lastOffer.get(toName) ?? -Infinity) < this.offerRetryMs) return;
    this.lastOffer.set(toName, now);
    this.stats.offersSent++;
    const offer = encodeOffer(this.book.offer(now));
    const w = new Writer(MAX_OFFER_BYTES + 8)
      .u8(SecureKind.Offer)
      .bool(wantsReply)
      .bytes(offer, MAX_OFFER_BYTES);
    this.out.push({ toName, bytes: w.finish() });
  }

  private windowOf(id: string): ReplayWindow {
    let w = this.windows.get(id);
    if (w === undefined) {
      if (this.windows.size >= MAX_WINDOWS) this.windows.delete(this.windows.keys().next().value as string);
      w = new ReplayWindow();
      this.windows.set(id, w);
    }
    return w;
  }

  private forget(k: CoreKeyRef): void {
    wipe(k.groupKey, ...k.traffic.values());
    k.traffic.clear();
  }
}

function nonceOf(seq: number): Uint8Array {
  const n = new Uint8Array(NONCE_BYTES);
  new DataView(n.buffer).setBigUint64(4, BigInt(seq));
  return n;
}

function concat(label: Uint8Array, name: string): Uint8Array {
  const n = new TextEncoder().encode(name);
  const out = new Uint8Array(label.length + n.length);
  out.set(label);
  out.set(n, label.length);
  return out;
}

function hex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
