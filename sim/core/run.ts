/**
 * One simulation run of the core group: n members over the simulated network with a random
 * fault plan, continuous multicast traffic, then a quiet period; returns the checkers' verdict.
 * Everything derives from the seed, so `npm run sim -- core --seed S` replays a run exactly.
 */

import type { CipherSuite } from '../../crypto/index.js';
import {
  DEFAULT_STACK_CONFIG,
  GroupMember,
  incarnationOf,
  memberKey,
  nameOf,
} from '../../core-group/index.js';
import type { CoreKeyConfig, SealedInfo } from '../../core-group/index.js';
import type { GroupMember as Member } from '../../core-group/index.js';
import { applyFaultPlan, planFaults, Rng, Simulator } from '../../net/sim/index.js';
import type { FaultPlan, NodeEnv } from '../../net/sim/index.js';
import { SimApp } from './app.js';
import { KeyKnowledge } from './secrecy.js';
import type { Violation } from './checkers.js';
import { checkRun } from './checkers.js';
import type { RunLog } from './log.js';
import { DurabilityLedger, newDisk } from './durability.js';
import type { SimDisk } from './durability.js';

/** Incarnations: the simulator's restart counter in the high bits, rejoins in the low bits. */
const INCARNATION_STRIDE = 1 << 20;
/** Stated liveness bound: all connected members share one view this long after faults stop. */
export const LIVENESS_BOUND_MS = 6_000;
const POLL_MS = 50;
/** How long a converged run keeps running before it stops (the view must hold meanwhile). */
const HOLD_MS = 300;

export interface CoreRunOptions {
  readonly seed: number;
  /** Group size; default drawn from the seed (mostly small). */
  readonly n?: number;
  /** Faults happen in [0, quietAtMs); default drawn from the seed. */
  readonly quietAtMs?: number;
  readonly faults?: boolean;
  /** Mean gap between a member's multicasts, ms. */
  readonly trafficGapMs?: number;
  /** Core keys on, with this suite (real crypto; randomness drawn from the seed, so runs replay). */
  readonly keys?: CipherSuite;
  /** Keys on: also check forward/backward secrecy by key closure (costly: ~1 s per run). */
  readonly secrecy?: boolean;
  /** Keys on: pairwise offers live 4 s instead of 1 h (renewal races in every run). */
  readonly renewals?: boolean;
  /** Keys on: periodic refresh interval (default 1000 ms). */
  readonly refreshMs?: number;
  /** Keep this many trace lines for printing (0 = hash only). */
  readonly traceRing?: number;
  /**
   * Replaces the seed's random fault plan by a scenario for n members (e.g. `restartPlan`). A
   * scenario's only faults are its own, so any member excluded while alive fails the run.
   */
  readonly plan?: (n: number) => FaultPlan;
  /**
   * Random plans: probability that the whole group also goes down at once (every member
   * crashes, then they restart from their durable state one by one). Default 1/3, drawn from
   * its own fork of the seed.
   */
  readonly outageChance?: number;
  /**
   * Storage fault (issue 19, not in CI): probability that a restarting node comes back with the
   * durable state it had at its previous restart instead of its last one (a rolled-back disk).
   * The design does not tolerate it; the checkers show what it breaks.
   */
  readonly staleDisks?: number;
}

/**
 * A whole-group outage added to a random plan: at a time drawn from the seed every member
 * crashes; each restarts 50-450 ms later (from its durable state), before the quiet point.
 */
export function outageActions(rng: Rng, n: number, quietAtMs: number): FaultPlan['actions'] {
  const at = 300 + rng.int(Math.max(1, quietAtMs - 800));
  const down = Array.from({ length: n }, (_, node) => ({ at, kind: 'crash' as const, node }));
  const up = Array.from({ length: n }, (_, node) => ({
    at: Math.min(quietAtMs - 1, at + 50 + rng.int(400)),
    kind: 'restart' as const,
    node,
  }));
  return [...down, ...up];
}

/**
 * A scenario: member n−1 crashes at `crashAtMs` and restarts as a new process (a new incarnation,
 * every key forgotten but its identity key) at `restartAtMs`, then merges back into the others'
 * keyed view. Its links are slow and jittery (`slowMs`) from the restart on, so that it installs
 * the merged view well after the others while its frames from before the merge are still in
 * flight. No other fault.
 */
