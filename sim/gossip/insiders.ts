/**
 * Insiders of the gossip simulation (issue 19 item 4, issue 17 finding 3): leaves that hold the
 * group's MAC keys and every epoch key, as an admitted member does, but run this attacker instead
 * of a link. Each speaks the real codec under the real MAC, from its own simulated address:
 *
 *  (a) relabelled genuine parts — at each rekey, its own genuine part (signed, valid) under the
 *      id of the part a victim needs (so a victim that stored it would drop the real part as a
 *      duplicate and re-join), or under its own id with the victim's scope;
 *  (b) far-future ids — the same part labelled epoch E + 2, E + 50, E + 100000;
 *  (c) invalid items — a rekey id with a garbage payload, a data id of the core's next seq with
 *      a garbage entry;
 *  (d) address claims — every round it names honest peers a victim holds in its views as the
 *      sender of a MAC-valid datagram from its own address, and answers every challenge as them
 *      (and as itself).
 *
 * It never relays anything: to its honest neighbours it is a dead end as well as a liar.
 */
import type { CipherSuite } from '../../crypto/index.js';
import {
  CORE_ORIGIN,
  MacAuthenticator,
  PROBE_FRAME_TYPE,
  WHOLE_GROUP_END,
  dataId,
  encodeAddrProbe,
  openAddrProbe,
  rekeyId,
  rekeyPartOf,
  type Item,
} from '../../gossip-edge/index.js';
import type { NodeEnv, Rng } from '../../net/sim/index.js';
import { peekFrameHeader } from '../../wire/index.js';

/** What an insider knows of the world (what an admitted member could learn or hold). */
export interface InsiderWorld {
  readonly suite: CipherSuite;
  readonly roundMs: number;
  /** Honest leaves attacked per round (claims, junk) and per rekey (parts). */
  readonly victimsPerRound: number;
  coreEpoch(): number;
  groupKeyOf(epoch: number): Uint8Array;
  /** The genuine item of `epoch` on `slot`'s path, as the relay forms it. */
  partFor(epoch: number, slot: number): Item | undefined;
  /** The core stream's next seq (the id an invalid data item squats on). */
  nextCoreSeq(): number;
  honestUp(rng: Rng): number | undefined;
  /** The honest peers a victim holds (a worst case: an insider learns them from shuffles). */
  viewsOf(leaf: number): number[];
  /**
   * Does `victim` reach `peer` at its genuine address, held from a seed or from the peer's own
   * traffic (what a claim must not replace without proof)? A checker's question, not the insider's.
   */
  holdsGenuine(victim: number, peer: number): boolean;
}

export interface InsiderStats {
  relabelled: number;
  future: number;
  invalid: number;
  claims: number;
  answers: number;
}

/** Far-future offsets of (b): inside the node's epoch window, just past it, and absurd. */
const FUTURE = [2, 50, 100_000];
/** Claimed peers an insider answers challenges for, per victim. */
const MAX_CLAIMS_PER_VICTIM = 4;

/** The simulated address of a leaf is the world's; an insider only needs the victims' ids. */
type Msg = Uint8Array | object;

export class Insider {
  readonly stats: InsiderStats = { relabelled: 0, future: 0, invalid: 0, claims: 0, answers: 0 };
  private readonly auth: MacAuthenticator;
  /** Per victim, the honest peers claimed to it (newest last). */
  private readonly claimed = new Map<number, number[]>();
  /** Per victim, claimed peers it held at their genuine seeded or traffic-proven address at the time (the checker's pairs). */
  private readonly contested = new Map<number, Set<number>>();
  private stopped = false;

  constructor(
    private readonly env: NodeEnv<Msg>,
    private readonly w: InsiderWorld,
  ) {
    this.auth = new MacAuthenticator(w.suite, 8);
    env.setTimer(w.roundMs, () => this.round());
  }

  get id(): number {
    return this.env.id;
  }

  /** The honest peers this insider claimed to `victim`. */
  claimedAt(victim: number): readonly number[] {
    return this.claimed.get(victim) ?? [];
  }

  /** Claimed peers `victim` held at their genuine address from a seed or their own traffic when claimed. */
  contestedAt(victim: number): Iterable<number> {
    return this.contested.get(victim) ?? [];
  }

  stop(): void {
    this.stopped = true;
  }

