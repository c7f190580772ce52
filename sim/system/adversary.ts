/**
 * Adversarial leaves of the system simulation (issue 19 item 4): "mallory", an admitted leaf with
 * a valid certificate, on its own simulated TLS link to the real LeafEdge, sending RAW frames
 * from a seeded script — no LeafSession, no keys:
 *   flood     catch-up requests for its own path and for foreign slots, far above its budget
 *   replays   lease renewals (its own old ones, and a silent victim's captured on the wire), its
 *             old join, a welcome it was sent (back to the server), and after every re-link the
 *             previous link's frames
 *   garbage   malformed (random, truncated) and oversize frames
 * When the server closes its link (a flood, a malformed frame), it links again to the same server.
 *
 * AttackWatch judges what the edges sent mallory, tapped at the server host's link send (the
 * edge's reply effects, whether or not the network delivers them):
 *   foreign path    every rekey part (live push or catch-up reply) lies on mallory's own path: its
 *                   slot is followed from each welcome through the parts that cover it, with
 *                   keytree's addressing (part (level, index) covers slot s when
 *                   ⌊s / arity^level⌋ = index; a moved part covers the slot it moved from)
 *   request budget  catch-up replies per server incarnation ≤ burst + perSec × elapsed (the
 *                   per-leaf limiter's bound: each one took a token)
 * run.ts checks the rest (the attacked server stays primary, the victim is evicted).
 */
import {
  DEFAULT_LEAF_REQUEST_LIMITS,
  MAX_LEAF_FRAME_BYTES,
  decodeLeafFrame,
  encodeLeafFrame,
  type LeafFrame,
  type RekeyPush,
} from '../../gossip-edge/index.js';
import { decodeHeader, decodePart, decodeWelcome, span } from '../../keytree/index.js';
import { Rng, type NodeEnv, type NodeHandlers, type TimerHandle } from '../../net/sim/index.js';
import type { SystemLedger } from './ledger.js';
import type { SystemMessage } from './messages.js';

/** The flood's pace: frames per tick (10 ms): 800 a second, 40 times an honest leaf's request budget. */
const BURST_PER_TICK = 8;
const TICK_MS = 10;
/** A malformed or oversize frame every ~0.7 s (each one ends the link). */
const GARBAGE_PER_TICK = 0.015;
/** A link not welcomed within this long (a server outside the primary view refuses joins) is dropped. */
const WELCOME_WAIT_MS = 1_500;
/** Frames of the previous link replayed after a re-link. */
const REPLAYED_AFTER_RELINK = 8;
/** Frames remembered of the current link (for that replay). */
const REMEMBERED_FRAMES = 32;

export const malloryName = (a: number): string => `mallory-${a}`;

/** What the attack does, drawn by the driver (run.ts) from the seed. */
export interface AttackScript {
  /** The server mallory links to (and re-links to). */
  readonly server: number;
  /** Virtual ms: the first link, and the end of the flood (then mallory goes silent). */
  readonly fromMs: number;
  readonly untilMs: number;
  /** The victim's last lease renewal seen on the wire, if any (replayed on mallory's link). */
  victimRenewal(): Uint8Array | undefined;
}

export interface AdversaryWorld {
  readonly seed: number;
  /** Link numbers are unique in the run. */
  nextLink(): number;
  fail(detail: string): void;
}

/** What the driver reads and does of an adversary node. */
export interface AdversaryHandle {
  readonly name: string;
  attack(script: AttackScript): void;
  /** Frames sent, links opened, welcomes received. */
  readonly stats: { frames: number; links: number; welcomes: number };
}

