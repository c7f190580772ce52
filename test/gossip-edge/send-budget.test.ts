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
} from '../../gossip-edge/index.js';
import { Rng } from '../../net/index.js';

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

const eager = (envs: readonly Envelope[]): number =>
  envs.filter((e) => e.body.kind === 'push' && e.body.hop > 0).length;

test('default budget is fan-out + 2; items over it are forwarded in later rounds, none dropped', (t) => {
  const { n, rounds, c } = node();
  const cfg = gossipConfig();
  t.is(cfg.maxSendsPerRound, cfg.fanout + 2);
  // Three items arrive in one round (a rekey's parts on our path): each wants `fanout` pushes.
  for (let s = 0; s < 3; s++) n.inject(item(s), true);
  t.is(eager(rounds[0]!), cfg.fanout, 'the first item goes out at once');
  t.is(n.deferredCount, 2 * cfg.fanout);
  for (let r = 0; r < 3; r++) {
    rounds.push([]);
    n.tick();
  }
  const pushed = rounds.reduce((a, envs) => a + eager(envs), 0);
  t.is(pushed, 3 * cfg.fanout, 'every item reached fan-out peers');
  t.is(n.deferredCount, 0);
  t.is(c.dropped['rate-limited'], 0);
  for (const envs of rounds) {
    t.true(envs.length <= cfg.maxSendsPerRound, `round sent ${envs.length}`);
    t.true(eager(envs) <= cfg.maxSendsPerRound - 2);
  }
  t.true(c.maxSendsInRound <= cfg.maxSendsPerRound);
});

test('the deferral queue is bounded: past deferredPushes the oldest push is dropped and counted', (t) => {
  const { n, c } = node({ deferredPushes: 3 });
  for (let s = 0; s < 4; s++) n.inject(item(s), true);
  // 4 items × 4 peers = 16 pushes: 4 sent, 3 waiting, 9 dropped.
  t.is(n.deferredCount, 3);
  t.is(c.dropped['rate-limited'], 9);
});

test('with deferral off, pushes over budget are dropped (anti-entropy repairs them)', (t) => {
  const { n, c } = node({ deferredPushes: 0 });
  for (let s = 0; s < 2; s++) n.inject(item(s), true);
  t.is(n.deferredCount, 0);
  t.is(c.dropped['rate-limited'], gossipConfig().fanout);
});
