/**
 * A malicious admitted leaf tries to keep another leaf's admission alive: the victim stopped
 * renewing (its process is gone), and mallory replays lease renewals with every sequence number
 * the victim used and more, several a batch interval. A renewal names no leaf: the server renews
 * the identity of the TLS link it came on, so mallory only ever renews herself, and the victim is
 * evicted when its lease lapses (the registry never keeps a leaf nobody vouches for).
 *
 * On a one-server core this failed: the stack's send window (nakack) reopened only on STATUS
 * reports from the other members, which a member alone never gets, so after 64 own messages
 * (ordered commands and ORDER records) nothing more was ordered: no batch cut, no lease expiry, no
 * admission. Mallory's renewals (one ordered command per batch interval) filled the window within
 * seconds; the victim then kept its slot and keys for good. The three-server case puts mallory on
 * the coordinator, which orders every command and sends every ORDER record.
 */
import test, { type ExecutionContext } from 'ava';
import { encodeLeafFrame } from '../../gossip-edge/index.js';
import { Cluster, until, type ServerProc } from '../server/cluster.js';
import { joinedRaw } from './leaf-edge-kit.js';

const LEASE_MS = 1500;
/** Eviction is due within a lease plus a sweep (1 s); the rest is slack for a loaded machine. */
const EVICTION_BOUND_MS = 10 * LEASE_MS;

async function replayAttack(
  t: ExecutionContext,
  servers: number,
): Promise<{ cluster: Cluster; coordinator: ServerProc }> {
  const cluster = new Cluster();
  t.teardown(() => cluster.stop());
  await cluster.init();
  await cluster.startServers(servers, { leaseMs: LEASE_MS });
  const views = await cluster.untilOnePrimaryView();
  const coordinator = cluster.servers[views.findIndex((s) => s.coordinator)]!;
  const victimServer = cluster.servers.indexOf(coordinator);
  const victim = await cluster.leaf('victim', victimServer, { gossip: false });
  await cluster.issue('leaf', 'mallory');
  const mallory = await joinedRaw(cluster, 'mallory', coordinator);
  let acks = 0;
  mallory.onFrame = (f) => {
    if (f.type === 'leaseAck') acks++;
  };
  await until('both leaves admitted', async () => (await cluster.status(coordinator)).leaves === 2, 10_000);

  await victim.client.close({ leave: false }); // gone without a word: only its lease can end it
  const started = Date.now();
  let seq = 0;
  let evicted = false;
  // Every sequence number the victim could have used, replayed, then onward: 80 renewals a second
  // until the victim is gone or the bound has passed.
  while (!evicted && Date.now() - started < EVICTION_BOUND_MS) {
    for (let replay = 0; replay < 3; replay++)
      mallory.link.send(encodeLeafFrame('leaseRenew', { seq: replay }));
    mallory.link.send(encodeLeafFrame('leaseRenew', { seq: seq++ }));
    await new Promise((r) => setTimeout(r, 50));
    if (seq % 10 === 0) evicted = (await cluster.status(coordinator)).leaves === 1;
  }
  const status = await cluster.status(coordinator);
  t.log(`${servers} server(s): ${seq * 4} renewals sent, ${acks} acknowledged, ${Date.now() - started} ms`);
  t.true(acks > 0, "the server acknowledged mallory's renewals (of her own lease)");
  t.is(status.leaves, 1, 'the victim was evicted when its lease lapsed');
  const metrics = await (await cluster.get(coordinator, '/metrics')).text();
  t.regex(metrics, /keyglass_evictions_total\{reason="lease-expired"\} 1\b/);
  t.true(mallory.link.up, 'mallory herself stays admitted');
  return { cluster, coordinator };
}

test.serial(
  "one server: a leaf replaying lease renewals cannot keep another leaf's admission alive",
  async (t) => {
    t.timeout(90_000);
    const { cluster, coordinator } = await replayAttack(t, 1);
    // The core still orders commands after the flood: a new leaf is admitted.
    await cluster.leaf('late', 0, { gossip: false });
    await until(
      'the late leaf admitted',
      async () => (await cluster.status(coordinator)).leaves === 2,
      10_000,
    );
    t.pass();
  },
);

test.serial(
  "three servers: renewals replayed to the coordinator keep no other leaf's admission alive",
  async (t) => {
    t.timeout(90_000);
    await replayAttack(t, 3);
  },
);
