/**
 * Gossip scenarios on GossipWorld: data and rekey dissemination under loss, crashed leaves,
 * churn during dissemination and an overlay partition that heals; plus the bimodality
 * experiment (many small runs, each classified as reaching almost all or almost none).
 */
import { GossipWorld, type AttackReport, type Delivery, type WorldOptions } from './world.js';

export interface ScenarioOptions extends WorldOptions {
  /** Fraction of leaves crashed before dissemination starts. */
  readonly crashed?: number;
  readonly messages?: number;
  /** Rekey batches (each evicting `batch` leaves). */
  readonly rekeys?: number;
  readonly batch?: number;
  /** Per round during the first 10 rounds: fraction of live leaves that crash; as many crashed ones restart and re-join. */
  readonly churn?: number;
  /** Split the overlay in two halves for this many rounds after publication, then heal. */
  readonly partitionRounds?: number;
  readonly maxRounds?: number;
  /** Called with a one-line status after every round (large runs: shows they are alive). */
  readonly progress?: (line: string) => void;
}

export interface ScenarioReport {
  readonly n: number;
  readonly loss: number;
  readonly crashed: number;
  readonly rounds: number;
  readonly data: readonly Delivery[];
  readonly rekeys: readonly Delivery[];
  readonly meanSendsPerNodeRound: number;
  readonly maxSendsPerNodeRound: number;
  readonly bytesPerNodeRound: number;
  readonly meanRekeyBytesPerLeaf: number;
  readonly corePulls: number;
  readonly reseeds: number;
  readonly overlay: ReturnType<GossipWorld['overlay']>;
  readonly dropped: Record<string, number>;
  readonly wallMs: number;
  /** CPU time of this process during the run (user + system; the machine may be shared). */
  readonly cpuMs: number;
  readonly heapMB: number;
  /** With insiders (`adversaries`): what the checkers saw. */
  readonly attack?: AttackReport;
}

/** What the adversary checkers found wrong (empty: the defences held). */
export function attackFailures(a: AttackReport): string[] {
  const out: string[] = [];
  if (a.bogusDelivered > 0)
    out.push(`${a.bogusDelivered} relabelled/future/invalid items stored by honest leaves`);
  if (a.bogusOnPath > 0) out.push(`${a.bogusOnPath} of them on the leaf's own path (a re-join each)`);
  if (a.invalidNotDistrusted > 0)
    out.push(`${a.invalidNotDistrusted} invalid pushes whose insider was not dropped`);
  if (a.hijacked > 0)
    out.push(
      `${a.hijacked} times a claimed honest peer held from a seed or its own traffic was reached elsewhere`,
    );
  return out;
}

export function runScenario(o: ScenarioOptions): { report: ScenarioReport; world: GossipWorld } {
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const w = new GossipWorld(o);
  const rng = w.sim.forkRng('scenario');
  if ((o.crashed ?? 0) > 0) w.crashRandom(o.crashed!, rng);
  w.runRounds(3);
  const bytesBefore = w.counters.bytesSent;
  const startRound = w.sim.now;
  const data = [];
  const rekeys = [];
  for (let k = 0; k < (o.rekeys ?? 0); k++) {
    const live = w.liveLeaves();
    const departed: number[] = [];
    for (let j = 0; j < (o.batch ?? 1) && live.length > 0; j++)
      departed.push(live.splice(rng.int(live.length), 1)[0]!);
    rekeys.push(w.rekey(departed));
    w.runRounds(1);
  }
  for (let k = 0; k < (o.messages ?? 1); k++) data.push(w.publishData());
  if ((o.partitionRounds ?? 0) > 0) {
    const half: number[] = [];
    for (let i = 0; i < o.n / 2; i++) half.push(i);
    w.sim.partition([half]);
    w.sim.after(o.partitionRounds! * w.roundMs, () => w.sim.heal());
  }
  if ((o.churn ?? 0) > 0) {
    for (let r = 1; r <= 10; r++) {
      w.sim.after(r * w.roundMs, () => {
        const down = w.crashRandom(o.churn!, rng);
        // As many previously crashed, non-evicted leaves come back and re-join.
        let back = 0;
        for (let i = 0; i < o.n && back < down.length; i++) {
          const j = rng.int(o.n);
          if (!w.sim.isUp(j) && !w.evicted[j] && !down.includes(j)) {
            w.sim.restart(j);
            back++;
          }
        }
      });
    }
  }
  const all = [...data, ...rekeys];
  const maxRounds = o.maxRounds ?? Math.ceil(Math.log2(o.n)) + 40;
  const progress = o.progress;
  w.runUntilDelivered(
    all,
    maxRounds,
    progress === undefined
      ? undefined
      : (r) => {
          const done = all.map((t) => {
            const d = w.delivery(t);
            return (d.delivered / Math.max(1, d.eligible)).toFixed(5);
          });
          const cpu = cpuMillis(process.cpuUsage(cpu0)) / 1000;
          progress(`round ${r}: delivered ${done.join(' ')}; cpu ${cpu.toFixed(1)} s`);
        },
  );
  const rounds = Math.round((w.sim.now - startRound) / w.roundMs);
  const live = w.liveLeaves().length;
  const nodeRounds = Math.max(1, live * rounds);
  let rekeyBytes = 0;
  let rekeyCount = 0;
  for (const t of rekeys) {
    t.bytesPerLeaf!.forEach((b) => {
      if (b > 0) {
        rekeyBytes += b;
        rekeyCount++;
      }
    });
  }
  const report: ScenarioReport = {
    n: o.n,
    loss: o.loss ?? 0,
    crashed: o.crashed ?? 0,
    rounds,
    data: data.map((t) => w.delivery(t)),
    rekeys: rekeys.map((t) => w.delivery(t)),
    meanSendsPerNodeRound: w.counters.meanSendsPerRound(),
    maxSendsPerNodeRound: w.counters.maxSendsInRound,
    bytesPerNodeRound: (w.counters.bytesSent - bytesBefore) / nodeRounds,
    meanRekeyBytesPerLeaf: rekeyCount === 0 ? 0 : rekeyBytes / rekeyCount,
    corePulls: w.counters.pullsFromCore,
    reseeds: w.counters.reseeds,
    overlay: w.overlay(),
    dropped: { ...w.counters.dropped },
    wallMs: performance.now() - t0,
    cpuMs: cpuMillis(process.cpuUsage(cpu0)),
    heapMB: process.memoryUsage().heapUsed / 1e6,
    ...(w.insiders.length > 0 ? { attack: w.attackReport() } : {}),
  };
  return { report, world: w };
}