export function restartPlan(n: number, slowMs = 40, crashAtMs = 1_000, restartAtMs = 1_800): FaultPlan {
  const r = n - 1;
  const slow = { latencyMs: slowMs, jitterMs: slowMs };
  return {
    quietAtMs: restartAtMs,
    actions: [
      { at: crashAtMs, kind: 'crash', node: r },
      ...Array.from({ length: r }, (_, i) => [
        { at: restartAtMs, kind: 'link' as const, from: r, to: i, params: slow },
        { at: restartAtMs, kind: 'link' as const, from: i, to: r, params: slow },
      ]).flat(),
      { at: restartAtMs, kind: 'restart', node: r },
    ],
  };
}

export interface CoreRunResult {
  readonly seed: number;
  readonly n: number;
  readonly violations: readonly Violation[];
  readonly viewsInstalled: number;
  readonly messagesDelivered: number;
  readonly virtualMs: number;
  readonly wallMs: number;
  readonly traceHash: string;
  readonly plan: FaultPlan;
  /** Time from quiet to the last view install among the survivors. */
  readonly convergeMs: number;
  /** Coverage: primary views installed, state transfers, rejoins after exclusion, resent and dropped unordered messages. */
  readonly primaryViews: number;
  readonly stateTransfers: number;
  /** Changes acknowledged by a majority of their primary view (the durability checker's input). */
  readonly acknowledged: number;
  /** A whole-group outage was part of the plan. */
  readonly outage: boolean;
  /** Restarts that came back with an older disk (`staleDisks`). */
  readonly staleRestarts: number;
  readonly rejoins: number;
  readonly resent: number;
  readonly droppedUnordered: number;
  /** Largest number of messages any member retained, and the bound it must stay under. */
  readonly maxRetained: number;
  readonly retainBound: number;
  /** Keys on: rekeys committed (summed over members), refreshes, aborted sessions. */
  readonly rekeys: number;
  readonly refreshes: number;
  readonly rekeyAborts: number;
  /** Keys on: frames sealed under a core key / a pairwise key, and frames dropped by the secure link. */
  readonly sealedCore: number;
  readonly sealedPair: number;
  readonly secureDrops: number;
  readonly trace?: string;
}

function withObserver(
  cfg: CoreKeyConfig | undefined,
  observeSealed: (info: SealedInfo) => void,
): CoreKeyConfig | undefined {
  return cfg === undefined ? undefined : { ...cfg, observeSealed };
}

function drawN(rng: Rng): number {
  const r = rng.next();
  if (r < 0.6) return 3 + rng.int(3); // 3..5
  if (r < 0.9) return 6 + rng.int(4); // 6..9
  return 10 + rng.int(7); // 10..16
}

