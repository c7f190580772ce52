/**
 * Application data sealed under the leaf group key.
 *
 *   dataKey(e)  = HKDF-SHA256(ikm = groupKey(e), salt = ∅, info = "keyglass data" ‖ u64be(e), 32)
 *   header      = u8 version(=1) ‖ u8 flags ‖ varuint epoch ‖ varuint sender ‖ varuint seq
 *   envelope    = header ‖ fixed24 nonce ‖ bytes(≤ MAX_SEALED) ciphertext ‖ [fixed64 signature]
 *   ciphertext  = XChaCha20-Poly1305(dataKey(e), nonce, data, aad = "keyglass data v1" ‖ header)
 *   signature   = Ed25519(sender key, "keyglass data sig v1" ‖ header ‖ nonce ‖ ciphertext),
 *                 present iff flags bit 0 is set (no other flag bit is defined)
 *
 * The nonce is random (24 bytes: collisions are negligible for any realistic message count, and
 * no per-key counter must survive restarts or be shared between a sender's connections). Epoch,
 * sender and sequence are authenticated, so a message cannot be moved to another epoch or sender.
 *
 * Receiving (`DataOpener.open`), in this order, each failure a `DataEnvelopeError` whose reason
 * is a stable metric label: decode ('malformed') → the epoch's key, current or one of the last
 * `previousEpochs` retired within `retiredGraceMs` ('unknown-epoch') → replay window of the
 * sender ('replay') → signature ('bad-signature': invalid, unknown signer, or missing where
 * required) → AEAD ('auth-failed').
 * The replay window is updated only after the message authenticated, so forged traffic cannot
 * advance it.
 *
 * Sequence numbers are per sender (member id) across epochs. Replay state is kept for at most
 * `maxSenders` senders (least recently heard dropped first): a sender dropped from that LRU
 * could have its messages of the still-open epochs replayed once — size `maxSenders` above the
 * number of active senders per epoch window.
 */
import {
  ED25519_SIGNATURE_BYTES,
  KEY_BYTES,
  XNONCE_BYTES,
  CryptoError,
  concatBytes,
  randomBytes,
  type CipherSuite,
} from '../crypto/index.js';
import { DecodeError, Reader, Writer } from '../wire/index.js';
import { deriveExporterKey } from './exporter.js';

export const DATA_ENVELOPE_VERSION = 1;
export const FLAG_SIGNED = 0x01;
/** Largest application payload of one envelope. */
export const MAX_DATA_BYTES = 64 * 1024;
const MAX_SEALED = MAX_DATA_BYTES + 16;
export const MAX_SENDER_ID = 0xffff_ffff;
export const DEFAULT_PREVIOUS_EPOCHS = 8;
export const DEFAULT_RETIRED_GRACE_MS = 2000;
export const DEFAULT_REPLAY_WINDOW = 1024;
export const DEFAULT_MAX_SENDERS = 4096;

export const DATA_ERROR_REASONS = [
  'unknown-epoch',
  'replay',
  'auth-failed',
  'bad-signature',
  'malformed',
] as const;
export type DataErrorReason = (typeof DATA_ERROR_REASONS)[number];

export class DataEnvelopeError extends Error {
  override readonly name = 'DataEnvelopeError';
  constructor(
    readonly reason: DataErrorReason,
    message: string,
  ) {
    super(`${reason}: ${message}`);
  }
}

export interface DataEnvelopeHeader {
  readonly version: number;
  readonly flags: number;
  readonly epoch: number;
  readonly sender: number;
  readonly seq: number;
}

export interface DataEnvelope {
  readonly header: DataEnvelopeHeader;
  readonly nonce: Uint8Array;
  readonly ciphertext: Uint8Array;
  readonly signature: Uint8Array | undefined;
}

export interface OpenedData {
  readonly epoch: number;
  readonly sender: number;
  readonly seq: number;
  readonly data: Uint8Array;
  readonly signed: boolean;
}

const utf8 = new TextEncoder();
const KDF_INFO = utf8.encode('keyglass data');
const AAD_LABEL = utf8.encode('keyglass data v1');
const SIG_LABEL = utf8.encode('keyglass data sig v1');
const EMPTY = new Uint8Array(0);

