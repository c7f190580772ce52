/**
 * The nemesis soak (issue 18, item 7): real `keyglass server` processes on 127.0.0.1 (the
 * cli/cluster kit), every core link through a FaultProxy (one per direction and pair, so one
 * server can be cut from the mesh), a few hundred LeafClients in this process under churn, and a
 * seeded nemesis that SIGKILLs and restarts, SIGSTOPs and SIGCONTs, partitions and heals servers,
 * and powers off the whole group. Every fault is healed before the next one (calm in between),
 * so the group can always recover; at the end everything is healed and a checker compares the
 * registry and the leaves' keys with what the system acknowledged.
 *
 * What the checker knows (the model): a leaf whose connect() resolved was admitted; one we closed
 * (with or without a leave), revoked (CRL), or that the system evicted is gone for good. After the
 * final heal and a wait past the lease, every server's registry must hold exactly the live ones
 * (count, and each live leaf holds the current group key, which only a registered leaf can), and
 * a revoked leaf must hold no key and have read no message of its eviction epoch or later (the
 * epoch its server logged when it evicted it).
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { LocalCluster, until, type LocalLeaf, type ServerProc } from '../../cli/cluster/index.js';
import type { ServerStatus } from '../../server/index.js';
import { rng } from '../keytree/harness.js';
import { FaultProxy } from '../server/proxy.js';

export interface SoakOptions {
  readonly minutes: number;
  readonly servers: number;
  readonly leaves: number;
  readonly seed: number;
  /** Fraction of leaves with the UDP gossip tier on (CPU: the rest are TLS only). */
  readonly gossip: number;
  /** Keep the temp dir (logs, data) even without violations. */
  readonly keep: boolean;
}

export type FaultKind =
  'kill' | 'stop' | 'partition' | 'outage' | 'stale-outage' | 'kill-majority' | 'kill+partition';

export interface SoakSummary {
  seed: number;
  servers: number;
  targetLeaves: number;
  minutes: number;
  elapsedS: number;
  operations: {
    joins: number;
    joinFailures: number;
    leaves: number;
    silent: number;
    revocations: number;
    publishes: number;
    publishRefused: number;
  };
  faults: Record<FaultKind, number>;
  unplannedEvictions: Record<string, number>;
  readmitted: Record<string, number>;
  finalState: { liveLeaves: number; registry: number[]; leafEpoch: number[]; keyId: string | undefined };
  /** Revoked leaves checked against the epoch they were evicted at, and what they had read before it. */
  revokedChecked: {
    withEvictionEpoch: number;
    withoutLogLine: number;
    messagesRead: number;
    keysHeld: number;
  };
  /** Data messages the leaves delivered in all (each publish reaches every member but its publisher). */
  delivered: number;
  violations: number;
  violationList: string[];
  dir: string | undefined;
}

type LeafState = 'joining' | 'live' | 'left' | 'silent' | 'revoked' | 'failed' | 'evicted';

interface Tracked {
  readonly name: string;
  leaf: LocalLeaf | undefined;
  state: LeafState;
  /** Why the system evicted it when we did not ask (lease expiry under a fault). */
  evictedFor?: string;
  /** The admission its welcome acknowledged: a later welcome with another one means it was lost. */
  admittedEpoch?: number | undefined;
}

const LEASE_MS = 5000;
const RECOVERY_MS = 60_000;
const JOIN_TIMEOUT_MS = 30_000;
const MAX_INFLIGHT_OPS = 6;
const STATUS_POLL_MS = 2000;
const MAX_VIOLATIONS_KEPT = 200;

const pick = <T>(r: () => number, xs: readonly T[]): T | undefined =>
  xs.length === 0 ? undefined : xs[Math.floor(r() * xs.length)];
