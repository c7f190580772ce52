/**
 * The vocabulary of LeafSession (session.ts): what its host hands it, what it asks of its host,
 * its errors and its counters. Free of anything node-specific, so the system simulation can host
 * a session as LeafClient does.
 */
import type { AcceptedPeer, VerifiedCrl } from '../auth/index.js';
import {
  DATA_ERROR_REASONS,
  PUBLISH_RESULTS,
  type CorePull,
  type DataErrorReason,
  type DataPullReply,
  type DataStream,
  type EvictionReason,
  type GossipSeed,
  type Item,
  type LeafErrorCode,
  type LeafFrame,
  type LeafFrameType,
  type PublishResult,
} from '../gossip-edge/index.js';

/** A server said no, or broke the protocol. */
export class LeafProtocolError extends Error {
  override readonly name = 'LeafProtocolError';
  constructor(
    readonly code:
      LeafErrorCode | 'bad-signature' | 'unknown-signer' | 'bad-frame' | 'revoked-server' | 'stale-crl',
    message: string,
  ) {
    super(`${code}: ${message}`);
  }
}

/** The server evicted us while we were joining. */
export class LeafEvictedError extends Error {
  override readonly name = 'LeafEvictedError';
  constructor(readonly reason: EvictionReason) {
    super(`evicted: ${reason}`);
  }
}

export interface LeafClientStats {
  rekeysApplied: number;
  rekeysIgnored: number;
  /** Welcomes of our admission older than the key we held (replayed, or a lagging server): keys kept. */
  welcomesStale: number;
  catchUps: number;
  rejoins: number;
  /** Own-key refreshes our servers ordered (post-compromise recovery). */
  keyRefreshes: number;
  reconnects: number;
  protocolErrors: number;
  decryptFailures: Record<DataErrorReason, number>;
  /** Envelopes sealed under an epoch before our admission: unreadable by design (backward secrecy). */
  dataBeforeAdmission: number;
  /**
   * Envelopes sealed under the epoch after ours, held until its key came (the publisher's push
   * outran ours); each is counted again where it is delivered (`tlsData`, `gossipData`, …).
   */
  dataEarly: number;
  /** Rekeys applied / data messages delivered that arrived over gossip. */
  gossipRekeys: number;
  gossipData: number;
  /** … that arrived over the TLS link (pushes, catch-up replies, data deliveries). */
  tlsRekeys: number;
  tlsData: number;
  /** Gossip items refused before storing (bad signature, unknown signer, labels not their content, garbage). */
  gossipRefused: number;
  /** Gossiped rekey parts that do not name our path (relayed through us; never a re-join). */
  gossipNotOurs: number;
  /** Pulls of our server's data stream (gaps gossip did not fill) and the messages they delivered. */
  dataPulls: number;
  pulledData: number;
  /**
   * Data items that carried an envelope already delivered (copies injected by two servers into
   * an overlay that mixes their leaves after a failover): refused by the replay window, not
   * counted as decrypt failures.
   */
  dataDuplicates: number;
  /** Our publishes as our server answered them: accepted into the core relay, or refused. */
  publishes: Record<PublishResult, number>;
  /** `publish` calls refused here, nothing sent: our newest key was retired beyond the grace window. */
  publishesRetired: number;
  /** Requests our server refused as too frequent (`rate-limited`). */
  rateLimited: number;
  /** `publish` calls that returned false because `publishWindow` publishes awaited an answer. */
  publishesDeferred: number;
  /** Publishes whose answer never came: the link went down first (they may or may not have gone out). */
  publishesUnanswered: number;
  /** CRLs installed (newer than the one held for their issuer), given or in band. */
  crlsApplied: number;
  /** CRLs offered that were older than the one held (a replayed CRL): not installed. */
  crlsIgnored: number;
  /** CRLs offered in band that did not verify under our trust anchors. */
  crlsInvalid: number;
  /** Core servers refused as revoked: at the TLS handshake, or a live link dropped by a newer CRL. */
  serversRevoked: number;
}

export function newLeafStats(): LeafClientStats {
  return {
    rekeysApplied: 0,
    rekeysIgnored: 0,
    welcomesStale: 0,
    catchUps: 0,
    rejoins: 0,
    keyRefreshes: 0,
    reconnects: 0,
    protocolErrors: 0,
    decryptFailures: Object.fromEntries(DATA_ERROR_REASONS.map((r) => [r, 0])) as Record<
      DataErrorReason,
      number
    >,
    dataBeforeAdmission: 0,
    dataEarly: 0,
    gossipRekeys: 0,
    gossipData: 0,
    tlsRekeys: 0,
    tlsData: 0,
    gossipRefused: 0,
    gossipNotOurs: 0,
    dataPulls: 0,
    pulledData: 0,
    dataDuplicates: 0,
    publishes: Object.fromEntries(PUBLISH_RESULTS.map((r) => [r, 0])) as Record<PublishResult, number>,
    publishesDeferred: 0,
    rateLimited: 0,
    publishesRetired: 0,
    publishesUnanswered: 0,
    crlsApplied: 0,
    crlsIgnored: 0,
    crlsInvalid: 0,
    serversRevoked: 0,
  };
}