function cpuMillis(u: NodeJS.CpuUsage): number {
  return (u.user + u.system) / 1000;
}

export interface Bimodality {
  readonly runs: number;
  /** Runs where the message reached ≥ 99 % / ≤ 1 % / in between of the live leaves by the deadline. */
  readonly almostAll: number;
  readonly almostNone: number;
  readonly between: number;
  readonly fractions: readonly number[];
}

/**
 * Bimodal multicast's claim: a message reaches almost all or almost none. Each run: a leaf
 * publishes one message under heavy loss and crashes right after its first push (so the
 * message lives only in the copies that escaped); classify by the deadline.
 */
export function bimodality(o: {
  n: number;
  runs: number;
  loss: number;
  seed: number;
  deadlineRounds: number;
  config?: WorldOptions['config'];
  suite: WorldOptions['suite'];
}): Bimodality {
  const fractions: number[] = [];
  for (let k = 0; k < o.runs; k++) {
    const w = new GossipWorld({
      n: o.n,
      seed: o.seed + k,
      loss: o.loss,
      suite: o.suite,
      ...(o.config ? { config: o.config } : {}),
    });
    w.runRounds(2);
    const src = k % o.n;
    const t = w.leafPublish(src);
    w.sim.crash(src);
    w.runRounds(o.deadlineRounds);
    const d = w.delivery(t);
    fractions.push(d.eligible === 0 ? 1 : d.delivered / d.eligible);
  }
  const almostAll = fractions.filter((f) => f >= 0.99).length;
  const almostNone = fractions.filter((f) => f <= 0.01).length;
  return { runs: o.runs, almostAll, almostNone, between: o.runs - almostAll - almostNone, fractions };
}

function fmtRound(r: number): string {
  return Number.isFinite(r) ? String(r) : 'never';
}

export function formatReport(r: ScenarioReport): string {
  const lines = [
    `gossip n=${r.n} loss=${r.loss} crashed=${r.crashed}: ${r.rounds} rounds, wall ${(r.wallMs / 1000).toFixed(1)} s, cpu ${(r.cpuMs / 1000).toFixed(1)} s, heap ${r.heapMB.toFixed(0)} MB`,
  ];
  for (const d of [...r.data, ...r.rekeys]) {
    lines.push(
      `  ${d.label.padEnd(36)} ${d.delivered}/${d.eligible} live leaves; rounds to 99% ${fmtRound(d.r99)}, 99.9% ${fmtRound(d.r999)}, 99.99% ${fmtRound(d.r9999)}, 100% ${fmtRound(d.r100)}`,
    );
  }
  lines.push(
    `  per node per round: ${r.meanSendsPerNodeRound.toFixed(2)} msgs mean, ${r.maxSendsPerNodeRound} max, ${r.bytesPerNodeRound.toFixed(0)} bytes mean`,
  );
  if (r.meanRekeyBytesPerLeaf > 0)
    lines.push(`  rekey bytes per leaf (its own part): ${r.meanRekeyBytesPerLeaf.toFixed(0)}`);
  lines.push(
    `  overlay: live ${r.overlay.live}, active in-degree ${r.overlay.meanIn.toFixed(2)} ± ${r.overlay.sdIn.toFixed(2)} (max ${r.overlay.maxIn}), reachable ${(100 * r.overlay.reachable).toFixed(2)}%`,
  );
  lines.push(`  core pulls ${r.corePulls}, reseeds ${r.reseeds}; dropped ${JSON.stringify(r.dropped)}`);
  const a = r.attack;
  if (a !== undefined) {
    const s = a.insiderStats;
    lines.push(
      `  insiders ${a.insiders}: sent ${s.relabelled} relabelled, ${s.future} far-future, ${s.invalid} invalid items, ${s.claims} address claims (${s.answers} challenges answered)`,
      `  honest leaves: refused ${a.invalidRefused} invalid items, dropped the sender ${a.distrusts} times; ${a.insiderInActiveViews} hold an insider in their active view at the end`,
      `  checkers: stored bogus ${a.bogusDelivered} (on path ${a.bogusOnPath}), invalid without drop ${a.invalidNotDistrusted}, held addresses taken over ${a.hijacked}: ${attackFailures(a).length === 0 ? 'ok' : 'FAILED'}`,
      `  (not checked) honest view entries reached elsewhere at the end, known from hints or not at all: ${a.misdirected}`,
    );
  }
  return lines.join('\n');
}
