/**
 * The simulated application on top of a GroupMember: a replicated state machine whose state is
 * a hash chain over the ordered messages delivered in primary views (only primary views may
 * change replicated state), plus a logger of every upcall for the checkers. Its state and the
 * state's version ([primary step it was installed at, changes applied since], as a key server
 * keeps them) live on the node's SimDisk, written synchronously: a restarted process starts
 * from them.
 */

import type {
  CoreKeyInfo,
  Delivery,
  GroupApp,
  MemberKey,
  StateVersion,
  View,
} from '../../core-group/index.js';
import type { DurabilityLedger, SimDisk } from './durability.js';
import { stateKey } from './durability.js';
import type { ChannelName, MemberLog, RunLog } from './log.js';
import { fnv1a, newMemberLog } from './log.js';

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Payload = "origin|channel|counter|" + padding; the checkers parse it back. */
export function makePayload(
  origin: string,
  channel: ChannelName,
  counter: number,
  pad: Uint8Array,
): Uint8Array {
  const head = enc.encode(`${origin}|${channel}|${counter}|`);
  const out = new Uint8Array(head.length + pad.length);
  out.set(head);
  out.set(pad, head.length);
  return out;
}

function parsePayload(p: Uint8Array): { origin: string; channel: string; counter: number; msgId: string } {
  const text = dec.decode(p.subarray(0, Math.min(p.length, 128)));
  const [origin = '', channel = '', counter = ''] = text.split('|');
  return { origin, channel, counter: Number(counter), msgId: `${origin}|${channel}|${counter}` };
}

export class SimApp implements GroupApp {
  private installed: View | undefined;
  private self: MemberKey | undefined;
  private logFor: MemberLog | undefined;
  private readonly counters = { fifo: 0, ordered: 0, unicast: 0 };
  blocked = true;
  stateTransfers = 0;
  /** The state's version when the current flush froze this member (the rollback check). */
  private frozenAt: StateVersion | undefined;

  constructor(
    private readonly runLog: RunLog,
    private readonly node: number,
    private readonly now: () => number,
    private readonly disk: SimDisk,
    private readonly ledger: DurabilityLedger,
  ) {}

  stateVersion(): StateVersion {
    return [this.disk.step, this.disk.applied, this.disk.extra];
  }

  get currentView(): View | undefined {
    return this.installed;
  }

  /** Builds the next payload of `channel` for this member and records it as sent. */
  nextMulticast(channel: ChannelName, pad: Uint8Array): { payload: Uint8Array; commit: () => void } {
    const log = this.logFor!;
    const counter = this.counters[channel] + 1;
    const payload = makePayload(log.key, channel, counter, pad);
    return {
      payload,
      commit: () => {
        this.counters[channel] = counter;
        log.sent.set(`${log.key}|${channel}|${counter}`, { channel, hash: fnv1a(payload) });
      },
    };
  }

  nextUnicast(pad: Uint8Array): { payload: Uint8Array; commit: () => void } {
    const log = this.logFor!;
    const counter = this.counters.unicast + 1;
    const payload = makePayload(log.key, 'fifo', counter, pad);
    return {
      payload,
      commit: () => {
        this.counters.unicast = counter;
        log.unicastSent.set(`${log.key}|fifo|${counter}`, fnv1a(payload));
      },
    };
  }

