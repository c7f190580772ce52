/**
 * The leaf ↔ core-server protocol, carried over one mutually authenticated TLS 1.3 link (one
 * message per stream frame, see wire/stream.ts). The TLS peer identity is the only identity: no
 * frame names its sender. Frame types 0x0701..0x0713, 0x0715.
 *
 *   leaf → server   join, leaseRenew, dataPublish, catchUpRequest, leave, gossipHello,
 *                   gossipReseed, dataPull
 *   server → leaf   welcome, rekeyPush, dataDeliver, leaseAck, catchUpReply, evicted, error,
 *                   publishAck, gossipSeed, dataPullReply, crlUpdate, leafKeyRefresh
 *
 * Flow: the leaf sends `join` (with `resume` when it held an admission before: the admission
 * epoch names that admission in the replicated registry, so any core server can recognise it and
 * skip a re-admission). The server answers `welcome` once the batch that admits the leaf is cut
 * (or at once on a recognised resume). Every later batch arrives as a `rekeyPush`: the signed
 * epoch header and the part(s) of the rekey that cover the leaf's slot. A leaf that sees a gap
 * asks `catchUpRequest(fromEpoch, slot)` and gets the missing pushes, or `rejoin` when the
 * server no longer holds them. Data travels sealed (data-envelope.ts); the server never needs
 * to open it. Every `dataPublish` is answered, in order, by one `publishAck`: accepted into the
 * core's relay, or refused with a reason (the leaf keeps a bounded window of unanswered publishes:
 * flow control from the core's send queue back to the publishing application).
 *
 * Own-key refresh (post-compromise recovery, keytree/leaf-key-refresh.ts): `leafKeyRefresh`
 * tells the leaf that its server ordered refresh number `counter` of admission `admittedEpoch`;
 * both ends derive the new own key from this TLS session's exporter, so no key is on the wire.
 * The frame is sent before the refresh is ordered, so the leaf holds the key before the batch.
 *
 * Every field is bounded; decoding untrusted bytes throws DecodeError only.
 */
import {
  DecodeError,
  bool,
  bytes,
  defineFrames,
  fixedBytes,
  list,
  option,
  string,
  struct,
  varuint,
  varuintBytes,
  type Codec,
  type CodecValue,
} from '../wire/index.js';
import { ED25519_PUBLIC_BYTES, ED25519_SIGNATURE_BYTES } from '../crypto/index.js';
import { MAX_HOST_CHARS, PeerEndpoint } from './addr-hints.js';
import { LIMITS } from './config.js';

/** A whole frame: a rekey catch-up of MAX_CATCH_UP_EPOCHS pushes fits with room to spare. */
export const MAX_LEAF_FRAME_BYTES = 512 * 1024;
/** Largest sealed data envelope a leaf may publish. */
export const MAX_ENVELOPE_BYTES = 80 * 1024;
/** Largest keytree welcome (height ≤ 32: 33 × (version + 32-byte key) + header). */
export const MAX_WELCOME_BYTES = 4096;
/** Largest encoded keytree epoch header (format + 64-byte group + digests + varuints). */
export const MAX_HEADER_BYTES = 512;
/** Largest encoded keytree rekey part (keytree encodePart caps it at 4096). */
export const MAX_PART_BYTES = 4096;
/** Parts per push: one covers a leaf; a few allow a relay to carry a subtree's parts at once. */
export const MAX_PARTS_PER_PUSH = 8;
/** Epochs one catch-up reply may carry. */
export const MAX_CATCH_UP_EPOCHS = 64;
/** Core servers whose signing keys a welcome may list. */
export const MAX_SIGNERS = 64;
/**
 * Revocation in band: CRLs (DER, CA-signed: the leaf verifies each against its trust anchors)
 * one welcome or crlUpdate may carry, and the bytes of each. Together with a largest welcome
 * they stay under MAX_LEAF_FRAME_BYTES; a server whose CRLs are larger sends none (its leaves
 * then need `trust.crlPem`). 96 KiB holds ~1,950 revoked serials (~49 bytes each), about what
 * the CRL parser (asn1js, bounded node count) takes at all: 2,000 entries no longer parse.
 */
export const MAX_IN_BAND_CRLS = 4;
export const MAX_IN_BAND_CRL_BYTES = 96 * 1024;
/** Certificate serials as carried here: lower-case hex, at most 20 octets (RFC 5280). */
export const MAX_SERIAL_CHARS = 64;
export const MAX_DETAIL_BYTES = 256;

/** Why a server removed a leaf; stable strings, safe as metric labels. */
/** `key-exposed`: the leaf's own key was not refreshed within the window after a core server was revoked. */
export const EVICTION_REASONS = [
  'lease-expired',
  'revoked',
  'left',
  'replaced',
  'refused',
  'key-exposed',
] as const;
export type EvictionReason = (typeof EVICTION_REASONS)[number];

