/**
 * The scripted run of the real demo, against a LocalCluster whose servers are up: leaves join in
 * waves, churn (one leave or join at a time), a publish stream from random leaves, a revocation
 * by a new CRL, SIGKILL of the view coordinator, its restart, then churn to the end. Every
 * membership action is timed from the action to the moment the last current leaf received the
 * resulting key (the key events' own timestamps, not the polling). The verdicts are computed at
 * the end from the leaves' and servers' state.
 */
import type { ServerStatus } from '../../server/index.js';
import { until, type LocalCluster, type LocalLeaf, type ServerProc } from '../cluster/index.js';
import { DemoLedger, type ActionKind } from './ledger.js';
import { disseminationOf, type DisseminationFigures } from './dissemination.js';
import type { RealDemoOptions } from './options.js';

/** Join concurrency of the first phase. */
const JOIN_WAVE = 10;
/** Publishes per second in the stream. */
const PUBLISH_HZ = 5;
const PAUSE_BETWEEN_ACTIONS_MS = 300;
const CONVERGE_TIMEOUT_MS = 15_000;
const VIEW_TIMEOUT_MS = 20_000;
const MONITOR_MS = 250;
const DRAIN_MS = 1500;
const PAYLOAD_PREFIX = 'kg-demo ';

export interface DemoSnapshot {
  readonly elapsedMs: number;
  readonly phase: string;
  readonly note: string;
  readonly view: { size: number; primary: boolean; coordinator: string } | undefined;
  readonly serverLeafEpoch: number | undefined;
  /** The leaves' common epoch; undefined while they differ (a rekey under way) or without leaves. */
  readonly leafEpoch: number | undefined;
  readonly rekeying: boolean;
  readonly leaves: number;
  readonly connected: number;
}

export interface RealDemoResult {
  readonly aborted: boolean;
  readonly error: string | undefined;
  readonly ledger: DemoLedger;
  readonly failedJoins: number;
  /** The first failed join's error, if any. */
  readonly joinError: string | undefined;
  readonly failoverMs: number | undefined;
  readonly restartMs: number | undefined;
  readonly killed: string | undefined;
  readonly revoked:
    | {
        readonly name: string;
        readonly evictedMs: number | undefined;
        readonly reason: string | undefined;
        readonly publishedAfter: number;
        readonly readAfter: number;
        readonly heldCurrentKey: boolean;
      }
    | undefined;
  /** Envelopes the leaves could not open, by reason (summed over every leaf of the run). */
  readonly decryptFailures: Record<string, number>;
  /** keyglass_view_changes_total of each live server at the end (a restarted one counts anew). */
  readonly viewChangesByServer: Record<string, number>;
  /** How rekeys and data reached the leaves: UDP gossip vs TLS. */
  readonly dissemination: DisseminationFigures;
  readonly finalEpoch: number | undefined;
  readonly finalLeaves: number;
  readonly leavesAgreeing: number;
  readonly verdict: { keysAgree: boolean; revokedEvicted: boolean; everyJoinAdmitted: boolean; ok: boolean };
}

export interface RealDemoHooks {
  progress?(s: DemoSnapshot): void;
  readonly signal?: AbortSignal;
}

class Aborted extends Error {}

const lastKey = (l: LocalLeaf): LocalLeaf['keys'][number] | undefined => l.keys[l.keys.length - 1];