export function adversaryNode(
  w: AdversaryWorld,
  env: NodeEnv<SystemMessage>,
  a: number,
  handles: Map<number, AdversaryHandle>,
): NodeHandlers<SystemMessage> {
  const rng = Rng.seeded(w.seed).fork('adversary-script').fork(`${a}/${env.incarnation}`);
  let script: AttackScript | undefined;
  let link: { no: number; server: number; up: boolean; sent: number } | undefined;
  /** Frames sent on the current link, and on the previous one (replayed after a re-link). */
  let current: Uint8Array[] = [];
  let previous: Uint8Array[] = [];
  /** From the newest welcome: what the flood aims at. */
  let own:
    | {
        readonly admittedEpoch: number;
        /** The epoch and slot of the admission's first welcome: catch-ups reach back to it. */
        readonly firstEpoch: number;
        readonly firstSlot: number;
        readonly arity: number;
        readonly height: number;
      }
    | undefined;
  const welcomes: Uint8Array[] = [];
  /** The link a welcome came on last. */
  let welcomedOn = -1;
  let tick: TimerHandle | undefined;
  const stats = { frames: 0, links: 0, welcomes: 0 };

  const guard = (fn: () => void): void => {
    try {
      fn();
    } catch (e) {
      w.fail(`${malloryName(a)} at ${env.now()} ms: ${(e as Error).stack}`);
    }
  };
  const attacking = (): boolean => script !== undefined && env.now() < script.untilMs;
  /** Writes `frames` at once (one simulated TLS record); the first `remember` are replayed after a re-link. */
  const send = (frames: readonly Uint8Array[], remember = frames.length): void => {
    if (link?.up !== true || frames.length === 0) return;
    stats.frames += frames.length;
    const seq = link.sent++;
    env.send(
      link.server,
      frames.length === 1
        ? { kind: 'frame', link: link.no, seq, bytes: frames[0]! }
        : { kind: 'frames', link: link.no, seq, frames },
    );
    current.push(...frames.slice(0, remember));
    if (current.length > REMEMBERED_FRAMES) current.splice(0, current.length - REMEMBERED_FRAMES);
  };
  const openLink = (): void => {
    if (!attacking() || link !== undefined) return;
    const no = w.nextLink();
    link = { no, server: script!.server, up: false, sent: 0 };
    stats.links++;
    if (current.length > 0) previous = current;
    current = [];
    env.send(link.server, { kind: 'open', link: no });
    // A handshake nobody answers (a crashed or cut server) is abandoned.
    env.setTimer(1_000, () =>
      guard(() => {
        if (link?.no === no && !link.up) linkGone();
      }),
    );
  };
  const linkGone = (): void => {
    link = undefined;
    if (attacking()) env.setTimer(50 + rng.int(100), () => guard(openLink));
  };

  /** One frame of the script. */
  const nextFrame = (): Uint8Array | undefined => {
    const o = own!;
    const r = rng.next();
    if (r < 0.5) return encodeLeafFrame('catchUpRequest', { fromEpoch: o.firstEpoch + 1, slot: o.firstSlot });
    if (r < 0.8) {
      // Someone else's slot (anywhere in the tree), from its admission's epoch or from the oldest.
      const slot = rng.int(span(o.arity, o.height));
      return encodeLeafFrame('catchUpRequest', { fromEpoch: rng.next() < 0.8 ? o.firstEpoch + 1 : 1, slot });
    }
    if (r < 0.88) return encodeLeafFrame('leaseRenew', { seq: rng.int(4) });
    if (r < 0.96) return script!.victimRenewal();
    if (r < 0.98) return welcomes.length > 0 ? welcomes[rng.int(welcomes.length)] : undefined;
    return encodeLeafFrame('join', {
      resume: { admittedEpoch: o.admittedEpoch, epoch: o.firstEpoch },
      crlNumber: undefined,
    });
  };
  /** Now and then, garbage (the server closes the link for it). */
  const garbage = (): Uint8Array => {
    const o = own!;
    if (rng.next() < 0.9) {
      // Random bytes, or a valid frame cut short or with a byte flipped.
      const base = encodeLeafFrame('catchUpRequest', { fromEpoch: o.firstEpoch + 1, slot: o.firstSlot });
      const kind = rng.int(3);
      if (kind === 0) return rng.bytes(1 + rng.int(64));
      if (kind === 1) return base.subarray(0, rng.int(base.length));
      const flipped = base.slice();
      flipped[rng.int(flipped.length)]! ^= 1 + rng.int(255);
      return flipped;
    }
    // Oversize: a frame header claiming more than the protocol's bound, and the bytes to match.
    const big = new Uint8Array(MAX_LEAF_FRAME_BYTES + 1 + rng.int(1024));
    big.set(encodeLeafFrame('catchUpRequest', { fromEpoch: 1, slot: 0 }));
    return big;
  };
  const flood = (): void => {
    tick = undefined;
    if (!attacking()) return;
    if (link?.up === true && own !== undefined) {
      const burst: Uint8Array[] = [];
      for (let k = 0; k < BURST_PER_TICK; k++) {
        const f = nextFrame();
        if (f !== undefined) burst.push(f);
      }
      // One record per tick: separate records sent at once could overtake each other on the
      // simulated network, which the host at the server takes for a broken link.
      const remembered = burst.length;
      if (rng.next() < GARBAGE_PER_TICK) burst.push(garbage());
      send(burst, remembered);
    }
    tick = env.setTimer(TICK_MS, () => guard(flood));
  };

  const handle: AdversaryHandle = {
    name: malloryName(a),
    attack: (s) => {
      script = s;
      env.setTimer(Math.max(0, s.fromMs - env.now()), () => guard(openLink));
    },
    stats,
  };
  handles.set(env.id, handle);

  return {
    onMessage: (from, msg) =>
      guard(() => {
        if (link === undefined || from !== link.server || !('link' in msg) || msg.link !== link.no) return;
        switch (msg.kind) {
          case 'accept': {
            if (link.up) return;
            link.up = true;
            {
              const no = link.no;
              env.setTimer(WELCOME_WAIT_MS, () =>
                guard(() => {
                  if (link?.no !== no || welcomedOn === no) return;
                  env.send(link.server, { kind: 'close', link: no });
                  linkGone();
                }),
              );
            }
            // Its join (resuming its admission if it has one), then the previous link's frames.
            const join = encodeLeafFrame('join', {
              resume:
                own === undefined ? undefined : { admittedEpoch: own.admittedEpoch, epoch: own.firstEpoch },
              crlNumber: undefined,
            });
            send([join, ...previous.slice(0, REPLAYED_AFTER_RELINK)], 1);
            if (tick === undefined) flood();
            return;
          }
          case 'frame': {
            // Raw: every frame is read, in whatever order the network brings them.
            if (!link.up) return;
            const f = decodeLeafFrame(msg.bytes);
            if (f.type === 'welcome') {
              const wel = decodeWelcome(f.body.welcome);
              welcomedOn = link.no;
              if (own?.admittedEpoch !== f.body.admittedEpoch)
                own = {
                  admittedEpoch: f.body.admittedEpoch,
                  firstEpoch: wel.epoch,
                  firstSlot: wel.slot,
                  arity: wel.arity,
                  height: wel.height,
                };
              stats.welcomes++;
              if (welcomes.length < 4) welcomes.push(msg.bytes);
            }
            return;
          }
          case 'close':
            return linkGone();
          default:
            return;
        }
      }),
  };
}

