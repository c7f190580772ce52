/**
 * Core-tree rekey messages and their canonical, bounded codec, plus the key wrap itself.
 *
 * A wrap carries one fresh node key sealed with XChaCha20-Poly1305 under a key-encryption key
 * that is either another node's key or a pairwise key. The AEAD's associated data binds the
 * wrap to the rekey session (unique per view attempt), the target node and the wrapping key's
 * name, so a wrap cannot be replayed into another session or moved to another node. Nonces are
 * random (24 bytes): a retried epoch after an abort re-uses node keys with new plaintexts, so
 * deterministic nonces would be unsafe.
 *
 * Senders are not named inside messages: the caller hands over the sender from the
 * authenticated transport (the core mesh is mutually authenticated TLS).
 */
import { KEY_BYTES, TAG_BYTES, XNONCE_BYTES, concatBytes, type CipherSuite } from '../../crypto/index.js';
import { DecodeError, Writer, decode, encode, type Codec, type Reader } from '../../wire/index.js';
import { PAIR_KEY_ID_BYTES } from './pairwise.js';
import {
  MAX_MEMBERS,
  readMember,
  readTree,
  writeMember,
  writeTree,
  type MemberId,
  type NodeId,
  type SymTree,
} from './tree.js';

export const FORMAT_VERSION = 1;
export const SEALED_KEY_BYTES = XNONCE_BYTES + KEY_BYTES + TAG_BYTES;
export const LINEAGE_BYTES = 16;
export const CONFIRM_BYTES = 32;
export const MAX_SESSION_BYTES = 64;
/** A bundle holds at most one wrap per child edge of the tree (2·(n − 1)). */
export const MAX_WRAPS = 2 * MAX_MEMBERS;
/** Bound on any encoded core-tree message (a full bundle at MAX_MEMBERS is ~210 KiB). */
export const MAX_CORE_REKEY_BYTES = 1 << 20;

/** Names the key-encryption key of a wrap. */
export type KeyRef =
  | { readonly kind: 'node'; readonly id: NodeId }
  | { readonly kind: 'pair'; readonly member: MemberId; readonly keyId: Uint8Array };

export interface Wrap {
  readonly target: NodeId;
  readonly under: KeyRef;
  readonly sealed: Uint8Array;
}

/** A foreign lineage's pieces: the cut of its committed tree, with that tree's ids. */
export interface LineageReport {
  readonly lineage: Uint8Array;
  readonly epoch: number;
  readonly pieces: readonly SymTree[];
}

export type CoreRekeyMessage =
  | { readonly type: 'report'; readonly session: Uint8Array; readonly report: LineageReport }
  | {
      readonly type: 'announce';
      readonly session: Uint8Array;
      readonly epoch: number;
      readonly lineage: Uint8Array;
      readonly tree: SymTree;
      /** Piece parents' keys for subleaders, under pairwise keys. */
      readonly grants: readonly Wrap[];
    }
  | { readonly type: 'piece'; readonly session: Uint8Array; readonly wrap: Wrap }
  | { readonly type: 'bundle'; readonly session: Uint8Array; readonly wraps: readonly Wrap[] }
  | { readonly type: 'ack'; readonly session: Uint8Array; readonly confirm: Uint8Array }
  | { readonly type: 'commit'; readonly session: Uint8Array };

const TYPE_TAGS = ['report', 'announce', 'piece', 'bundle', 'ack', 'commit'] as const;

function writeKeyRef(w: Writer, k: KeyRef): void {
  if (k.kind === 'node') {
    w.u8(0).varuint(k.id);
  } else {
    w.u8(1);
    writeMember(w, k.member);
    w.fixed(k.keyId, PAIR_KEY_ID_BYTES);
  }
}

function readKeyRef(r: Reader): KeyRef {
  const tag = r.u8();
  if (tag === 0) return { kind: 'node', id: r.varuint() };
  if (tag !== 1) throw new DecodeError('bad-tag', `key ref tag ${tag}`);
  const member = readMember(r);
  return { kind: 'pair', member, keyId: r.fixed(PAIR_KEY_ID_BYTES) };
}

function writeWrap(w: Writer, x: Wrap): void {
  w.varuint(x.target);
  writeKeyRef(w, x.under);
  w.fixed(x.sealed, SEALED_KEY_BYTES);
}

/**
 * Views into the message, not copies: a bundle holds up to 2·(n − 1) wraps and every member
 * decodes all of them to open the few on its path, so a copy per wrap was most of a large
 * rekey's CPU (leader crash at 64 members: 23 → 15 ms). Wraps carry only public bytes.
 */
