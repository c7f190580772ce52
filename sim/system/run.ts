/**
 * One run of the whole system on the simulator (issue 19 item 4): the world of world.ts (3–5
 * core servers hosting the real stack and leaf plane, leaves hosting the real LeafSession), a
 * workload and a fault plan drawn from the seed, then a quiet period; the checkers of ledger.ts
 * judge it. `npm run sim -- system --seed S` replays a run exactly.
 */
import type { CipherSuite } from '../../crypto/index.js';
import { applyFaultPlan, planFaults, Rng } from '../../net/sim/index.js';
import type { FaultPlan } from '../../net/sim/index.js';
import { groupKeyId, type SystemViolation } from './ledger.js';
import { serverName } from './messages.js';
import type { ServerHandle } from './server-node.js';
import { buildSystemWorld } from './world.js';
import {
  planAttack,
  planLeafCuts,
  planStorageFaults,
  planServerRevocation,
  type LeafCutPlan,
  type ServerRevocationPlan,
  type StorageFaultPlan,
} from './scenarios.js';

/** After the quiet point every leaf is welcomed on a primary server holding the group's key within this. */
export const SYSTEM_SETTLE_MS = 15_000;
const POLL_MS = 200;
/** A converged run keeps running this long (the agreement must hold) before it stops. */
const HOLD_MS = 600;
const LEASE_MS = 3_000;
const LEAF_KEY_REFRESH_MS = 4_000;

export interface SystemRunOptions {
  readonly seed: number;
  readonly suite: CipherSuite;
  readonly servers?: number;
  readonly leaves?: number;
  readonly faults?: boolean;
  /**
   * An adversarial leaf (adversary.ts) floods one server with catch-ups, replays and garbage
   * while a victim leaf goes silent for longer than its lease (default: off; it triples a run's
   * wall time: `--adversary`).
   */
  readonly adversary?: boolean;
  /** Per-leaf partitions (scenarios.ts planLeafCuts; default: on, `--no-leaf-cuts`; they cost ~2 % of a run's wall time). */
  readonly leafCuts?: boolean;
  /** Storage faults (scenarios.ts planStorageFaults; default: off, `--storage-faults`). */
  readonly storageFaults?: boolean;
  /** A core server revoked by the CRL (scenarios.ts planServerRevocation; default: off, `--revoke-server`). */
  readonly revokeServer?: boolean;
}

/** What the adversary did and how much of it the checkers judged. */
export interface AdversaryCoverage {
  readonly frames: number;
  readonly links: number;
  readonly welcomes: number;
  readonly catchUpReplies: number;
  /** Foreign catch-ups answered with `rejoin` and no part. */
  readonly foreignRefusals: number;
  /** Parts sent to the adversary checked against its path (unjudged: before its first welcome's epoch). */
  readonly partsJudged: number;
  readonly partsUnjudged: number;
  /** Whether the attacked server's view and the victim's eviction were checked (a window free of faults). */
  readonly primaryChecked: boolean;
  readonly victimChecked: boolean;
}

export interface SystemRunResult {
  readonly seed: number;
  readonly servers: number;
  readonly leaves: number;
  readonly violations: readonly SystemViolation[];
  readonly plan: FaultPlan;
  readonly quietAtMs: number;
  /** Virtual time from quiet to agreement (−1: never). */
  readonly convergeMs: number;
  readonly virtualMs: number;
  readonly wallMs: number;
  readonly traceHash: string;
  /** Coverage: batches applied (summed over replicas), admissions welcomed, keys the leaves reported, evictions they were told, revokes checked, crashes. */
  readonly batches: number;
  readonly admissions: number;
  readonly leafKeys: number;
  readonly evictionsTold: number;
  readonly revocations: number;
  readonly revokesChecked: number;
  readonly crashes: number;
  /** Leaf processes that crashed and started again. */
  readonly leafRestarts: number;
  readonly adversary: AdversaryCoverage | undefined;
  readonly leafCuts: LeafCutPlan | undefined;
  readonly serverRevocation: ServerRevocationPlan | undefined;
  readonly storage:
    | (StorageFaultPlan & {
        readonly stops: number;
        readonly rollbacks: number;
        /** Why a server whose disk was rolled back refused to start (it stayed down). */
        readonly startRefusals: readonly string[];
      })
    | undefined;
}

