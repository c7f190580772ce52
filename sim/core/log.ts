/**
 * What the core-group simulation records per member incarnation: the raw material of the
 * checkers. The log is written by the simulated application (app.ts) from upcalls only, so the
 * checkers judge the stack by what it tells its application — never by its internals.
 */

export type ChannelName = 'fifo' | 'ordered';

export interface ViewRec {
  readonly t: number;
  readonly epoch: number;
  readonly coord: string;
  /** `${epoch}@${coord}` */
  readonly id: string;
  readonly members: readonly string[];
  readonly primary: boolean;
  /** Step of the view's last primary. */
  readonly step: number;
  /** Application state right after the install (after setState, if any). */
  readonly state: string;
}

export interface DeliverRec {
  readonly t: number;
  /** Index into the member's views: the view the message was delivered in. */
  readonly viewIdx: number;
  /** Sender as the stack reports it. */
  readonly sender: string;
  readonly channel: ChannelName;
  /** `${origin}|${channel}|${counter}` parsed from the payload the origin wrote. */
  readonly msgId: string;
  /** The stack's identity of the message: a resent message is a new message with the same payload. */
  readonly stackId: string;
  readonly origin: string;
  readonly counter: number;
  readonly hash: number;
}

export interface SentRec {
  readonly channel: ChannelName;
  readonly hash: number;
}

export interface UnicastRec {
  readonly from: string;
  readonly counter: number;
  readonly msgId: string;
  readonly hash: number;
}

/** A core key committed at a member (keys on): what the `key` upcall said. */
export interface KeyRec {
  readonly t: number;
  /** Index into the member's views: the view the key was committed in. */
  readonly viewIdx: number;
  readonly epoch: number;
  readonly keyId: string;
  /** Hex of the leaf-tree secret: a one-way function of (core key, epoch), compared as the key. */
  readonly secret: string;
  readonly refresh: boolean;
}

export interface MemberLog {
  readonly key: string;
  readonly node: number;
  readonly views: ViewRec[];
  readonly delivered: DeliverRec[];
  /** Multicasts this member's application handed to the stack (accepted), by msgId. */
  readonly sent: Map<string, SentRec>;
  readonly unicastSent: Map<string, number>;
  readonly unicastRecv: UnicastRec[];
  readonly keys: KeyRec[];
}

export interface RunLog {
  readonly members: Map<string, MemberLog>;
  /** Keys of the incarnations alive (up, not paused) at the end, by node. */
  readonly aliveAtEnd: readonly string[];
  readonly quietAtMs: number;
  readonly endMs: number;
  /** Liveness bound: all alive members must share one view installed by quietAtMs + this. */
  readonly livenessBoundMs: number;
  /** Core keys on: the key checkers run. */
  readonly keysOn?: boolean;
  /** Core key id (hex) → member incarnations that committed it (kept by the app's `key` upcall). */
  readonly keyHolders: Map<string, Set<string>>;
}

export function newMemberLog(key: string, node: number): MemberLog {
  return {
    key,
    node,
    views: [],
    delivered: [],
    sent: new Map(),
    unicastSent: new Map(),
    unicastRecv: [],
    keys: [],
  };
}

/** FNV-1a, 32 bit: payload fingerprints (the checkers compare, they do not defend). */
export function fnv1a(bytes: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i]!, 0x01000193);
  return h >>> 0;
}
