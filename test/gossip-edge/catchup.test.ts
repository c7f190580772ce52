import test from 'ava';
import { loadSuite } from '../../crypto/index.js';
import {
  CORE_ORIGIN,
  dataId,
  GossipCounters,
  GossipNode,
  GossipStore,
  gossipConfig,
  ModelAuthenticator,
  WHOLE_GROUP_END,
  type Authenticator,
  type CorePull,
  type Envelope,
  type Item,
} from '../../gossip-edge/index.js';
import { Rng } from '../../net/sim/index.js';
import { runScenario } from '../../sim/gossip/scenario.js';
import { GossipWorld } from '../../sim/gossip/world.js';

const suite = await loadSuite();

function coreItem(seq: number): Item {
  return {
    id: dataId(CORE_ORIGIN, seq),
    epoch: 0,
    scopeStart: 0,
    scopeEnd: WHOLE_GROUP_END,
    bytes: 1,
    payload: Uint8Array.of(seq),
  };
}

/** One node with a recording host, under the model MAC (both sides hold epoch 0). */
function lone(): {
  node: GossipNode;
  pulls: CorePull[];
  reseeds: number[];
  delivered: Item[];
  auth: Authenticator;
} {
  const cfg = gossipConfig({ levels: 0, catchupRounds: 3, isolationRounds: 4 });
  const model = new ModelAuthenticator(9);
  model.install(0);
  const auth = model as unknown as Authenticator;
  const pulls: CorePull[] = [];
  const reseeds: number[] = [];
  const delivered: Item[] = [];
  const node = new GossipNode(
    new GossipStore(cfg, 1),
    0,
    0,
    auth,
    Rng.seeded(3),
    {
      send: () => undefined,
      deliver: (i) => void delivered.push(i),
      pullFromCore: (req) => void pulls.push(req),
      reseed: () => void reseeds.push(node.round),
    },
    new GossipCounters(),
  );
  node.seed([1, 2], [], []);
  node.setCoreCursor(0);
  return { node, pulls, reseeds, delivered, auth };
}

function digestFrom(auth: Authenticator, sender: number, ids: number[]): Envelope {
  const body = { kind: 'digest' as const, reply: true, probe: false, epoch: 0, ids };
  return { epoch: 0, sender, body, tag: auth.tag({ epoch: 0, sender, body })! };
}

test('a core-stream gap advertised by a peer but never filled leads to a core pull from the cursor', (t) => {
  const { node, pulls, delivered, auth } = lone();
  node.inject(coreItem(0), false);
  node.inject(coreItem(2), false);
  t.is(node.coreCursor, 1);
  node.receive(digestFrom(auth, 1, [dataId(CORE_ORIGIN, 3)])); // seq 3 exists; 1 and 3 missing
  for (let r = 0; r < 4; r++) {
    node.tick(); // the gap is noticed at round 1 and pulled for catchupRounds later
    node.receive(digestFrom(auth, 1, [])); // not silent: a peer keeps answering
  }
  t.deepEqual(pulls, [{ fromEpoch: 1, fromSeq: 1, why: 'gap' }]);
  // The core's reply fills seq 1 and 3; seq 4 is where its stream stands.
  node.onCoreReply([coreItem(1), coreItem(3)], 4);
  t.is(node.coreCursor, 4);
  t.deepEqual(
    delivered.map((i) => i.payload[0]),
    [0, 2, 1, 3],
  );
  for (let r = 0; r < 6; r++) {
    node.tick();
    node.receive(digestFrom(auth, 1, []));
  }
  t.is(pulls.length, 1, 'no gap left: no further pull');
});

test('seqs the core no longer retains are skipped, not pulled forever', (t) => {
  const { node, pulls } = lone();
  node.inject(coreItem(5), false); // cursor 0, heard up to 6: gap 0..4
  node.onCoreReply([coreItem(3), coreItem(4)], 6); // core history starts at 3
  t.is(node.coreCursor, 6);
  t.is(pulls.length, 0);
});

test('a silent node asks for a fresh seed and pulls, rate-limited', (t) => {
  const { node, pulls, reseeds } = lone();
  for (let r = 0; r < 12; r++) node.tick();
  t.deepEqual(reseeds, [4, 8, 12]);
  t.deepEqual(
    pulls.map((p) => p.why),
    ['cut-off', 'cut-off', 'cut-off'],
  );
  t.true(pulls.every((p) => p.fromSeq === 0));
});

test('a leaf cut off past every peer’s retention still gets the data from the core', (t) => {
  const w = new GossipWorld({ n: 800, seed: 31, loss: 0.02, suite });
  w.runRounds(3);
  const leaf = 123;
  w.sim.isolate(leaf);
  const tr = w.publishData();
  w.runRounds(w.config.retentionRounds + 6); // every peer evicted it from retention
  t.true(Number.isNaN(tr.deliveredAt[leaf]!));
  w.sim.heal();
  const pullsBefore = w.corePullsServed;
  w.runRounds(3 * w.config.isolationRounds);
  t.false(Number.isNaN(tr.deliveredAt[leaf]!), 'delivered after the heal');
  t.true(w.corePullsServed > pullsBefore);
  t.true(w.nodes[leaf]!.views.activeCount > 0, 're-seeded');
});

test('harsh mix (n = 10^4, 20 % loss, 30 % crashed): 100 % of live leaves after catch-up', (t) => {
  const { report } = runScenario({
    suite,
    n: 10_000,
    seed: 7,
    loss: 0.2,
    crashed: 0.3,
    messages: 3,
    rekeys: 1,
    batch: 10,
    maxRounds: 80,
  });
  for (const d of [...report.data, ...report.rekeys]) {
    t.is(d.delivered, d.eligible, d.label);
    t.true(d.eligible > 6500);
  }
  t.true(report.corePulls > 0);
  // Catch-up is a tail mechanism, not the main path: far fewer pulls than live leaves.
  t.true(report.corePulls < report.overlay.live / 2, `pulls ${report.corePulls}`);
});
