/**
 * Scenarios a system run may add on top of its workload and fault plan (run.ts), each drawn from
 * its own stream of the seed (the workload's and the fault plan's draws are unchanged), with the
 * checks that only they can make:
 *   attack     an adversarial leaf (adversary.ts) floods one server while a victim goes silent
 *   leaf cuts  a leaf cut from its server (both ways) and healed; a leaf cut from every server
 *              for longer than its lease (evicted, then joins again)
 *   storage    failing disk operations (the server stops and restarts), one server's disk rolled back
 *   revoked core server  the CRL revokes a core server; its tree must open nothing after the full refresh
 * A check that needs the core undisturbed runs only where the fault plan is quiet.
 */
import { Rng, type FaultPlan } from '../../net/sim/index.js';
import { serverIdentityOf, serverName } from './messages.js';
import type { SystemWorld } from './world.js';
import type { FailingOp } from '../memory-storage.js';
import type { CipherSuite } from '../../crypto/index.js';
import { decodeLeafFrame, type RekeyPush } from '../../gossip-edge/index.js';
import { LeafKeys, decodeHeader } from '../../keytree/index.js';
import { followStolenTree } from '../stolen-tree.js';
import { groupKeyId } from './ledger.js';

/** How often the attacked server's view is sampled. */
const POLL_MS = 200;

export interface AttackPlan {
  primaryChecked: boolean;
  victimChecked: boolean;
  /** The run goes on at least this long (virtual ms): the checks are due until then. */
  readonly endMs: number;
  /** The leaf that goes silent (its renewals replayed). */
  readonly victim: number | undefined;
}

/** No fault-plan action in [from, to] (a window where a fault cannot explain a view change or a late eviction). */
export function faultFree(plan: FaultPlan, from: number, to: number): boolean {
  return plan.actions.every((a) => a.at < from || a.at > to);
}

/** Before a window is judged free of faults, the core had this long to recover from the last one. */
const RECOVERY_MS = 4_000;
/** A silent victim's eviction is due within its lease plus this (renewal batching, ordering, the cut). */
const EVICTION_SLACK_MS = 3_000;

/**
 * Adversary 0's attack, drawn from the seed (its own stream: the workload's and the fault plan's
 * draws are unchanged): it links to a drawn server while a leaf that otherwise stays (the victim)
 * is welcomed, and floods it; the victim goes silent for longer than its lease meanwhile, and the
 * adversary replays the victim's renewals. Checked where the fault plan is quiet: the attacked
 * server stays in a primary view of every server, and the victim's admission is evicted.
 */
export function planAttack(
  seed: number,
  world: SystemWorld,
  plan: FaultPlan,
  joins: readonly number[],
  stayers: readonly number[],
  leaseMs: number,
): AttackPlan {
  const { sim, ledger } = world;
  const adv = Rng.seeded(seed).fork('attack');
  const server = adv.int(world.servers);
  const victim = stayers.length > 0 ? stayers[adv.int(stayers.length)] : undefined;
  const fromMs = (victim === undefined ? 0 : joins[victim]!) + 1_500 + adv.int(1_000);
  const silentAt = fromMs + 500;
  const silentUntil = silentAt + leaseMs + EVICTION_SLACK_MS;
  const untilMs = silentUntil + 500;
  world.attack(0, { server, fromMs, untilMs }, victim);
  const out = { primaryChecked: false, victimChecked: false, endMs: untilMs, victim };

  if (faultFree(plan, fromMs - RECOVERY_MS, untilMs)) {
    out.primaryChecked = true;
    for (let t = fromMs; t <= untilMs; t += POLL_MS)
      sim.schedule(t, () => {
        const h = world.server(server);
        const views = world.liveServers().map((x) => x.member.view);
        if (
          h === undefined ||
          !h.member.view.primary ||
          views.some((v) => !v.primary || v.members.length !== world.servers)
        )
          ledger.violation(
            'adversary',
            `${serverName(server)} under attack at ${sim.now} ms: not in a primary view of all ${world.servers} servers (${views.map((v) => `${v.primary ? 'P' : 'np'}×${v.members.length}`).join(' ')})`,
          );
      });
  }
  if (victim !== undefined) {
    const node = world.leafNodeId(victim);
    let admission: number | undefined;
    sim.schedule(silentAt, () => {
      const leaf = world.leaf(victim);
      admission = leaf.state === 'up' && leaf.session.welcomed ? leaf.session.admissionEpoch : undefined;
      sim.pause(node);
    });
    sim.schedule(silentUntil, () => {
      const name = world.leaf(victim).name;
      if (admission !== undefined && faultFree(plan, silentAt - RECOVERY_MS, silentUntil)) {
        out.victimChecked = true;
        if (ledger.evictionOf(name, admission) === undefined)
          ledger.violation(
            'adversary',
            `${name} silent since ${silentAt} ms (lease ${leaseMs} ms) while its renewals were replayed: admission ${admission} not evicted by ${silentUntil} ms`,
          );
      }
      sim.resume(node);
    });
  }
  return out;
}

