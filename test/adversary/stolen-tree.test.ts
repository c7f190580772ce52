/**
 * Adversary: an eavesdropper holding a copy of a core server's data directory (the leaf-state
 * store and its data.key) taken at epoch E, plus every later rekey part (tree-thief-kit.ts).
 *
 * Without post-compromise recovery the own keys of leaves never change while they stay, so the
 * adversary follows every later group key. With it, every leaf's own key is replaced, from its
 * new TLS session's exporter, when it re-links (here: a cut of every leaf link through a proxy)
 * and the adversary is locked out once those refreshes are done.
 *
 * One real `keyglass server` process on 127.0.0.1, real TLS; bounded by `until` timeouts.
 */
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadSuite } from '../../crypto/index.js';
import { Cluster, until } from '../server/cluster.js';
import { FaultProxy } from '../server/proxy.js';
import { TreeThief } from './tree-thief-kit.js';

const cluster = new Cluster();
let proxy: FaultProxy | undefined;
let thief: TreeThief | undefined;
const stolenDir = mkdtempSync(join(tmpdir(), 'kg-stolen-'));

test.after.always(async () => {
  await thief?.close();
  await proxy?.close();
  await cluster.stop();
  rmSync(stolenDir, { recursive: true, force: true });
});

test('a stolen data directory stops yielding group keys once every leaf re-linked', async (t) => {
  const th = (thief = new TreeThief(cluster, await loadSuite()));
  await cluster.init();
  await cluster.startServers(1);
  const server = cluster.servers[0]!;
  proxy = await FaultProxy.start(server.ports.leaf);
  await th.leaf('victim', [proxy.port]);
  await th.leaf('bystander', [proxy.port]);
  const E = await th.settled(server);

  // The theft: a copy of the data directory at epoch E.
  const stolen = th.steal(server, stolenDir);
  t.is(stolen.length, 2);
  t.true(stolen.every((k) => k.epoch === E));

  // The attack works: a join later, the copy still yields the current group key.
  await th.leaf('joiner', [server.ports.leaf]);
  const e1 = await th.settled(server);
  t.true(e1 > E);
  t.true(th.derives(e1), 'the adversary follows at first');

  // Every leaf present at E re-links (a network cut of their links; they resume on new sessions).
  proxy.partition();
  await new Promise((r) => setTimeout(r, 200));
  proxy.heal();
  await until('both leaves re-linked', () => th.leaves.slice(0, 2).every((l) => l.links >= 2), 15_000);
  await th.settled(server);
  await th.leaf('later', [server.ports.leaf]);
  const now = await th.settled(server);
  const current = th.leaves[0]!.keyIds.get(now)!;
  t.true(
    th.leaves.every((l) => l.keyIds.get(now) === current),
    'every leaf on the current key',
  );
  t.log(
    `stolen at epoch ${E}; current epoch ${now}; adversary reached epochs ${[...th.follow().keys()].join(',')}`,
  );
  t.false(th.derives(now), 'the stolen copy derives the current group key');
});
