/**
 * The gossip tier with real processes on 127.0.0.1: 3 `keyglass server` processes (each with its
 * edge relay) and 200 LeafClients spread over 5 child processes, every leaf on its own UDP port.
 * Rekeys and data reach the leaves through the UDP overlay (TLS only for welcome, catch-up,
 * leases and publishing). Checked: every live leaf gets every rekey (one key everywhere) and
 * every published message exactly once; SIGKILL of a fifth of the leaves leaves the rest
 * unaffected (data right after the kill, and the next rekey, with the dead peers still in
 * everyone's views and still registered at the core); a revoked leaf gets nothing it can read
 * after its eviction epoch. The lease is long (20 s) so that only the revocation rekeys after the
 * kill: on a loaded machine the core group's view changes can otherwise expire the leases of one
 * server's leaves in a burst — the core's business, not the gossip tier's.
 */
import test from 'ava';
import { Cluster, until } from './cluster.js';
import { SwarmProc, type SwarmLeafReport } from './gossip-swarm.js';

const PROCS = 5;
const PER_PROC = 40;
const cluster = new Cluster();
const swarms: SwarmProc[] = [];

test.before(async () => {
  await cluster.init();
  await cluster.startServers(3, { leaseMs: 20_000, batchIntervalMs: 50 });
  await cluster.untilOnePrimaryView();
});

test.after.always(async () => {
  await Promise.all(swarms.map((s) => s.stop().catch(() => {})));
  await cluster.stop();
});

async function reportAll(): Promise<SwarmLeafReport[]> {
  const live = swarms.filter((s) => s.alive);
  return (await Promise.all(live.map((s) => s.report()))).flat();
}

/** Every given live (not evicted) leaf holds the same key at an epoch ≥ `minEpoch`. */
async function oneKey(
  what: string,
  count: number,
  minEpoch: number,
  timeoutMs: number,
): Promise<SwarmLeafReport[]> {
  let last: SwarmLeafReport[] = [];
  let evicted: string[] = [];
  const keys = new Map<string, number>();
  try {
    await until(
      what,
      async () => {
        const everyone = await reportAll();
        evicted = everyone.filter((l) => l.evicted !== undefined).map((l) => `${l.name} (${l.evicted})`);
        last = everyone.filter((l) => l.evicted === undefined);
        keys.clear();
        for (const l of last) keys.set(`${l.epoch}/${l.keyId}`, (keys.get(`${l.epoch}/${l.keyId}`) ?? 0) + 1);
        return last.length === count && keys.size === 1 && last[0]!.epoch >= minEpoch;
      },
      timeoutMs,
    );
  } catch (e) {
    const seen = [...keys].map(([k, n]) => `${n}× epoch ${k.slice(0, k.indexOf('/'))}`).join(', ');
    throw new Error(
      `${(e as Error).message}: ${last.length} live leaves on ${seen}; evicted: ${evicted.join(', ') || 'none'}; ${figures(last)}`,
    );
  }
  return last;
}

let published = 0;
/** Publishes `n` messages from leaves spread over the live processes; returns their texts and publishers. */
async function publish(
  n: number,
  skip: ReadonlySet<string> = new Set(),
): Promise<{ text: string; from: string }[]> {
  const out: { text: string; from: string }[] = [];
  const live = swarms.filter((s) => s.alive);
  for (let i = 0; out.length < n; i++) {
    const s = live[i % live.length]!;
    const leaf = (i * 7 + published) % PER_PROC;
    const name = s.config.leaves[leaf]!.name;
    if (skip.has(name)) continue;
    const text = `m-${published++}`;
    if (!(await s.publish(leaf, text))) throw new Error(`publish from ${name} refused`);
    out.push({ text, from: name });
  }
  return out;
}

/** Every live leaf but the publisher holds every text, exactly once. */
async function delivered(
  what: string,
  msgs: readonly { text: string; from: string }[],
  count: number,
  timeoutMs: number,
): Promise<SwarmLeafReport[]> {
  let last: SwarmLeafReport[] = [];
  let missing = 0;
  try {
    await until(
      what,
      async () => {
        last = (await reportAll()).filter((l) => l.evicted === undefined);
        missing = 0;
        for (const l of last)
          for (const m of msgs) if (m.from !== l.name && !l.texts.includes(m.text)) missing++;
        return last.length === count && missing === 0;
      },
      timeoutMs,
    );
  } catch (e) {
    throw new Error(`${(e as Error).message}: ${missing} deliveries missing over ${last.length} leaves`);
  }
  for (const l of last)
    if (new Set(l.texts).size !== l.texts.length) throw new Error(`${l.name} got a duplicate`);
  return last;
}

const COUNTED = [
  'gossipRekeys',
  'tlsRekeys',
  'gossipData',
  'tlsData',
  'duplicates',
  'sent',
  'catchUps',
  'dataPulls',
  'pulledData',
  'dataDuplicates',
  'rejoins',
  'moves',
  'gossipRefused',
  'replayedEarly',
] as const;
type Counted = Record<(typeof COUNTED)[number], number>;

/** Per-leaf counters minus an earlier snapshot of the same leaf (by name). */
function since(now: readonly SwarmLeafReport[], before: readonly SwarmLeafReport[]): Counted[] {
  const old = new Map(before.map((l) => [l.name, l]));
  return now.map((l) => {
    const o = old.get(l.name);
    return Object.fromEntries(COUNTED.map((k) => [k, l[k] - (o?.[k] ?? 0)])) as Counted;
  });
}