export interface LeafCutPlan {
  /** Leaves cut (short: from its server; long: from every server), if any was welcomed to cut. */
  shortCut: number | undefined;
  longCut: number | undefined;
  /** The long cut's eviction was checked (a window free of faults), and found. */
  evictionChecked: boolean;
  /** The run goes on at least this long (virtual ms): the cuts end and the leaves come back. */
  endMs: number;
}

/**
 * Two leaves that otherwise stay (not `exclude`): one is cut from the server it is linked to
 * (both directions) while that server is in a primary view, for 0.5–2.5 s, and healed; the other
 * is cut from every server for its lease plus 1–3 s, so its admission must be evicted, and it must
 * join again (the run's end agreement holds it to the group key like any leaf). The fault plan's
 * heals would lift the cuts: each heal within a cut is followed by the cut again.
 */
export function planLeafCuts(
  seed: number,
  world: SystemWorld,
  plan: FaultPlan,
  joins: readonly number[],
  stayers: readonly number[],
  leaseMs: number,
  exclude: number | undefined,
): LeafCutPlan {
  const { sim, ledger } = world;
  const rng = Rng.seeded(seed).fork('leaf-cuts');
  const pool = stayers.filter((i) => i !== exclude);
  const out: LeafCutPlan = { shortCut: undefined, longCut: undefined, evictionChecked: false, endMs: 0 };
  const pick = (): number | undefined =>
    pool.length === 0 ? undefined : pool.splice(rng.int(pool.length), 1)[0];
  /** Cuts `leaf` from `servers` (both ways) over [from, until], again after any heal meanwhile. */
  const cut = (leaf: number, servers: () => number[], from: number, until: number): void => {
    const node = world.leafNodeId(leaf);
    let cutFrom: number[] = [];
    const apply = (): void => {
      for (const s of cutFrom) {
        sim.block(node, s);
        sim.block(s, node);
      }
    };
    sim.schedule(from, () => {
      cutFrom = servers();
      apply();
    });
    for (const a of plan.actions)
      if (a.kind === 'heal' && a.at >= from && a.at <= until) sim.schedule(a.at + 0.01, apply);
    out.endMs = Math.max(out.endMs, until);
    sim.schedule(until, () => {
      for (const s of cutFrom) {
        sim.unblock(node, s);
        sim.unblock(s, node);
      }
      cutFrom = [];
    });
  };

  const short = pick();
  if (short !== undefined) {
    const from = joins[short]! + 1_000 + rng.int(2_000);
    const until = from + 500 + rng.int(2_000);
    // Cut from the server it is linked to when the cut starts, if that one is primary then.
    cut(
      short,
      () => {
        const s = world.leaf(short).server;
        if (s === undefined || world.server(s)?.member.view.primary !== true) return [];
        out.shortCut = short;
        return [s];
      },
      from,
      until,
    );
  }
  const long = pick();
  if (long !== undefined) {
    const from = joins[long]! + 1_000 + rng.int(2_000);
    const until = from + leaseMs + 1_000 + rng.int(2_000);
    let admission: number | undefined;
    cut(
      long,
      () => {
        const leaf = world.leaf(long);
        admission = leaf.state === 'up' && leaf.session.welcomed ? leaf.session.admissionEpoch : undefined;
        out.longCut = long;
        return Array.from({ length: world.servers }, (_, s) => s);
      },
      from,
      until,
    );
    sim.schedule(until - 0.01, () => {
      if (admission === undefined || !faultFree(plan, from - RECOVERY_MS, until)) return;
      out.evictionChecked = true;
      const name = world.leaf(long).name;
      if (ledger.evictionOf(name, admission) === undefined)
        ledger.violation(
          'liveness',
          `${name} cut from every server from ${Math.round(from)} to ${Math.round(until)} ms (lease ${leaseMs} ms): admission ${admission} not evicted`,
        );
    });
  }
  return out;
}

/** What the storage faults did (a rollback: which server, which files, when). */
export interface StorageFaultPlan {
  readonly failures: readonly { readonly at: number; readonly server: number; readonly op: FailingOp }[];
  readonly rollback:
    | {
        readonly at: number;
        readonly server: number;
        readonly files: readonly string[];
        readonly depth: number;
      }
    | undefined;
}

/**
 * What comes back older (server-node.ts's files): the primary record, the leaf store's log, its
 * snapshot, or all three. Never the store's data.key: it is written once, so an older image of it
 * is no file at all — a disk restored without its key is another disaster (nothing decrypts).
 */