/** One server incarnation's catch-up replies to one adversary (the request budget's check). */
interface Replies {
  count: number;
  reported: boolean;
  firstMs: number;
  lastMs: number;
}

/** The checks on what the edges sent an adversary (see the header). */
export class AttackWatch {
  /** Per adversary node: the slot it holds before each epoch (from its newest welcome on). */
  private readonly slotBefore = new Map<number, Map<number, number>>();
  private readonly admission = new Map<number, number>();
  private readonly replies = new Map<string, Replies>();
  partsJudged = 0;
  partsUnjudged = 0;
  catchUpReplies = 0;
  foreignRefusals = 0;

  constructor(
    private readonly ledger: SystemLedger,
    private readonly names: ReadonlyMap<number, string>,
  ) {}

  isAdversary(node: number): boolean {
    return this.names.has(node);
  }

  /** The host of `server` (incarnation `incarnation`) wrote `bytes` to adversary `node`'s link at virtual `t`. */
  sent(server: string, incarnation: number, node: number, bytes: Uint8Array, t: number): void {
    const name = this.names.get(node);
    if (name === undefined) return;
    const f: LeafFrame = decodeLeafFrame(bytes); // the edge's own encoding: it decodes
    if (f.type === 'welcome') {
      // A new admission starts a new path; a re-welcome of the same one adds a point to it.
      const wel = decodeWelcome(f.body.welcome);
      const known = this.admission.get(node) === f.body.admittedEpoch ? this.slotBefore.get(node) : undefined;
      if (known === undefined) this.slotBefore.set(node, new Map([[wel.epoch + 1, wel.slot]]));
      else known.set(wel.epoch + 1, wel.slot);
      this.admission.set(node, f.body.admittedEpoch);
    } else if (f.type === 'rekeyPush') this.judge(node, name, f.body);
    else if (f.type === 'catchUpReply') {
      this.catchUpReplies++;
      if (f.body.rejoin && f.body.pushes.length === 0) this.foreignRefusals++;
      for (const p of f.body.pushes) this.judge(node, name, p);
      const key = `${server}/${incarnation}`;
      const r = this.replies.get(key) ?? { count: 0, reported: false, firstMs: t, lastMs: t };
      r.count++;
      r.lastMs = t;
      this.replies.set(key, r);
      const { perSec, burst } = DEFAULT_LEAF_REQUEST_LIMITS;
      if (!r.reported && r.count > burst + 1 + (perSec * (r.lastMs - r.firstMs)) / 1000) {
        r.reported = true;
        this.ledger.violation(
          'adversary',
          `${server} sent ${name} ${r.count} catch-up replies in ${Math.round(r.lastMs - r.firstMs)} ms: over its request budget (${perSec}/s, burst ${burst})`,
        );
      }
    }
  }

  /** Every part of `push` must cover the slot `node` holds before its epoch. */
  private judge(node: number, name: string, push: RekeyPush): void {
    const slots = this.slotBefore.get(node);
    for (const bytes of push.parts) {
      const part = decodePart(bytes);
      const slot = slots?.get(part.epoch);
      if (slots === undefined || slot === undefined) {
        this.partsUnjudged++;
        continue;
      }
      this.partsJudged++;
      const covers =
        part.movedFrom !== undefined
          ? part.movedFrom === slot
          : Math.floor(slot / span(decodeHeader(push.header).arity, part.level)) === part.index;
      if (!covers) {
        this.ledger.violation(
          'secrecy',
          `${name} was sent part (${part.level}, ${part.index}) of epoch ${part.epoch}: not on its path (slot ${slot})`,
        );
        continue;
      }
      slots.set(part.epoch + 1, part.movedFrom !== undefined ? part.index : slot);
      slots.delete(part.epoch - 256); // bounded: catch-up replies reach back 64 epochs
    }
  }
}
