/**
 * core-group/ — the virtual-synchrony stack (Ensemble-style micro-protocol layers).
 *
 * Stack, top to bottom (each file opens with what its layer guarantees and assumes):
 *   flow     bounded application send queue; blocks around flushes; backpressure
 *   rekey    (keys on) the core key: Rodeh's tree rekey in every new view, traffic held until
 *            it commits, periodic refresh, `key` upcall with the leaf-tree secret
 *   gms      views, three-round flush (PROPOSE / PREPARE / COMMIT), coordinator takeover,
 *            primary component by dynamic voting, merge = join, state transfer, exclusion
 *   total    total order by the view's sequencer (its oldest member)
 *   unicast  reliable FIFO point-to-point within a view
 *   nakack   reliable per-sender FIFO multicast, NAKs, stability GC, send window
 *   fd       heartbeats, adaptive timeout, suspicion
 *   secure   (keys on) every frame AEAD-sealed: under the core key, or pairwise before one is
 *            shared; replay windows; bounded transition for a retired key
 * `GroupMember` assembles them behind the application API (multicast ordered|fifo, send,
 * upcalls view / deliver / block / unblock / getState / setState). Everything is sans-IO; the
 * deterministic simulation in sim/core checks the properties of DESIGN.md §Core group on
 * thousands of seeds (`npm run sim -- core --seeds N`), with a stated liveness bound of 6 s of
 * virtual time after the last fault (default timing configuration).
 *
 * Public face: `GroupMember`, identities and views, the wire codec of the stack's messages,
 * and the layers for tests and custom stacks.
 */
export * from './ids.js';
export * from './messages.js';
export type { DownEvent, Layer, LayerContext, UpEvent } from './layer.js';
export { BaseLayer } from './layer.js';
export { FailureDetector } from './fd.js';
export type { FdConfig } from './fd.js';
export { ReliableFifo } from './nakack.js';
export type { NakackConfig } from './nakack.js';
export { Unicast } from './unicast.js';
export type { UnicastConfig } from './unicast.js';
export { TotalOrder } from './total.js';
export { Membership, compareRank, decidePrimary, dedupeMembers, rankOf } from './gms.js';
export type { GmsConfig, GmsStats, PrimaryDecision, PrimaryReport, Rank } from './gms.js';
export { FlowControl } from './flow.js';
export type { FlowConfig } from './flow.js';
export { CoreRekey, MAX_APP_PAYLOAD_BYTES, PayloadOwner } from './rekey.js';
export type { CoreKeyConfig, CoreKeyInfo, RekeyStats } from './rekey.js';
export { MAX_RETIRED_PROCESSES, PairwiseBook } from './pairwise-book.js';
export type { PairwiseBookConfig } from './pairwise-book.js';
export { SecureLink, SecureKind } from './secure.js';
export type { SealedInfo, SecureStats } from './secure.js';
export { DEFAULT_STACK_CONFIG, GroupMember } from './member.js';
export type {
  ChannelName,
  Delivery,
  GroupApp,
  GroupHost,
  GroupMemberOptions,
  MemberStats,
  StackConfig,
} from './member.js';
