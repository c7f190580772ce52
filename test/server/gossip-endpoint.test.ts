/**
 * A leaf may announce only its own address as its gossip endpoint: one that names another IP
 * (here 127.0.0.2 while its TLS link comes from 127.0.0.1) could point the relay's and its
 * peers' datagrams at a third party. The server refuses it (counted, logged) and keeps that leaf
 * on TLS pushes — the leaf is not cut off — while a leaf announcing its real address is served
 * by gossip.
 */
import test from 'ava';
import { Cluster, until } from './cluster.js';

const cluster = new Cluster();

test.before(async () => {
  await cluster.init();
  await cluster.startServers(3);
  await cluster.untilOnePrimaryView();
});

test.after.always(async () => {
  await cluster.stop();
});

test('a gossip endpoint on another address is refused; that leaf stays on TLS and keeps receiving', async (t) => {
  const honest = await cluster.leaf('leaf-honest', 0);
  const spoofer = await cluster.leaf('leaf-spoofer', 0, { gossip: { host: '127.0.0.2' } });
  const core1 = cluster.servers[0]!;
  await until(
    'the refusal is counted',
    async () =>
      /keyglass_refusals_total\{port="leaf",reason="gossip-endpoint"\} 1\b/.test(
        await (await cluster.get(core1, '/metrics')).text(),
      ),
    10_000,
  );
  const text = (s: string): Uint8Array => new TextEncoder().encode(s);
  const has = (l: typeof honest, s: string): boolean =>
    l.messages.some((m) => Buffer.from(m.data).toString() === s);
  for (let i = 0; i < 3; i++) {
    honest.client.publish(text(`from honest ${i}`));
    spoofer.client.publish(text(`from spoofer ${i}`));
  }
  await until(
    'both leaves get both streams',
    async () => [0, 1, 2].every((i) => has(spoofer, `from honest ${i}`) && has(honest, `from spoofer ${i}`)),
    15_000,
  );
  t.is(spoofer.client.stats.gossipData, 0, 'nothing reached the refused endpoint by gossip');
  t.true(honest.client.stats.gossipData > 0, 'the honest leaf is served by gossip');
  t.true(spoofer.client.stats.tlsData >= 3, `spoofer got ${spoofer.client.stats.tlsData} by TLS`);
  t.deepEqual(spoofer.evicted, []);
  t.deepEqual(
    spoofer.errors.map((e) => e.message),
    [],
  );
});