export function runSystem(opts: SystemRunOptions): SystemRunResult {
  const wall0 = performance.now();
  const { seed, suite } = opts;
  const params = Rng.seeded(seed).fork('system-params');
  const drawnServers = 3 + params.int(3);
  const drawnLeaves = 4 + params.int(9);
  const quietAtMs = 4_000 + params.int(3_000);
  const latencyMs = 1 + params.int(4);
  const S = opts.servers ?? drawnServers;
  const L = opts.leaves ?? drawnLeaves;
  const endMs = quietAtMs + SYSTEM_SETTLE_MS;
  const world = buildSystemWorld({
    seed,
    suite,
    servers: S,
    leaves: L,
    latencyMs,
    leaseMs: LEASE_MS,
    leafKeyRefreshMs: LEAF_KEY_REFRESH_MS,
    adversaries: opts.adversary === true ? 1 : 0,
    rollbackImages: opts.storageFaults === true,
  });
  const { sim, ledger } = world;
  const errors = world.errors;
  const revokedSerials = world.revokedSerials;

  // The workload: every leaf joins at a drawn time; some leave, some go silent for longer than a
  // lease, some crash and come back as a new process.
  const work = Rng.seeded(seed).fork('workload');
  const joins: number[] = [];
  const stayers: number[] = [];
  for (let i = 0; i < L; i++) {
    const node = S + i;
    const joinAt = 50 + work.int(Math.floor(quietAtMs / 2));
    joins.push(joinAt);
    const firstServer = work.int(S);
    sim.schedule(joinAt, () => world.connect(i, firstServer));
    const fate = work.next();
    const at = joinAt + 500 + work.int(quietAtMs);
    if (fate < 0.2) sim.schedule(at, () => world.leave(i));
    else if (fate < 0.35) {
      sim.schedule(at, () => sim.pause(node));
      sim.schedule(at + LEASE_MS + work.int(2 * LEASE_MS), () => sim.resume(node));
    } else if (fate < 0.45) {
      // The leaf process crashes and starts again (before its lease lapses, or after).
      sim.schedule(at, () => sim.crash(node));
      sim.schedule(at + 200 + work.int(2 * LEASE_MS), () => sim.restart(node));
    } else stayers.push(i);
  }
  // Revocations: the CRL gains a leaf's serial; every running server loads it (the plane's revoke path).
  const revocations = work.int(3);
  for (let r = 0; r < revocations; r++) {
    const at = 1_000 + work.int(quietAtMs - 1_000);
    const victim = work.int(L);
    sim.schedule(at, () => void world.revoke(victim));
  }

  const plan: FaultPlan =
    opts.faults === false
      ? { quietAtMs, actions: [] }
      : planFaults(sim.forkRng('faults'), {
          nodes: S,
          startMs: 300,
          quietAtMs,
          meanGapMs: 600,
          minEpisodeMs: 200,
          maxEpisodeMs: 2_000,
          weights: {
            crash: 3,
            pause: 1,
            isolate: 1,
            split: 2,
            groups: 1,
            asymmetric: 1,
            lossy: 1,
            slowLink: 1,
          },
          maxLoss: 0.1,
        });
  applyFaultPlan(sim, plan);
  const attack = world.adversaries > 0 ? planAttack(seed, world, plan, joins, stayers, LEASE_MS) : undefined;
  const serverRevocation =
    opts.revokeServer === true && S >= 3 ? planServerRevocation(seed, suite, world, quietAtMs) : undefined;
  const storage = opts.storageFaults === true ? planStorageFaults(seed, world, quietAtMs) : undefined;
  const leafCuts =
    opts.leafCuts !== false
      ? planLeafCuts(seed, world, plan, joins, stayers, LEASE_MS, attack?.victim)
      : undefined;

  // Agreement: the up servers share one primary view and one leaf epoch, and every leaf still in
  // the group is welcomed on one of them holding that epoch's key.
  const live = (): ServerHandle[] => world.liveServers();
  const agreement = (report: boolean): boolean => {
    const up = live();
    const primary = up.filter((h) => h.member.view.primary);
    if (primary.length === 0 || primary.length !== up.length) {
      if (report)
        ledger.violation(
          'liveness',
          `no single primary view at the end (${primary.length}/${up.length} up servers primary)`,
        );
      return false;
    }
    const ref = primary[0]!.machine;
    const refKey = ref.groupKey();
    const refKeyId = refKey === undefined ? undefined : groupKeyId(suite, refKey);
    let ok = true;
    for (const h of primary)
      if (h.machine.epoch !== ref.epoch) {
        ok = false;
        if (report)
          ledger.violation(
            'key-agreement',
            `servers of the primary view at epochs ${h.machine.epoch} and ${ref.epoch}`,
          );
      }
    for (let i = 0; i < L; i++) {
      const node = world.leafNodeId(i);
      const leaf = world.leaf(i);
      const revoked = revokedSerials.has(world.leafCert(i).serial); // refused at the handshake: never welcomed again
      if (
        !sim.isUp(node) ||
        sim.isPaused(node) ||
        leaf.state === 'left' ||
        leaf.state === 'evicted' ||
        revoked
      )
        continue;
      const s = leaf.server;
      if (
        leaf.state !== 'up' ||
        !leaf.session.welcomed ||
        s === undefined ||
        !primary.includes(world.server(s)!)
      ) {
        ok = false;
        if (report)
          ledger.violation(
            'liveness',
            `${leaf.name} not welcomed on a primary server (state ${leaf.state}, welcomed ${leaf.session.welcomed}, server ${s === undefined ? 'none' : serverName(s)}, epoch ${leaf.session.epoch})`,
          );
        continue;
      }
      const last = ledger.lastKeyOf(leaf.name);
      if (leaf.session.epoch !== ref.epoch || last?.epoch !== ref.epoch || last.keyId !== refKeyId) {
        ok = false;
        if (report)
          ledger.violation(
            'key-agreement',
            `${leaf.name} holds epoch ${leaf.session.epoch} (key ${last?.keyId}), the servers ${ref.epoch} (key ${refKeyId})`,
          );
      }
    }
    return ok;
  };
  let convergedSince = -1;
  let convergedAt = -1;
  const poll = (): void => {
    if (!agreement(false)) convergedSince = -1;
    else if (convergedSince < 0) convergedSince = sim.now;
    // A converged run stops, but not before the scenarios' checks are done.
    const scenariosEnd = Math.max(attack?.endMs ?? 0, leafCuts?.endMs ?? 0);
    if (
      convergedSince >= 0 &&
      sim.now - convergedSince >= HOLD_MS &&
      sim.now > scenariosEnd &&
      serverRevocation?.busy() !== true
    ) {
      convergedAt = convergedSince;
      sim.stop();
    } else sim.after(POLL_MS, poll);
  };
  sim.schedule(quietAtMs + 1, poll);
  sim.runUntil(endMs);

  if (errors.length === 0) {
    agreement(true);
    const ref = live().find((h) => h.member.view.primary);
    ledger.checkEnd(ref?.machine);
    serverRevocation?.check(convergedAt >= 0);
  }
  return {
    seed,
    servers: S,
    leaves: L,
    violations: [...errors, ...ledger.violations],
    plan,
    quietAtMs,
    convergeMs: convergedAt < 0 ? -1 : convergedAt - quietAtMs,
    virtualMs: sim.now,
    wallMs: performance.now() - wall0,
    traceHash: sim.traceHash(),
    batches: ledger.batchesApplied,
    admissions: ledger.admissionsSeen,
    leafKeys: ledger.leafKeysSeen,
    evictionsTold: ledger.evictionsTold,
    revocations: revokedSerials.size,
    revokesChecked: ledger.revokesChecked,
    crashes: world.crashes,
    leafRestarts: world.leafRestarts,
    leafCuts,
    serverRevocation,
    storage:
      storage === undefined
        ? undefined
        : {
            ...storage,
            stops: world.storageStops,
            rollbacks: world.rollbacks,
            startRefusals: world.startRefusals,
          },
    adversary:
      attack === undefined
        ? undefined
        : {
            ...world.adversary(0).stats,
            catchUpReplies: world.attackWatch.catchUpReplies,
            foreignRefusals: world.attackWatch.foreignRefusals,
            partsJudged: world.attackWatch.partsJudged,
            partsUnjudged: world.attackWatch.partsUnjudged,
            primaryChecked: attack.primaryChecked,
            victimChecked: attack.victimChecked,
          },
  };
}
