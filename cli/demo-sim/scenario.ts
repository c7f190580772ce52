/**
 * The demo scenario: a throwaway core group and N leaves on the deterministic simulated network,
 * driven through joins, publishes, leaves, a revocation, a coordinator crash and its restart.
 * It drives the system world of sim/ (buildSystemWorld): the SHIPPED stack — GroupMember with the
 * core key, ServerPlane, LeafStore/PrimaryRecord on MemoryStorage — and the shipped LeafSession
 * per leaf, on the net/sim Simulator. Everything shown is computed by that code as it runs (read
 * through the world's observer taps and the machines' state); the same seed replays the same run
 * event for event.
 *
 * Timeline (fractions of the duration D, virtual time):
 *   form     servers start and agree on one primary view
 *   join     90% of the leaves join in four waves (≈ 0.05 D … 0.25 D); publishing starts
 *   leave    10% of the joined leaves leave (0.35 D)
 *   revoke   the operator revokes one leaf: an immediate batch (0.45 D); a publish follows
 *   crash    the coordinator server crashes (0.55 D); survivors form a new primary view and
 *            keep cutting batches; the last 10% of leaves join and a few more leave meanwhile
 *   rejoin   the crashed server restarts (0.75 D) and rejoins with state transfer
 *   settle   changes and publishes stop at D; the run continues until every leaf holds the
 *            newest key (or a bounded settle time passes), then the verdicts are computed
 */
import { loadSuite, constantTimeEqual, type CipherSuite } from '../../crypto/index.js';
import { decodeDataEnvelope, decodeLeafFrame } from '../../gossip-edge/index.js';
import { decodeHeader, KeytreeError, LeafKeys } from '../../keytree/index.js';
import type { BatchOutput, LeafStateMachine } from '../../leaf-plane/index.js';
import {
  buildSystemWorld,
  groupKeyId,
  leafName,
  serverName,
  type ServerHandle,
  type SystemObserver,
  type SystemWorld,
} from '../../sim/index.js';
import { Eavesdropper } from './eavesdropper.js';
import { DemoRecorder } from './recorder.js';

export interface DemoOptions {
  readonly leaves: number;
  readonly servers: number;
  readonly seed: number;
  /** Virtual seconds of scripted activity (the settle period comes on top). */
  readonly durationS: number;
}

export const DEMO_DEFAULTS: DemoOptions = { leaves: 200, servers: 3, seed: 1, durationS: 20 };
export const DEMO_LIMITS = {
  leaves: [4, 5_000],
  servers: [3, 7],
  durationS: [10, 120],
} as const;

export type Phase = 'form' | 'join' | 'leave' | 'revoke' | 'crash' | 'rejoin' | 'settle';

export interface Progress {
  readonly t: number;
  readonly phase: Phase;
  readonly view: string;
  readonly epoch: number;
  readonly leaves: number;
  readonly lastBatchMs: number | undefined;
  readonly note?: string;
}

export interface DemoHooks {
  /** Called at every phase change and every virtual second. */
  readonly progress?: (p: Progress) => void;
  /** Checked between slices of simulation; true aborts the run (Ctrl-C). */
  readonly aborted?: () => boolean;
}

export interface ViewChange {
  readonly what: 'crash' | 'rejoin';
  readonly server: string;
  readonly at: number;
  /** Virtual ms until every live server installed the new primary view. */
  readonly latencyMs: number | undefined;
}

export interface DemoResult {
  readonly options: DemoOptions;
  readonly recorder: DemoRecorder;
  readonly viewChanges: readonly ViewChange[];
  readonly finalEpoch: number;
  readonly finalMembers: number;
  /** Leaves that are members at the end and hold the replicas' current group key. */
  readonly leavesAgreeing: number;
  readonly replicasAgree: boolean;
  /** Member leaves that do not hold the replicas' key at the end (shown when the verdict fails). */
  readonly laggards: readonly string[];
  readonly revoked: { readonly name: string; readonly evictedEpoch: number | undefined } | undefined;
  readonly virtualMs: number;
  readonly wallMs: number;
  readonly aborted: boolean;
  readonly verdict: { readonly keysAgree: boolean; readonly evictedCouldRead: boolean; readonly ok: boolean };
}

