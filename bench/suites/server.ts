/**
 * `server` suite (and `server-tls`, the same run with the gossip tier off and 10^4 leaves in
 * --full): three real `keyglass server` processes on 127.0.0.1 (cli/cluster kit), leaves
 * in separate client processes (this module re-run as a worker, KG_SERVER_BENCH_WORKER set), so
 * the TLS and protocol work of thousands of LeafClients is not charged to the benchmark process.
 *
 * Measured, per stage of the leaf population (each stage adds leaves to the running group):
 *   - admission rate: leaves welcomed per second (TLS 1.3 mutual-auth handshake, ordered admit,
 *     batch, welcome), all through core-1 while it can hold them (its leaf port caps 4096 links),
 *     else spread over the three servers. Not timed: certificate issuance (the CA, before the
 *     stage) and parsing each leaf's PEM credentials (in the worker, before its clock starts).
 *     The leaf processes share this machine's cores with the servers, and every welcomed leaf
 *     verifies each later rekey push, so the rate is a floor for the servers. Reported with it,
 *     CPU per admission: the servers' (`process_cpu_seconds_total` from their /metrics, before
 *     and after the stage), the admitting server's capacity that implies (1 s / its CPU per
 *     admission), and the leaf processes' (process.cpuUsage in the workers);
 *   - rekey latency: one leaf leaves (trigger) → every leaf holds the new epoch's key (this
 *     includes waiting for the next batch cut: batchIntervalMs = 100, the product default);
 *     the first server's batch application (its /status lastBatch) → every leaf holds the key,
 *     which is the issue's "batch start → all leaves"; and first → last leaf;
 *   - publish → deliver of 1 KiB envelopes: latency (paced) and throughput (burst), next to the
 *     raw AEAD seal of 1 KiB in this process.
 * Workers time events with performance.timeOrigin + now() (one clock on one machine).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadavg } from 'node:os';
import { loadSuite } from '../../crypto/index.js';
import { credentialsFromPem } from '../../auth/index.js';
import { LeafClient } from '../../leaf-sdk/index.js';
import { MAX_ISSUE_BATCH } from '../../ca-tools/index.js';
import { MAX_LEAF_LINKS } from '../../server/index.js';
import { THREAD_STATS_INTERVAL_MS } from '../../net/index.js';
import { LocalCluster, childNodeArgs, until, type LocalLeaf } from '../../cli/cluster/index.js';
import { measure, type BenchContext, type BenchResult, type BenchSuite } from '../harness.js';

const WORKER_ENV = 'KG_SERVER_BENCH_WORKER';
/**
 * Knobs for profiling runs (none changes what a default run measures):
 *   KG_SERVER_BENCH_STAGES=100,1000   leaf populations to grow through (default per mode);
 *   KG_SERVER_BENCH_PUBLISH=0         skip the publish→deliver cases;
 *   KG_SERVER_BENCH_GRACEFUL=1        let the workers exit, SIGTERM the servers and wait for them to exit before the
 *                                     cluster is torn down, so profiles asked for with
 *                                     KG_CHILD_NODE_ARGS="--cpu-prof --cpu-prof-dir=DIR" get
 *                                     written (SIGKILL would lose them).
 */
const STAGES_ENV = 'KG_SERVER_BENCH_STAGES';
const PUBLISH_ENV = 'KG_SERVER_BENCH_PUBLISH';
const GRACEFUL_ENV = 'KG_SERVER_BENCH_GRACEFUL';
/**
 * KG_SERVER_BENCH_TRANSPORT=tls: servers without the gossip relay and leaves without UDP, so
 * every rekey and message is a TLS push (the path the relay replaced). Leaves then cost no CPU
 * between events, which is what lets 10^4 of them share this machine with the servers.
 */
const TRANSPORT_ENV = 'KG_SERVER_BENCH_TRANSPORT';
/**
 * KG_SERVER_BENCH_BATCH_MS=N: the servers' batchIntervalMs (default 100, the product default;
 * every batch is an epoch each admitted leaf must process, so during a join burst the leaves'
 * CPU grows with population × batches).
 */
const BATCH_ENV = 'KG_SERVER_BENCH_BATCH_MS';
/**
 * KG_SERVER_BENCH_LEAF_TLS=main: the servers run the leaf port's TLS on their main thread
 * (`leafTlsThread: false`) instead of the default worker thread, for comparison.
 */