  view(view: View, self: MemberKey): void {
    if (self !== this.self) {
      // First view of a new incarnation (boot or rejoin): a fresh log and fresh counters.
      this.self = self;
      this.logFor = newMemberLog(self, this.node);
      this.runLog.members.set(self, this.logFor);
      this.counters.fifo = this.counters.ordered = this.counters.unicast = 0;
    }
    this.installed = view;
    this.frozenAt = undefined;
    const d = this.disk;
    if (view.primary && view.lastPrimary.step !== d.step) {
      d.step = view.lastPrimary.step;
      d.applied = d.extra = 0;
    }
    this.ledger.holds(self, this.stateVersion(), stateKey(d.state, d.count));
    if (view.primary)
      this.ledger.primaryInstalled(
        this.now(),
        self,
        `${view.id.epoch}@${view.id.coord}`,
        view.lastPrimary.step,
        stateKey(d.state, d.count),
        d.count,
      );
    this.logFor!.views.push({
      t: this.now(),
      epoch: view.id.epoch,
      coord: view.id.coord,
      id: `${view.id.epoch}@${view.id.coord}`,
      members: [...view.members],
      primary: view.primary,
      step: view.lastPrimary.step,
      state: this.stateText(),
    });
  }

  deliver(d: Delivery): void {
    const log = this.logFor!;
    const p = parsePayload(d.payload);
    log.delivered.push({
      t: this.now(),
      viewIdx: log.views.length - 1,
      sender: d.sender,
      channel: d.channel,
      msgId: p.msgId,
      stackId: `${d.sender}@${this.installed!.id.epoch}@${this.installed!.id.coord}#${d.seq}`,
      origin: p.origin,
      counter: p.counter,
      hash: fnv1a(d.payload),
    });
    if (d.channel === 'ordered' && this.installed?.primary) {
      const disk = this.disk;
      const from = stateKey(disk.state, disk.count);
      disk.state = Math.imul(disk.state ^ fnv1a(d.payload), 0x01000193) >>> 0;
      disk.count++;
      if (d.afterGap === true || disk.extra > 0) disk.extra++;
      else disk.applied++;
      this.ledger.applied(
        this.now(),
        log.key,
        this.installed.members,
        from,
        stateKey(disk.state, disk.count),
        disk.count,
        this.stateVersion(),
      );
    }
  }

  unicast(sender: MemberKey, payload: Uint8Array): void {
    const p = parsePayload(payload);
    this.logFor!.unicastRecv.push({ from: sender, counter: p.counter, msgId: p.msgId, hash: fnv1a(payload) });
  }

  key(k: CoreKeyInfo): void {
    const log = this.logFor!;
    const id = Buffer.from(k.keyId).toString('hex');
    const holders = this.runLog.keyHolders.get(id) ?? new Set<string>();
    holders.add(log.key);
    this.runLog.keyHolders.set(id, holders);
    log.keys.push({
      t: this.now(),
      viewIdx: log.views.length - 1,
      epoch: k.epoch,
      keyId: Buffer.from(k.keyId).toString('hex'),
      secret: Buffer.from(k.coreKey).toString('hex'),
      refresh: k.refresh,
    });
  }

  block(): void {
    this.blocked = true;
    this.frozenAt ??= this.stateVersion();
  }

  unblock(): void {
    this.blocked = false;
  }

  getState(): Uint8Array {
    const b = new Uint8Array(8);
    const dv = new DataView(b.buffer);
    dv.setUint32(0, this.disk.state);
    dv.setUint32(4, this.disk.count);
    return b;
  }

  setState(state: Uint8Array, version: StateVersion): void {
    this.stateTransfers++;
    if (state.length !== 8) throw new Error(`SimApp: bad state snapshot (${state.length} bytes)`);
    if (version.length !== 3) throw new Error(`SimApp: bad state version [${version.join(',')}]`);
    const dv = new DataView(state.buffer, state.byteOffset, state.byteLength);
    const self = this.logFor?.key ?? '?';
    this.ledger.transferred(this.now(), self, this.frozenAt ?? this.stateVersion(), version);
    const d = this.disk;
    d.state = dv.getUint32(0);
    d.count = dv.getUint32(4);
    d.step = version[0]!;
    d.applied = version[1]!;
    d.extra = version[2]!;
    this.ledger.holds(self, version, stateKey(d.state, d.count));
  }

  private stateText(): string {
    return stateKey(this.disk.state, this.disk.count);
  }
}