export async function runRealDemo(
  cluster: LocalCluster,
  opts: RealDemoOptions,
  hooks: RealDemoHooks = {},
): Promise<RealDemoResult> {
  const ledger = new DemoLedger();
  const active = new Map<string, LocalLeaf>();
  const everyone: LocalLeaf[] = [];
  const evictedAt = new Map<string, number>();
  const t0 = Date.now();
  let phase = 'start';
  let latest: { server: ServerProc; status: ServerStatus } | undefined;
  let leafSeq = 0;
  let failedJoins = 0;
  let joinError: string | undefined;
  let error: string | undefined;
  let failoverMs: number | undefined;
  let restartMs: number | undefined;
  let killed: ServerProc | undefined;
  let revokedLeaf: LocalLeaf | undefined;
  const n = cluster.servers.length;
  const signal = hooks.signal;

  const abortPromise = new Promise<never>((_, reject) => {
    if (signal?.aborted) reject(new Aborted());
    signal?.addEventListener('abort', () => reject(new Aborted()), { once: true });
  });
  abortPromise.catch(() => {});
  const abortable = <T>(p: Promise<T>): Promise<T> => Promise.race([p, abortPromise]);
  const sleep = (ms: number): Promise<void> => abortable(new Promise((r) => setTimeout(r, ms)));
  const random = <T>(xs: readonly T[]): T | undefined => xs[Math.floor(Math.random() * xs.length)];

  const agreed = (): boolean => {
    const keys = [...active.values()].map(lastKey);
    const first = keys[0];
    return (
      first !== undefined &&
      keys.every((k) => k !== undefined && k.keyId === first.keyId && k.epoch === first.epoch)
    );
  };
  const maxEpoch = (): number => Math.max(-1, ...[...active.values()].map((l) => lastKey(l)?.epoch ?? -1));
  const connected = (): number => [...active.values()].filter((l) => l.client.server !== undefined).length;

  const snapshot = (note: string): DemoSnapshot => {
    const st = latest?.server.child !== undefined ? latest.status : undefined;
    const k = [...active.values()].map(lastKey).find((x) => x !== undefined);
    return {
      elapsedMs: Date.now() - t0,
      phase,
      note,
      view: st && {
        size: st.view.members.length,
        primary: st.view.primary,
        coordinator: latest!.server.name,
      },
      serverLeafEpoch: st?.leafEpoch,
      leafEpoch: agreed() ? k?.epoch : undefined,
      rekeying: active.size > 0 && !agreed(),
      leaves: active.size,
      connected: connected(),
    };
  };
  /** A progress line on fresh figures: the coordinator's /status is read now, not from the poll. */
  const report = async (note: string): Promise<void> => {
    if (hooks.progress === undefined) return;
    await abortable(refreshStatus());
    hooks.progress(snapshot(note));
  };
  const refreshStatus = async (): Promise<void> => {
    const xs = await Promise.all(
      cluster.alive().map((s) =>
        cluster.status(s).then(
          (status) => ({ server: s, status }),
          () => undefined,
        ),
      ),
    );
    for (const x of xs) if (x !== undefined) ledger.viewIds.add(x.status.view.id);
    latest = xs.find((x) => x?.status.coordinator) ?? xs.find((x) => x !== undefined) ?? latest;
  };

  // Servers' /status, polled: the view ids seen and the freshest coordinator status for progress.
  const monitor = setInterval(() => void refreshStatus(), MONITOR_MS);

  // The publish stream: a random connected leaf, PUBLISH_HZ per second, to every other current leaf.
  const publisher = setInterval(() => {
    const from = random([...active.values()].filter((l) => l.client.server !== undefined));
    if (from === undefined) return;
    // Expected at every other leaf admitted by the epoch it is sealed under (an envelope of an
    // earlier epoch than a leaf's admission is unreadable to it by design: backward secrecy).
    const sealedAt = from.client.epoch ?? -1;
    const recipients = [...active.entries()]
      .filter(([x, l]) => x !== from.name && (l.client.admissionEpoch ?? Infinity) <= sealedAt)
      .map(([x]) => x);
    const id = ledger.publish(from.name, recipients);
    let sent = false;
    try {
      sent = from.client.publish(new TextEncoder().encode(`${PAYLOAD_PREFIX}${id}`));
    } catch {
      // its link went down between the check and the send
    }
    if (!sent) ledger.cancel(id);
  }, 1000 / PUBLISH_HZ);

  /** Runs a membership action and times it until every current leaf holds the resulting key. */
  const measure = async (kind: ActionKind, action: () => Promise<void>): Promise<void> => {
    const before = maxEpoch();
    const start = Date.now();
    await abortable(action());
    try {
      await abortable(
        until(
          `every leaf on the key after a ${kind}`,
          () => agreed() && maxEpoch() > before,
          CONVERGE_TIMEOUT_MS,
        ),
      );
    } catch (e) {
      if (e instanceof Aborted) throw e;
      ledger.rekey({ kind, ms: undefined, epoch: maxEpoch() });
      return;
    }
    const key = lastKey([...active.values()][0]!)!;
    const done = Math.max(...[...active.values()].map((l) => l.keys.find((k) => k.keyId === key.keyId)!.at));
    ledger.rekey({ kind, ms: done - start, epoch: key.epoch });
  };

  const join = async (first: number): Promise<void> => {
    const name = `leaf-${++leafSeq}`;
    try {
      const leaf = await cluster.leaf(name, first);
      leaf.client.on('evicted', () => evictedAt.set(name, Date.now()));
      everyone.push(leaf);
      active.set(name, leaf);
    } catch (e) {
      failedJoins++;
      joinError ??= `${name}: ${(e as Error).message}`;
    }
  };

  const leave = async (): Promise<void> => {
    const leaf = random([...active.values()].filter((l) => l.client.server !== undefined));
    if (leaf === undefined) return;
    active.delete(leaf.name);
    ledger.departed(leaf.name);
    await leaf.client.close({ leave: true });
  };

  const churnUntil = async (endMs: number): Promise<void> => {
    let lastReport = Date.now();
    while (Date.now() - t0 < endMs) {
      if (active.size > opts.leaves || (active.size >= opts.leaves && Math.random() < 0.5))
        await measure('leave', leave);
      else await measure('join', () => join(leafSeq % n));
      if (Date.now() - lastReport > 5000) {
        await report(`${ledger.samples.length} membership actions so far`);
        lastReport = Date.now();
      }
      await sleep(PAUSE_BETWEEN_ACTIONS_MS);
    }
  };

  const statusOf = async (s: ServerProc): Promise<ServerStatus> => cluster.status(s);
  const d = opts.durationS * 1000;

  try {
    phase = 'servers';
    await abortable(
      until(
        `a primary view of ${n}`,
        async () => {
          const st = await Promise.all(cluster.servers.map(statusOf));
          return st.every((x) => x.view.primary && x.view.members.length === n);
        },
        VIEW_TIMEOUT_MS,
      ),
    );
    await report(`${n} servers in one primary view`);

    phase = 'join';
    for (let i = 0; i < opts.leaves; i += JOIN_WAVE) {
      const wave = Math.min(JOIN_WAVE, opts.leaves - i);
      await measure('join-wave', async () => {
        await Promise.all(Array.from({ length: wave }, (_, j) => join((i + j) % n)));
      });
    }
    await report(`${active.size} leaves joined in waves of ${JOIN_WAVE}`);

    phase = 'churn';
    await churnUntil(0.35 * d);
    await report('joins and leaves, one at a time');

    phase = 'revoke';
    revokedLeaf = random([...active.values()].filter((l) => l.client.server !== undefined));
    if (revokedLeaf === undefined) throw new Error('no connected leaf to revoke');
    const victim = revokedLeaf;
    const revokeStart = Date.now();
    await measure('revoke', async () => {
      active.delete(victim.name);
      ledger.departed(victim.name);
      await cluster.revoke(victim.serial);
    });
    await abortable(
      until(`${victim.name} evicted`, () => victim.evicted.length > 0, CONVERGE_TIMEOUT_MS),
    ).catch((e: unknown) => {
      if (e instanceof Aborted) throw e;
    });
    const ev = evictedAt.get(victim.name);
    await report(
      `${victim.name} revoked: ${ev !== undefined ? `evicted after ${ev - revokeStart} ms` : 'NOT evicted'}`,
    );

    phase = 'churn';
    await churnUntil(0.5 * d);
    await report('joins and leaves, one at a time');

    phase = 'crash';
    const statuses = await abortable(
      Promise.all(cluster.alive().map(async (s) => ({ s, st: await statusOf(s) }))),
    );
    killed = statuses.find((x) => x.st.coordinator)?.s ?? cluster.servers[0]!;
    const dead = killed;
    const killAt = Date.now();
    cluster.kill(dead);
    latest = undefined;
    await abortable(
      until(
        `a primary view of ${n - 1}`,
        async () => {
          const xs = await Promise.all(cluster.alive().map(statusOf));
          return xs.every((x) => x.view.primary && x.view.members.length === n - 1);
        },
        VIEW_TIMEOUT_MS,
      ),
    );
    failoverMs = Date.now() - killAt;
    await measure('failover', () => join((cluster.servers.indexOf(dead) + 1) % n));
    await report(`SIGKILL ${dead.name} (coordinator): primary view of ${n - 1} after ${failoverMs} ms`);

    phase = 'churn';
    await churnUntil(0.7 * d);
    await report('joins and leaves, one at a time');

    phase = 'restart';
    const restartAt = Date.now();
    await abortable(cluster.spawn(dead));
    await abortable(
      until(
        `a primary view of ${n} with the restarted server`,
        async () => {
          const xs = await Promise.all(cluster.servers.map(statusOf));
          return (
            xs.every((x) => x.view.primary && x.view.members.length === n) &&
            new Set(xs.map((x) => x.leafEpoch)).size === 1
          );
        },
        VIEW_TIMEOUT_MS,
      ),
    );
    restartMs = Date.now() - restartAt;
    await measure('restart', () => join(cluster.servers.indexOf(dead)));
    await report(`${dead.name} restarted, merged with state transfer after ${restartMs} ms`);

    phase = 'churn';
    await churnUntil(d);
    await report('joins and leaves, one at a time');
  } catch (e) {
    if (!(e instanceof Aborted)) error = (e as Error).message;
  } finally {
    clearInterval(publisher);
    clearInterval(monitor);
  }

  const aborted = signal?.aborted === true;
  if (!aborted) {
    phase = 'drain';
    await sleep(DRAIN_MS).catch(() => {});
    await until('every leaf on one key', agreed, CONVERGE_TIMEOUT_MS).catch(() => {});
  }
  for (const l of everyone)
    for (const m of l.messages) {
      const text = new TextDecoder().decode(m.data);
      if (text.startsWith(PAYLOAD_PREFIX))
        ledger.delivered(Number(text.slice(PAYLOAD_PREFIX.length)), l.name);
    }

  // Verdicts: every current leaf on one key, and that key's epoch is every live server's.
  const keys = [...active.values()].map(lastKey);
  const finalKey = keys.find((k) => k !== undefined);
  const leavesAgreeing = keys.filter(
    (k) => k !== undefined && k.keyId === finalKey?.keyId && k.epoch === finalKey.epoch,
  ).length;
  const serverEpochs = aborted
    ? []
    : await Promise.all(
        cluster.alive().map((s) =>
          statusOf(s).then(
            (x) => x.leafEpoch,
            () => -1,
          ),
        ),
      );
  const keysAgree =
    finalKey !== undefined &&
    leavesAgreeing === active.size &&
    serverEpochs.length > 0 &&
    serverEpochs.every((e) => e === finalKey.epoch);
  const decryptFailures: Record<string, number> = {};
  for (const l of everyone)
    for (const [reason, count] of Object.entries(l.client.stats.decryptFailures))
      if (count > 0) decryptFailures[reason] = (decryptFailures[reason] ?? 0) + count;
  const beforeAdmission = everyone.reduce((a, l) => a + l.client.stats.dataBeforeAdmission, 0);
  if (beforeAdmission > 0) decryptFailures['sealed before the leaf was admitted'] = beforeAdmission;
  const viewChangesByServer: Record<string, number> = {};
  if (!aborted)
    for (const s of cluster.alive()) {
      const text = await cluster
        .get(s, '/metrics')
        .then((r) => r.text())
        .catch(() => '');
      const m = /^keyglass_view_changes_total (\d+)/m.exec(text);
      if (m) viewChangesByServer[s.name] = Number(m[1]);
    }
  let revoked: RealDemoResult['revoked'];
  if (revokedLeaf !== undefined) {
    const at = evictedAt.get(revokedLeaf.name);
    const after = ledger.readAfter(revokedLeaf.name, at ?? Number.POSITIVE_INFINITY);
    revoked = {
      name: revokedLeaf.name,
      evictedMs: at !== undefined ? at - (ledger.departedAtOf(revokedLeaf.name) ?? at) : undefined,
      reason: revokedLeaf.evicted[0],
      publishedAfter: after.published,
      readAfter: after.read,
      heldCurrentKey: lastKey(revokedLeaf)?.keyId === finalKey?.keyId,
    };
  }
  const revokedEvicted =
    revoked !== undefined &&
    revoked.reason === 'revoked' &&
    revoked.readAfter === 0 &&
    !revoked.heldCurrentKey;
  return {
    aborted,
    error,
    ledger,
    failedJoins,
    joinError,
    failoverMs,
    restartMs,
    killed: killed?.name,
    revoked,
    decryptFailures,
    viewChangesByServer,
    dissemination: disseminationOf(everyone.map((l) => l.client)),
    finalEpoch: finalKey?.epoch,
    finalLeaves: active.size,
    leavesAgreeing,
    verdict: {
      keysAgree,
      revokedEvicted,
      everyJoinAdmitted: failedJoins === 0,
      ok: keysAgree && revokedEvicted && failedJoins === 0 && error === undefined && !aborted,
    },
  };
}
