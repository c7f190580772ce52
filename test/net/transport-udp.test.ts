import test from 'ava';
import type { ExecutionContext } from 'ava';
import * as dgram from 'node:dgram';
import { UdpTransport, parseUdpAddress } from '../../net/index.js';
import type { UdpTransportOptions } from '../../net/index.js';

async function endpoint(t: ExecutionContext, opts: UdpTransportOptions = {}) {
  const tr = await UdpTransport.bind(opts);
  const got: { from: string; data: Uint8Array }[] = [];
  tr.setHandler({ onMessage: (from, data) => got.push({ from, data }) });
  t.teardown(() => tr.close());
  return { tr, got };
}

async function until(cond: () => boolean, what: string, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

for (const host of ['127.0.0.1', '::1']) {
  test(`datagrams both ways over ${host}`, async (t) => {
    const a = await endpoint(t, { host });
    const b = await endpoint(t, { host });
    t.regex(a.tr.local, host === '::1' ? /^\[::1\]:\d+$/ : /^127\.0\.0\.1:\d+$/);
    t.true(a.tr.send(b.tr.local, Uint8Array.of(1, 2, 3)));
    t.true(b.tr.send(a.tr.local, new Uint8Array(1200).fill(7)));
    await until(() => a.got.length === 1 && b.got.length === 1, 'both datagrams');
    t.is(b.got[0]!.from, a.tr.local);
    t.deepEqual(b.got[0]!.data, Uint8Array.of(1, 2, 3));
    t.is(a.got[0]!.data.length, 1200);
    t.is(Object.getPrototypeOf(a.got[0]!.data), Uint8Array.prototype, 'a plain Uint8Array, not a Buffer');
  });
}

test('oversize: sends throw, receipts are dropped and counted', async (t) => {
  const small = await endpoint(t, { maxDatagramBytes: 512 });
  const big = await endpoint(t, { maxDatagramBytes: 4096 });
  t.throws(() => small.tr.send(big.tr.local, new Uint8Array(513)), { instanceOf: RangeError });
  t.true(big.tr.send(small.tr.local, new Uint8Array(2000)));
  t.true(big.tr.send(small.tr.local, new Uint8Array(512)));
  await until(() => small.got.length === 1 && small.tr.stats.droppedOversize === 1, 'one kept, one dropped');
  t.is(small.got[0]!.data.length, 512);

  // A foreign socket's oversize datagram is dropped the same way.
  const raw = dgram.createSocket('udp4');
  t.teardown(() => raw.close());
  const to = parseUdpAddress(small.tr.local)!;
  await new Promise<void>((r) => raw.send(new Uint8Array(60_000), to.port, to.host, () => r()));
  await until(() => small.tr.stats.droppedOversize === 2, 'second drop');
  t.is(small.got.length, 1);
});

test('addresses: parse strictly, wrong family and closed transport refuse', async (t) => {
  t.deepEqual(parseUdpAddress('127.0.0.1:9'), { host: '127.0.0.1', port: 9, family: 4 });
  t.deepEqual(parseUdpAddress('[::1]:65535'), { host: '::1', port: 65535, family: 6 });
  for (const bad of [
    'localhost:9',
    '::1:9',
    '127.0.0.1',
    '127.0.0.1:0',
    '127.0.0.1:65536',
    '[127.0.0.1]:9',
    '1.2.3:4',
  ]) {
    t.is(parseUdpAddress(bad), undefined, bad);
  }
  const v4 = await endpoint(t);
  t.throws(() => v4.tr.send('localhost:9', Uint8Array.of(1)), { instanceOf: RangeError });
  t.false(v4.tr.send('[::1]:9', Uint8Array.of(1)));
  t.is(v4.tr.stats.wrongFamily, 1);
  await t.throwsAsync(UdpTransport.bind({ maxDatagramBytes: 65508 }), { instanceOf: RangeError });
  await t.throwsAsync(UdpTransport.bind({ host: 'localhost' }), { instanceOf: RangeError });
  await v4.tr.close();
  t.false(v4.tr.send('127.0.0.1:9', Uint8Array.of(1)));
});

test('bounded in-flight sends: send returns false past the cap', async (t) => {
  const a = await endpoint(t, { maxInflight: 4 });
  const b = await endpoint(t);
  const results: boolean[] = [];
  for (let i = 0; i < 64; i++) results.push(a.tr.send(b.tr.local, Uint8Array.of(i)));
  // Send completions are asynchronous, so a synchronous burst must hit the cap.
  t.deepEqual(results.slice(0, 4), [true, true, true, true]);
  t.true(results.includes(false));
  t.true(a.tr.stats.sendQueueFull > 0);
  await until(() => a.tr.stats.sent === results.filter(Boolean).length, 'accepted sends complete');
  await until(() => b.got.length === a.tr.stats.sent, 'loopback delivers them');
  t.true(a.tr.send(b.tr.local, Uint8Array.of(99)), 'the cap frees up again');
});
