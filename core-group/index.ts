/**
 * core-group/ — the virtual-synchrony stack (Ensemble-style micro-protocol layers).
 *
 * Stack, top to bottom (each file opens with what its layer guarantees and assumes):
 *   flow     bounded application send queue; blocks around flushes; backpressure
 *   gms      views, three-round flush (PROPOSE / PREPARE / COMMIT), coordinator takeover,
 *            primary component by dynamic voting, merge = join, state transfer, exclusion
 *   total    total order by the view's sequencer (its oldest member)
 *   unicast  reliable FIFO point-to-point within a view
 *   nakack   reliable per-sender FIFO multicast, NAKs, stability GC, send window
 *   fd       heartbeats, adaptive timeout, suspicion
 * `GroupMember` assembles them behind the application API (multicast ordered|fifo, send,
 * upcalls view / deliver / block / unblock / getState / setState). Everything is sans-IO; the
 * deterministic simulation in test/sim/core checks the properties of DESIGN.md §Core group on
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
export type { GmsConfig, GmsStats, PrimaryDecision, Rank } from './gms.js';
export { FlowControl } from './flow.js';
export type { FlowConfig } from './flow.js';
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