const LEAF_TLS_ENV = 'KG_SERVER_BENCH_LEAF_TLS';
/** KG_SERVER_BENCH_LOGS=DIR: copy each server's log there before the cluster is torn down. */
const LOGS_ENV = 'KG_SERVER_BENCH_LOGS';
const MSG_BYTES = 1024;
/**
 * Joins a worker keeps in flight per 200 ms of batch interval (at least 48): a join waits for the
 * next batch, so with longer batches more must be in flight to keep the servers busy.
 */
const WORKER_CONCURRENCY_PER_200_MS = 48;

const clock = (): number => performance.timeOrigin + performance.now();
/** Epochs a leaf may pass at once that still count as reached (bounds the work per key event). */
const MAX_EPOCH_JUMP = 256;

// ── worker (a client process holding many leaves) ─────────────────────────────────────────────

interface WorkerSpec {
  readonly ports: readonly number[];
  readonly caPemFile: string;
  readonly leaves: readonly { certFile: string; keyFile: string }[];
  readonly gossip: boolean;
  readonly concurrency: number;
}

type WorkerEvent =
  | {
      t: 'admitted';
      n: number;
      first: number;
      last: number;
      failed: number;
      cpuMs: number;
      /** connect() start → welcome, per admitted leaf (ms). */
      joinMs: number[];
    }
  | { t: 'epoch'; epoch: number; first: number; last: number }
  /** `pulled`: of the deliveries, those a data pull from a server's history brought (gossip gaps). */
  | { t: 'data'; delivered: number; pulled: number; last: number; latencies: number[] }
  | { t: 'status'; holders: number; byEpoch: Record<number, number>; evicted: number };

async function workerMain(spec: WorkerSpec): Promise<void> {
  const out = (e: WorkerEvent): boolean => process.stdout.write(`${JSON.stringify(e)}\n`);
  const suite = await loadSuite();
  const caPem = readFileSync(spec.caPemFile, 'utf8');
  // Credentials are parsed before the clock starts: the benchmark measures the servers.
  const credentials = spec.leaves.map((l) =>
    credentialsFromPem(readFileSync(l.certFile, 'utf8'), readFileSync(l.keyFile, 'utf8')),
  );
  const clients: LeafClient[] = [];
  // Per epoch: how many leaves reached it (or passed it: a leaf that re-joins or catches up
  // several epochs at once may announce only the newest), when the first and the last did.
  const epochs = new Map<number, { n: number; first: number; last: number }>();
  const reached = new Map<LeafClient, number>(); // each leaf's newest epoch, so none counts twice
  const data = { delivered: 0, last: 0, latencies: [] as number[] };
  let pulledReported = 0;
  let next = 0;
  let failed = 0;
  let evicted = 0;
  let holders = Infinity; // leaves that must reach an epoch: those admitted, once all are in
  const welcomed: number[] = [];
  const joinMs: number[] = [];
  const one = async (i: number): Promise<void> => {
    const started = clock();
    const client = new LeafClient({
      suite,
      maxAttempts: 20,
      backoffBaseMs: 50,
      backoffMaxMs: 1000,
      ...(spec.gossip ? {} : { gossip: false }),
    });
    client.on('error', () => {});
    client.on('evicted', () => evicted++);
    client.on('key', ({ epoch }) => {
      const at = clock();
      const prev = reached.get(client) ?? epoch - 1;
      if (epoch <= prev) return;
      reached.set(client, epoch);
      for (let x = Math.max(prev + 1, epoch - MAX_EPOCH_JUMP); x <= epoch; x++) {
        const e = epochs.get(x) ?? { n: 0, first: at, last: at };
        e.n++;
        e.last = at;
        epochs.set(x, e);
        if (e.n === holders) out({ t: 'epoch', epoch: x, first: e.first, last: e.last });
      }
    });
    client.on('message', (m) => {
      const at = clock();
      data.delivered++;
      data.last = at;
      if (data.latencies.length < 200_000)
        data.latencies.push(at - new DataView(m.data.buffer, m.data.byteOffset).getFloat64(0));
    });
    const port = spec.ports[i % spec.ports.length]!;
    try {
      await client.connect({
        servers: [{ host: '127.0.0.1', port }],
        credentials: credentials[i]!,
        trust: { caPem },
      });
      const at = clock();
      welcomed.push(at);
      joinMs.push(at - started);
      clients.push(client);
    } catch {
      failed++;
    }
  };
  const t0 = clock();
  const cpu0 = process.cpuUsage();
  await Promise.all(
    Array.from({ length: spec.concurrency }, async () => {
      while (next < spec.leaves.length) await one(next++);
    }),
  );
  holders = clients.length;
  const cpu = process.cpuUsage(cpu0);
  const cpuMs = (cpu.user + cpu.system) / 1000;
  out({
    t: 'admitted',
    n: welcomed.length,
    first: t0,
    last: Math.max(t0, ...welcomed),
    failed,
    cpuMs,
    joinMs,
  });
  for await (const line of createInterface({ input: process.stdin })) {
    if (line === 'status') {
      // Where the leaves stand (a diagnosis when the parent waits for an epoch in vain).
      const byEpoch: Record<number, number> = {};
      for (const c of clients) {
        const e = reached.get(c) ?? -1;
        byEpoch[e] = (byEpoch[e] ?? 0) + 1;
      }
      out({ t: 'status', holders, byEpoch, evicted });
    } else if (line === 'data') {
      const pulled = clients.reduce((a, c) => a + c.stats.pulledData, 0);
      out({ t: 'data', ...data, pulled: pulled - pulledReported });
      pulledReported = pulled;
      data.delivered = 0;
      data.latencies = [];
    } else if (line === 'exit') break;
  }
  await Promise.all(clients.map((c) => c.close({ leave: false }).catch(() => {})));
  process.exit(0);
}