export function runCore(opts: CoreRunOptions): CoreRunResult {
  const wall0 = performance.now();
  const params = Rng.seeded(opts.seed).fork('core-params');
  const drawnN = drawN(params); // drawn even when overridden, so the other draws do not shift
  const n = opts.n ?? drawnN;
  const drawnQuietAtMs = 1_500 + params.int(2_000);
  const scenario = opts.plan?.(n);
  const quietAtMs = scenario?.quietAtMs ?? opts.quietAtMs ?? drawnQuietAtMs;
  const trafficGapMs = opts.trafficGapMs ?? 20 + params.int(60);
  const endMs = quietAtMs + LIVENESS_BOUND_MS + 500;
  const sim = new Simulator<Uint8Array>({
    seed: opts.seed,
    link: { latencyMs: 1 + params.int(4), jitterMs: 2 },
    traceRing: opts.traceRing ?? 0,
  });
  const names = Array.from({ length: n }, (_, i) => `m${i}`);
  const idOf = new Map(names.map((name, i) => [name, i]));
  const founders = names.map((name) => memberKey(name, INCARNATION_STRIDE));
  const keysOn = opts.keys !== undefined;
  const identity = Rng.seeded(opts.seed).fork('identity');
  const seeds = names.map((name) => identity.fork(name).bytes(32));
  const verifyKeys = new Map(
    keysOn ? names.map((name, i) => [name, opts.keys!.ed25519PublicKey(seeds[i]!)] as const) : [],
  );
  const keyConfig = (node: number, incarnation: number): CoreKeyConfig | undefined => {
    if (opts.keys === undefined) return undefined;
    const rng = Rng.seeded(opts.seed).fork('keys').fork(`${node}/${incarnation}`);
    // The real suite with the seed's randomness: fresh keys replay with the seed.
    const suite: CipherSuite = Object.create(opts.keys, {
      randomBytes: { value: (len: number) => rng.bytes(len) },
    }) as CipherSuite;
    return {
      suite,
      identitySeed: seeds[node]!,
      verifyKeyOf: (name) => verifyKeys.get(name),
      random: () => rng.next(),
      refreshMs: opts.refreshMs ?? 1_000,
      // `renewals`: short pairwise lifetimes, so that renewals (and peers holding a stale offer)
      // happen several times per run rather than once an hour.
      ...(opts.renewals === true
        ? { pairwiseLifetimeMs: 4_000, pairwiseRenewBeforeMs: 1_500, pairwiseJitterMs: 1_000 }
        : {}),
    };
  };
  const knowledge = keysOn && opts.secrecy === true ? new KeyKnowledge(opts.keys!) : undefined;
  const log: RunLog = {
    keysOn,
    keyHolders: new Map(),
    members: new Map(),
    aliveAtEnd: [],
    quietAtMs,
    endMs,
    livenessBoundMs: LIVENESS_BOUND_MS,
  };
  const current: (Member | undefined)[] = new Array(n).fill(undefined);
  // What each node keeps across crashes (its app state and version, the stack's knowledge).
  const disks: SimDisk[] = Array.from({ length: n }, () => newDisk());
  const ledger = new DurabilityLedger();
  const everyone: { member: Member; app: SimApp }[] = [];
  // nakack keeps ≤ window messages per sender, plus the sequencer's ORDER records (≤ one per
  // other sender's windowful): a slow member must not make anyone's memory grow past this.
  const retainBound = 2 * n * DEFAULT_STACK_CONFIG.nakack.windowMsgs;
  let maxRetained = 0;
  const errors: Violation[] = [];
  let trafficViolations = 0;
  const trafficViolation = (detail: string): void => {
    if (trafficViolations++ < 5) errors.push({ property: 'traffic-keys', detail });
  };

  const previous: (SimDisk | undefined)[] = new Array(n).fill(undefined);
  const staleRng = Rng.seeded(opts.seed).fork('stale-disks');
  let staleRestarts = 0;
  const factory = (env: NodeEnv<Uint8Array>) => {
    const disk = disks[env.id]!;
    if (env.incarnation > 0) {
      const old = previous[env.id];
      previous[env.id] = { ...disk };
      if (old !== undefined && staleRng.next() < (opts.staleDisks ?? 0)) {
        Object.assign(disk, old);
        staleRestarts++;
      }
    }
    const app = new SimApp(log, env.id, () => env.now(), disk, ledger);
    const keys = withObserver(keyConfig(env.id, env.incarnation), (info) => {
      // traffic-keys: a frame sealed under a core key goes to a member that committed that key,
      // and every member that holds it is in the sender's view (else a departed one could read).
      if (info.kind !== 'core') return;
      const holders = log.keyHolders.get(info.keyId);
      const view = member.view;
      const to = view.members.find((m) => nameOf(m) === info.to);
      if (holders === undefined || to === undefined || !holders.has(to))
        trafficViolation(
          `${member.self} sealed to ${info.to} under ${info.keyId.slice(0, 8)} it does not hold`,
        );
      else if ([...holders].some((h) => !view.members.includes(h)))
        trafficViolation(
          `${member.self} sealed under ${info.keyId.slice(0, 8)}, held outside its view ${view.id.epoch}`,
        );
    });
    if (keys !== undefined && knowledge !== undefined) {
      (keys as { observeRekey?: CoreKeyConfig['observeRekey'] }).observeRekey = (message, view) => {
        knowledge.message(message, view);
        knowledge.held(member.self, member.coreKey, member.pairwiseKeys());
      };
      const appKey = app.key.bind(app);
      app.key = (k) => {
        appKey(k);
        const st = member.coreKey!;
        knowledge.held(member.self, st, member.pairwiseKeys());
        knowledge.commit(st.groupKey, `${member.view.id.epoch}@${member.view.id.coord}`, member.view.members);
      };
    }
    const member = new GroupMember(
      {
        ...(keys !== undefined ? { keys } : {}),
        name: names[env.id]!,
        incarnation: (env.incarnation + 1) * INCARNATION_STRIDE,
        founders,
        peers: names,
        config: DEFAULT_STACK_CONFIG,
        memory: {
          load: () => disk.knowledge,
          save: (k) => void (disk.knowledge = k),
        },
      },
      { now: () => env.now(), send: (toName, bytes) => void env.send(idOf.get(toName)!, bytes) },
      app,
    );
    current[env.id] = member;
    everyone.push({ member, app });
    const guard = (what: string, fn: () => void): void => {
      try {
        fn();
      } catch (e) {
        errors.push({
          property: 'exception',
          detail: `${member.self} at ${env.now()} in ${what}: ${(e as Error).stack}`,
        });
        sim.stop();
      }
    };
    guard('start', () => member.start());
    const tick = (): void => {
      guard('tick', () => member.tick());
      const retained = member.retained;
      if (retained > maxRetained) {
        maxRetained = retained;
        if (retained > retainBound) {
          errors.push({
            property: 'bounded-memory',
            detail: `${member.self} retains ${retained} > ${retainBound} messages`,
          });
        }
      }
      env.setTimer(member.tickMs, tick);
    };
    env.setTimer(env.rng.int(member.tickMs), tick);
    const traffic = (): void => {
      guard('traffic', () => {
        const r = env.rng.next();
        if (r < 0.1) {
          const others = member.view.members.filter((m) => m !== member.self);
          if (others.length > 0) {
            const u = app.nextUnicast(env.rng.bytes(env.rng.int(32)));
            if (member.send(env.rng.pick(others), u.payload)) u.commit();
          }
        } else {
          const channel = r < 0.55 ? 'ordered' : 'fifo';
          const m = app.nextMulticast(channel, env.rng.bytes(env.rng.int(48)));
          if (member.multicast(channel, m.payload)) m.commit();
        }
      });
      env.setTimer(env.rng.exp(trafficGapMs), traffic);
    };
    env.setTimer(env.rng.int(trafficGapMs), traffic);
    return { onMessage: (_from: number, msg: Uint8Array) => guard('receive', () => member.receive(msg)) };
  };
  for (let i = 0; i < n; i++) sim.addNode(factory);

  const outageRng = Rng.seeded(opts.seed).fork('outage');
  const outage = outageRng.next() < (opts.outageChance ?? 1 / 3);
  const random =
    scenario !== undefined || opts.faults === false
      ? undefined
      : planFaults(sim.forkRng('faults'), {
          nodes: n,
          startMs: 200,
          quietAtMs,
          meanGapMs: 250,
          minEpisodeMs: 100,
          maxEpisodeMs: 1_500,
          weights: {
            crash: 2,
            pause: 2,
            isolate: 1,
            split: 1,
            groups: 1,
            asymmetric: 1,
            lossy: 2,
            slowLink: 1,
          },
          maxLoss: 0.2,
        });
  const plan: FaultPlan =
    scenario !== undefined
      ? scenario
      : random === undefined
        ? { quietAtMs, actions: [] }
        : outage
          ? { ...random, actions: [...random.actions, ...outageActions(outageRng, n, quietAtMs)] }
          : random;
  applyFaultPlan(sim, plan);
  // After the quiet point, poll for convergence; once there, run a little longer (to see it hold)
  // and stop. A run that never converges goes on to the liveness deadline and fails there.
  const aliveKeys = (): string[] => {
    const keys: string[] = [];
    for (let i = 0; i < n; i++)
      if (sim.isUp(i) && !sim.isPaused(i) && current[i]) keys.push(current[i]!.self);
    return keys;
  };
  const converged = (): boolean => {
    const keys = aliveKeys();
    const v = current.find((m, i) => m && sim.isUp(i))?.view;
    if (!v || v.members.length !== keys.length) return false;
    const set = new Set(keys);
    if (v.members.some((k) => !set.has(k))) return false;
    return current.every(
      (m, i) =>
        !sim.isUp(i) || (m!.view.id.epoch === v.id.epoch && m!.view.id.coord === v.id.coord && !m!.blocked),
    );
  };
  let convergedSince = -1;
  const poll = (): void => {
    if (!converged()) convergedSince = -1;
    else if (convergedSince < 0) convergedSince = sim.now;
    if (convergedSince >= 0 && sim.now - convergedSince >= HOLD_MS) sim.stop();
    else sim.after(POLL_MS, poll);
  };
  // Just after the plan's last actions (restarts and resumes happen at quietAtMs).
  sim.schedule(quietAtMs + 1, poll);
  sim.runUntil(endMs);

  const alive = aliveKeys();
  const finalLog: RunLog = { ...log, aliveAtEnd: alive };
  const violations = [...errors, ...checkRun(finalLog), ...ledger.violations];
  if (knowledge !== undefined) {
    for (const { member } of everyone) knowledge.held(member.self, member.coreKey, member.pairwiseKeys());
    let secrecyViolations = 0;
    knowledge.check((property, detail) => {
      if (secrecyViolations++ < 5) violations.push({ property, detail });
    });
  }
  for (const { member } of everyone) {
    const st = member.rekeyStats;
    if (st !== undefined && st.errors > 0)
      violations.push({
        property: 'key-agreement',
        detail: `${member.self}: core-tree refused ${st.errors} message(s); last: ${member.rekeyError}`,
      });
  }
  if (scenario !== undefined) {
    // A restarted process merges back once and stays (the founders' start-up race, in which a
    // losing coordinator may be excluded and rejoin, is the random suite's business).
    for (const { member } of everyone)
      if (incarnationOf(member.self) >= 2 * INCARNATION_STRIDE && member.stats.rejoins > 0)
        violations.push({
          property: 'liveness',
          detail: `${member.self}: a restarted process was excluded while alive ${member.stats.rejoins} time(s)`,
        });
  }
  let views = 0;
  let delivered = 0;
  let lastInstall = quietAtMs;
  for (const m of log.members.values()) {
    views += m.views.length;
    delivered += m.delivered.length;
  }
  let primaryViews = 0;
  for (const m of log.members.values()) primaryViews += m.views.filter((v) => v.primary).length;
  const sum = (f: (e: { member: Member; app: SimApp }) => number): number =>
    everyone.reduce((a, e) => a + f(e), 0);
  for (const k of alive) lastInstall = Math.max(lastInstall, log.members.get(k)?.views.at(-1)?.t ?? 0);
  return {
    seed: opts.seed,
    n,
    violations,
    viewsInstalled: views,
    messagesDelivered: delivered,
    virtualMs: sim.now,
    wallMs: performance.now() - wall0,
    traceHash: sim.traceHash(),
    plan,
    convergeMs: lastInstall - quietAtMs,
    primaryViews,
    stateTransfers: sum((e) => e.app.stateTransfers),
    acknowledged: ledger.acknowledged,
    staleRestarts,
    outage: scenario === undefined && random !== undefined && outage,
    rejoins: sum((e) => e.member.stats.rejoins),
    resent: sum((e) => e.member.stats.resent),
    droppedUnordered: sum((e) => e.member.stats.droppedUnordered),
    maxRetained,
    retainBound,
    rekeys: sum((e) => e.member.rekeyStats?.rekeysCommitted ?? 0),
    refreshes: sum((e) => e.member.rekeyStats?.refreshes ?? 0),
    rekeyAborts: sum((e) => e.member.rekeyStats?.rekeysAborted ?? 0),
    sealedCore: sum((e) => e.member.secureStats?.sealedCore ?? 0),
    sealedPair: sum((e) => e.member.secureStats?.sealedPair ?? 0),
    secureDrops: sum((e) => {
      const st = e.member.secureStats;
      return st === undefined ? 0 : st.unknownKey + st.staleKey + st.replays + st.forged + st.plaintext;
    }),
    ...(opts.traceRing ? { trace: sim.traceText() } : {}),
  };
}