/** Protocol error codes a server (or leaf) reports before closing or refusing a request. */
export const LEAF_ERROR_CODES = [
  'malformed', // a frame did not decode
  'unexpected', // a frame not allowed in the current state
  'not-admitted', // request needs an admission the registry does not hold
  'not-primary', // this server is in a non-primary component: mutations refused
  'overloaded', // bounded queue full; retry later
  'internal',
  'rate-limited', // the leaf asked faster than its server serves one leaf; the detail names the request
] as const;
export type LeafErrorCode = (typeof LEAF_ERROR_CODES)[number];

/** A string enum carried as a u16 index into its list (adding values keeps old indices). */
function enumCodec<T extends string>(values: readonly T[], what: string): Codec<T> {
  return {
    encode: (w, v) => {
      const i = values.indexOf(v);
      if (i < 0) throw new RangeError(`${what}: unknown value '${v}'`);
      w.u16(i);
    },
    decode: (r) => {
      const i = r.u16();
      const v = values[i];
      if (v === undefined) throw new DecodeError('bad-value', `${what} ${i}`);
      return v;
    },
  };
}

const ed25519Public = fixedBytes(ED25519_PUBLIC_BYTES);
const signature = fixedBytes(ED25519_SIGNATURE_BYTES);

/**
 * A core server's rekey-signing key as a welcome announces it, with the serial of that server's
 * certificate (as its peers saw it on the authenticated mesh): a leaf that learns the
 * certificate is revoked stops accepting anything signed by the key.
 */
export const SignerKey = struct({
  name: string(64),
  publicKey: ed25519Public,
  serial: string(MAX_SERIAL_CHARS),
});
export type SignerKey = CodecValue<typeof SignerKey>;

export const JoinRequest = struct({
  /** A previous admission to resume: its admission epoch and the last epoch the leaf holds. */
  resume: option(struct({ admittedEpoch: varuint, epoch: varuint })),
  /**
   * The lowest CRL number among the CRLs the leaf holds (decimal), if it holds any: a server
   * whose CRLs are no newer leaves them out of the welcome (a reconnect does not cost a CRL).
   */
  crlNumber: option(string(48)),
});
export type JoinRequest = CodecValue<typeof JoinRequest>;

export const WelcomeFrame = struct({
  /** keytree encodeWelcome bytes: the leaf's path keys of `epoch`. Confidential (TLS only). */
  welcome: bytes(MAX_WELCOME_BYTES),
  epoch: varuint,
  /** Names this admission in the replicated registry (the resume token). */
  admittedEpoch: varuint,
  /** The leaf's member id: its sender id in data envelopes, stable for this admission. */
  memberId: varuint,
  /** Renew the lease at least this often (ms); the server evicts after leaseMs of silence. */
  leaseMs: varuint,
  /** Keys that sign rekey headers: every core server of the group the server's CRL does not revoke. */
  signers: list(MAX_SIGNERS, SignerKey),
  /** The server's CRLs (DER), unless the join said the leaf holds them already. */
  crls: list(MAX_IN_BAND_CRLS, bytes(MAX_IN_BAND_CRL_BYTES)),
});
export type WelcomeFrame = CodecValue<typeof WelcomeFrame>;

/**
 * Pushed to welcomed leaves when the server loads a newer CRL: the CRLs and the signer list
 * filtered through them. A leaf installs a CRL only if it verifies under its anchors and its
 * number does not go backwards; it drops its link to a server the CRL revokes and forgets the
 * signing keys of revoked servers.
 */
export const CrlUpdate = struct({
  crls: list(MAX_IN_BAND_CRLS, bytes(MAX_IN_BAND_CRL_BYTES)),
  signers: list(MAX_SIGNERS, SignerKey),
});
export type CrlUpdate = CodecValue<typeof CrlUpdate>;

/** One signed epoch and the parts of it that a leaf (or a subtree) needs. */
export const RekeyPush = struct({
  /** keytree encodeHeader bytes; the signature is over keytree signedBytes(header). */
  header: bytes(MAX_HEADER_BYTES),
  signer: ed25519Public,
  signature,
  parts: list(MAX_PARTS_PER_PUSH, bytes(MAX_PART_BYTES)),
});
export type RekeyPush = CodecValue<typeof RekeyPush>;

export const DataFrame = struct({ envelope: bytes(MAX_ENVELOPE_BYTES) });
export type DataFrame = CodecValue<typeof DataFrame>;