const SLICE_MS = 50;
const SETTLE_MAX_MS = 5_000;
const DEMO_LEASE_MS = 3_000;
/** One-way latency of every simulated link (the world adds 0–2 ms of jitter). */
const LINK_LATENCY_MS = 2;
/** Virtual time of the hosts' wall clock at virtual 0 (sim/system/messages.ts wallClock). */
const WALL_CLOCK_BASE = 1_800_000_000_000;
/** The server name in a core member key (`name#incarnation`). */
const nameOf = (member: string): string => member.split('#')[0]!;

/**
 * What the adversary will hold of a member once it departs: its keytree keys followed from its
 * welcome through each batch (until a refresh of its own key, derived from its TLS link's
 * exporter, which only it and its server know), and the group key of every epoch of its
 * membership, read from the replica's machine — at least every group key the real leaf held.
 */
interface Tracked {
  keys: LeafKeys;
  following: boolean;
  readonly held: { epoch: number; key: Uint8Array }[];
}

export async function runDemo(opts: DemoOptions, hooks: DemoHooks = {}): Promise<DemoResult> {
  const wall0 = performance.now();
  const suite = await loadSuite();
  const S = opts.servers;
  const N = opts.leaves;
  const D = opts.durationS * 1000;
  const recorder = new DemoRecorder();
  const eve = new Eavesdropper(suite, recorder);
  // Every member's keys, followed from its welcome through each batch with the shipped keytree
  // code: at its departure the adversary gets all a member can hold (a superset of what the real
  // leaf held if it missed a push), and every group key of its membership.
  const tracked = new Map<string, Tracked>();
  let newestEpoch = 0;
  let publishedId: string | undefined;

  const observer: SystemObserver = {
    committed: (_server, commands, results, machine, t) => {
      commands.forEach((cmd, i) => {
        if (cmd.kind === 'cutBatch') recorder.cutIssued(cmd.value.epoch, cmd.value.now - WALL_CLOCK_BASE);
        const batch = results[i]?.batch;
        if (batch === undefined || batch.epoch <= newestEpoch) return; // every replica cuts it; the first counts
        newestEpoch = batch.epoch;
        onBatch(batch, machine, t);
      });
    },
    view: (server, view, t) =>
      recorder.view({
        t,
        server,
        id: `${view.id.epoch}@${nameOf(view.id.coord)}`,
        members: view.members.length,
        primary: view.primary,
      }),
    stateTransfer: () => void recorder.stateTransfers++,
    coreSent: (_server, bytes) => {
      recorder.coreMessages++;
      recorder.coreBytes += bytes;
    },
    timed: (_server, what, ms) => {
      if (what === 'commit' || what === 'fanOut') pendingCpu += ms;
      if (what === 'fanOut') {
        recorder.serverCpuMs.push(pendingCpu);
        pendingCpu = 0;
      }
    },
    leafFrame: (_leaf, toServer, bytes) => {
      recorder.leafMessages++;
      recorder.leafBytes += bytes.length;
      const frame = decodeLeafFrame(bytes);
      if (toServer && frame.type === 'dataPublish') {
        const h = decodeDataEnvelope(frame.body.envelope).header;
        publishedId = `${h.sender}/${h.seq}`;
        eve.onData(frame.body.envelope); // the adversary sees every packet
      } else if (!toServer && frame.type === 'rekeyPush')
        recorder.pushSent(decodeHeader(frame.body.header).epoch, bytes.length);
    },
    leafKey: (_leaf, epoch, t) => recorder.keyInstalled(epoch, t),
    leafMessage: (_leaf, sender, seq) => recorder.messageDelivered(`${sender}/${seq}`),
    leafEvicted: (_leaf, reason) => recorder.evictions.set(reason, (recorder.evictions.get(reason) ?? 0) + 1),
  };
  let pendingCpu = 0;
  const onBatch = (batch: BatchOutput, machine: LeafStateMachine, t: number): void => {
    recorder.batchProduced({
      epoch: batch.epoch,
      t,
      members: machine.members,
      joins: batch.admitted.length,
      departures: batch.evicted.length,
      rekeyBytes: batch.rekey.encoded.length,
    });
    // Departed members go to the adversary with what they held before this batch.
    for (const d of batch.evicted) {
      const tr = tracked.get(d.name);
      if (tr === undefined) continue;
      tracked.delete(d.name);
      eve.adopt(d.name, tr.keys, tr.held);
    }
    eve.onBatch(batch);
    // The commit may have cut more than this batch: the machine's key is this epoch's only if it is the last.
    const groupKey = machine.epoch === batch.epoch ? machine.groupKey()?.slice() : undefined;
    for (const tr of tracked.values()) {
      if (tr.following)
        try {
          tr.keys = tr.keys.processMessage(suite, batch.rekey.message);
        } catch (e) {
          if (!(e instanceof KeytreeError)) throw e;
          tr.following = false; // its own key was refreshed over its link: keep what it had
        }
      if (groupKey !== undefined) tr.held.push({ epoch: batch.epoch, key: groupKey });
    }
    for (const a of batch.admitted) {
      const keys = LeafKeys.fromWelcome(a.welcome);
      tracked.set(a.name, { keys, following: true, held: [{ epoch: keys.epoch, key: keys.groupKey() }] });
    }
  };

  const world = buildSystemWorld({
    seed: opts.seed,
    suite,
    servers: S,
    leaves: N,
    latencyMs: LINK_LATENCY_MS,
    // Leases as the system simulation runs them (a leaf notices a dead server by its renewals);
    // no periodic own-key refreshes (the demo's scripted changes make the batches).
    leaseMs: DEMO_LEASE_MS,
    leafKeyRefreshMs: 10 * D,
    observer,
  });
  const { sim } = world;
  const script = sim.forkRng('demo-script');
  const names = Array.from({ length: S }, (_, i) => serverName(i));

  // ── measurements shared by the script ──────────────────────────────────────────────────────
  let phase: Phase = 'form';
  const liveServers = (): ServerHandle[] => world.liveServers();
  const primaryOf = (): number | undefined => {
    for (const h of liveServers()) {
      const v = h.member.view;
      if (v.primary) {
        const coord = names.indexOf(nameOf(v.id.coord));
        return coord >= 0 && sim.isUp(coord) ? coord : undefined;
      }
    }
    return undefined;
  };
  const reference = (): ServerHandle | undefined => liveServers().find((h) => h.member.view.primary);
  /** Leaves welcomed now (a leaf that left, was evicted or revoked is not). */
  const memberLeaves = (): number[] => {
    const out: number[] = [];
    for (let i = 0; i < N; i++) {
      const l = world.leaf(i);
      if (l.state === 'up' && l.session.welcomed && !world.revokedSerials.has(world.leafCert(i).serial))
        out.push(i);
    }
    return out;
  };
  let lastEmit = -Infinity;
  const emit = (note?: string): void => {
    lastEmit = sim.now;
    const ref = reference();
    const v = ref?.member.view;
    hooks.progress?.({
      t: sim.now,
      phase,
      view: v
        ? `${v.id.epoch}@${nameOf(v.id.coord)} (${v.members.length}${v.primary ? ', primary' : ''})`
        : '—',
      epoch: ref?.machine.epoch ?? 0,
      leaves: memberLeaves().length,
      lastBatchMs: recorder.lastLatency(),
      ...(note !== undefined ? { note } : {}),
    });
  };
  const enter = (p: Phase, note?: string): void => {
    phase = p;
    emit(note);
  };
  /** Every live server has installed one primary view holding exactly the live servers. */
  const viewSettled = (): boolean => {
    const live = liveServers();
    const v = live[0]?.member.view;
    if (!v?.primary || v.members.length !== live.length) return false;
    return live.every((h) => h.member.view.id.epoch === v.id.epoch && h.member.view.id.coord === v.id.coord);
  };

  const viewChanges: ViewChange[] = [];
  const watchViewChange = (what: 'crash' | 'rejoin', server: string, then?: () => void): void => {
    const at = sim.now;
    const rec = { what, server, at, latencyMs: undefined as number | undefined };
    viewChanges.push(rec);
    const poll = (): void => {
      if (viewSettled() && sim.now > at) {
        rec.latencyMs = sim.now - at;
        emit(`${what}: new view installed everywhere after ${Math.round(sim.now - at)} ms`);
        then?.();
      } else sim.after(5, poll);
    };
    sim.after(1, poll);
  };

  // ── the script ─────────────────────────────────────────────────────────────────────────────
  const late = Math.max(1, Math.floor(N / 10));
  const early = N - late;
  const waves = 4;
  const joinStart = Math.max(500, 0.05 * D);
  const waveGap = (0.25 * D - joinStart) / waves;
  const home = (j: number): number => j % S;
  sim.schedule(joinStart, () => enter('join', `${early} leaves join in ${waves} waves`));
  for (let j = 0; j < early; j++) {
    const wave = j % waves;
    sim.schedule(joinStart + wave * waveGap + script.int(Math.min(200, waveGap)), () =>
      world.connect(j, home(j)),
    );
  }
  // Publishing: a random member publishes every 200 ms until D.
  let publishing = true;
  const publishOnce = (): void => {
    const ms = memberLeaves();
    if (ms.length === 0) return;
    const who = ms[script.int(ms.length)]!;
    publishedId = undefined;
    if (world.publish(who, script.bytes(64 + script.int(192))) && publishedId !== undefined)
      recorder.messagePublished(publishedId, sim.now, ms.length - 1);
  };
  const publish = (): void => {
    publishOnce();
    if (publishing) sim.after(200, publish);
  };
  sim.schedule(joinStart + waveGap, publish);

  sim.schedule(0.35 * D, () => {
    const ms = memberLeaves();
    const k = Math.max(1, Math.floor(ms.length / 10));
    enter('leave', `${k} leaves leave`);
    for (let i = 0; i < k; i++) {
      const leaf = ms.splice(script.int(ms.length), 1)[0]!;
      sim.after(script.int(500), () => world.leave(leaf));
    }
  });
  let revoked: number | undefined;
  sim.schedule(0.45 * D, () => {
    const ms = memberLeaves();
    if (ms.length === 0 || primaryOf() === undefined) return enter('revoke', 'nothing to revoke');
    revoked = ms[script.int(ms.length)]!;
    enter('revoke', `operator revokes ${leafName(revoked)} (the CRL every server loads: an immediate batch)`);
    world.revoke(revoked);
    sim.after(300, publishOnce);
  });
  let crashed = -1;
  sim.schedule(0.55 * D, () => {
    crashed = primaryOf() ?? 0;
    enter('crash', `${names[crashed]} (the coordinator) crashes`);
    world.crashServer(crashed);
    // Membership keeps changing without it: the survivors hold a majority, so they stay primary
    // and their coordinator keeps cutting batches.
    watchViewChange('crash', names[crashed]!, () =>
      sim.after(300, () => {
        emit(`${late} late leaves join and a few leave while ${names[crashed]} is down`);
        for (let j = early; j < N; j++) sim.after(script.int(300), () => world.connect(j, home(j)));
        const ms = memberLeaves();
        for (let i = 0; i < Math.max(1, Math.floor(ms.length / 50)); i++)
          world.leave(ms.splice(script.int(ms.length), 1)[0]!);
      }),
    );
  });
  sim.schedule(0.75 * D, () => {
    enter('rejoin', `${names[crashed]} restarts from its storage and rejoins with state transfer`);
    world.restartServer(crashed);
    watchViewChange('rejoin', names[crashed]!);
  });
  sim.schedule(D, () => {
    publishing = false;
    enter('settle', 'changes and publishes stop; waiting for every leaf to hold the newest key');
  });

  // ── run in slices: progress every virtual second, Ctrl-C between slices ───────────────────
  enter('form', `${S} core servers start`);
  let aborted = false;
  let nextTick = 1000;
  const agreed = (): boolean => keyAgreement(suite, world, memberLeaves()).ok;
  while (sim.now < D + SETTLE_MAX_MS && world.errors.length === 0) {
    if (hooks.aborted?.()) {
      aborted = true;
      break;
    }
    sim.runFor(SLICE_MS);
    if (sim.now >= nextTick) {
      nextTick += 1000;
      if (sim.now - lastEmit >= 500) emit();
    }
    if (sim.now >= D + 500 && viewSettled() && agreed()) break;
    await new Promise<void>((r) => setImmediate(r));
  }

  const agreement = keyAgreement(suite, world, memberLeaves());
  // The leaf hosts' and sessions' own counters (no leaf process restarts in the demo: one each).
  for (let i = 0; i < N; i++) {
    const leaf = world.leaf(i);
    const st = leaf.session.stats;
    recorder.failovers += Math.max(0, leaf.linksOpened - 1);
    recorder.catchUps += st.catchUps;
    recorder.rejoins += st.rejoins;
    for (const [reason, n] of Object.entries(st.decryptFailures))
      for (let k = 0; k < n; k++) recorder.undelivered(reason);
  }
  const problems = [...world.errors, ...world.ledger.violations].map((v) => `${v.property}: ${v.detail}`);
  let evictedCouldRead = recorder.sniff.opened > 0 || recorder.sniff.rekeyFollowed > 0;
  const revokedName = revoked === undefined ? undefined : leafName(revoked);
  const revokedStats = revokedName === undefined ? undefined : recorder.perSniffer.get(revokedName);
  // The demo must show the revoked leaf trying: no attempt at all is not a pass.
  const revokedTried = revokedStats !== undefined && revokedStats.attempts > 0;
  if (!revokedTried) evictedCouldRead = true;
  // A violation the system ledger found (a fork, a key after eviction, an exception) fails the run.
  const keysAgree = agreement.ok && problems.length === 0;
  return {
    options: opts,
    recorder,
    viewChanges,
    finalEpoch: agreement.epoch,
    finalMembers: agreement.members,
    leavesAgreeing: agreement.leavesAgreeing,
    replicasAgree: agreement.replicasAgree,
    laggards: [...agreement.laggards, ...problems.slice(0, 5)],
    revoked:
      revokedName === undefined
        ? undefined
        : { name: revokedName, evictedEpoch: eve.evictionEpoch(revokedName) },
    virtualMs: sim.now,
    wallMs: performance.now() - wall0,
    aborted,
    verdict: { keysAgree, evictedCouldRead, ok: !aborted && keysAgree && !evictedCouldRead },
  };
}