function readWrap(r: Reader): Wrap {
  const target = r.varuint();
  const under = readKeyRef(r);
  return { target, under, sealed: r.fixed(SEALED_KEY_BYTES) };
}

export const coreRekeyCodec: Codec<CoreRekeyMessage> = {
  encode(w, m) {
    w.u8(FORMAT_VERSION).u8(TYPE_TAGS.indexOf(m.type));
    w.bytes(m.session, MAX_SESSION_BYTES);
    switch (m.type) {
      case 'report':
        w.fixed(m.report.lineage, LINEAGE_BYTES).varuint(m.report.epoch);
        w.list(m.report.pieces, MAX_MEMBERS, writeTree);
        return;
      case 'announce':
        w.varuint(m.epoch).fixed(m.lineage, LINEAGE_BYTES);
        writeTree(w, m.tree);
        w.list(m.grants, MAX_MEMBERS, writeWrap);
        return;
      case 'piece':
        writeWrap(w, m.wrap);
        return;
      case 'bundle':
        w.list(m.wraps, MAX_WRAPS, writeWrap);
        return;
      case 'ack':
        w.fixed(m.confirm, CONFIRM_BYTES);
        return;
      case 'commit':
        return;
    }
  },
  decode(r) {
    const version = r.u8();
    if (version !== FORMAT_VERSION) throw new DecodeError('bad-version', `core-tree format ${version}`);
    const tag = r.u8();
    const type = TYPE_TAGS[tag];
    if (type === undefined) throw new DecodeError('bad-tag', `core-tree message type ${tag}`);
    const session = r.bytes(MAX_SESSION_BYTES).slice();
    switch (type) {
      case 'report': {
        const lineage = r.fixed(LINEAGE_BYTES).slice();
        const epoch = r.varuint();
        const pieces = r.list(MAX_MEMBERS, (rr) => readTree(rr, true));
        return { type, session, report: { lineage, epoch, pieces } };
      }
      case 'announce': {
        const epoch = r.varuint();
        const lineage = r.fixed(LINEAGE_BYTES).slice();
        const tree = readTree(r);
        return { type, session, epoch, lineage, tree, grants: r.list(MAX_MEMBERS, readWrap) };
      }
      case 'piece':
        return { type, session, wrap: readWrap(r) };
      case 'bundle':
        return { type, session, wraps: r.list(MAX_WRAPS, readWrap) };
      case 'ack':
        return { type, session, confirm: r.fixed(CONFIRM_BYTES).slice() };
      case 'commit':
        return { type, session };
    }
  },
};

export const encodeCoreRekey = (m: CoreRekeyMessage): Uint8Array =>
  encode(coreRekeyCodec, m, MAX_CORE_REKEY_BYTES);
/** The decoded wraps view `b` (see readWrap): do not modify `b` while they are in use. */
export const decodeCoreRekey = (b: Uint8Array): CoreRekeyMessage => {
  if (b.length > MAX_CORE_REKEY_BYTES) throw new DecodeError('too-large', `${b.length} bytes`);
  return decode(coreRekeyCodec, b);
};

// ── key wrap ────────────────────────────────────────────────────────────────────────────────

const WRAP_LABEL = new TextEncoder().encode('keyglass/core-tree/wrap/v1');

/** Associated data of a wrap: label ‖ session ‖ target ‖ key-encryption key's name. */
export function wrapContext(session: Uint8Array, target: NodeId, under: KeyRef): Uint8Array {
  const w = new Writer(512).fixed(WRAP_LABEL, WRAP_LABEL.length);
  w.bytes(session, MAX_SESSION_BYTES).varuint(target);
  writeKeyRef(w, under);
  return w.finish();
}

export function sealWrap(
  suite: CipherSuite,
  session: Uint8Array,
  target: NodeId,
  under: KeyRef,
  kek: Uint8Array,
  key: Uint8Array,
): Wrap {
  const nonce = suite.randomBytes(XNONCE_BYTES);
  const sealed = concatBytes(nonce, suite.aeadSeal(kek, nonce, key, wrapContext(session, target, under)));
  return { target, under, sealed };
}

/** Opens a wrap; throws `CryptoError('auth-failed')` under a wrong key or a moved wrap. */
export function openWrap(suite: CipherSuite, session: Uint8Array, wrap: Wrap, kek: Uint8Array): Uint8Array {
  const nonce = wrap.sealed.subarray(0, XNONCE_BYTES);
  return suite.aeadOpen(
    kek,
    nonce,
    wrap.sealed.subarray(XNONCE_BYTES),
    wrapContext(session, wrap.target, wrap.under),
  );
}