/**
 * The envelopes at position (origin, seq) of a core server's data stream, as they travel in the
 * gossip overlay and in pull replies: the relay puts the envelopes of one sealing epoch that it
 * injects in one event-loop turn into one entry (a burst costs one signature, one item id and
 * one digest slot per entry, not per envelope), signed by the server that numbered it over
 * `streamSignedBytes(origin, seq, envelopes)`. Leaves store, relay and mark as seen only entries
 * whose signature checks under a core server's key, so an insider holding the group key cannot
 * squat a future stream position with junk (or a replayed entry) and have the real entry
 * suppressed as already seen.
 */
export const MAX_ENTRY_ENVELOPES = 64;
export const StreamEntry = struct({
  signer: ed25519Public,
  signature,
  envelopes: list(MAX_ENTRY_ENVELOPES, bytes(MAX_ENVELOPE_BYTES)),
});
export type StreamEntry = CodecValue<typeof StreamEntry>;
/** The largest encoded StreamEntry (one datagram bounds the relay's far below this). */
export const MAX_STREAM_ENTRY_BYTES = 96 * 1024;
const STREAM_ENTRY_LABEL = new TextEncoder().encode('keyglass/stream-entry/v1');

/** The encoded size of a StreamEntry holding envelopes of these lengths. */
export function streamEntryBytes(envelopeLengths: readonly number[]): number {
  let n = ED25519_PUBLIC_BYTES + ED25519_SIGNATURE_BYTES + varuintBytes(envelopeLengths.length);
  for (const len of envelopeLengths) n += varuintBytes(len) + len;
  return n;
}

/** What a core server signs for the envelopes at seq `seq` of its data stream `origin`. */
export function streamSignedBytes(origin: number, seq: number, envelopes: readonly Uint8Array[]): Uint8Array {
  let n = STREAM_ENTRY_LABEL.length + 12;
  for (const e of envelopes) n += 4 + e.length;
  const out = new Uint8Array(n);
  out.set(STREAM_ENTRY_LABEL);
  const view = new DataView(out.buffer);
  let at = STREAM_ENTRY_LABEL.length;
  view.setUint32(at, origin);
  view.setUint32(at + 4, seq);
  view.setUint32(at + 8, envelopes.length);
  at += 12;
  for (const e of envelopes) {
    view.setUint32(at, e.length);
    out.set(e, at + 4);
    at += 4 + e.length;
  }
  return out;
}

export const LeaseRenew = struct({ seq: varuint });
/** A core server's data stream: its origin and the seq of the next item it will inject. */
export const DataStream = struct({ origin: varuint, next: varuint });
export type DataStream = CodecValue<typeof DataStream>;

/**
 * `stream` (servers with an edge relay): how far the server's data stream has come, so a gossip
 * leaf also sees a gap at the stream's tail (the last items lost: no later item shows it).
 */
export const LeaseAck = struct({ seq: varuint, leaseMs: varuint, stream: option(DataStream) });
export const Evicted = struct({ reason: enumCodec(EVICTION_REASONS, 'eviction reason'), epoch: varuint });
export type Evicted = CodecValue<typeof Evicted>;

export const CatchUpRequest = struct({
  fromEpoch: varuint,
  /** The leaf's slot at fromEpoch − 1 (the server follows moves from there). */
  slot: varuint,
});
export type CatchUpRequest = CodecValue<typeof CatchUpRequest>;

export const CatchUpReply = struct({
  pushes: list(MAX_CATCH_UP_EPOCHS, RekeyPush),
  /** True when the server cannot serve the gap: the leaf must re-join for a fresh welcome. */
  rejoin: bool,
});
export type CatchUpReply = CodecValue<typeof CatchUpReply>;

/**
 * Gossip tier (the leaf's UDP side). After its welcome a leaf that runs gossip sends
 * `gossipHello` with the UDP endpoint it receives on; from then on its server stops pushing
 * rekeys and data to it over TLS (its edge relay injects them into the overlay instead) and
 * answers with a `gossipSeed`: peers to start the views with, with their endpoints. A leaf that
 * is cut off (or that a compaction moved to another slot) asks `gossipReseed` for a fresh one.
 * A server without a gossip tier ignores both and keeps pushing over TLS.
 */
export const GossipHello = struct({ host: string(MAX_HOST_CHARS), port: varuint });
export type GossipHello = CodecValue<typeof GossipHello>;

export const GossipSeed = struct({
  active: list(LIMITS.maxActive, PeerEndpoint),
  passive: list(LIMITS.maxPassive, PeerEndpoint),
  /** contacts[l − 1]: peers in our subtree of level l (span arity^l). */
  contacts: list(LIMITS.maxLevels, list(LIMITS.maxContactsPerLevel, PeerEndpoint)),
  /** The server's data stream: the leaf pulls what it misses of it (`dataPull`). */
  stream: DataStream,
});
export type GossipSeed = CodecValue<typeof GossipSeed>;

