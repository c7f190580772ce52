/**
 * Scenarios a system run may add on top of its workload and fault plan (run.ts), each drawn from
 * its own stream of the seed (the workload's and the fault plan's draws are unchanged), with the
 * checks that only they can make:
 *   attack     an adversarial leaf (adversary.ts) floods one server while a victim goes silent
 *   leaf cuts  a leaf cut from its server (both ways) and healed; a leaf cut from every server
 *              for longer than its lease (evicted, then joins again)
 *   storage    failing disk operations (the server stops and restarts), one server's disk rolled back
 * A check that needs the core undisturbed runs only where the fault plan is quiet.
 */
import { Rng, type FaultPlan } from '../../net/sim/index.js';
import { serverName } from './messages.js';
import type { SystemWorld } from './world.js';
import type { FailingOp } from '../memory-storage.js';

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