/** HKDF info for the data key of `epoch`. */
export function dataKeyInfo(epoch: number): Uint8Array {
  const info = new Uint8Array(KDF_INFO.length + 8);
  info.set(KDF_INFO);
  new DataView(info.buffer).setBigUint64(KDF_INFO.length, BigInt(epoch));
  return info;
}

export function deriveDataKey(suite: CipherSuite, groupKey: Uint8Array, epoch: number): Uint8Array {
  return suite.hkdf(groupKey, EMPTY, dataKeyInfo(epoch), KEY_BYTES);
}

// ── codec ───────────────────────────────────────────────────────────────────────────────────

function writeHeader(w: Writer, h: DataEnvelopeHeader): void {
  if (h.sender > MAX_SENDER_ID) throw new RangeError(`sender id ${h.sender} exceeds ${MAX_SENDER_ID}`);
  w.u8(h.version).u8(h.flags).varuint(h.epoch).varuint(h.sender).varuint(h.seq);
}

function headerBytes(h: DataEnvelopeHeader): Uint8Array {
  const w = new Writer(64, 32);
  writeHeader(w, h);
  return w.finish();
}

export function encodeDataEnvelope(e: DataEnvelope): Uint8Array {
  if ((e.signature !== undefined) !== ((e.header.flags & FLAG_SIGNED) !== 0))
    throw new RangeError('signature presence must match the signed flag');
  const w = new Writer(MAX_SEALED + 256, e.ciphertext.length + 128);
  writeHeader(w, e.header);
  w.fixed(e.nonce, XNONCE_BYTES).bytes(e.ciphertext, MAX_SEALED);
  if (e.signature !== undefined) w.fixed(e.signature, ED25519_SIGNATURE_BYTES);
  return w.finish();
}

/** Parses an envelope; throws DecodeError only. The returned fields are views into `bytes`. */
export function decodeDataEnvelope(bytes: Uint8Array): DataEnvelope {
  const r = new Reader(bytes);
  const version = r.u8();
  if (version !== DATA_ENVELOPE_VERSION) throw new DecodeError('bad-version', `data envelope ${version}`);
  const flags = r.u8();
  if ((flags & ~FLAG_SIGNED) !== 0)
    throw new DecodeError('bad-value', `undefined flags 0x${flags.toString(16)}`);
  const epoch = r.varuint();
  const sender = r.bounded(MAX_SENDER_ID, 'sender id');
  const seq = r.varuint();
  const nonce = r.fixed(XNONCE_BYTES);
  const ciphertext = r.bytes(MAX_SEALED);
  const signature = (flags & FLAG_SIGNED) !== 0 ? r.fixed(ED25519_SIGNATURE_BYTES) : undefined;
  r.end();
  return { header: { version, flags, epoch, sender, seq }, nonce, ciphertext, signature };
}

function signedMessage(header: Uint8Array, nonce: Uint8Array, ciphertext: Uint8Array): Uint8Array {
  return concatBytes(SIG_LABEL, header, nonce, ciphertext);
}

// ── keys of the open epochs ─────────────────────────────────────────────────────────────────

export interface KeyringOptions {
  /** Retired epochs whose data stays readable, at most (default 8). */
  readonly previousEpochs?: number;
  /**
   * How long a retired epoch's key stays usable after a newer epoch was installed (default 2 s).
   * Late messages (slow gossip, a publisher a batch behind) are readable for that long; so is
   * anything a member evicted by the newer epoch seals under the old key, which is why the
   * window is bounded in time and not only in epochs: with no batch for an hour, a count-only
   * window would accept the evicted member's traffic for an hour.
   */
  readonly retiredGraceMs?: number;
  /** The host's clock (ms): the keyring owns none (sans-IO), so a simulation runs it on virtual time. */
  readonly now: () => number;
}

/**
 * Data keys of the newest epoch and of at most `previousEpochs` retired ones, each usable for
 * `retiredGraceMs` after a newer epoch arrived; older ones are refused as 'unknown-epoch'.
 * Beside each data key, the epoch's exporter key (exporter.ts), under the same window.
 */
export class DataKeyring {
  private readonly keys = new Map<number, Uint8Array>();
  private readonly exporterKeys = new Map<number, Uint8Array>();
  /** Retired epoch → when a newer epoch was first installed. */
  private readonly retiredAt = new Map<number, number>();
  private newest = -1;
  readonly previousEpochs: number;
  readonly retiredGraceMs: number;
  private readonly now: () => number;