// ── parent side ───────────────────────────────────────────────────────────────────────────────

class Worker {
  private readonly child: ChildProcess;
  private readonly waiters: { want: (e: WorkerEvent) => boolean; resolve: (e: WorkerEvent) => void }[] = [];
  readonly events: WorkerEvent[] = [];

  /** `specFile`: where the spec is written (thousands of leaves overflow an environment variable). */
  constructor(spec: WorkerSpec, specFile: string) {
    writeFileSync(specFile, JSON.stringify(spec));
    this.child = spawn(process.execPath, [...childNodeArgs(), fileURLToPath(import.meta.url)], {
      env: { ...process.env, [WORKER_ENV]: specFile },
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    createInterface({ input: this.child.stdout! }).on('line', (line) => {
      const e = JSON.parse(line) as WorkerEvent;
      this.events.push(e);
      for (const w of [...this.waiters])
        if (w.want(e)) {
          this.waiters.splice(this.waiters.indexOf(w), 1);
          w.resolve(e);
        }
    });
  }

  /** The first event (already seen or coming) that `want` accepts. */
  wait<E extends WorkerEvent>(want: (e: WorkerEvent) => e is E, timeoutMs: number): Promise<E> {
    const seen = this.events.find(want);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise<E>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('bench worker: timed out')), timeoutMs);
      this.waiters.push({
        want,
        resolve: (e) => {
          clearTimeout(timer);
          resolve(e as E);
        },
      });
    });
  }

  send(line: string): void {
    this.child.stdin!.write(`${line}\n`);
  }

  kill(): void {
    this.child.kill('SIGKILL');
  }

  /** Asks the worker to close its leaves and exit (bounded wait), then kills what is left. */
  async stop(): Promise<void> {
    if (this.child.exitCode === null) {
      const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
      this.send('exit');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
    }
    this.kill();
  }
}

const isStatus = (e: WorkerEvent): e is Extract<WorkerEvent, { t: 'status' }> => e.t === 'status';
const isAdmitted = (e: WorkerEvent): e is Extract<WorkerEvent, { t: 'admitted' }> => e.t === 'admitted';
const isEpoch =
  (epoch: number) =>
  (e: WorkerEvent): e is Extract<WorkerEvent, { t: 'epoch' }> =>
    e.t === 'epoch' && e.epoch === epoch;

function percentile(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
}

const ms = (x: number): number => Number(x.toFixed(1));

/**
 * A server's CPU time in ms: the whole process (prom-client default metric
 * `process_cpu_seconds_total`) and its main and leaf-port TLS threads
 * (`keyglass_thread_cpu_seconds_total`; 0 where absent, e.g. TLS on the main thread).
 */
interface ServerCpu {
  readonly process: number;
  readonly main: number;
  readonly tls: number;
}
async function serverCpuMs(cluster: LocalCluster, s: LocalCluster['servers'][number]): Promise<ServerCpu> {
  const text = await (await cluster.get(s, '/metrics')).text();
  const m = /^process_cpu_seconds_total (\S+)$/m.exec(text);
  if (m === null) throw new Error(`${s.name}: no process_cpu_seconds_total in /metrics`);
  const thread = (name: string): number =>
    Number(
      new RegExp(`^keyglass_thread_cpu_seconds_total\\{thread="${name}"\\} (\\S+)$`, 'm').exec(text)?.[1] ??
        0,
    ) * 1000;
  return { process: Number(m[1]) * 1000, main: thread('main'), tls: thread('leaf-tls') };
}
const allCpuMs = (cluster: LocalCluster): Promise<ServerCpu[]> =>
  Promise.all(cluster.servers.map((s) => serverCpuMs(cluster, s)));

