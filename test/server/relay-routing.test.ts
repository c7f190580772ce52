/**
 * One rekey routing: the server's EdgeRelay (over real UDP) and the gossip simulation's core hand
 * the same parts to the same leaves, in the same pushes, for the same epoch, targets and random
 * seed — both run `routeEpochParts`, and a direct call of it says the same.
 */
import test from 'ava';
import { createSocket, type Socket } from 'node:dgram';
import { loadSuite } from '../../crypto/index.js';
import {
  DEFAULT_GOSSIP_DATAGRAM_BYTES,
  decodeEnvelope,
  routeEpochParts,
  itemBytes,
  pushFits,
} from '../../gossip-edge/index.js';
import { signedEpoch } from '../gossip-edge/signed-epoch-kit.js';
import { Rng } from '../../net/sim/index.js';
import { DEFAULT_RELAY_FANOUT, EdgeRelay, type GossipTarget } from '../../server/index.js';
import { GossipWorld } from '../../sim/gossip/world.js';
import { until } from '../../cli/cluster/index.js';

/** Per leaf slot, the item ids it was handed, sorted (a push per slot and chunk). */
type Routing = Record<number, number[]>;

function sorted(r: Map<number, number[]>): Routing {
  const out: Routing = {};
  for (const slot of [...r.keys()].sort((a, b) => a - b)) out[slot] = [...r.get(slot)!].sort((a, b) => a - b);
  return out;
}

test('the simulation and EdgeRelay route an epoch identically for the same rng seed (one routing function)', async (t) => {
  const suite = await loadSuite();
  const n = 256;
  const departed = [5, 17, 30, 31, 42, 200];
  const live = Array.from({ length: n }, (_, i) => i).filter((i) => !departed.includes(i));
  const SEED = 99;

  // The simulation's core routes it.
  const simPushes = new Map<number, number[]>();
  let simPushCount = 0;
  const w = new GossipWorld({
    n,
    seed: 3,
    suite,
    config: { arity: 4 },
    relayRng: Rng.seeded(SEED),
    onRelayPush: (leaf, items) => {
      simPushCount++;
      simPushes.set(leaf, [...(simPushes.get(leaf) ?? []), ...items.map((i) => i.id)]);
    },
  });
  const { signed, groupKey0 } = signedEpoch(suite, n, departed, w.signer.seed);
  w.rekeyWith(signed, departed);

  // The server's relay routes it, over UDP to one socket per live leaf.
  const relay = await EdgeRelay.bind(
    suite,
    {
      host: '127.0.0.1',
      port: 0,
      fanout: DEFAULT_RELAY_FANOUT,
      maxDatagramBytes: DEFAULT_GOSSIP_DATAGRAM_BYTES,
      rng: Rng.seeded(SEED),
    },
    { publicKey: w.signer.publicKey, sign: (m) => suite.ed25519Sign(w.signer.seed, m) },
  );
  const sockets: Socket[] = [];
  const relayPushes = new Map<number, number[]>();
  let received = 0;
  try {
    const targets: GossipTarget[] = [];
    for (const slot of live) {
      const sock = createSocket('udp4');
      sockets.push(sock);
      await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
      sock.on('message', (frame) => {
        received++;
        const env = decodeEnvelope(new Uint8Array(frame));
        t.is(env.epoch, signed.epoch - 1, 'MAC’d under the epoch the receivers are in');
        if (env.body.kind !== 'push') return t.fail('not a push');
        relayPushes.set(slot, [...(relayPushes.get(slot) ?? []), ...env.body.items.map((i) => i.id)]);
      });
      const port = sock.address().port;
      targets.push({ id: slot, host: '127.0.0.1', port, endpoint: `127.0.0.1:${port}` });
    }
    relay.installKey(0, groupKey0);
    t.deepEqual(relay.routeEpoch(signed, targets), []);
    await until('every relay datagram arrived', () => received === relay.stats.datagrams, 5000);

    t.true(relay.stats.partsRouted > 0);
    t.is(simPushCount, relay.stats.datagrams, 'as many pushes (datagrams)');
    t.deepEqual(sorted(simPushes), sorted(relayPushes));

    // And what both ran: the function itself, same seed.
    const direct = routeEpochParts(signed, live, DEFAULT_RELAY_FANOUT, Rng.seeded(SEED), (item) =>
      pushFits(0, itemBytes(item), DEFAULT_GOSSIP_DATAGRAM_BYTES),
    );
    const directPushes = new Map<number, number[]>();
    for (const [i, items] of direct.outbox)
      directPushes.set(
        live[i]!,
        items.map((x) => x.id),
      );
    t.deepEqual(sorted(directPushes), sorted(relayPushes));
    t.is(direct.routed, relay.stats.partsRouted);
    t.is(direct.withoutTarget, relay.stats.partsWithoutTarget);

    // The comparison is not vacuous: another seed routes otherwise.
    const other = routeEpochParts(signed, live, DEFAULT_RELAY_FANOUT, Rng.seeded(SEED + 1), () => true);
    const otherPushes = new Map<number, number[]>();
    for (const [i, items] of other.outbox)
      otherPushes.set(
        live[i]!,
        items.map((x) => x.id),
      );
    t.notDeepEqual(sorted(otherPushes), sorted(relayPushes));
  } finally {
    await relay.close();
    for (const s of sockets) s.close();
  }
});
