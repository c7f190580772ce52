/**
 * Adversary: a core server whose certificate the operator revokes. Until then it held the whole
 * leaf tree (modelled by a copy of its data directory taken at the revocation) and afterwards it
 * still sees every rekey part on the wire (tree-thief-kit.ts). Without post-compromise recovery
 * it follows every later group key for as long as the leaves of that time stay. With it, the
 * revocation starts a full refresh: once the primary view excludes the revoked server, every
 * linked leaf's own key is refreshed from its TLS session and the keyglass_leaves_exposed gauge
 * falls to 0 — after which the revoked server's tree opens nothing.
 *
 * Three real `keyglass server` processes on 127.0.0.1, real TLS; bounded by `until` timeouts.
 */
import test from 'ava';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadSuite } from '../../crypto/index.js';
import { normalizeSerial } from '../../auth/index.js';
import { Cluster, until } from '../server/cluster.js';
import { TreeThief } from './tree-thief-kit.js';

const cluster = new Cluster();
let thief: TreeThief | undefined;
const stolenDir = mkdtempSync(join(tmpdir(), 'kg-revoked-core-'));

test.after.always(async () => {
  await thief?.close();
  await cluster.stop();
  rmSync(stolenDir, { recursive: true, force: true });
});

test('a revoked core server’s tree opens no group key once the full refresh completed', async (t) => {
  const th = (thief = new TreeThief(cluster, await loadSuite()));
  await cluster.init();
  await cluster.startServers(3);
  await cluster.untilOnePrimaryView();
  const [c1, c2, c3] = cluster.servers as [
    (typeof cluster.servers)[0],
    (typeof cluster.servers)[0],
    (typeof cluster.servers)[0],
  ];
  // The leaves link to core-1 and core-2; core-3 is the one that will be revoked.
  await th.leaf('a', [c1.ports.leaf]);
  await th.leaf('b', [c2.ports.leaf]);
  await th.leaf('c', [c1.ports.leaf]);
  const E = await th.settled(c1);

  // core-3's tree at the moment of its revocation.
  th.steal(c3, stolenDir);
  t.is(th.stolen.length, 3);
  t.true(th.stolen.every((k) => k.epoch === E));
  const serial = normalizeSerial(
    new X509Certificate(readFileSync(join(cluster.dir, 'core-3.pem'))).serialNumber,
  );
  await cluster.revoke(serial);
  await until(
    'a primary view without core-3',
    async () => {
      const st = await cluster.status(c1);
      return st.view.primary && st.view.members.length === 2;
    },
    20_000,
  );
  // Time passes; the group changes.
  await new Promise((r) => setTimeout(r, 3000));
  await th.leaf('d', [c2.ports.leaf]);
  const now = await th.settled(c1);
  t.true(now > E);
  t.log(
    `stolen at epoch ${E}; current epoch ${now}; adversary reached epochs ${[...th.follow().keys()].join(',')}`,
  );
  t.false(th.derives(now), 'the revoked server’s tree derives the current group key');

  const metrics = await (await cluster.get(c1, '/metrics')).text();
  t.regex(metrics, /^keyglass_leaves_exposed 0$/m);
  const full = [c1, c2].map(
    async (s) =>
      /keyglass_leaf_key_refreshes_total\{cause="full"\} (\d+)/.exec(
        await (await cluster.get(s, '/metrics')).text(),
      )?.[1],
  );
  const counts = (await Promise.all(full)).map((x) => Number(x ?? 0));
  t.is(
    counts[0]! + counts[1]!,
    3,
    'each leaf of the revoked server’s time refreshed once for the full refresh',
  );
});