/** The session's timers; the host runs at most one of each (a new set replaces the old). */
export type LeafTimer = 'welcome' | 'lease' | 'catchUpRetry';

/** The link the host brought up to one core server (TLS, or a simulated one). */
export interface LeafLinkInfo {
  /** The server's link identity (keyglass://…). */
  readonly server: string;
  /** The server's certificate as the TLS verifier accepted it (CRL enforcement); none: not checked. */
  readonly accepted?: AcceptedPeer;
  /** RFC 8446 §7.5 exporter of this link (own-key refresh); undefined once the link is gone. */
  exportKeyingMaterial(length: number, label: string): Uint8Array | undefined;
  /** Our UDP gossip endpoint, announced after each welcome; none: TLS only. */
  readonly gossip?: { readonly host: string; readonly port: number };
}

export type LeafSessionEvent =
  /** A link to a core server is up (authenticated): the session joins over it. */
  | { readonly type: 'linkUp'; readonly link: LeafLinkInfo }
  /** A frame from the linked server (bytes as received, or already decoded). */
  | { readonly type: 'frame'; readonly frame: Uint8Array | LeafFrame }
  /** Running what a frame asked (a gossip command) found the frame malformed. */
  | { readonly type: 'badFrame'; readonly detail: string }
  /** The link is gone (`error` says why: it fails a pending join). */
  | { readonly type: 'linkDown'; readonly error: Error }
  | { readonly type: 'timer'; readonly timer: LeafTimer }
  /** A `send` effect could not be sent (the link could not take it now). */
  | { readonly type: 'sendFailed'; readonly frameType: LeafFrameType; readonly seq?: number }
  /** The gossip node delivers an admitted item; `pulled`: from our data pull's reply. */
  | { readonly type: 'gossipDeliver'; readonly item: Item; readonly pulled: boolean }
  /** The gossip node lacks items its peers did not bring; `coreStream`: where it tracks our server's stream. */
  | {
      readonly type: 'gossipPull';
      readonly req: CorePull;
      readonly coreStream: { readonly origin: number; readonly next: number } | undefined;
    }
  /** The gossip node wants fresh contacts. */
  | { readonly type: 'gossipReseed' }
  /** CRLs of a `verifyCrls` effect, verified by the host; `invalid`: why each other one failed. */
  | {
      readonly type: 'crlsVerified';
      readonly verified: readonly VerifiedCrl[];
      readonly invalid: readonly string[];
    }
  /** The application leaves (sent if the link is up). */
  | { readonly type: 'leave' }
  /** The host stops: 'idle' (may connect again), 'closed', 'evicted'. Keys are wiped. */
  | { readonly type: 'shutdown'; readonly state: 'idle' | 'closed' | 'evicted' };

/** What the session asks of its gossip link. `groupKey` is a copy the host wipes after use. */
export type GossipCommand =
  | { readonly op: 'start'; readonly slot: number; readonly epoch: number; readonly arity: number }
  | { readonly op: 'installKey'; readonly epoch: number; readonly groupKey: Uint8Array }
  | { readonly op: 'moveTo'; readonly slot: number; readonly epoch: number }
  | { readonly op: 'seed'; readonly seed: GossipSeed }
  | { readonly op: 'dataPull'; readonly reply: DataPullReply }
  | { readonly op: 'noteCoreStream'; readonly stream: DataStream };

export type LeafSessionEffect =
  /** Send an encoded leaf frame to the linked server; `seq`: our publish it carries. */
  | {
      readonly type: 'send';
      readonly frameType: LeafFrameType;
      readonly bytes: Uint8Array;
      readonly seq?: number;
    }
  /** End the link (a protocol violation, a revoked server): the host fails over. */
  | { readonly type: 'dropLink'; readonly reason: Error }
  | { readonly type: 'setTimer'; readonly timer: LeafTimer; readonly afterMs: number }
  | { readonly type: 'cancelTimer'; readonly timer: LeafTimer }
  /** The pending join was answered by a welcome. */
  | { readonly type: 'welcomed' }
  /** The pending join failed (error frame, timeout, link down, shutdown): the link is done with. */
  | { readonly type: 'joinFailed'; readonly error: Error }
  | { readonly type: 'gossip'; readonly command: GossipCommand }
  /** Verify these in-band CRLs (DER) against our trust anchors, in order; answer `crlsVerified`. */
  | { readonly type: 'verifyCrls'; readonly ders: readonly Uint8Array[] }
  // For the application:
  | { readonly type: 'key'; readonly epoch: number; readonly keyId: string }
  | {
      readonly type: 'message';
      readonly sender: number;
      readonly seq: number;
      readonly epoch: number;
      readonly data: Uint8Array;
    }
  | { readonly type: 'refused'; readonly seq: number; readonly reason: Exclude<PublishResult, 'accepted'> }
  | { readonly type: 'drain' }
  | { readonly type: 'evicted'; readonly reason: EvictionReason }
  | { readonly type: 'error'; readonly error: Error };
