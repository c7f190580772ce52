/**
 * Issue 17, finding 3 (address takeover), the other side: a genuine peer whose public address
 * changes (a NAT that rebinds its mapping) must still be reached. Two real GossipLinks on
 * 127.0.0.1, one behind a UDP NAT; after the NAT moves the peer to a new port, the other link
 * sends to the new port once the old one stayed silent and the new one answered its challenge.
 */
import test from 'ava';
import { loadSuite } from '../../crypto/index.js';
import { until } from '../server/cluster.js';
import { UdpNat, seedWith, startedLink } from './gossip-address-kit.js';

test('a peer behind a NAT that rebinds is reached again at its new address', async (t) => {
  const suite = await loadSuite();
  const key = suite.randomBytes(32);
  const v = await startedLink(suite, 1, key);
  const p = await startedLink(suite, 2, key);
  const nat = await UdpNat.start(p.endpoint, v.endpoint);
  try {
    seedWith(v, 2, { host: '127.0.0.1', port: nat.outsidePort });
    seedWith(p, 1, { host: '127.0.0.1', port: nat.insidePort });
    await until('both links hear each other', () => v.stats.datagramsIn > 5 && p.stats.datagramsIn > 5);
    const before = `127.0.0.1:${nat.outsidePort}`;
    t.is(v.book.peek(2), before);

    await nat.rebind();
    const started = Date.now();
    const now = `127.0.0.1:${nat.outsidePort}`;
    await until('the peer is reached at its new address', () => v.book.peek(2) === now, 5000);
    const rebindMs = Date.now() - started;
    const heard = p.stats.datagramsIn;
    await until('datagrams reach the peer again', () => p.stats.datagramsIn > heard + 3, 5000);
    t.log(`rebinding took ${rebindMs} ms (round 20 ms)`);
    t.true(rebindMs < 2000);
  } finally {
    nat.close();
    await v.close();
    await p.close();
  }
});