  constructor(
    private readonly suite: CipherSuite,
    opts: KeyringOptions,
  ) {
    this.previousEpochs = opts.previousEpochs ?? DEFAULT_PREVIOUS_EPOCHS;
    this.retiredGraceMs = opts.retiredGraceMs ?? DEFAULT_RETIRED_GRACE_MS;
    this.now = opts.now;
    if (!(Number.isInteger(this.previousEpochs) && this.previousEpochs >= 0 && this.previousEpochs <= 64))
      throw new RangeError('previousEpochs must be within 0..64');
    if (!(
      Number.isInteger(this.retiredGraceMs) &&
      this.retiredGraceMs >= 0 &&
      this.retiredGraceMs <= 3_600_000
    ))
      throw new RangeError('retiredGraceMs must be within 0..3600000');
  }

  /**
   * Installs the group key of `epoch` (only its derived data and exporter keys are kept). Older
   * epochs than the window are forgotten.
   */
  install(epoch: number, groupKey: Uint8Array): void {
    if (!(Number.isSafeInteger(epoch) && epoch >= 0)) throw new RangeError(`bad epoch ${epoch}`);
    if (epoch < this.newest - this.previousEpochs) return; // would be dropped at once
    const now = this.now();
    this.keys.get(epoch)?.fill(0);
    this.keys.set(epoch, deriveDataKey(this.suite, groupKey, epoch));
    this.exporterKeys.get(epoch)?.fill(0);
    this.exporterKeys.set(epoch, deriveExporterKey(this.suite, groupKey));
    if (epoch < this.newest) {
      if (!this.retiredAt.has(epoch)) this.retiredAt.set(epoch, now); // a late install of a retired epoch
    } else if (epoch > this.newest) {
      for (const e of this.keys.keys()) if (e < epoch && !this.retiredAt.has(e)) this.retiredAt.set(e, now);
      this.newest = epoch;
    }
    for (const e of [...this.keys.keys()]) {
      if (e < this.newest - this.previousEpochs) this.forget(e);
    }
  }

  /**
   * A signed header announced `epoch` (we cannot apply it yet: a gap, a lost part): if it is newer
   * than our newest, our newest is retired from now on — its grace runs, and once over we neither
   * read nor seal under it (a lagging member must not keep sealing under a key an evicted member
   * may hold).
   */
  noteNewer(epoch: number): void {
    if (this.newest >= 0 && epoch > this.newest && !this.retiredAt.has(this.newest))
      this.retiredAt.set(this.newest, this.now());
  }

  /** The newest epoch held, or undefined when empty. */
  get current(): number | undefined {
    return this.newest < 0 ? undefined : this.newest;
  }

  /** The data key of `epoch`: the newest, or a retired one still within its grace period. */
  key(epoch: number): Uint8Array | undefined {
    return this.usable(epoch) ? this.keys.get(epoch) : undefined;
  }

  /** The exporter key of `epoch`, under the same rule as `key` (the keyring's own buffer: do not keep or wipe it). */
  exporterKey(epoch: number): Uint8Array | undefined {
    return this.usable(epoch) ? this.exporterKeys.get(epoch) : undefined;
  }

  /** False, and the epoch forgotten, once its grace after retirement is over. */
  private usable(epoch: number): boolean {
    const retired = this.retiredAt.get(epoch);
    if (retired !== undefined && this.now() - retired > this.retiredGraceMs) {
      this.forget(epoch);
      return false;
    }
    return true;
  }

  /** Forgets every key (eviction: nothing may be read or sent any more). */
  clear(): void {
    for (const e of [...this.keys.keys()]) this.forget(e);
    this.newest = -1;
  }

  private forget(epoch: number): void {
    this.keys.get(epoch)?.fill(0);
    this.keys.delete(epoch);
    this.exporterKeys.get(epoch)?.fill(0);
    this.exporterKeys.delete(epoch);
    this.retiredAt.delete(epoch);
  }
}

// ── replay protection ───────────────────────────────────────────────────────────────────────

/** Sliding window over one sender's sequence numbers: the highest seen and a bitmap below it. */
export class ReplayWindow {
  private highest = -1;
  private readonly bits: Uint32Array;