  /** Every challenge is answered as every peer claimed to its sender (a full insider). */
  onMessage(from: number, msg: Msg): void {
    if (this.stopped || !(msg instanceof Uint8Array)) return;
    let type: number;
    try {
      type = peekFrameHeader(msg, 1 << 16).type;
    } catch {
      return;
    }
    if (type !== PROBE_FRAME_TYPE) return; // it relays nothing
    const p = openAddrProbe(this.auth, msg);
    if (p === undefined || p.answer) return;
    for (const peer of [this.id, ...this.claimedAt(from)]) {
      const answer = encodeAddrProbe(this.auth, {
        answer: true,
        epoch: p.epoch,
        sender: peer,
        nonce: p.nonce,
      });
      if (answer !== undefined && this.env.send(from, answer)) this.stats.answers++;
    }
  }

  /** Epoch `epoch` was just routed: relabelled and far-future copies of our own part race the real ones. */
  onRekey(epoch: number): void {
    if (this.stopped) return;
    this.holdKeys();
    const own = this.w.partFor(epoch, this.id);
    if (own === undefined) return;
    for (let k = 0; k < this.w.victimsPerRound; k++) {
      const v = this.w.honestUp(this.env.rng);
      const real = v === undefined ? undefined : this.w.partFor(epoch, v);
      if (v === undefined || real === undefined) continue;
      const scope = { scopeStart: real.scopeStart, scopeEnd: real.scopeEnd };
      if (real.id !== own.id) {
        this.push(v, { ...own, ...scope, id: real.id }, epoch - 1);
        this.stats.relabelled++;
      }
      if (own.scopeStart > v || own.scopeEnd <= v) {
        this.push(v, { ...own, ...scope }, epoch - 1);
        this.stats.relabelled++;
      }
      for (const d of FUTURE) {
        this.push(
          v,
          { ...own, ...scope, id: rekeyId(epoch + d, rekeyPartOf(real.id)), epoch: epoch + d },
          epoch - 1,
        );
        this.stats.future++;
      }
    }
  }

  /** Each round: address claims (d) and invalid items (c) to a few victims. */
  private round(): void {
    if (this.stopped) return;
    this.env.setTimer(this.w.roundMs, () => this.round());
    this.holdKeys();
    const epoch = this.w.coreEpoch();
    for (let k = 0; k < this.w.victimsPerRound; k++) {
      const v = this.w.honestUp(this.env.rng);
      if (v === undefined) continue;
      this.claim(v, epoch);
      this.junk(v, epoch);
    }
  }

  private claim(v: number, epoch: number): void {
    const honest = this.w.viewsOf(v).filter((p) => p !== this.id);
    if (honest.length === 0) return;
    const peer = honest[this.env.rng.int(honest.length)]!;
    if (this.w.holdsGenuine(v, peer)) {
      const set = this.contested.get(v) ?? new Set<number>();
      this.contested.set(v, set.add(peer));
    }
    const list = this.claimed.get(v) ?? [];
    if (!list.includes(peer)) {
      list.push(peer);
      if (list.length > MAX_CLAIMS_PER_VICTIM) list.shift();
      this.claimed.set(v, list);
    }
    const frame = this.auth.seal({
      epoch,
      sender: peer,
      body: { kind: 'digest', reply: false, probe: true, epoch, ids: [] },
    });
    if (frame !== undefined && this.env.send(v, frame)) this.stats.claims++;
  }

  private junk(v: number, epoch: number): void {
    const garbage = Uint8Array.from({ length: 64 + this.env.rng.int(200) }, () => this.env.rng.int(256));
    const real = epoch > 0 ? this.w.partFor(epoch, v) : undefined;
    const rekey: Item | undefined =
      real === undefined ? undefined : { ...real, payload: garbage, bytes: garbage.length };
    const data: Item = {
      id: dataId(CORE_ORIGIN, this.w.nextCoreSeq()),
      epoch,
      scopeStart: 0,
      scopeEnd: WHOLE_GROUP_END,
      bytes: garbage.length,
      payload: garbage,
    };
    for (const item of rekey === undefined ? [data] : [rekey, data]) {
      this.push(v, item, epoch);
      this.stats.invalid++;
    }
  }

  /** One eager push (hop 1, as a relay leaf's) of `item` to `v`, MAC'd under `macEpoch`, from our own id. */
  private push(v: number, item: Item, macEpoch: number): void {
    const frame = this.auth.seal({
      epoch: macEpoch,
      sender: this.id,
      body: { kind: 'push', hop: 1, items: [item] },
    });
    if (frame !== undefined) this.env.send(v, frame);
  }

  /** An insider holds every key a member holds: the current epoch's and those before. */
  private holdKeys(): void {
    const e = this.w.coreEpoch();
    for (let k = Math.max(0, e - 3); k <= e; k++)
      if (!this.auth.holds(k)) this.auth.install(k, this.w.groupKeyOf(k));
  }
}