const ROLLBACK_SETS = [
  ['/data/primary'],
  ['/data/leaf-state/log'],
  ['/data/leaf-state/snapshot'],
  ['/data/primary', '/data/leaf-state/log', '/data/leaf-state/snapshot'],
] as const;

/**
 * Storage faults (issue 19 item 3): 1–3 failing disk operations (append, sync or replace) on drawn
 * servers — a failed store write stops the server, which a supervisor starts again — and, on a
 * cluster of at least three, one server whose disk comes back older after a crash (its whole data
 * dir, its primary record or its leaf store, 1–4 synced images back). Torn and lost unsynced tails
 * are every crash's lot already (server-node.ts). What a rollback does to the checkers is a
 * finding to report, not a failure of the world.
 */
export function planStorageFaults(seed: number, world: SystemWorld, quietAtMs: number): StorageFaultPlan {
  const { sim } = world;
  const rng = Rng.seeded(seed).fork('storage-faults');
  const failures = Array.from({ length: 1 + rng.int(3) }, () => ({
    at: 300 + rng.int(Math.max(1, quietAtMs - 300)),
    server: rng.int(world.servers),
    op: rng.pick(['append', 'sync', 'replace'] as const),
  }));
  for (const f of failures) sim.schedule(f.at, () => world.failStorage(f.server, f.op));
  let rollback: StorageFaultPlan['rollback'];
  if (world.servers >= 3) {
    const r = {
      at: 1_000 + rng.int(Math.max(1, quietAtMs - 2_000)),
      server: rng.int(world.servers),
      files: rng.pick(ROLLBACK_SETS),
      depth: 1 + rng.int(4),
    };
    const downMs = 300 + rng.int(1_200);
    sim.schedule(r.at, () => {
      world.crashServer(r.server, { rollback: r.files.map((prefix) => ({ prefix, depth: r.depth })) });
      sim.after(downMs, () => {
        if (sim.isCrashed(r.server)) world.restartServer(r.server);
      });
    });
    rollback = r;
  }
  return { failures, rollback };
}

/** What the revocation of a core server did and what its checks saw. */
export interface ServerRevocationPlan {
  readonly server: number;
  /** When the CRL revoked it (virtual ms). */
  at: number;
  revoked: boolean;
  /** Paths in the revoked server's tree at the revocation (its knowledge: it held every own key). */
  stolenPaths: number;
  /** The leaf epoch when a primary server first showed the full refresh, and when no leaf was exposed any more. */
  refreshStartEpoch: number | undefined;
  refreshDoneEpoch: number | undefined;
  /** Epochs after the refresh checked against the stolen tree, and epochs before it the tree opened (the adversary is real). */
  epochsChecked: number;
  epochsOpenedBefore: number;
  /** Leaves welcomed at the end checked for the CRL in band. */
  leavesChecked: number;
  /** The run goes on while the refresh is due. */
  busy(): boolean;
  /** The end checks (after the run): the refresh completed; the stolen tree opens no later key. */
  check(converged: boolean): void;
}

/**
 * A core server revoked (issue 19 item 2): at a drawn time its serial goes on the CA's CRL; the
 * other servers load it (their core TLS refuses it; the plane orders the full own-key refresh in
 * the first primary view without it) and hand it to their leaves in band; the revoked server —
 * compromised — keeps running with its old CRL. The adversary holds its tree as of the revocation
 * (every leaf's path keys) and every rekey part leaves receive from then on; once the full refresh
 * completed (no leaf exposed), the compromise checker (sim/stolen-tree.ts) must open no later
 * group key, and the refresh must complete while the run goes on.
 */