/** How a server bench runs: leaves on gossip or TLS only, the batch interval, the populations. */
export interface ServerBenchVariant {
  readonly transport: 'gossip' | 'tls';
  readonly batchIntervalMs: number;
  readonly stages: (ctx: BenchContext) => readonly number[];
}

/** The suite's run function for a variant (the KG_SERVER_BENCH_* knobs above override it). */
export function serverBench(variant: ServerBenchVariant): (ctx: BenchContext) => Promise<BenchResult[]> {
  return (ctx) => runBench(ctx, variant);
}

async function runBench(ctx: BenchContext, variant: ServerBenchVariant): Promise<BenchResult[]> {
  const results: BenchResult[] = [];
  const stages = process.env[STAGES_ENV]?.split(',').map(Number) ?? variant.stages(ctx);
  if (!stages.every((n, i) => Number.isSafeInteger(n) && n > (stages[i - 1] ?? 0)))
    throw new RangeError(`${STAGES_ENV} must list increasing leaf counts`);
  const cluster = new LocalCluster('kg-bench-server-');
  const workers: Worker[] = [];
  try {
    await cluster.init('Bench CA');
    const gossip = (process.env[TRANSPORT_ENV] ?? variant.transport) !== 'tls';
    const batchIntervalMs = Number(process.env[BATCH_ENV] ?? variant.batchIntervalMs);
    const concurrency = Math.max(
      WORKER_CONCURRENCY_PER_200_MS,
      Math.ceil((WORKER_CONCURRENCY_PER_200_MS * batchIntervalMs) / 200),
    );
    if (!(Number.isInteger(batchIntervalMs) && batchIntervalMs >= 10))
      throw new RangeError(`${BATCH_ENV} must be an integer ≥ 10`);
    ctx.log(
      `  leaves on ${gossip ? 'gossip (UDP) + TLS' : 'TLS only'}, batch interval ${batchIntervalMs} ms`,
    );
    await cluster.startServers(3, {
      leaseMs: 120_000,
      batchIntervalMs,
      ...(gossip ? {} : { gossip: { enabled: false } }),
      leafTlsThread: process.env[LEAF_TLS_ENV] !== 'main',
    });
    const localOptions = gossip ? {} : { gossip: false as const };
    const transport = gossip ? 'gossip' : 'tls';
    await cluster.untilOnePrimaryView();
    // Leaves the benchmark process holds: one publisher, and triggers that leave to cause rekeys.
    const local: LocalLeaf[] = [];
    for (let i = 0; i < 8; i++) local.push(await cluster.leaf(`bench-local-${i}`, 0, localOptions));
    let population = 0; // leaves issued to the workers
    let admittedTotal = 0; // of them, admitted (a leaf whose attempts all failed holds no key)

    for (const target of stages) {
      const adding = target - population;
      const t0 = performance.now();
      const certs: { certFile: string; keyFile: string }[] = [];
      for (let i = 0; i < adding; i += MAX_ISSUE_BATCH) {
        const names = Array.from(
          { length: Math.min(MAX_ISSUE_BATCH, adding - i) },
          (_, j) => `bench-${population + i + j}`,
        );
        for (const m of await cluster.issueMany('leaf', names))
          certs.push({ certFile: m.certFile, keyFile: m.keyFile });
      }
      ctx.log(`  issued ${adding} leaf certificates in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      const all = population + adding + local.length;
      const servers = all <= MAX_LEAF_LINKS ? [cluster.servers[0]!] : cluster.servers;
      const ports = servers.map((s) => s.ports.leaf);
      const nWorkers = adding >= 1000 ? 2 : 1;
      const stageWorkers = Array.from(
        { length: nWorkers },
        (_, w) =>
          new Worker(
            {
              ports,
              caPemFile: cluster.caPemPath,
              leaves: certs.filter((_, i) => i % nWorkers === w),
              gossip,
              concurrency,
            },
            join(cluster.dir, `worker-${target}-${w}.json`),
          ),
      );
      workers.push(...stageWorkers);
      const cpuBefore = await allCpuMs(cluster);
      const admitted = await Promise.all(stageWorkers.map((w) => w.wait(isAdmitted, 600_000)));
      // The TLS threads report their CPU every THREAD_STATS_INTERVAL_MS: let the last of the
      // stage's work in.
      await new Promise((r) => setTimeout(r, 2 * THREAD_STATS_INTERVAL_MS + 100));
      const cpuAfter = await allCpuMs(cluster);
      const n = admitted.reduce((a, e) => a + e.n, 0);
      const failed = admitted.reduce((a, e) => a + e.failed, 0);
      const secs =
        (Math.max(...admitted.map((e) => e.last)) - Math.min(...admitted.map((e) => e.first))) / 1000;
      population += adding;
      admittedTotal += n;
      const perServer = n / secs / servers.length;
      const cpu = cluster.servers.map((s, i) => ({
        admitting: servers.includes(s),
        ms: cpuAfter[i]!.process - cpuBefore[i]!.process,
        main: cpuAfter[i]!.main - cpuBefore[i]!.main,
        tls: cpuAfter[i]!.tls - cpuBefore[i]!.tls,
      }));
      const perAdmission = (f: (c: (typeof cpu)[number]) => number): number =>
        cpu.filter((c) => c.admitting).reduce((a, c) => a + f(c), 0) / Math.max(1, n);
      const admittingCpuMs = perAdmission((c) => c.ms);
      // With the leaf port's TLS on its own thread, each thread bounds the rate on its own core.
      const mainMs = perAdmission((c) => c.main);
      const tlsMs = perAdmission((c) => c.tls);
      const allCpuPerJoinMs = cpu.reduce((a, c) => a + c.ms, 0) / Math.max(1, n);
      // The leaves' side (TLS, certificate checks, and every welcomed leaf verifying each push).
      const clientCpuPerJoinMs = admitted.reduce((a, e) => a + e.cpuMs, 0) / Math.max(1, n);
      const joinMs = admitted.flatMap((e) => e.joinMs);
      results.push({
        case: 'admission',
        params: { leaves: target, added: adding, servers: servers.length, transport, batchIntervalMs },
        metrics: {
          admittedPerSec: Math.round(n / secs),
          perServerPerSec: Math.round(perServer),
          failed,
          seconds: ms(secs),
          admittingServerCpuMsPerAdmission: Number(admittingCpuMs.toFixed(2)),
          allServersCpuMsPerAdmission: Number(allCpuPerJoinMs.toFixed(2)),
          admittingServerCapacityPerSec: Math.round(1000 / admittingCpuMs),
          mainThreadCpuMsPerAdmission: Number(mainMs.toFixed(2)),
          tlsThreadCpuMsPerAdmission: Number(tlsMs.toFixed(2)),
          twoCoreCapacityPerSec: Math.round(1000 / Math.max(mainMs, tlsMs)),
          clientCpuMsPerAdmission: Number(clientCpuPerJoinMs.toFixed(2)),
          joinP50Ms: ms(percentile(joinMs, 50)),
          joinP99Ms: ms(percentile(joinMs, 99)),
          loadAverage1m: Number(loadavg()[0]!.toFixed(2)),
        },
      });
      ctx.log(
        `  ${target} leaves: +${n} admitted in ${secs.toFixed(2)} s = ${Math.round(n / secs)}/s over ${servers.length} server(s) (${failed} failed); server CPU per admission ${admittingCpuMs.toFixed(2)} ms on the admitting server(s), ${allCpuPerJoinMs.toFixed(2)} ms on all → capacity ≈ ${Math.round(1000 / admittingCpuMs)}/s per server core; of it ${mainMs.toFixed(2)} ms on the main thread, ${tlsMs.toFixed(2)} ms on the leaf TLS thread → ≈ ${Math.round(1000 / Math.max(mainMs, tlsMs))}/s per server with a core for each; leaf processes' CPU per admission ${clientCpuPerJoinMs.toFixed(2)} ms; join latency p50 ${ms(percentile(joinMs, 50))} ms, p99 ${ms(percentile(joinMs, 99))} ms; load average ${loadavg()[0]!.toFixed(2)}`,
      );

      // Rekey: a local leaf leaves; every leaf (workers' and local ones) must hold the new epoch.
      const latencies: number[] = [];
      const spreads: number[] = [];
      const fromBatch: number[] = [];
      const fanOut: number[] = []; // the slowest server's time to hand the batch to its leaves
      const holders = admittedTotal + local.length - 1; // every admitted leaf but the trigger
      for (let rep = 0; rep < (ctx.quick ? 2 : 3); rep++) {
        const trigger = local.pop()!;
        const stay = local[0]!;
        // The next epoch after the one the group is at (the server's word: a local leaf may lag).
        const current = (await cluster.status(cluster.servers[0]!)).leafEpoch;
        await until('the local leaf at the current epoch', () => (stay.keys.at(-1)?.epoch ?? 0) >= current);
        const epoch = current + 1;
        const tStart = clock();
        // Whether the leave could go out at all (a trigger whose link is down and whose failover
        // gave up holds no link to send it on: the registry then drops it only at lease expiry).
        const triggerState = `trigger ${trigger.name}: ${trigger.client.server === undefined ? 'NOT linked' : `linked to ${trigger.client.server}`}, ${trigger.client.stats.reconnects} reconnects`;
        await trigger.client.close({ leave: true });
        const done = await Promise.all(workers.map((w) => w.wait(isEpoch(epoch), 60_000))).catch(
          async (e: unknown) => {
            // Say where the leaves stand before failing.
            for (const w of workers) w.send('status');
            const st = await Promise.all(workers.map((w) => w.wait(isStatus, 5_000).catch(() => undefined)));
            const local = stay.keys.at(-1)?.epoch;
            throw new Error(
              `${(e as Error).message} waiting for epoch ${epoch} (local leaf at ${local}; ${triggerState}); workers: ${JSON.stringify(st)}`,
            );
          },
        );
        const last = Math.max(...done.map((e) => e.last));
        const first = Math.min(...done.map((e) => e.first));
        latencies.push(last - tStart);
        spreads.push(last - first);
        // Batch start ≈ the first server to apply the batch (ordering adds ~ms before that).
        const batches = (await Promise.all(cluster.servers.map((s) => cluster.status(s))))
          .map((st) => st.lastBatch)
          .filter((b) => b?.epoch === epoch)
          .map((b) => b!);
        if (batches.length > 0) {
          fromBatch.push(last - Math.min(...batches.map((b) => b.appliedAtMs)));
          fanOut.push(Math.max(...batches.map((b) => b.fanOutMs)));
        }
        await new Promise((r) => setTimeout(r, 200));
      }
      // −1: no server reported applying the epoch (another batch followed before the poll).
      const batchMedian = fromBatch.length > 0 ? ms(percentile(fromBatch, 50)) : -1;
      const batchMax = fromBatch.length > 0 ? ms(Math.max(...fromBatch)) : -1;
      const serverFanOut = fanOut.length > 0 ? ms(percentile(fanOut, 50)) : -1;
      results.push({
        case: 'rekey',
        params: { leaves: holders, transport, batchIntervalMs },
        metrics: {
          triggerToAllMs: ms(percentile(latencies, 50)),
          batchToAllMs: batchMedian,
          maxBatchToAllMs: batchMax,
          serverFanOutMs: serverFanOut,
          firstToLastMs: ms(percentile(spreads, 50)),
          maxTriggerToAllMs: ms(Math.max(...latencies)),
        },
      });
      ctx.log(
        `  rekey of ${holders} leaves: trigger → all ${ms(percentile(latencies, 50))} ms (median of ${latencies.length}), batch applied → all ${batchMedian} ms (max ${batchMax}; the slowest server handed it to its leaves in ${serverFanOut} ms), first → last leaf ${ms(percentile(spreads, 50))} ms`,
      );
      if (local.length < 3)
        for (let i = 0; i < 3; i++)
          local.push(await cluster.leaf(`bench-local-${target}-${i}`, 0, localOptions));
      await until(
        'local leaves on one epoch',
        () => new Set(local.map((l) => l.keys.at(-1)?.epoch)).size === 1,
      );
    }

    if (process.env[PUBLISH_ENV] !== '0')
      results.push(...(await publishCases(ctx, local, admittedTotal, workers)));
  } finally {
    if (process.env[GRACEFUL_ENV] === '1') {
      await Promise.all(workers.map((w) => w.stop()));
      await stopGracefully(cluster);
    } else for (const w of workers) w.kill();
    const logs = process.env[LOGS_ENV];
    if (logs !== undefined)
      for (const s of cluster.servers) copyFileSync(s.logFile, join(logs, `${s.name}.log`));
    await cluster.stop();
  }
  return results;
}

