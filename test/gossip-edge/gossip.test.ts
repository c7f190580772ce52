import test from 'ava';
import { loadSuite } from '../../crypto/index.js';
import {
  dataId,
  GossipCounters,
  GossipNode,
  GossipStore,
  gossipConfig,
  MacAuthenticator,
  WHOLE_GROUP_END,
  type Envelope,
  type Item,
} from '../../gossip-edge/index.js';
import { Rng } from '../../net/sim/index.js';
import { bimodality, runScenario } from '../../sim/gossip/scenario.js';
import { GossipWorld } from '../../sim/gossip/world.js';

const suite = await loadSuite();

test('n = 10^4, 5 % loss: every live leaf gets data and rekeys; load stays within fan-out + 2', (t) => {
  const { report } = runScenario({
    suite,
    n: 10_000,
    seed: 11,
    loss: 0.05,
    messages: 2,
    rekeys: 1,
    batch: 10,
  });
  for (const d of [...report.data, ...report.rekeys]) {
    t.is(d.delivered, d.eligible, d.label);
    t.true(d.r999 <= Math.ceil(Math.log2(10_000)) + 5, `${d.label} 99.9% by round ${d.r999}`);
  }
  const cfg = gossipConfig();
  t.true(report.meanSendsPerNodeRound <= cfg.fanout + 2, `mean sends ${report.meanSendsPerNodeRound}`);
  t.true(report.maxSendsPerNodeRound <= cfg.maxSendsPerRound);
  t.true(report.overlay.reachable > 0.98);
  t.is(report.dropped['bad-mac'], 0);
});

test('per-leaf rekey bytes do not grow with batch size', (t) => {
  const small = runScenario({ suite, n: 4096, seed: 3, messages: 0, rekeys: 1, batch: 4 }).report;
  const large = runScenario({ suite, n: 4096, seed: 3, messages: 0, rekeys: 1, batch: 256 }).report;
  t.is(small.rekeys[0]!.delivered, small.rekeys[0]!.eligible);
  t.is(large.rekeys[0]!.delivered, large.rekeys[0]!.eligible);
  // A leaf receives only the part on its path: at most `height` wraps plus a log-size proof,
  // whatever the batch — while the whole batch grows ~64× here.
  const height = 6; // 4^6 = 4096 slots
  const bound = 184 + height * 48 + Math.ceil(Math.log2(4096 * 4)) * 32;
  t.true(large.meanRekeyBytesPerLeaf <= bound, `${large.meanRekeyBytesPerLeaf} > ${bound}`);
  t.true(
    large.meanRekeyBytesPerLeaf < 2 * small.meanRekeyBytesPerLeaf,
    `${small.meanRekeyBytesPerLeaf} vs ${large.meanRekeyBytesPerLeaf}`,
  );
});

test('partition of the overlay that heals: everyone delivers after the heal', (t) => {
  const { report } = runScenario({ suite, n: 2000, seed: 5, loss: 0.02, messages: 1, partitionRounds: 8 });
  const d = report.data[0]!;
  t.is(d.delivered, d.eligible);
  t.true(d.r100 >= 8, 'the far half could only get it after the heal');
});

test('churn during dissemination: leaves present throughout still deliver', (t) => {
  const { report } = runScenario({
    suite,
    n: 3000,
    seed: 8,
    loss: 0.05,
    messages: 1,
    rekeys: 1,
    batch: 5,
    churn: 0.01,
  });
  for (const d of [...report.data, ...report.rekeys])
    t.true(d.delivered >= d.eligible - 1, `${d.label}: ${d.delivered}/${d.eligible}`);
});

test('a leaf that missed rekeys catches up (peers, else core pull)', (t) => {
  const w = new GossipWorld({ n: 1000, seed: 21, loss: 0.01, suite });
  w.runRounds(3);
  const sleeper = 17;
  w.sim.pause(sleeper);
  const tracks = [w.rekey([400]), w.rekey([800])];
  w.runRounds(20);
  w.sim.resume(sleeper);
  w.runRounds(40);
  for (const tr of tracks) t.false(Number.isNaN(tr.deliveredAt[sleeper]!), tr.label);
  t.is(w.nodes[sleeper]!.epoch, 2);
});

test('bimodality: a message reaches almost all or almost none', (t) => {
  const b = bimodality({ suite, n: 300, runs: 40, loss: 0.3, seed: 100, deadlineRounds: 25 });
  t.is(b.between, 0, JSON.stringify(b.fractions));
  t.true(b.almostAll >= 35);
});

test('real HMAC path (wire mode, n = 1500): delivery, and outsiders / evicted leaves cannot inject', async (t) => {
  const w = new GossipWorld({ n: 1500, seed: 4, loss: 0.05, wire: true, suite });
  w.runRounds(2);
  const tr = w.publishData();
  w.runUntilDelivered([tr], 30);
  const d = w.delivery(tr);
  t.is(d.delivered, d.eligible);
  t.true(w.counters.bytesSent > 0);

  // An outsider with a wrong key, and the node's own store state afterwards.
  const outsider = new MacAuthenticator(suite);
  outsider.install(0, new Uint8Array(32).fill(7));
  const victim = w.nodes[10]!;
  const before = victim.retainedCount;
  const bogus: Item = {
    id: dataId(99, 1),
    epoch: 0,
    scopeStart: 0,
    scopeEnd: WHOLE_GROUP_END,
    bytes: 1,
    payload: Uint8Array.of(1),
  };
  const body = { kind: 'push' as const, hop: 1, items: [bogus] };
  const env: Envelope = { epoch: 0, sender: 999, body, tag: outsider.tag({ epoch: 0, sender: 999, body })! };
  const badMac = w.counters.dropped['bad-mac'];
  victim.receive(env);
  t.is(w.counters.dropped['bad-mac'], badMac + 1);
  t.is(victim.retainedCount, before);
  t.false(victim.seen(bogus.id));
});

test('an evicted leaf is locked out once the grace period of its last epoch ends', async (t) => {
  const cfg = gossipConfig({ epochGraceRounds: 3, levels: 0 });
  const store = new GossipStore(cfg, 2);
  const counters = new GossipCounters();
  const keys = [new Uint8Array(32).fill(1), new Uint8Array(32).fill(2)];
  const member = new MacAuthenticator(suite);
  member.install(0, keys[0]!);
  member.install(1, keys[1]!);
  const evicted = new MacAuthenticator(suite);
  evicted.install(0, keys[0]!);
  const delivered: Item[] = [];
  const host = {
    send: () => undefined,
    deliver: (i: Item) => void delivered.push(i),
    pullFromCore: () => undefined,
    reseed: () => undefined,
  };
  const node = new GossipNode(store, 0, 0, member, Rng.seeded(1), host, counters);
  node.setEpoch(1);
  const push = (seq: number): Envelope => {
    const item: Item = {
      id: dataId(5, seq),
      epoch: 0,
      scopeStart: 0,
      scopeEnd: WHOLE_GROUP_END,
      bytes: 0,
      payload: new Uint8Array(0),
    };
    const body = { kind: 'push' as const, hop: 1, items: [item] };
    return { epoch: 0, sender: 1, body, tag: evicted.tag({ epoch: 0, sender: 1, body })! };
  };
  node.receive(push(1)); // within grace: late in-flight traffic of the old epoch is still accepted
  t.is(delivered.length, 1);
  for (let r = 0; r < 4; r++) node.tick();
  node.receive(push(2));
  t.is(delivered.length, 1);
  t.is(counters.dropped['stale-epoch'], 1);
  t.false(node.seen(dataId(5, 2)));
});