export function planServerRevocation(
  seed: number,
  suite: CipherSuite,
  world: SystemWorld,
  quietAtMs: number,
): ServerRevocationPlan {
  const { sim, ledger } = world;
  const rng = Rng.seeded(seed).fork('server-revocation');
  const server = rng.int(world.servers);
  const at = 1_500 + rng.int(Math.max(1, quietAtMs - 2_500));
  const stolen: LeafKeys[] = [];
  const wire = new Map<number, { header: Uint8Array; parts: Uint8Array[] }>();
  const record = (push: RekeyPush): void => {
    const epoch = decodeHeader(push.header).epoch;
    const seen = wire.get(epoch) ?? { header: push.header, parts: [] };
    seen.parts.push(...push.parts);
    wire.set(epoch, seen);
  };
  const out: ServerRevocationPlan = {
    server,
    at,
    revoked: false,
    stolenPaths: 0,
    refreshStartEpoch: undefined,
    refreshDoneEpoch: undefined,
    epochsChecked: 0,
    epochsOpenedBefore: 0,
    leavesChecked: 0,
    busy: () => out.revoked && out.refreshDoneEpoch === undefined,
    check: (converged) => {
      if (!out.revoked) return;
      if (out.refreshDoneEpoch === undefined) {
        if (converged)
          ledger.violation(
            'liveness',
            `${serverName(server)} revoked at ${out.at} ms: the full refresh ${out.refreshStartEpoch === undefined ? 'never started' : `started at epoch ${out.refreshStartEpoch} but left leaves exposed`} by the end`,
          );
        return;
      }
      const done = out.refreshDoneEpoch;
      const reached = followStolenTree(suite, stolen, wire, (k) => groupKeyId(suite, k));
      for (const [epoch, ids] of reached) {
        const leafKey = ledger.keyIdAt(epoch);
        if (leafKey === undefined || !ids.has(leafKey)) continue;
        if (epoch <= done) out.epochsOpenedBefore++;
        else
          ledger.violation(
            'secrecy',
            `${serverName(server)}'s tree (revoked at ${out.at} ms) opens the group key of epoch ${epoch}, after the full refresh completed at ${done}`,
          );
      }
      for (const epoch of wire.keys())
        if (epoch > done && ledger.keyIdAt(epoch) !== undefined) out.epochsChecked++;
      // In band: every (unrevoked) leaf welcomed at the end holds the CRL, trusts no key of the revoked
      // server's and is not linked to it.
      const serial = serverIdentityOf(seed, server).serial;
      for (let i = 0; i < world.leaves; i++) {
        const leaf = world.leaf(i);
        // (As the end agreement: a leaf down, paused or revoked is not held to it; the compromised
        // server may well welcome a revoked leaf.)
        const node = world.leafNodeId(i);
        if (
          !sim.isUp(node) ||
          sim.isPaused(node) ||
          leaf.state !== 'up' ||
          !leaf.session.welcomed ||
          world.revokedSerials.has(world.leafCert(i).serial)
        )
          continue;
        out.leavesChecked++;
        const holds = leaf.session.revocation.isRevokedSerial(serial);
        const trusts = leaf.session.trustedSigners.some((x) => x.serial === serial);
        if (!holds || trusts || leaf.server === server)
          ledger.violation(
            'revocation',
            `${leaf.name} at the end: holds the CRL revoking ${serverName(server)}: ${holds}, trusts its key: ${trusts}, linked to it: ${leaf.server === server}`,
          );
      }
    },
  };

  // The operator revokes a server of a whole cluster: with a primary view of every server. (One
  // revoked out of a primary view of two of three leaves the rest no majority of it: the cluster
  // waits for the operator's recovery, by design — seen with seeds 1, 10, 70, 143 and 192 before
  // this wait; after it the waiting ends at quietAtMs + 3 s, when it revokes anyway.)
  const revokeWhenWhole = (): void => {
    // Every server up and in one primary view of all of them (one server's view alone may be stale).
    const live = world.liveServers();
    const whole =
      live.length === world.servers &&
      live.every((h) => h.member.view.primary && h.member.view.members.length === world.servers);
    if (whole || sim.now > quietAtMs + 3_000) revoke();
    else sim.after(POLL_MS, revokeWhenWhole);
  };
  const revoke = (): void => {
    out.at = sim.now;
    const h = world.server(server);
    // Its knowledge: the path keys of every leaf in its replica (none if it is down just then).
    if (h !== undefined)
      for (const name of h.machine.parts().entries.keys()) {
        const w = h.machine.welcomeFor(name);
        if (w !== undefined) stolen.push(LeafKeys.fromWelcome(w));
      }
    out.stolenPaths = stolen.length;
    out.revoked = world.revokeServer(server);
    world.tapLeafFrames((_leaf, toServer, bytes) => {
      if (toServer) return;
      const f = decodeLeafFrame(bytes);
      if (f.type === 'rekeyPush') record(f.body);
      else if (f.type === 'catchUpReply') f.body.pushes.forEach(record);
    });
    const poll = (): void => {
      for (const p of world.liveServers()) {
        if (!p.member.view.primary) continue;
        const m = p.machine;
        if (m.fullRefresh !== undefined && out.refreshStartEpoch === undefined)
          out.refreshStartEpoch = m.epoch;
        // Done where a replica past that epoch (so it applied the revokeCore) has no leaf exposed.
        if (
          out.refreshStartEpoch !== undefined &&
          m.epoch > out.refreshStartEpoch &&
          m.fullRefresh === undefined &&
          m.exposedLeaves === 0
        ) {
          out.refreshDoneEpoch = m.epoch;
          return;
        }
      }
      sim.after(POLL_MS, poll);
    };
    sim.after(POLL_MS, poll);
  };
  sim.schedule(at, revokeWhenWhole);
  return out;
}