/**
 * Do all live primary replicas hold one epoch and group key, and every member leaf (welcomed
 * now) the key of that epoch as its session reported it? The tree's member count must match.
 */
function keyAgreement(
  suite: CipherSuite,
  world: SystemWorld,
  members: readonly number[],
): {
  ok: boolean;
  epoch: number;
  members: number;
  leavesAgreeing: number;
  replicasAgree: boolean;
  laggards: string[];
} {
  const primaries = world.liveServers().filter((h) => h.member.view.primary);
  const ref = primaries[0];
  if (ref === undefined)
    return { ok: false, epoch: 0, members: 0, leavesAgreeing: 0, replicasAgree: false, laggards: [] };
  const key = ref.machine.groupKey();
  const epoch = ref.machine.epoch;
  const replicasAgree = primaries.every((h) => {
    const k = h.machine.groupKey();
    return h.machine.epoch === epoch && k !== undefined && key !== undefined && constantTimeEqual(k, key);
  });
  const keyId = key === undefined ? undefined : groupKeyId(suite, key);
  let leavesAgreeing = 0;
  const laggards: string[] = [];
  for (const i of members) {
    const l = world.leaf(i);
    const last = world.ledger.lastKeyOf(l.name);
    if (l.session.epoch === epoch && last?.epoch === epoch && keyId !== undefined && last.keyId === keyId)
      leavesAgreeing++;
    else if (laggards.length < 10)
      laggards.push(`${l.name} (${l.state}, epoch ${l.session.epoch ?? '—'}, via ${l.server ?? 'none'})`);
  }
  const treeMembers = ref.machine.members;
  const ok = replicasAgree && members.length === treeMembers && leavesAgreeing === treeMembers;
  return { ok, epoch, members: treeMembers, leavesAgreeing, replicasAgree, laggards };
}
