/**
 * Issue 17, finding 5: a leaf publishes data sealed under an epoch the group retired long ago
 * (a lagging or minority-side member; here a raw frame from an admitted leaf that kept its old
 * key). Its server must refuse it ('retired-epoch' in the publishAck) and relay it to nobody —
 * not even to a leaf that would still open it (one configured with a long retired-epoch grace).
 */
import test from 'ava';
import { loadSuite } from '../../crypto/index.js';
import { LeafKeys, decodeWelcome } from '../../keytree/index.js';
import { DataKeyring, DataSealer, encodeLeafFrame, type PublishResult } from '../../gossip-edge/index.js';
import { Cluster, until } from '../server/cluster.js';
import { joinedRaw } from './leaf-edge-kit.js';

const cluster = new Cluster();

test.before(async () => {
  await cluster.init();
  await cluster.startServers(3, { leaseMs: 120_000 });
  await cluster.untilOnePrimaryView();
});

test.after.always(async () => {
  await cluster.stop();
});

test('a publish sealed under a retired epoch is refused and reaches nobody', async (t) => {
  t.timeout(60_000);
  const suite = await loadSuite();
  const [s1, s2] = [cluster.servers[0]!, cluster.servers[1]!];
  // A receiver that would open data of retired epochs for a minute: only the server can stop it.
  const receiver = await cluster.leaf('receiver', 1, { gossip: false, retiredEpochGraceMs: 60_000 });
  await cluster.issue('leaf', 'lagger');
  const lagger = await joinedRaw(cluster, 'lagger', s1);
  const acks: PublishResult[] = [];
  lagger.onFrame = (f) => {
    if (f.type === 'publishAck') acks.push(f.body.result);
  };
  // The lagger's key of its welcome epoch: what a member that stopped applying rekeys holds.
  const keys = LeafKeys.fromWelcome(decodeWelcome(lagger.welcome.welcome));
  const keyring = new DataKeyring(suite, { now: Date.now });
  keyring.install(keys.epoch, keys.groupKey());
  const sealer = new DataSealer(suite, keyring, { sender: lagger.welcome.memberId });
  const publish = (text: string): void =>
    void lagger.link.send(
      encodeLeafFrame('dataPublish', { envelope: sealer.seal(new TextEncoder().encode(text)) }),
    );

  // The receiver's server may release the lagger's admission batch after the lagger's does; the
  // receiver would hold the envelope until its key came (`dataEarly`), but this test is about
  // what the servers relay, so it starts from a receiver on the lagger's epoch.
  await until(
    'the receiver holds the lagger’s epoch',
    () => receiver.keys.some((k) => k.epoch >= keys.epoch),
    8000,
  );
  publish('current'); // sealed under the current epoch: relayed
  await until('the current-epoch publish reaches the receiver', () => receiver.messages.length === 1, 8000);
  // The group moves on (a join elsewhere); the lagger does not. Wait past every grace window.
  await cluster.issue('leaf', 'joiner');
  await (await joinedRaw(cluster, 'joiner', s2)).link.close();
  await until(
    'the receiver holds the next epoch',
    () => receiver.keys.some((k) => k.epoch > keys.epoch),
    8000,
  );
  await new Promise((r) => setTimeout(r, 2500));
  publish('retired');
  await until('both publishes answered', () => acks.length === 2, 8000);
  await new Promise((r) => setTimeout(r, 1000)); // what was relayed has arrived by now
  t.log(`publishAcks: ${acks.join(', ')}; receiver got ${receiver.messages.length} message(s)`);
  t.deepEqual(acks, ['accepted', 'retired-epoch']);
  t.deepEqual(
    receiver.messages.map((m) => new TextDecoder().decode(m.data)),
    ['current'],
    'the retired-epoch envelope reached nobody',
  );
  const metrics = await (await cluster.get(s1, '/metrics')).text();
  t.regex(metrics, /keyglass_publishes_total\{result="retired-epoch"\} 1/);
});
