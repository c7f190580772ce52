/**
 * The system world as a driver sees it (sim/index.ts, used by `keyglass demo --sim`): leaves
 * joined through it are welcomed on the shipped stack, a publish through a leaf handle reaches
 * the other members by the server plane's relay, and a revocation through it evicts the leaf.
 */
import test from 'ava';
import { loadSuite } from '../../crypto/index.js';
import { buildSystemWorld } from '../../sim/index.js';

const suite = await loadSuite();

test('system world: joins, a publish relayed to every other member, a revocation', (t) => {
  const w = buildSystemWorld({ seed: 11, suite, servers: 3, leaves: 4, latencyMs: 2 });
  for (let i = 0; i < w.leaves; i++) w.sim.schedule(100 + 10 * i, () => w.connect(i, i % w.servers));
  w.sim.runUntil(4_000);
  t.deepEqual(w.errors, []);
  for (let i = 0; i < w.leaves; i++) t.true(w.leaf(i).session.welcomed, `leaf ${i} welcomed`);

  t.true(w.publish(0, new TextEncoder().encode('hello')));
  w.sim.runUntil(5_000);
  for (let i = 1; i < w.leaves; i++) t.is(w.leaf(i).messagesReceived, 1, `leaf ${i} read the publish`);

  t.true(w.revoke(3));
  t.false(w.revoke(3), 'a serial is revoked once');
  w.sim.runUntil(8_000);
  t.deepEqual(w.errors, []);
  // Its link is dropped and every new handshake refused: it is never welcomed again, and the
  // group moved to an epoch whose key it never got.
  t.false(w.leaf(3).session.welcomed);
  const epoch = w.liveServers()[0]!.machine.epoch;
  t.true(w.ledger.lastKeyOf('leaf-3')!.epoch < epoch);
  for (let i = 0; i < 3; i++) t.is(w.ledger.lastKeyOf(`leaf-${i}`)!.epoch, epoch);
  t.false(w.publish(3, new Uint8Array([1])), 'an evicted leaf cannot publish');
  t.deepEqual(w.ledger.violations, []);
});