  constructor(readonly size: number = DEFAULT_REPLAY_WINDOW) {
    if (!(Number.isInteger(size) && size >= 32 && size % 32 === 0 && size <= 1 << 16))
      throw new RangeError('replay window must be a multiple of 32 within 32..65536');
    this.bits = new Uint32Array(size / 32);
  }

  /** Would `seq` be accepted (not seen, not below the window)? */
  accepts(seq: number): boolean {
    if (seq > this.highest) return true;
    if (seq <= this.highest - this.size) return false;
    return !this.bit(seq);
  }

  /** Records `seq` as seen; call only after `accepts(seq)` and authentication. */
  commit(seq: number): void {
    if (!this.accepts(seq)) throw new Error(`replay window: commit of rejected seq ${seq}`);
    if (seq > this.highest) {
      const shift = seq - this.highest;
      if (shift >= this.size) this.bits.fill(0);
      else for (let s = this.highest + 1; s < seq; s++) this.setBit(s, false);
      this.highest = seq;
    }
    this.setBit(seq, true);
  }

  private bit(seq: number): boolean {
    const i = seq % this.size;
    return (this.bits[i >>> 5]! & (1 << (i & 31))) !== 0;
  }

  private setBit(seq: number, on: boolean): void {
    const i = seq % this.size;
    if (on) this.bits[i >>> 5]! |= 1 << (i & 31);
    else this.bits[i >>> 5]! &= ~(1 << (i & 31));
  }
}

/** Replay windows of at most `maxSenders` senders, least recently heard evicted first. */
export class ReplayGuard {
  private readonly windows = new Map<number, ReplayWindow>();

  constructor(
    readonly maxSenders = DEFAULT_MAX_SENDERS,
    readonly windowSize = DEFAULT_REPLAY_WINDOW,
  ) {
    if (!(Number.isInteger(maxSenders) && maxSenders >= 1)) throw new RangeError('maxSenders must be ≥ 1');
  }

  get senders(): number {
    return this.windows.size;
  }

  accepts(sender: number, seq: number): boolean {
    return this.windows.get(sender)?.accepts(seq) ?? true;
  }

  commit(sender: number, seq: number): void {
    let w = this.windows.get(sender);
    if (w === undefined) {
      w = new ReplayWindow(this.windowSize);
      if (this.windows.size >= this.maxSenders) {
        const oldest = this.windows.keys().next().value as number;
        this.windows.delete(oldest);
      }
    } else {
      this.windows.delete(sender); // re-insert: Map order is the LRU order
    }
    this.windows.set(sender, w);
    w.commit(seq);
  }
}

// ── nonces ──────────────────────────────────────────────────────────────────────────────────

const NONCES_PER_DRAW = 256;

/**
 * Random nonces cut from a pooled CSPRNG draw: one getRandomValues call costs ~10 µs whatever
 * its size, which alone would halve the seal rate of small messages. Handed-out bytes are wiped
 * from the pool, so a nonce exists only in the envelope that uses it.
 */
class NoncePool {
  private pool: Uint8Array = new Uint8Array(0);
  private at = 0;

  next(): Uint8Array {
    if (this.at + XNONCE_BYTES > this.pool.length) {
      this.pool = randomBytes(XNONCE_BYTES * NONCES_PER_DRAW);
      this.at = 0;
    }
    const nonce = this.pool.slice(this.at, this.at + XNONCE_BYTES);
    this.pool.fill(0, this.at, this.at + XNONCE_BYTES);
    this.at += XNONCE_BYTES;
    return nonce;
  }
}

const nonces = new NoncePool();

// ── sealing and opening ─────────────────────────────────────────────────────────────────────

export interface SealerOptions {
  /** This member's sender id (its member id in the leaf registry). */
  readonly sender: number;
  /** Ed25519 seed: sign every envelope (receivers resolve the public key by sender id). */
  readonly signingSeed?: Uint8Array;
  /** First sequence number (a resumed sender continues where it stopped). */
  readonly firstSeq?: number;
}

/** Our newest key was retired longer than the grace window ago: nothing may be sealed under it. */
export class RetiredKeyError extends Error {
  override readonly name = 'RetiredKeyError';
  constructor(readonly epoch: number) {
    super(`epoch ${epoch} is retired beyond its grace window: no newer key yet, nothing sealed`);
  }
}

/**
 * One sender's outgoing side: numbers messages and seals them under the newest epoch, never
 * under one retired longer than the keyring's grace window (RetiredKeyError; no seq is used).
 */