/** SIGTERM every server and wait (bounded) for it to exit by itself. */
async function stopGracefully(cluster: LocalCluster): Promise<void> {
  await Promise.all(
    cluster.servers.map(async (s) => {
      const child = s.child;
      if (child === undefined || child.exitCode !== null) return;
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
    }),
  );
}

/** Publish → deliver, 1 KiB, to the largest population: paced latency, then a burst's throughput. */
async function publishCases(
  ctx: BenchContext,
  local: readonly LocalLeaf[],
  population: number,
  workers: readonly Worker[],
): Promise<BenchResult[]> {
  const results: BenchResult[] = [];
  // Publish → deliver, 1 KiB, to the largest population.
  const publisher = local[0]!;
  const recipients = population + local.length - 1;
  const payload = new Uint8Array(MSG_BYTES);
  const stamp = (): Uint8Array => {
    new DataView(payload.buffer).setFloat64(0, clock());
    return payload;
  };
  const collect = async (): Promise<Extract<WorkerEvent, { t: 'data' }>[]> => {
    const before = workers.map((w) => w.events.length);
    for (const w of workers) w.send('data');
    return Promise.all(
      workers.map((w, i) =>
        w.wait(
          (e): e is Extract<WorkerEvent, { t: 'data' }> =>
            e.t === 'data' && w.events.indexOf(e) >= before[i]!,
          30_000,
        ),
      ),
    );
  };
  const paced = ctx.quick ? 20 : 50;
  /**
   * One publish with flow control: when the client's window of unanswered publishes is full it
   * waits for 'drain' (bounded). 'sent' is not yet 'accepted': the server may still refuse it
   * ('refused' events, counted below) when the core's send queue is full. 'down': the link was
   * failing over, nothing was sent.
   */
  const publishWithFlowControl = async (): Promise<'sent' | 'down'> => {
    for (let waits = 0; waits < 20; waits++) {
      let ok: boolean;
      try {
        ok = publisher.client.publish(stamp());
      } catch {
        return 'down';
      }
      if (ok) return 'sent';
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, 1000);
        function done(): void {
          clearTimeout(timer);
          publisher.client.off('drain', done);
          resolve();
        }
        publisher.client.on('drain', done);
      });
    }
    return 'down';
  };
  let refusedByServer = 0;
  const onRefused = (): void => {
    refusedByServer++;
  };
  publisher.client.on('refused', onRefused);
  /** Waits (bounded) until the server answered every publish sent. */
  const answered = (): Promise<void> =>
    until('publishes answered', () => publisher.client.publishesInFlight === 0, 30_000);

  /** Collects deliveries until `expected` arrived or none came for 3 s (the relay drops under overload). */
  const collectUntil = async (
    expected: number,
  ): Promise<{ got: number; pulled: number; latencies: number[]; lastAt: number }> => {
    const latencies: number[] = [];
    let got = 0;
    let pulled = 0;
    let lastAt = 0;
    for (let idle = 0; got < expected && idle < 6;) {
      await new Promise((r) => setTimeout(r, 500));
      const d = await collect();
      const fresh = d.reduce((a, x) => a + x.delivered, 0);
      got += fresh;
      pulled += d.reduce((a, x) => a + x.pulled, 0);
      for (const x of d) for (const l of x.latencies) latencies.push(l); // (spread: too many arguments)
      lastAt = Math.max(lastAt, ...d.map((x) => x.last));
      idle = fresh === 0 ? idle + 1 : 0;
    }
    return { got, pulled, latencies, lastAt };
  };

  // Latency: messages spaced by population (0.05 ms per leaf: 495 ms at 10^4, where three servers
  // took up to ~430 ms each to write a batch to their ~3,300 leaves): about what the fan-out keeps up with;
  // every delivery is waited for, however late.
  const paceMs = Math.max(20, Math.ceil(population / 20));
  let pacedDown = 0;
  for (let i = 0; i < paced; i++) {
    if ((await publishWithFlowControl()) === 'down') pacedDown++;
    await new Promise((r) => setTimeout(r, paceMs));
  }
  await answered();
  const pacedRefused = refusedByServer;
  const pacedExpected = (paced - pacedDown - pacedRefused) * population;
  const { got: pacedGot, latencies: lat } = await collectUntil(pacedExpected);
  results.push({
    case: 'publish.latency',
    params: { bytes: MSG_BYTES, recipients, messages: paced, paceMs },
    metrics: {
      p50Ms: ms(percentile(lat, 50)),
      p99Ms: ms(percentile(lat, 99)),
      deliveries: pacedGot,
      deliveredPct: Number(((100 * pacedGot) / Math.max(1, pacedExpected)).toFixed(1)),
      refused: pacedRefused + pacedDown,
    },
  });
  ctx.log(
    `  publish→deliver 1 KiB to ${recipients} leaves, one every ${paceMs} ms: p50 ${ms(percentile(lat, 50))} ms, p99 ${ms(percentile(lat, 99))} ms (${pacedGot}/${pacedExpected} deliveries; ${pacedRefused} of ${paced} publishes refused by the server, ${pacedDown} not sent: link down)`,
  );

  // Throughput: a burst, as fast as the publisher's window of unanswered publishes lets it (flow
  // control from the core's send queue); what the server refuses is published again after a
  // pause, as an application would. At most ~10^6 deliveries: a burst of 1,000 to 10^4 leaves
  // would be 10^7, minutes of this machine spent opening envelopes in the leaf processes.
  const burst = Math.max(20, Math.min(ctx.quick ? 200 : 1000, Math.floor(1e6 / Math.max(1, population))));
  const deferredBefore = publisher.client.stats.publishesDeferred;
  const tb = clock();
  let accepted = 0;
  let down = 0;
  let retried = 0;
  for (let toSend = burst, round = 0; toSend > 0 && round < 50; round++) {
    if (round > 0) {
      retried += toSend;
      await new Promise((r) => setTimeout(r, 200));
    }
    refusedByServer = 0;
    let downNow = 0;
    for (let i = 0; i < toSend; i++) if ((await publishWithFlowControl()) === 'down') downNow++;
    await answered();
    accepted += toSend - downNow - refusedByServer;
    down += downNow;
    toSend = refusedByServer;
  }
  const publishedSecs = (clock() - tb) / 1000;
  const deferred = publisher.client.stats.publishesDeferred - deferredBefore;
  publisher.client.off('refused', onRefused);
  const expected = accepted * population;
  const { got, pulled, lastAt } = await collectUntil(expected);
  const bsecs = (lastAt - tb) / 1000;
  results.push({
    case: 'publish.throughput',
    params: { bytes: MSG_BYTES, recipientsInWorkers: population, messages: burst },
    metrics: {
      messagesPerSec: Math.round(accepted / publishedSecs),
      deliveriesPerSec: Math.round(got / bsecs),
      MBpsDelivered: Number(((got * MSG_BYTES) / bsecs / 1e6).toFixed(1)),
      republishedAfterRefusal: retried,
      notSent: down,
      deferredByWindow: deferred,
      deliveredPct: Number(((100 * got) / Math.max(1, expected)).toFixed(1)),
      pulledFromServer: pulled,
    },
  });
  ctx.log(
    `  burst of ${burst} × 1 KiB: ${accepted} accepted at ${Math.round(accepted / publishedSecs)} msgs/s (the publisher waited for its window ${deferred} times, published ${retried} again after a refusal, ${down} not sent), ${Math.round(got / bsecs)} deliveries/s, ${got}/${expected} delivered (${pulled} of them pulled from a server's data history)`,
  );

  const suite = await loadSuite();
  const key = new Uint8Array(32).fill(1);
  const nonce = new Uint8Array(24); // XChaCha20-Poly1305, the envelopes' AEAD
  const t = measure(() => suite.aeadSeal(key, nonce, payload), ctx.timing);
  // (One seal per message at the publisher; each delivery is one open at a leaf.)
  results.push({
    case: 'aead.seal',
    params: { bytes: MSG_BYTES },
    metrics: {
      opsPerSec: Math.round(t.opsPerSec),
      MBps: Number(((t.opsPerSec * MSG_BYTES) / 1e6).toFixed(1)),
    },
  });
  ctx.log(`  raw AEAD seal 1 KiB: ${Math.round(t.opsPerSec)}/s`);
  return results;
}
const suite: BenchSuite = {
  name: 'server',
  description:
    'keyglass server processes, leaves on gossip: leaf admission rate, rekey latency, publish→deliver (1 KiB)',
  run: serverBench({
    transport: 'gossip',
    batchIntervalMs: 100,
    // Not 10^4 here: an idle gossip leaf costs ~1.3 ms of CPU a second (digests, probes, view
    // upkeep at 100 ms rounds), so 10^3 of them already take more than a core of this machine.
    // server-tls measures 10^4 leaves.
    stages: (ctx) => (ctx.quick ? [50, 200] : [100, 1000]),
  }),
};
export default suite;

const workerSpecFile = process.env[WORKER_ENV];
if (workerSpecFile !== undefined)
  await workerMain(JSON.parse(readFileSync(workerSpecFile, 'utf8')) as WorkerSpec);
