/**
 * The demo scenario: a throwaway core group and N leaves on the deterministic simulated network,
 * driven through joins, publishes, leaves, a revocation, a coordinator crash and its restart.
 * Everything shown is computed by the protocol code as it runs; the same seed replays the same
 * run event for event.
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
import { loadSuite, constantTimeEqual } from '../../crypto/index.js';
import { memberKey } from '../../core-group/index.js';
import type { SignerKey } from '../../gossip-edge/index.js';
import { Simulator, type NodeEnv } from '../../net/index.js';
import { Eavesdropper } from './eavesdropper.js';
import { LeafNode } from './leaf-node.js';
import { DemoRecorder } from './recorder.js';
import { ServerNode } from './server-node.js';

export interface DemoOptions {
  readonly leaves: number;
  readonly servers: number;
  readonly seed: number;
  /** Virtual seconds of scripted activity (the settle period comes on top). */
  readonly durationS: number;
  readonly batchMs?: number;
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

const INCARNATION_STRIDE = 1 << 20;
const SLICE_MS = 50;
const SETTLE_MAX_MS = 5_000;
const CORE_LOSS = 0.02;

export async function runDemo(opts: DemoOptions, hooks: DemoHooks = {}): Promise<DemoResult> {
  const wall0 = performance.now();
  const suite = await loadSuite();
  const S = opts.servers;
  const N = opts.leaves;
  const D = opts.durationS * 1000;
  const batchMs = opts.batchMs ?? 100;
  const recorder = new DemoRecorder();
  const eve = new Eavesdropper(suite, recorder);
  const sim = new Simulator<Uint8Array>({ seed: opts.seed, traceRing: 0 });
  const script = sim.forkRng('demo-script');

  // ── the core group ─────────────────────────────────────────────────────────────────────────
  const names = Array.from({ length: S }, (_, i) => `core-${i + 1}`);
  const founders = names.map((n) => memberKey(n, INCARNATION_STRIDE));
  const keyRng = sim.forkRng('keys');
  const seeds = names.map(() => keyRng.bytes(32));
  const signers: SignerKey[] = names.map((name, i) => ({
    name,
    publicKey: suite.ed25519PublicKey(seeds[i]!),
    serial: '', // no certificates in the simulation: nothing to revoke by serial
  }));
  const servers: (ServerNode | undefined)[] = new Array<ServerNode | undefined>(S).fill(undefined);
  const leafNodes: LeafNode[] = [];
  const leafName = (node: number): string => `leaf-${node - S + 1}`;
  const serverConfig = {
    suite,
    recorder,
    names,
    founders,
    incarnationStride: INCARNATION_STRIDE,
    group: new TextEncoder().encode('keyglass-demo'),
    // The leaf tree secret would come from the core key (leafTreeSecret); the distributed core
    // key rekey is not wired into the group stack yet, so the throwaway group starts with one.
    treeSecret: keyRng.bytes(32),
    batchMs,
    leaseMs: 10 * D, // leases are not exercised in the demo: nothing expires
    leafName,
    isServer: (node: number) => node < S,
    onBatch: (b: Parameters<Eavesdropper['onBatch']>[0]) => eve.onBatch(b),
    onData: (e: Uint8Array) => eve.onData(e),
  };
  for (let i = 0; i < S; i++) {
    sim.addNode((env: NodeEnv<Uint8Array>) => {
      const server = new ServerNode({ ...serverConfig, signingSeed: seeds[env.id]!, signers }, env);
      servers[env.id] = server;
      return { onMessage: (from, msg) => server.onMessage(from, msg) };
    });
  }
  // Core links: 1–5 ms with loss (the group stack's own retransmission copes).
  for (let a = 0; a < S; a++)
    for (let b = 0; b < S; b++)
      if (a !== b) sim.setLink(a, b, { latencyMs: 1, jitterMs: 4, loss: CORE_LOSS });

  // ── the leaves ─────────────────────────────────────────────────────────────────────────────
  for (let j = 0; j < N; j++) {
    const home = j % S;
    const order = Array.from({ length: S }, (_, k) => (home + k) % S);
    sim.addNode((env) => {
      const leaf = new LeafNode(
        {
          suite,
          recorder,
          name: leafName(env.id),
          servers: order,
          onDepart: (l) => {
            if (l.keys !== undefined) eve.adopt(l.name, l.keys, l.heldKeys);
          },
        },
        env,
      );
      leafNodes[env.id - S] = leaf;
      return { onMessage: (from, msg) => leaf.onMessage(from, msg) };
    });
    // A leaf session is a TLS stream: reliable and in order, so a fixed 1–5 ms per leaf, no loss.
    const lat = 1 + script.int(5);
    for (let s = 0; s < S; s++) {
      sim.setLink(S + j, s, { latencyMs: lat });
      sim.setLink(s, S + j, { latencyMs: lat });
    }
  }

  // ── measurements shared by the script ──────────────────────────────────────────────────────
  let phase: Phase = 'form';
  const liveServers = (): ServerNode[] => servers.filter((s, i): s is ServerNode => !!s && sim.isUp(i));
  const primaryOf = (): ServerNode | undefined =>
    liveServers().find((s) => s.currentView?.primary && s.isCoordinator);
  const reference = (): ServerNode | undefined =>
    primaryOf() ?? liveServers().find((s) => s.currentView?.primary);
  const members = (): LeafNode[] => leafNodes.filter((l) => l.phase === 'member');
  const holders = (): number => leafNodes.reduce((n, l) => n + (l.holdsKey ? 1 : 0), 0);
  let lastEmit = -Infinity;
  const emit = (note?: string): void => {
    lastEmit = sim.now;
    const ref = reference();
    const v = ref?.currentView;
    hooks.progress?.({
      t: sim.now,
      phase,
      view: v
        ? `${v.id.epoch}@${v.id.coord.split('#')[0]} (${v.members.length}${v.primary ? ', primary' : ''})`
        : '—',
      epoch: ref?.machine.epoch ?? 0,
      leaves: holders(),
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
    const v = live[0]?.currentView;
    if (!v?.primary || v.members.length !== live.length) return false;
    return live.every((s) => s.currentView?.id.epoch === v.id.epoch && s.currentView.id.coord === v.id.coord);
  };

  const viewChanges: ViewChange[] = [];
  const watchViewChange = (what: 'crash' | 'rejoin', server: string, then?: () => void): void => {
    const at = sim.now;
    const rec = { what, server, at, latencyMs: undefined as number | undefined };
    viewChanges.push(rec);
    const poll = (): void => {
      if (viewSettled() && sim.now > at) {
        (rec as { latencyMs: number | undefined }).latencyMs = sim.now - at;
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
  sim.schedule(joinStart, () => enter('join', `${early} leaves join in ${waves} waves`));
  for (let j = 0; j < early; j++) {
    const wave = j % waves;
    sim.schedule(joinStart + wave * waveGap + script.int(Math.min(200, waveGap)), () => leafNodes[j]!.join());
  }
  // Publishing: a random member publishes every 200 ms until D.
  let publishing = true;
  const publishOnce = (): void => {
    const ms = members();
    if (ms.length === 0) return;
    const who = ms[script.int(ms.length)]!;
    const id = who.publish(script.bytes(64 + script.int(192)));
    if (id !== undefined) recorder.messagePublished(id, sim.now, holders() - 1);
  };
  const publish = (): void => {
    publishOnce();
    if (publishing) sim.after(200, publish);
  };
  sim.schedule(joinStart + waveGap, publish);

  sim.schedule(0.35 * D, () => {
    const ms = members();
    const k = Math.max(1, Math.floor(ms.length / 10));
    enter('leave', `${k} leaves leave`);
    for (let i = 0; i < k; i++) {
      const leaf = ms.splice(script.int(ms.length), 1)[0]!;
      sim.after(script.int(500), () => leaf.leave());
    }
  });
  let revoked: LeafNode | undefined;
  sim.schedule(0.45 * D, () => {
    const ms = members();
    const coord = primaryOf();
    if (ms.length === 0 || coord === undefined) return enter('revoke', 'nothing to revoke');
    revoked = ms[script.int(ms.length)]!;
    const name = revoked.name;
    enter('revoke', `operator revokes ${name} (immediate batch)`);
    coord.revoke(name);
    sim.after(300, publishOnce);
  });
  let crashed = -1;
  sim.schedule(0.55 * D, () => {
    const coord = primaryOf();
    crashed = coord === undefined ? 0 : servers.indexOf(coord);
    enter('crash', `${names[crashed]} (the coordinator) crashes`);
    sim.crash(crashed);
    // Membership keeps changing without it: the survivors hold a majority, so they stay primary
    // and their coordinator keeps cutting batches.
    watchViewChange('crash', names[crashed]!, () =>
      sim.after(300, () => {
        emit(`${late} late leaves join and a few leave while ${names[crashed]} is down`);
        for (let j = early; j < N; j++) sim.after(script.int(300), () => leafNodes[j]!.join());
        const ms = members();
        for (let i = 0; i < Math.max(1, Math.floor(ms.length / 50)); i++)
          ms.splice(script.int(ms.length), 1)[0]!.leave();
      }),
    );
  });
  sim.schedule(0.75 * D, () => {
    enter('rejoin', `${names[crashed]} restarts and rejoins with state transfer`);
    sim.restart(crashed);
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
  const agreed = (): boolean => keyAgreement(liveServers(), leafNodes).ok;
  while (sim.now < D + SETTLE_MAX_MS) {
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

  const live = liveServers();
  const agreement = keyAgreement(live, leafNodes);
  let evictedCouldRead = recorder.sniff.opened > 0 || recorder.sniff.rekeyFollowed > 0;
  const revokedName = revoked?.name;
  const revokedStats = revokedName === undefined ? undefined : recorder.perSniffer.get(revokedName);
  // The demo must show the revoked leaf trying: no attempt at all is not a pass.
  const revokedTried = revokedStats !== undefined && revokedStats.attempts > 0;
  if (!revokedTried) evictedCouldRead = true;
  const keysAgree = agreement.ok;
  return {
    options: opts,
    recorder,
    viewChanges,
    finalEpoch: agreement.epoch,
    finalMembers: agreement.members,
    leavesAgreeing: agreement.leavesAgreeing,
    replicasAgree: agreement.replicasAgree,
    laggards: agreement.laggards,
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

/** Do all live primary replicas and all member leaves hold the same epoch and group key? */
function keyAgreement(
  live: readonly ServerNode[],
  leaves: readonly LeafNode[],
): {
  ok: boolean;
  epoch: number;
  members: number;
  leavesAgreeing: number;
  replicasAgree: boolean;
  laggards: string[];
} {
  const primaries = live.filter((s) => s.currentView?.primary);
  const ref = primaries[0];
  if (ref === undefined)
    return { ok: false, epoch: 0, members: 0, leavesAgreeing: 0, replicasAgree: false, laggards: [] };
  const key = ref.machine.groupKey();
  const epoch = ref.machine.epoch;
  const replicasAgree = primaries.every((s) => {
    const k = s.machine.groupKey();
    return s.machine.epoch === epoch && k !== undefined && key !== undefined && constantTimeEqual(k, key);
  });
  let leavesAgreeing = 0;
  let memberLeaves = 0;
  const laggards: string[] = [];
  for (const l of leaves) {
    if (!l.holdsKey) continue;
    memberLeaves++;
    if (l.keys?.epoch === epoch && key !== undefined && constantTimeEqual(l.keys.groupKey(), key))
      leavesAgreeing++;
    else if (laggards.length < 10)
      laggards.push(`${l.name} (${l.phase}, epoch ${l.keys?.epoch ?? '—'}, via node ${l.server})`);
  }
  const members = ref.machine.members;
  const ok = replicasAgree && memberLeaves === members && leavesAgreeing === members;
  return { ok, epoch, members, leavesAgreeing, replicasAgree, laggards };
}
