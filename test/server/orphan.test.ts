/**
 * An orphaned batch never reaches a leaf (uniform release, key-server.ts). Three real servers
 * whose core links each run through their own fault proxy (one per direction of dialing). The
 * view's sequencer is silenced mid-view — its connections stay open, every byte is dropped — and
 * a leaf joins at it at once. The sequencer still orders that admission and applies the batch
 * alone (it delivers its own ordered messages); the other two never receive it, exclude it, and
 * cut their own batches under the same epoch numbers with other keys. Before the fix the silenced
 * server welcomed the leaf with its orphaned epoch — a key the committed history never had; the
 * soak's two violations (a revoked leaf holding "the key of its eviction epoch") were this.
 */
import test from 'ava';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { nameOf } from '../../core-group/index.js';
import { LeafClient } from '../../leaf-sdk/index.js';
import { Cluster, until, type ServerProc } from './cluster.js';
import { FaultProxy } from './proxy.js';

const cluster = new Cluster();
/** proxies.get(`${a}>${b}`): the link server a dials to server b. */
const proxies = new Map<string, FaultProxy>();

test.before(async () => {
  await cluster.init();
  await cluster.startServers(3, { leaseMs: 20_000 });
  for (const s of cluster.servers) cluster.kill(s);
  for (const s of cluster.servers)
    rmSync(join(cluster.dir, `data-${s.name}`), { recursive: true, force: true });
  for (const a of cluster.servers)
    for (const b of cluster.servers)
      if (a !== b) proxies.set(`${a.name}>${b.name}`, await FaultProxy.start(b.ports.core));
  for (const a of cluster.servers) {
    const peers: Record<string, string> = {};
    for (const b of cluster.servers)
      if (a !== b) peers[b.name] = `127.0.0.1:${proxies.get(`${a.name}>${b.name}`)!.port}`;
    const file = cluster.configFile(a);
    writeFileSync(file, JSON.stringify({ ...JSON.parse(readFileSync(file, 'utf8')), peers }, null, 2));
  }
  await Promise.all(cluster.servers.map((s) => cluster.spawn(s)));
  await cluster.untilOnePrimaryView(20_000);
});

let xClient: LeafClient | undefined;
test.after.always(async () => {
  await xClient?.close();
  await cluster.stop();
  await Promise.all([...proxies.values()].map((p) => p.close()));
});

const linksOf = (s: ServerProc): FaultProxy[] =>
  [...proxies].filter(([k]) => k.split('>').includes(s.name)).map(([, p]) => p);

test.serial('a leaf joining at a sequencer cut off mid-view gets no key of its orphaned batch', async (t) => {
  const st = await cluster.untilOnePrimaryView();
  const seqName = nameOf(st[0]!.view.members[0]!);
  const k = cluster.servers.findIndex((s) => s.name === seqName);
  const j = (k + 1) % 3;
  const sequencer = cluster.servers[k]!;
  t.log(`sequencer: ${seqName}`);
  const a = await cluster.leaf('leaf-a', j);
  await until('leaf-a keyed', () => a.keys.length > 0);

  const xCert = await cluster.issue('leaf', 'leaf-x');
  const x = {
    keys: [] as { epoch: number; keyId: string }[],
    client: new LeafClient({ welcomeTimeoutMs: 6000 }),
  };
  x.client.on('key', (e) => x.keys.push({ epoch: e.epoch, keyId: e.keyId }));
  x.client.on('error', () => {});
  xClient = x.client;
  for (const p of linksOf(sequencer)) p.mute();
  // At once, before its failure detector can notice (≥ 400 ms): the silenced sequencer still
  // thinks it is primary, orders the admission and cuts the batch by itself. A long welcome
  // timeout keeps leaf-x on it while the others re-form (it fails over to them later).
  const order = [k, (k + 1) % 3, (k + 2) % 3].map((i) => cluster.servers[i]!);
  const xJoined = x.client.connect({
    servers: order.map((s) => ({ host: '127.0.0.1', port: s.ports.leaf })),
    credentials: { certPem: xCert.certPem, keyPem: xCert.keyPem },
    trust: { caPem: cluster.caPem },
  });
  const others = cluster.servers.filter((s) => s !== sequencer);
  await until(
    'the other two in a primary view without the sequencer',
    async () => {
      const xs = await Promise.all(others.map((s) => cluster.status(s)));
      return xs.every((v) => v.view.primary && v.view.members.length === 2);
    },
    15_000,
  );
  // The committed history moves on: a join there cuts batches under the same epoch numbers.
  const b = await cluster.leaf('leaf-b', j);
  const xsFirst = x.keys[0];
  t.log(
    xsFirst === undefined
      ? 'leaf-x got no key while its server was cut off'
      : `leaf-x got epoch ${xsFirst.epoch} from the cut-off sequencer`,
  );
  await until(
    'the committed history past every epoch leaf-x holds',
    () => (a.keys.at(-1)?.epoch ?? -1) >= Math.max(-1, ...x.keys.map((e) => e.epoch)),
    10_000,
  );
  const committed = new Map<number, string>([...a.keys, ...b.keys].map((e) => [e.epoch, e.keyId]));
  const foreign = x.keys.filter((e) => committed.has(e.epoch) && committed.get(e.epoch) !== e.keyId);
  t.deepEqual(
    foreign.map((e) => e.epoch),
    [],
    `leaf-x holds keys of epochs the committed history keyed differently: ${foreign.map((e) => e.epoch).join(',')}`,
  );

  // Heal: the sequencer merges back and takes the committed state; leaf-x ends on the group key.
  for (const p of linksOf(sequencer)) p.unmute();
  await cluster.untilOnePrimaryView(20_000);
  await xJoined;
  await until(
    'leaf-x, leaf-a and leaf-b on one key',
    () =>
      new Set([a, b, x].map((l: { keys: readonly { keyId: string }[] }) => l.keys.at(-1)?.keyId)).size === 1,
    15_000,
  );
  const all = new Map<number, string>();
  for (const l of [a, b]) for (const e of l.keys) all.set(e.epoch, e.keyId);
  t.deepEqual(
    x.keys.filter((e) => all.has(e.epoch) && all.get(e.epoch) !== e.keyId).map((e) => e.epoch),
    [],
  );
});