/** Items one `dataPullReply` may carry, and their entry bytes in total. */
export const MAX_PULL_ITEMS = 256;
export const MAX_PULL_REPLY_BYTES = 384 * 1024;

/**
 * Data catch-up from the core (DESIGN: gossip retention, "then catch-up from the core"): a
 * gossip leaf that sees a gap in its server's data stream which its peers do not fill asks
 * `dataPull(origin, fromSeq)`; the server answers from its bounded history with the items from
 * `fromSeq` on (at most MAX_PULL_ITEMS / MAX_PULL_REPLY_BYTES), `next` (resume the pull there;
 * seqs below it that are not in the reply are gone from the history too) and `head` (the
 * stream's next seq). A pull of another origin (the leaf's seed came from another server) is
 * answered with this server's stream and no items: the leaf tracks that one from then on.
 */
export const DataPull = struct({ origin: varuint, fromSeq: varuint });
export type DataPull = CodecValue<typeof DataPull>;
export const DataPullReply = struct({
  origin: varuint,
  next: varuint,
  head: varuint,
  /** Each an encoded StreamEntry (signed: the leaf relays what it pulls). */
  items: list(MAX_PULL_ITEMS, struct({ seq: varuint, entry: bytes(MAX_STREAM_ENTRY_BYTES) })),
});
export type DataPullReply = CodecValue<typeof DataPullReply>;

/**
 * A leaf leaving names the admission it leaves (its admission epoch, once welcomed): a leave
 * from a stale client (a link that outlived a re-admission under the same certificate) must not
 * remove the current admission. Without it (never welcomed) the name's admission is meant.
 */
export const LeaveRequest = struct({ admittedEpoch: option(varuint) });
export type LeaveRequest = CodecValue<typeof LeaveRequest>;

export const LeafKeyRefresh = struct({ admittedEpoch: varuint, counter: varuint });
export type LeafKeyRefresh = CodecValue<typeof LeafKeyRefresh>;

/** How a server answered one publish; stable strings, safe as metric labels. */
export const PUBLISH_RESULTS = [
  'accepted', // handed to the core's relay (it reaches the other leaves best-effort)
  'overloaded', // the core's send queue is full: retry later
  'not-admitted', // published before the welcome
  'too-large', // larger than the core relays
  'retired-epoch', // sealed under an epoch retired longer than the server's grace
] as const;
export type PublishResult = (typeof PUBLISH_RESULTS)[number];

export const LeafError = struct({
  code: enumCodec(LEAF_ERROR_CODES, 'leaf error code'),
  detail: string(MAX_DETAIL_BYTES),
});
export type LeafError = CodecValue<typeof LeafError>;

export const LeafFrames = defineFrames(
  'leaf',
  {
    join: [0x0701, JoinRequest],
    welcome: [0x0702, WelcomeFrame],
    rekeyPush: [0x0703, RekeyPush],
    dataPublish: [0x0704, DataFrame],
    dataDeliver: [0x0705, DataFrame],
    leaseRenew: [0x0706, LeaseRenew],
    leaseAck: [0x0707, LeaseAck],
    leave: [0x0708, LeaveRequest],
    evicted: [0x0709, Evicted],
    catchUpRequest: [0x070a, CatchUpRequest],
    catchUpReply: [0x070b, CatchUpReply],
    error: [0x070c, LeafError],
    gossipHello: [0x070d, GossipHello],
    gossipSeed: [0x070e, GossipSeed],
    gossipReseed: [0x070f, struct({})],
    publishAck: [0x0710, struct({ result: enumCodec(PUBLISH_RESULTS, 'publish result') })],
    dataPull: [0x0711, DataPull],
    dataPullReply: [0x0712, DataPullReply],
    crlUpdate: [0x0713, CrlUpdate],
    leafKeyRefresh: [0x0715, LeafKeyRefresh],
  },
  { maxFrameBytes: MAX_LEAF_FRAME_BYTES },
);

export type LeafFrame = CodecValue<typeof LeafFrames>;
export type LeafFrameType = LeafFrame['type'];
/** The body type of frame `K`. */
export type LeafFrameBody<K extends LeafFrameType> = Extract<LeafFrame, { type: K }>['body'];

/** Encodes one frame (flags are always 0 in this protocol). */
export function encodeLeafFrame<K extends LeafFrameType>(type: K, body: LeafFrameBody<K>): Uint8Array {
  return LeafFrames.encodeFrame({ type, flags: 0, body } as LeafFrame);
}

/** Decodes one frame; throws DecodeError only. */
export function decodeLeafFrame(bytes: Uint8Array): LeafFrame {
  return LeafFrames.decodeFrame(bytes);
}