function figures(leaves: readonly Counted[]): string {
  const sum = (k: keyof Counted): number => leaves.reduce((a, l) => a + l[k], 0);
  const pct = (a: number, b: number): string => ((100 * a) / Math.max(1, a + b)).toFixed(1);
  const [gr, tr, gd, td] = [sum('gossipRekeys'), sum('tlsRekeys'), sum('gossipData'), sum('tlsData')];
  return (
    `rekeys applied: ${gr} via gossip, ${tr} via TLS (${pct(gr, tr)} % gossip); ` +
    `data: ${gd} via gossip, ${td} via TLS (${pct(gd, td)} % gossip); ` +
    `duplicate items suppressed: ${sum('duplicates')}; gossip datagrams sent: ${sum('sent')}; ` +
    `catch-ups: ${sum('catchUps')}; data pulls: ${sum('dataPulls')} (messages delivered by them: ` +
    `${sum('pulledData')}, copies refused: ${sum('dataDuplicates')}); ` +
    `rejoins: ${sum('rejoins')}; slot moves: ${sum('moves')}; ` +
    `refused items: ${sum('gossipRefused')}; early envelopes replayed: ${sum('replayedEarly')}`
  );
}

test.serial(
  '200 leaves in 5 processes: rekeys and data by gossip, a fifth SIGKILLed, one revoked',
  async (t) => {
    t.timeout(300_000); // the joins of 200 leaves dominate; on a loaded 2-core machine they take long
    const t0 = Date.now();
    const servers = cluster.servers.map((s) => ({ host: '127.0.0.1', port: s.ports.leaf }));
    const serials = new Map<string, string>();
    const certs = [];
    for (let i = 0; i < PROCS * PER_PROC; i++) {
      const name = `gl-${i}`;
      const m = await cluster.issue('leaf', name);
      serials.set(name, m.serial);
      certs.push({ name, certPem: m.certPem, keyPem: m.keyPem });
    }
    t.log(`issued ${certs.length} leaf certificates in ${Date.now() - t0} ms`);
    const t1 = Date.now();
    for (let p = 0; p < PROCS; p++) {
      const leaves = certs.slice(p * PER_PROC, (p + 1) * PER_PROC);
      swarms.push(
        new SwarmProc(cluster.dir, p, { servers, firstServer: p % 3, caPem: cluster.caPem, leaves }, 150_000),
      );
    }
    await Promise.all(swarms.map((s) => s.ready));
    const n = PROCS * PER_PROC;
    const joined = await oneKey(`${n} leaves on one key`, n, 1, 60_000);
    t.log(`${n} leaves joined and on one key (epoch ${joined[0]!.epoch}) in ${Date.now() - t1} ms`);

    // Every rekey after a leaf's welcome reached it (one key everywhere, above); now the data.
    const t2 = Date.now();
    const first = await publish(10);
    const atKill = await delivered(`10 messages to ${n} leaves`, first, n, 15_000);
    t.log(`10 messages × ${n - 1} receivers delivered in ${Date.now() - t2} ms`);
    t.log(`joins and first messages: ${figures(atKill)}`);
    t.true(atKill.every((l) => l.gossipRekeys + l.tlsRekeys > 0 || l.epoch === joined[0]!.epoch));

    // SIGKILL a fifth of the leaves (one whole process): the rest keep getting data right away.
    swarms[PROCS - 1]!.kill();
    const t3 = Date.now();
    const during = await publish(5);
    const survivors = (PROCS - 1) * PER_PROC;
    await delivered('5 messages right after the SIGKILL', [...first, ...during], survivors, 15_000);
    t.log(`5 messages to the ${survivors} survivors right after the SIGKILL in ${Date.now() - t3} ms`);

    // Revoke one survivor: evicted at once; the others rekey (the dead peers still in their views
    // and in the tree); the revoked leaf gets nothing readable after its eviction epoch.
    const victim = swarms[0]!.config.leaves[3]!.name;
    const t4 = Date.now();
    await cluster.revoke(serials.get(victim)!);
    let victimReport: SwarmLeafReport | undefined;
    await until(
      `${victim} evicted as revoked`,
      async () => {
        victimReport = (await swarms[0]!.report()).find((l) => l.name === victim);
        return victimReport?.evicted === 'revoked';
      },
      15_000,
    );
    const evictedAt = victimReport!.evictedAt ?? -1;
    const rest = await oneKey('the others rekeyed past the revocation', survivors - 1, evictedAt + 1, 15_000);
    t.log(
      `revocation: ${survivors - 1} survivors on the new key (epoch ${rest[0]!.epoch}) ${Date.now() - t4} ms after the CRL`,
    );
    const last = await publish(5, new Set([victim]));
    const all = await delivered(
      '5 messages after the revocation',
      [...first, ...during, ...last],
      survivors - 1,
      15_000,
    );
    await new Promise((r) => setTimeout(r, 500)); // let stray datagrams land before looking at the victim
    victimReport = (await swarms[0]!.report()).find((l) => l.name === victim)!;
    t.is(victimReport.afterEviction, 0, 'no key and no message after the eviction');
    t.true(victimReport.epoch < rest[0]!.epoch, 'the revoked leaf never held the new key');
    for (const m of last) t.false(victimReport.texts.includes(m.text));

    const after = since(all, atKill);
    const sum = (k: keyof Counted): number => after.reduce((a, l) => a + l[k], 0);
    t.log(`from the SIGKILL on: ${figures(after)}`);
    t.true(sum('gossipRekeys') > 0, 'the revocation rekey went by gossip');
    t.true(sum('gossipData') >= 0.95 * (sum('gossipData') + sum('tlsData')), 'data travels by gossip');
    t.true(sum('gossipRekeys') >= 0.8 * (sum('gossipRekeys') + sum('tlsRekeys')), 'rekeys travel by gossip');
    t.is(sum('gossipRefused'), 0);
    t.log(`total ${Date.now() - t0} ms`);
  },
);