const between = (r: () => number, lo: number, hi: number): number => lo + Math.floor(r() * (hi - lo));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class Soak {
  private readonly cluster = new LocalCluster('kg-soak-');
  /** Two streams: the fault schedule replays from the seed whatever the workload's timing. */
  private readonly nem: () => number;
  private readonly work: () => number;
  /** proxies[i][j]: server i dials server j through it (i ≠ j). */
  private proxies: (FaultProxy | undefined)[][] = [];
  private readonly tracked: Tracked[] = [];
  private nextLeaf = 0;
  private inflight = 0;
  private aborted = false;
  private readonly started = Date.now();
  private readonly deadline: number;
  /** Children we are about to kill or that are stopped: their exit is ours, not a crash. */
  private readonly expectedExit = new WeakSet<ChildProcess>();
  private readonly stopped = new Set<ServerProc>();
  /** Highest leaf epoch each server reported while primary (a rollback check across restarts). */
  private readonly highWater = new Map<string, number>();
  private readonly violationList: string[] = [];
  private violations = 0;
  private readonly ops = {
    joins: 0,
    joinFailures: 0,
    leaves: 0,
    silent: 0,
    revocations: 0,
    publishes: 0,
    publishRefused: 0,
  };
  private readonly faults: Record<FaultKind, number> = {
    kill: 0,
    stop: 0,
    partition: 0,
    outage: 0,
    'stale-outage': 0,
    'kill-majority': 0,
    'kill+partition': 0,
  };
  private readonly unplanned: Record<string, number> = {};
  /** Live leaves the registry removed (logged reason) and that were admitted again when they resumed. */
  private readonly readmitted: Record<string, number> = {};
  private revokedChecked = { withEvictionEpoch: 0, withoutLogLine: 0, messagesRead: 0, keysHeld: 0 };

  constructor(private readonly o: SoakOptions) {
    this.nem = rng(o.seed);
    this.work = rng(o.seed ^ 0x5eed5eed);
    this.deadline = this.started + o.minutes * 60_000;
  }

  get tempDir(): string {
    return this.cluster.dir;
  }

  /** Ctrl-C: stop the phases; run() then heals, checks what it can and cleans up. */
  abort(): void {
    this.aborted = true;
  }

  /** Synchronous last resort (process 'exit'): nothing of ours survives us. */
  killAllNow(): void {
    for (const s of this.cluster.servers) s.child?.kill('SIGCONT');
    this.cluster.killAllNow();
  }

  private log(msg: string): void {
    const t = ((Date.now() - this.started) / 1000).toFixed(1).padStart(7);
    console.log(`[soak ${t}s] ${msg}`);
  }

  private violation(what: string): void {
    this.violations++;
    if (this.violationList.length < MAX_VIOLATIONS_KEPT) this.violationList.push(what);
    this.log(`VIOLATION: ${what}`);
  }

  // ── servers ────────────────────────────────────────────────────────────────────────────────

  private async setUp(): Promise<void> {
    const c = this.cluster;
    await c.init('Keyglass Soak CA');
    await c.startServers(this.o.servers, { leaseMs: LEASE_MS, logLevel: 'info' });
    // The kit wires the mesh directly: restart with every core link through a proxy of its own.
    await Promise.all(c.servers.map((s) => this.killAndWait(s)));
    for (const s of c.servers) rmSync(join(c.dir, `data-${s.name}`), { recursive: true, force: true });
    this.proxies = await Promise.all(
      c.servers.map((_, i) =>
        Promise.all(c.servers.map((t, j) => (i === j ? undefined : FaultProxy.start(t.ports.core)))),
      ),
    );
    for (const [i, s] of c.servers.entries()) {
      const peers = Object.fromEntries(
        c.servers.flatMap((t, j) => (i === j ? [] : [[t.name, `127.0.0.1:${this.proxies[i]![j]!.port}`]])),
      );
      const file = c.configFile(s);
      const cfg = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
      writeJson(file, { ...cfg, peers });
    }
    await Promise.all(c.servers.map((s) => this.start(s)));
    await c.untilOnePrimaryView(RECOVERY_MS);
    this.log(`${this.o.servers} servers up in one primary view (proxied core links), dir ${c.dir}`);
  }

  /** Spawns `s` and watches its child: an exit we did not cause is a crash. */
  private async start(s: ServerProc): Promise<void> {
    const spawned = this.cluster.spawn(s);
    const child = s.child!;
    child.once('exit', (code, signal) => {
      if (!this.expectedExit.has(child)) this.violation(`${s.name} exited on its own (${code ?? signal})`);
    });
    await spawned;
  }

  private async killAndWait(s: ServerProc): Promise<void> {
    const child = s.child;
    if (child === undefined) return;
    this.expectedExit.add(child);
    const exited =
      child.exitCode !== null || child.signalCode !== null
        ? Promise.resolve()
        : new Promise<void>((r) => child.once('exit', () => r()));
    this.cluster.kill(s);
    this.stopped.delete(s);
    await exited;
  }

  private cut(i: number, on: boolean): void {
    for (const [j, row] of this.proxies.entries())
      for (const [k, p] of row.entries())
        if (p !== undefined && (j === i || k === i)) {
          if (on) p.partition();
          else p.heal();
        }
  }

  private async statuses(): Promise<(ServerStatus | undefined)[]> {
    return Promise.all(
      this.cluster.servers.map((s) =>
        s.child === undefined || this.stopped.has(s)
          ? undefined
          : this.cluster.status(s).catch(() => undefined),
      ),
    );
  }

  /** Invariants a live server must keep at any time (from /status). */
  private async pollInvariants(): Promise<void> {
    const st = await this.statuses();
    for (const x of st) {
      if (x === undefined || !x.view.primary) continue;
      const hw = this.highWater.get(x.name) ?? 0;
      // A pending state transfer may still be running right after a view: only a primary that
      // has nothing pending speaks for its committed state.
      if (x.pendingBatch === 0 && x.leafEpoch < hw)
        this.violation(
          `${x.name}: leaf epoch ${x.leafEpoch} in a primary view after it held ${hw} (rollback)`,
        );
      this.highWater.set(x.name, Math.max(hw, x.leafEpoch));
      if (!x.view.members.includes(x.member)) this.violation(`${x.name}: its view does not list it`);
    }
  }

  private async recover(what: string): Promise<boolean> {
    const t0 = Date.now();
    try {
      await this.cluster.untilOnePrimaryView(RECOVERY_MS);
      this.log(`  recovered after ${what}: one primary view of ${this.o.servers} in ${Date.now() - t0} ms`);
      return true;
    } catch {
      this.violation(
        `no primary view of all ${this.o.servers} servers within ${RECOVERY_MS} ms after ${what}`,
      );
      return false;
    }
  }

  // ── nemesis ────────────────────────────────────────────────────────────────────────────────

  private async nemesis(): Promise<void> {
    const kinds: FaultKind[] = ['kill', 'stop', 'partition', 'outage', 'stale-outage', 'kill-majority'];
    if (this.o.servers >= 5) kinds.push('kill+partition');
    const n = this.o.servers;
    while (!this.aborted && Date.now() < this.deadline - 20_000) {
      const calm = between(this.nem, 5000, 15_000);
      const o = this.ops;
      this.log(
        `calm ${calm} ms (live leaves ${this.live().length}; joins ${o.joins}, leaves ${o.leaves}, silent ${o.silent}, revocations ${o.revocations}, publishes ${o.publishes})`,
      );
      await this.sleepUnlessAborted(calm);
      if (this.aborted || Date.now() >= this.deadline - 20_000) break;
      const kind = pick(this.nem, kinds)!;
      const i = between(this.nem, 0, n);
      const s = this.cluster.servers[i]!;
      const hold = between(this.nem, 2000, 10_000);
      this.faults[kind]++;
      switch (kind) {
        case 'kill':
          this.log(`fault kill: SIGKILL ${s.name}, restart after ${hold} ms`);
          await this.killAndWait(s);
          await sleep(hold);
          await this.start(s);
          break;
        case 'stop':
          this.log(`fault stop: SIGSTOP ${s.name} for ${hold} ms, then SIGCONT`);
          this.stopped.add(s);
          s.child?.kill('SIGSTOP');
          await sleep(hold);
          s.child?.kill('SIGCONT');
          this.stopped.delete(s);
          break;
        case 'partition':
          this.log(`fault partition: cut ${s.name} from the mesh for ${hold} ms, then heal`);
          this.cut(i, true);
          await sleep(hold);
          this.cut(i, false);
          break;
        case 'outage': {
          const down = between(this.nem, 1000, 5000);
          this.log(`fault outage: SIGKILL all ${n}, restart all after ${down} ms (unchanged configs)`);
          await Promise.all(this.cluster.servers.map((x) => this.killAndWait(x)));
          await sleep(down);
          // In a seeded order, a few hundred ms apart: whoever comes first must not win by it.
          const order = [...this.cluster.servers].sort(() => this.nem() - 0.5);
          for (const x of order) {
            await this.start(x);
            await sleep(between(this.nem, 0, 800));
          }
          break;
        }
        case 'stale-outage': {
          // Issue 18's rollback: one server stops, the rest commit without it (churn goes on),
          // then a power cut; the stale one comes back first with one other, the rest later.
          const down = between(this.nem, 1000, 3000);
          const others = this.cluster.servers.filter((x) => x !== s);
          const partner = pick(this.nem, others)!;
          this.log(
            `fault stale-outage: SIGKILL ${s.name}, ${hold} ms later SIGKILL all; restart ${s.name} and ${partner.name} first, the rest 3 s later`,
          );
          await this.killAndWait(s);
          await sleep(hold);
          await Promise.all(others.map((x) => this.killAndWait(x)));
          await sleep(down);
          await Promise.all([this.start(s), this.start(partner)]);
          await sleep(3000);
          for (const x of others) if (x !== partner) await this.start(x);
          break;
        }
        case 'kill-majority': {
          // No majority left: nothing may change until they are back (joins wait or fail).
          const k = Math.floor(n / 2) + 1;
          const victims = [...this.cluster.servers].sort(() => this.nem() - 0.5).slice(0, k);
          this.log(
            `fault kill-majority: SIGKILL ${victims.map((x) => x.name).join(', ')}, restart after ${hold} ms`,
          );
          await Promise.all(victims.map((x) => this.killAndWait(x)));
          await sleep(hold);
          for (const x of victims) await this.start(x);
          break;
        }
        case 'kill+partition': {
          const k = (i + 1 + between(this.nem, 0, n - 1)) % n;
          const p = this.cluster.servers[k]!;
          this.log(`fault kill+partition: SIGKILL ${s.name}, cut ${p.name}, for ${hold} ms`);
          await this.killAndWait(s);
          this.cut(k, true);
          await sleep(hold);
          this.cut(k, false);
          await this.start(s);
          break;
        }
      }
      await this.recover(kind);
    }
  }

  private async sleepUnlessAborted(ms: number): Promise<void> {
    const end = Date.now() + ms;
    while (!this.aborted && Date.now() < end) await sleep(Math.min(250, end - Date.now()));
  }

  // ── workload ───────────────────────────────────────────────────────────────────────────────

  private live(): Tracked[] {
    return this.tracked.filter((t) => t.state === 'live' && t.leaf?.client.server !== undefined);
  }

  private async join(): Promise<void> {
    const name = `leaf-${++this.nextLeaf}`;
    const t: Tracked = { name, leaf: undefined, state: 'joining' };
    this.tracked.push(t);
    const gossip = this.work() < this.o.gossip;
    const first = between(this.work, 0, this.o.servers);
    const options = {
      maxAttempts: 400,
      backoffMaxMs: 1000,
      ...(gossip ? {} : { gossip: false as const }),
    };
    let timer: NodeJS.Timeout | undefined;
    try {
      const joined = this.cluster.leaf(name, first, options);
      t.leaf = await Promise.race([
        joined,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error('join timed out')), JOIN_TIMEOUT_MS);
        }),
      ]);
      t.leaf.client.on('evicted', ({ reason }) => this.onEvicted(t, reason));
      t.admittedEpoch = t.leaf.client.admissionEpoch;
      if (t.state === 'joining') t.state = 'live';
      this.ops.joins++;
    } catch {
      // Not acknowledged: it may or may not have been admitted; closed without a leave, its
      // lease (if any) expires and it must be gone at the end.
      this.ops.joinFailures++;
      t.state = 'failed';
      t.leaf ??= this.cluster.leaves.find((l) => l.name === name);
      await t.leaf?.client.close({ leave: false }).catch(() => {});
    } finally {
      clearTimeout(timer);
    }
  }

  private onEvicted(t: Tracked, reason: string): void {
    if (t.state === 'revoked') return;
    if (reason === 'revoked') this.violation(`${t.name} evicted as revoked, but never revoked`);
    if (t.state === 'live') {
      t.state = 'evicted';
      t.evictedFor = reason;
      this.unplanned[reason] = (this.unplanned[reason] ?? 0) + 1;
    }
  }

  private async depart(graceful: boolean): Promise<void> {
    const t = pick(this.work, this.live());
    if (t === undefined) return;
    t.state = graceful ? 'left' : 'silent';
    if (graceful) this.ops.leaves++;
    else this.ops.silent++;
    await t.leaf!.client.close({ leave: graceful, leaveWaitMs: 3000 }).catch(() => {});
  }

  private async revoke(): Promise<void> {
    const t = pick(this.work, this.live());
    if (t === undefined) return;
    t.state = 'revoked';
    this.ops.revocations++;
    await this.cluster.revoke(t.leaf!.serial); // the CRL file every server polls
  }

  private publish(): void {
    const t = pick(this.work, this.live());
    if (t === undefined) return;
    try {
      if (t.leaf!.client.publish(new TextEncoder().encode(`m-${this.ops.publishes}`))) this.ops.publishes++;
      else this.ops.publishRefused++;
    } catch {
      this.ops.publishRefused++; // went down between the pick and now
    }
  }

  private async workload(): Promise<void> {
    const target = this.o.leaves;
    while (!this.aborted && Date.now() < this.deadline) {
      await sleep(between(this.work, 20, 120));
      if (this.inflight >= MAX_INFLIGHT_OPS) continue;
      const population = this.tracked.filter((t) => t.state === 'live' || t.state === 'joining').length;
      const r = this.work();
      let op: () => Promise<void> | void;
      if (population < target * 0.9 || (population < target * 1.1 && r < 0.3)) op = () => this.join();
      else if (r < 0.45) op = () => this.depart(true);
      else if (r < 0.6) op = () => this.depart(false);
      else if (r < 0.66) op = () => this.revoke();
      else op = () => this.publish();
      this.inflight++;
      void Promise.resolve()
        .then(op)
        .catch((e: unknown) => this.log(`workload op failed: ${(e as Error).message}`))
        .finally(() => this.inflight--);
    }
    await until('workload ops settled', () => this.inflight === 0, JOIN_TIMEOUT_MS + 15_000).catch(() => {});
  }

  // ── checker ────────────────────────────────────────────────────────────────────────────────

  /** Heals everything: SIGCONT, proxies healed, dead servers restarted. */
  private async healAll(): Promise<void> {
    for (const s of this.stopped) s.child?.kill('SIGCONT');
    this.stopped.clear();
    for (let i = 0; i < this.o.servers; i++) this.cut(i, false);
    for (const s of this.cluster.servers) if (s.child === undefined) await this.start(s);
  }

  /** Every registry removal the servers logged (audit lines), by leaf: epoch and reason. */
  private removals(): Map<string, { epoch: number; reason: string }[]> {
    const out = new Map<string, { epoch: number; reason: string }[]>();
    for (const s of this.cluster.servers) {
      let text = '';
      try {
        text = readFileSync(s.logFile, 'utf8');
      } catch {
        continue;
      }
      for (const line of text.split('\n')) {
        if (!line.includes('"msg":"audit"')) continue;
        try {
          const j = JSON.parse(line) as { event?: string; leaf?: string; epoch?: number; reason?: string };
          if (j.event === 'admission') continue; // removals only
          if (j.leaf === undefined || typeof j.epoch !== 'number' || j.reason === undefined) continue;
          const xs = out.get(j.leaf) ?? [];
          if (!xs.some((x) => x.epoch === j.epoch && x.reason === j.reason))
            xs.push({ epoch: j.epoch, reason: j.reason });
          out.set(j.leaf, xs);
        } catch {
          // a line cut by a SIGKILL
        }
      }
    }
    return out;
  }

  private async check(): Promise<SoakSummary['finalState']> {
    this.log('final: healing everything');
    await this.healAll();
    await this.recover('final heal');
    // Silent departures and failed joins leave by lease expiry.
    const wait = 2 * LEASE_MS + 3000;
    this.log(`final: waiting ${wait} ms for leases of departed leaves to expire`);
    await sleep(wait);
    const live = this.tracked.filter((t) => t.state === 'live');
    const lastKey = (l: LocalLeaf): { epoch: number; keyId: string } | undefined => l.keys.at(-1);
    let st: ServerStatus[] = [];
    let settled = false;
    const expected = live.length;
    try {
      // One settled leaf state on every server, and every live leaf on its key.
      await until(
        'a settled leaf epoch held by every live leaf',
        async () => {
          st = await Promise.all(this.cluster.servers.map((s) => this.cluster.status(s)));
          const epoch = st[0]!.leafEpoch;
          return (
            st.every((x) => x.leafEpoch === epoch && x.pendingBatch === 0 && x.leaves === st[0]!.leaves) &&
            st[0]!.leaves === expected &&
            live.every((t) => lastKey(t.leaf!)?.epoch === epoch) &&
            new Set(live.map((t) => lastKey(t.leaf!)?.keyId)).size <= 1
          );
        },
        45_000,
      );
      settled = true;
    } catch {
      st = await Promise.all(
        this.cluster.servers.map((s) => this.cluster.status(s).catch(() => undefined)),
      ).then((xs) => xs.filter((x): x is ServerStatus => x !== undefined));
    }
    const epoch = st[0]?.leafEpoch ?? -1;
    if (!settled) {
      this.log('final: the leaf state did not settle within 45 s; reporting what differs');
      for (const x of st) {
        if (x.leaves !== expected)
          this.violation(
            `${x.name}: registry holds ${x.leaves} leaves, ${expected} are live (admitted, not departed)`,
          );
        if (x.leafEpoch !== epoch)
          this.violation(`${x.name}: leaf epoch ${x.leafEpoch} ≠ ${st[0]!.name}'s ${epoch}`);
        if (x.pendingBatch !== 0) this.violation(`${x.name}: ${x.pendingBatch} commands still pending`);
      }
      const stale = live.filter((t) => lastKey(t.leaf!)?.epoch !== epoch);
      for (const t of stale.slice(0, 20))
        this.violation(
          `live ${t.name} holds epoch ${lastKey(t.leaf!)?.epoch}, servers ${epoch} (linked: ${t.leaf!.client.server ?? 'no'}; errors: ${t.leaf!.errors.at(-1)?.message ?? '-'})`,
        );
      if (stale.length > 20)
        this.violation(`… and ${stale.length - 20} more live leaves off the current key`);
    }
    // An acknowledged admission is kept: a live leaf still holds the admission it was welcomed
    // in, unless the registry removed it for a reason the servers logged (then it was re-admitted
    // when it resumed: counted, not a loss). A removal nobody asked for is a violation.
    const removed = this.removals();
    for (const t of live) {
      const now = t.leaf!.client.admissionEpoch;
      if (now === t.admittedEpoch) continue;
      const why = (removed.get(t.name) ?? []).find(
        (r) => r.epoch > (t.admittedEpoch ?? -1) && r.epoch <= (now ?? Infinity),
      );
      if (why === undefined)
        this.violation(
          `${t.name}: admitted at epoch ${t.admittedEpoch}, now holds an admission of epoch ${now}, no removal logged (lost and re-admitted)`,
        );
      else this.readmitted[why.reason] = (this.readmitted[why.reason] ?? 0) + 1;
    }
    const byName = new Map(this.tracked.map((t) => [t.name, t]));
    for (const [name, rs] of removed) {
      const t = byName.get(name);
      for (const r of rs) {
        if (r.reason === 'revoked' && t?.state !== 'revoked')
          this.violation(`${name} removed as revoked at epoch ${r.epoch}, never revoked (state ${t?.state})`);
        if (r.reason === 'left' && t?.state !== 'left')
          this.violation(`${name} removed as left at epoch ${r.epoch}, never left (state ${t?.state})`);
      }
    }
    const keyIds = new Set(live.map((t) => lastKey(t.leaf!)?.keyId));
    if (keyIds.size > 1) this.violation(`live leaves hold ${keyIds.size} different key ids`);
    // One history: no epoch reached two leaves with two different keys (an orphaned batch — one a
    // server applied but its primary view never committed — handed out would show here).
    const keyOfEpoch = new Map<number, string>();
    const forked = new Set<number>();
    for (const t of this.tracked)
      for (const k of t.leaf?.keys ?? []) {
        const seen = keyOfEpoch.get(k.epoch);
        if (seen === undefined) keyOfEpoch.set(k.epoch, k.keyId);
        else if (seen !== k.keyId) forked.add(k.epoch);
      }
    if (forked.size > 0)
      this.violation(
        `epochs keyed twice (leaves got keys of two histories): ${[...forked].slice(0, 20).join(',')}`,
      );
    // Revoked leaves: nothing of their eviction epoch or later.

    for (const t of this.tracked.filter((x) => x.state === 'revoked' && x.leaf !== undefined)) {
      const l = t.leaf!;
      const keyAfter = l.keys.at(-1)?.epoch ?? -1;
      if (keyAfter >= epoch && epoch >= 0)
        this.violation(`revoked ${t.name} holds the current epoch ${epoch}`);
      const revokedAt = (removed.get(t.name) ?? []).filter((r) => r.reason === 'revoked').map((r) => r.epoch);
      const e = revokedAt.length === 0 ? undefined : Math.min(...revokedAt);
      if (e === undefined) {
        this.revokedChecked.withoutLogLine++;
        continue;
      }
      this.revokedChecked.withEvictionEpoch++;
      this.revokedChecked.messagesRead += l.messages.length;
      this.revokedChecked.keysHeld += l.keys.length;
      const k = l.keys.find((x) => x.epoch >= e);
      if (k !== undefined)
        this.violation(`revoked ${t.name} (evicted at epoch ${e}) got the key of epoch ${k.epoch}`);
      const m = l.messages.find((x) => x.epoch >= e);
      if (m !== undefined)
        this.violation(`revoked ${t.name} (evicted at epoch ${e}) read a message sealed at epoch ${m.epoch}`);
    }
    return {
      liveLeaves: expected,
      registry: st.map((x) => x.leaves),
      leafEpoch: st.map((x) => x.leafEpoch),
      keyId: [...keyIds][0],
    };
  }

  async run(): Promise<SoakSummary> {
    let finalState: SoakSummary['finalState'] = {
      liveLeaves: 0,
      registry: [],
      leafEpoch: [],
      keyId: undefined,
    };
    let failed = false;
    try {
      await this.setUp();
      const poller = setInterval(() => void this.pollInvariants().catch(() => {}), STATUS_POLL_MS);
      try {
        // Initial population first (the nemesis starts once a first wave is in).
        const wave: Promise<void>[] = [];
        for (let k = 0; k < Math.min(this.o.leaves, 40); k++) wave.push(this.join());
        await Promise.all(wave);
        this.log(`initial wave: ${this.live().length} leaves joined`);
        await Promise.all([this.workload(), this.nemesis()]);
      } finally {
        clearInterval(poller);
      }
      this.log(`phases over: ${this.tracked.length} leaves created, ${this.live().length} live`);
      finalState = await this.check();
    } catch (e) {
      failed = true;
      this.violation(`harness error: ${(e as Error).stack ?? String(e)}`);
    }
    const keep = this.o.keep || this.violations > 0 || failed;
    const summary: SoakSummary = {
      seed: this.o.seed,
      servers: this.o.servers,
      targetLeaves: this.o.leaves,
      minutes: this.o.minutes,
      elapsedS: Math.round((Date.now() - this.started) / 1000),
      operations: { ...this.ops },
      faults: { ...this.faults },
      unplannedEvictions: { ...this.unplanned },
      readmitted: { ...this.readmitted },
      finalState,
      revokedChecked: { ...this.revokedChecked },
      delivered: this.cluster.leaves.reduce((n, l) => n + l.messages.length, 0),
      violations: this.violations,
      violationList: [...this.violationList],
      dir: keep ? this.cluster.dir : undefined,
    };
    // Our own kills from here on: none of these exits is a crash.
    for (const s of this.cluster.servers) if (s.child !== undefined) this.expectedExit.add(s.child);
    for (const s of this.cluster.servers) s.child?.kill('SIGCONT');
    await this.cluster.stop({ keepDir: keep });
    await Promise.all(this.proxies.flat().map((p) => p?.close()));
    return summary;
  }
}

function writeJson(file: string, value: unknown): void {
  writeFileSync(file, JSON.stringify(value, null, 2));
}