export class DataSealer {
  private nextSeq: number;

  constructor(
    private readonly suite: CipherSuite,
    private readonly keyring: DataKeyring,
    private readonly opts: SealerOptions,
  ) {
    if (!(Number.isInteger(opts.sender) && opts.sender >= 0 && opts.sender <= MAX_SENDER_ID))
      throw new RangeError(`sender id ${opts.sender}`);
    this.nextSeq = opts.firstSeq ?? 0;
  }

  get seq(): number {
    return this.nextSeq;
  }

  seal(data: Uint8Array): Uint8Array {
    if (data.length > MAX_DATA_BYTES)
      throw new RangeError(`data of ${data.length} bytes exceeds ${MAX_DATA_BYTES}`);
    const epoch = this.keyring.current;
    if (epoch === undefined) throw new Error('no group key yet: cannot seal');
    const key = this.keyring.key(epoch);
    if (key === undefined) throw new RetiredKeyError(epoch);
    const signed = this.opts.signingSeed !== undefined;
    const header: DataEnvelopeHeader = {
      version: DATA_ENVELOPE_VERSION,
      flags: signed ? FLAG_SIGNED : 0,
      epoch,
      sender: this.opts.sender,
      seq: this.nextSeq++,
    };
    const hb = headerBytes(header);
    const nonce = nonces.next();
    const ciphertext = this.suite.aeadSeal(key, nonce, data, concatBytes(AAD_LABEL, hb));
    const signature = signed
      ? this.suite.ed25519Sign(this.opts.signingSeed!, signedMessage(hb, nonce, ciphertext))
      : undefined;
    return encodeDataEnvelope({ header, nonce, ciphertext, signature });
  }
}

export interface OpenerOptions {
  /** Public key of a sender, for signed envelopes (undefined: unknown signer). */
  readonly senderKey?: (sender: number) => Uint8Array | undefined;
  /** Refuse unsigned envelopes (default false). */
  readonly requireSignature?: boolean;
  readonly maxSenders?: number;
  readonly replayWindow?: number;
}

/** The receiving side: authenticates, decrypts and de-duplicates envelopes. */
export class DataOpener {
  private readonly replay: ReplayGuard;

  constructor(
    private readonly suite: CipherSuite,
    private readonly keyring: DataKeyring,
    private readonly opts: OpenerOptions = {},
  ) {
    this.replay = new ReplayGuard(opts.maxSenders, opts.replayWindow);
  }

  /** Opens one envelope or throws DataEnvelopeError with the reason. */
  open(bytes: Uint8Array): OpenedData {
    let env: DataEnvelope;
    try {
      env = decodeDataEnvelope(bytes);
    } catch (e) {
      if (e instanceof DecodeError) throw new DataEnvelopeError('malformed', e.message);
      throw e;
    }
    const h = env.header;
    const key = this.keyring.key(h.epoch);
    if (key === undefined) throw new DataEnvelopeError('unknown-epoch', `no data key for epoch ${h.epoch}`);
    if (!this.replay.accepts(h.sender, h.seq))
      throw new DataEnvelopeError('replay', `sender ${h.sender} seq ${h.seq} already seen or too old`);
    const hb = headerBytes(h);
    if (env.signature !== undefined) {
      const pub = this.opts.senderKey?.(h.sender);
      if (pub === undefined)
        throw new DataEnvelopeError('bad-signature', `no public key for sender ${h.sender}`);
      if (!this.suite.ed25519Verify(pub, signedMessage(hb, env.nonce, env.ciphertext), env.signature))
        throw new DataEnvelopeError('bad-signature', `signature of sender ${h.sender} does not verify`);
    } else if (this.opts.requireSignature === true) {
      throw new DataEnvelopeError('bad-signature', `unsigned envelope from sender ${h.sender}`);
    }
    let data: Uint8Array;
    try {
      data = this.suite.aeadOpen(key, env.nonce, env.ciphertext, concatBytes(AAD_LABEL, hb));
    } catch (e) {
      if (e instanceof CryptoError) throw new DataEnvelopeError('auth-failed', `epoch ${h.epoch}: ${e.code}`);
      throw e;
    }
    this.replay.commit(h.sender, h.seq);
    return { epoch: h.epoch, sender: h.sender, seq: h.seq, data, signed: env.signature !== undefined };
  }
}
