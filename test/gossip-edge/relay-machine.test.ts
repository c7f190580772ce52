/**
 * EdgeRelayMachine (sans-IO) without a socket: its datagrams and its end-of-turn requests go to
 * an output the test holds, and time is what the test says it is. Checks what the relay decides:
 * which leaves get which part, under which MAC, what one turn's data becomes, what a full socket
 * or a retired key costs.
 */
import test from 'ava';
import { loadSuite, type CipherSuite } from '../../crypto/index.js';
import {
  CORE_RELAY_PEER,
  DataKeyring,
  DataSealer,
  EdgeRelayMachine,
  MacAuthenticator,
  decodeEnvelope,
  isRekeyId,
  rekeyEpochOf,
  type GossipTarget,
  type RelayOptions,
} from '../../gossip-edge/index.js';
import { signedEpoch } from './signed-epoch-kit.js';
import { Rng } from '../../net/sim/index.js';

interface Sent {
  readonly to: string;
  readonly bytes: Uint8Array;
}

function relayWith(
  suite: CipherSuite,
  opts: Partial<RelayOptions> = {},
  accept: () => boolean = () => true,
): { relay: EdgeRelayMachine; sent: Sent[]; flushes: { asked: number } } {
  const seed = new Uint8Array(32).fill(9);
  const sent: Sent[] = [];
  const flushes = { asked: 0 };
  const relay = new EdgeRelayMachine(
    suite,
    { host: '0.0.0.0', port: 0, fanout: 2, maxDatagramBytes: 8192, rng: Rng.seeded(5), ...opts },
    { publicKey: suite.ed25519PublicKey(seed), sign: (m) => suite.ed25519Sign(seed, m) },
    {
      datagram: (to, bytes) => {
        if (!accept()) return false;
        sent.push({ to, bytes });
        return true;
      },
      flushAtTurnEnd: () => void flushes.asked++,
    },
  );
  return { relay, sent, flushes };
}

const target = (id: number): GossipTarget => ({
  id,
  host: '10.1.0.1',
  port: 1000 + id,
  endpoint: `10.1.0.1:${1000 + id}`,
});

test('an epoch: every datagram is a relay push MAC’d under E − 1 to a target inside its parts’ scope', async (t) => {
  const suite = await loadSuite();
  const n = 64;
  const departed = [3, 40];
  const { signed, groupKey0 } = signedEpoch(suite, n, departed);
  const targets = Array.from({ length: n }, (_, i) => i)
    .filter((i) => !departed.includes(i))
    .map(target);
  const byEndpoint = new Map(targets.map((x) => [x.endpoint, x.id]));
  const { relay, sent } = relayWith(suite);
  relay.installKey(0, groupKey0);
  t.deepEqual(relay.routeEpoch(signed, targets), [], 'nothing falls back to TLS');
  t.true(sent.length > 0);
  t.is(relay.stats.datagrams, sent.length);
  const mac = new MacAuthenticator(suite);
  mac.install(0, groupKey0);
  const covered = new Set<number>();
  for (const d of sent) {
    const env = decodeEnvelope(d.bytes);
    t.is(env.sender, CORE_RELAY_PEER);
    t.is(env.epoch, signed.epoch - 1);
    t.true(mac.verify(env), 'a leaf still in E − 1 verifies it');
    if (env.body.kind !== 'push') return t.fail('not a push');
    const slot = byEndpoint.get(d.to)!;
    for (const item of env.body.items) {
      t.true(isRekeyId(item.id) && rekeyEpochOf(item.id) === signed.epoch);
      t.true(slot >= item.scopeStart && slot < item.scopeEnd, 'handed only to a leaf under the part');
      covered.add(item.id);
    }
  }
  t.is(covered.size, relay.stats.partsRouted, 'every routed part went out');
});

test('an epoch whose previous key the relay lacks goes to TLS, nothing is sent', async (t) => {
  const suite = await loadSuite();
  const { signed } = signedEpoch(suite, 16, [1]);
  const { relay, sent } = relayWith(suite);
  relay.installKey(5, suite.randomBytes(32)); // a key, but not one within MAC_LOOKBACK of E − 1
  const fallback = relay.routeEpoch(signed, [target(0), target(2)]);
  t.true(fallback.length > 0);
  t.is(sent.length, 0);
  t.is(relay.stats.partsFallback, fallback.length);
});

test('one turn of data: one end-of-turn request, one signed entry, sent only when the host flushes', async (t) => {
  const suite = await loadSuite();
  const { relay, sent, flushes } = relayWith(suite);
  const keyring = new DataKeyring(suite, { now: () => 0 });
  const key = suite.randomBytes(32);
  keyring.install(1, key);
  relay.installKey(1, key);
  const sealer = new DataSealer(suite, keyring, { sender: 2 });
  const targets = [0, 1, 2, 3, 4, 5, 6, 7].map(target);
  for (let k = 0; k < 3; k++) t.true(relay.injectData(sealer.seal(new Uint8Array(100)), targets));
  t.is(flushes.asked, 1, 'the host is asked once for the turn');
  t.is(sent.length, 0, 'nothing leaves before the turn ends');
  const before = relay.stream.next;
  relay.flushData();
  t.is(relay.stream.next, before + 1, 'three envelopes, one entry');
  t.is(relay.stats.dataEntries, 1);
  t.true(sent.length >= 2, 'handed to fan-out (+ log2 m) targets');
  for (const d of sent) {
    const env = decodeEnvelope(d.bytes);
    if (env.body.kind !== 'push') return t.fail('not a push');
    t.is(env.body.items.length, 1);
  }
  relay.flushData();
  t.is(relay.stats.dataEntries, 1, 'a second flush has nothing to do');
});

test('a socket that cannot take a datagram is counted; a closed machine flushes nothing', async (t) => {
  const suite = await loadSuite();
  const { relay, sent } = relayWith(suite, {}, () => false);
  const keyring = new DataKeyring(suite, { now: () => 0 });
  const key = suite.randomBytes(32);
  keyring.install(1, key);
  relay.installKey(1, key);
  const sealer = new DataSealer(suite, keyring, { sender: 2 });
  relay.injectData(sealer.seal(new Uint8Array(100)), [target(0), target(1)]);
  relay.flushData();
  t.is(sent.length, 0);
  t.true(relay.stats.sendQueueFull >= 1);
  t.is(relay.stats.datagrams, 0);
  relay.injectData(sealer.seal(new Uint8Array(100)), [target(0)]);
  relay.close();
  relay.flushData();
  t.is(relay.stats.dataEntries, 1, 'the entry pending at close is dropped');
});

test('options out of range are refused at construction', async (t) => {
  const suite = await loadSuite();
  t.throws(() => relayWith(suite, { fanout: 0 }), { instanceOf: RangeError });
  t.throws(() => relayWith(suite, { maxDatagramBytes: 100 }), { instanceOf: RangeError });
  t.throws(() => relayWith(suite, { pullBytesPerSec: 0 }), { instanceOf: RangeError });
});
