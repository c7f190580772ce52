/**
 * The per-round send budget: at most maxSendsPerRound messages a round (default fan-out + 2),
 * eager pushes at most maxSendsPerRound − 2, and eager pushes over budget wait for later rounds
 * (bounded) instead of being dropped.
 */
import test from 'ava';
import {
  dataId,
  GossipCounters,
  GossipNode,
  GossipStore,
  gossipConfig,
  ModelAuthenticator,
  WHOLE_GROUP_END,
  type Authenticator,
  type Envelope,
  type GossipConfig,
  type Item,
  type PeerId,
  wireBytes,
} from '../../gossip-edge/index.js';
import { Rng } from '../../net/sim/index.js';

/** A push from peer 1 (hop 1) under epoch 0, MAC'd as the model authenticator expects. */
function pushOf(items: Item[]): Envelope {
  const body = { kind: 'push' as const, hop: 1, items };
  return { epoch: 0, sender: 1, body, tag: ModelAuthenticator.token(5, 0) };
}

function item(seq: number): Item {
  return {
    id: dataId(7, seq),
    epoch: 0,
    scopeStart: 0,
    scopeEnd: WHOLE_GROUP_END,
    bytes: 1,
    payload: Uint8Array.of(seq),
  };
}

/** A node with active peers 1..5 whose host records every send, per round. */
function node(patch: Partial<GossipConfig> = {}): { n: GossipNode; rounds: Envelope[][]; c: GossipCounters } {
  const cfg = gossipConfig({ levels: 0, ...patch });
  const model = new ModelAuthenticator(5);
  model.install(0);
  const rounds: Envelope[][] = [[]];
  const c = new GossipCounters();
  const n = new GossipNode(
    new GossipStore(cfg, 1),
    0,
    0,
    model as unknown as Authenticator,
    Rng.seeded(11),
    {
      send: (_to: PeerId, env: Envelope) => void rounds.at(-1)!.push(env),
      deliver: () => undefined,
      pullFromCore: () => undefined,
      reseed: () => undefined,
    },
    c,
  );
  n.seed([1, 2, 3, 4, 5], [], []);
  // Seeding spent budget on view requests; start the test in a fresh round with an empty log.
  n.tick();
  rounds.length = 0;
  rounds.push([]);
  c.dropped['rate-limited'] = 0;
  return { n, rounds, c };
}

const eager = (envs: readonly Envelope[]): Envelope[] =>
  envs.filter((e) => e.body.kind === 'push' && e.body.hop > 0);
const itemsIn = (envs: readonly Envelope[]): number =>
  envs.reduce((a, e) => a + (e.body.kind === 'push' ? e.body.items.length : 0), 0);

test('default budget is fan-out + 2 messages; items received together share messages', (t) => {
  const { n, rounds } = node();
  const cfg = gossipConfig();
  t.is(cfg.maxSendsPerRound, cfg.fanout + 2);
  n.receive(pushOf([item(0), item(1), item(2)]));
  const out = eager(rounds[0]!);
  t.is(out.length, cfg.fanout, 'one message to each of fan-out peers');
  for (const e of out) t.is(e.body.kind === 'push' ? e.body.items.length : 0, 3);
  t.is(n.deferredCount, 0);
});

test('items arriving apart over budget wait, join the waiting message per peer, and all go out', (t) => {
  const { n, rounds, c } = node();
  const cfg = gossipConfig();
  // Three items in separate messages in one round (e.g. a burst): each wants `fanout` peers.
  for (let s = 0; s < 3; s++) n.receive(pushOf([item(s)]));
  t.is(eager(rounds[0]!).length, cfg.fanout, 'the first item goes out at once');
  t.true(n.deferredCount > 0 && n.deferredCount <= 2 * cfg.fanout);
  for (let r = 0; r < 3; r++) {
    rounds.push([]);
    n.tick();
  }
  const pushed = rounds.reduce((a, envs) => a + itemsIn(eager(envs)), 0);
  t.is(pushed, 3 * cfg.fanout, 'every item reached fan-out peers');
  t.is(n.deferredCount, 0);
  t.is(c.dropped['rate-limited'], 0);
  for (const envs of rounds) {
    t.true(envs.length <= cfg.maxSendsPerRound, `round sent ${envs.length}`);
    t.true(eager(envs).length <= cfg.maxSendsPerRound - 2);
  }
  t.true(c.maxSendsInRound <= cfg.maxSendsPerRound);
});

test('the deferral queue is bounded: past deferredPushes the oldest message is dropped and counted', (t) => {
  const { n, c } = node({ deferredPushes: 3, maxItemsPerPush: 1 });
  for (let s = 0; s < 4; s++) n.receive(pushOf([item(s)]));
  // 4 items × 4 peers, one item per message: 4 sent, 3 waiting, 9 dropped.
  t.is(n.deferredCount, 3);
  t.is(c.dropped['rate-limited'], 9);
});

test('with deferral off, pushes over budget are dropped (anti-entropy repairs them)', (t) => {
  const { n, c } = node({ deferredPushes: 0 });
  for (let s = 0; s < 2; s++) n.receive(pushOf([item(s)]));
  t.is(n.deferredCount, 0);
  t.is(c.dropped['rate-limited'], gossipConfig().fanout);
});

test('a push never exceeds maxItemsPerPush items nor maxPushBytes', (t) => {
  const { n, rounds } = node({ maxItemsPerPush: 3, maxPushBytes: 600 });
  const big = (s: number): Item => ({ ...item(s), payload: new Uint8Array(250), bytes: 250 });
  n.receive(pushOf([item(0), item(1), item(2), item(3), item(4)]));
  n.receive(pushOf([big(10), big(11), big(12)]));
  for (let r = 0; r < 4; r++) {
    rounds.push([]);
    n.tick();
  }
  const all = rounds.flatMap(eager);
  t.true(all.length > 0);
  for (const e of all) {
    if (e.body.kind !== 'push') continue;
    t.true(e.body.items.length <= 3);
    t.true(e.body.items.length === 1 || wireBytes(e) <= 600, `${wireBytes(e)} bytes`);
  }
  t.is(itemsIn(all), 8 * gossipConfig().fanout);
});
