import test from 'ava';
import type { ExecutionContext } from 'ava';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { randomBytes } from 'node:crypto';
import { LINK_HELLO, LinkError, TlsTransport } from '../../net/index.js';
import type { LinkDownReason, TlsTransportOptions } from '../../net/index.js';
import { frameForStream } from '../../wire/index.js';
import { createTestCa, identifyByUri, issueMember } from '../fixtures/pki.js';
import type { TestCa, TestMember } from '../fixtures/pki.js';

const GROUP = 'g1';

interface Pki {
  ca: TestCa;
  a: TestMember;
  b: TestMember;
  c: TestMember;
  otherGroup: TestMember;
  rogue: TestMember; // right group and shape, issued by another CA
}
let pki: Pki;

test.before(async () => {
  const ca = await createTestCa('Keyglass Test CA', 'Ed25519');
  const otherCa = await createTestCa('Other CA', 'P-256');
  const [a, b, c, otherGroup, rogue] = await Promise.all([
    issueMember(ca, { group: GROUP, role: 'core', name: 'a' }),
    issueMember(ca, { group: GROUP, role: 'core', name: 'b' }),
    issueMember(ca, { group: GROUP, role: 'leaf', name: 'c', alg: 'P-256' }),
    issueMember(ca, { group: 'g2', role: 'core', name: 'x' }),
    issueMember(otherCa, { group: GROUP, role: 'core', name: 'r' }),
  ]);
  pki = { ca, a: a!, b: b!, c: c!, otherGroup: otherGroup!, rogue: rogue! };
});

interface Events {
  messages: { from: string; data: Uint8Array }[];
  ups: string[];
  downs: { peer: string; reason: LinkDownReason; detail: string | undefined }[];
  failures: { reason: LinkDownReason; detail: string }[];
}

/** A transport for `member` whose handler records everything; closed when the test ends. */
function endpoint(
  t: ExecutionContext,
  member: TestMember,
  extra: Partial<TlsTransportOptions> = {},
): { tr: TlsTransport; ev: Events } {
  const ev: Events = { messages: [], ups: [], downs: [], failures: [] };
  const tr = new TlsTransport({
    local: member.uri,
    tls: member.tls,
    identify: (cert) => identifyByUri(cert, GROUP),
    handshakeTimeoutMs: 3000,
    onHandshakeFailed: (_remote, reason, detail) => ev.failures.push({ reason, detail }),
    ...extra,
  });
  tr.setHandler({
    onMessage: (from, data) => ev.messages.push({ from, data }),
    onPeerUp: (peer) => ev.ups.push(peer),
    onPeerDown: (peer, reason, detail) => ev.downs.push({ peer, reason, detail }),
  });
  t.teardown(() => tr.close());
  return { tr, ev };
}

/** Poll `cond` until true; fail after `ms` so no test can hang. */
async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A hand-driven TLS client with a member certificate, for feeding the server bad bytes. */
async function rawClient(t: ExecutionContext, port: number, member: TestMember): Promise<tls.TLSSocket> {
  const socket = tls.connect({
    ...member.tls,
    host: '127.0.0.1',
    port,
    checkServerIdentity: () => undefined,
  });
  t.teardown(() => void socket.destroy());
  socket.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    socket.once('secureConnect', () => resolve());
    socket.once('error', reject);
  });
  return socket;
}

const text = (s: string) => new TextEncoder().encode(s);
const str = (b: Uint8Array) => new TextDecoder().decode(b);

test('mutual TLS link: identities from certificates, messages both ways, shared exporter', async (t) => {
  const { tr: server, ev: sev } = endpoint(t, pki.a);
  const { tr: client, ev: cev } = endpoint(t, pki.c);
  const { port } = await server.listen(0);
  t.is(await client.connect('127.0.0.1', port), pki.a.uri);
  await until(() => sev.ups.length === 1, 'server peer up');
  t.deepEqual(sev.ups, [pki.c.uri]);
  t.deepEqual(cev.ups, [pki.a.uri]);

  t.true(client.send(pki.a.uri, text('hello from c')));
  t.true(server.send(pki.c.uri, text('hello from a')));
  t.true(server.send(pki.c.uri, new Uint8Array(0)));
  await until(() => sev.messages.length === 1 && cev.messages.length === 2, 'messages');
  t.is(sev.messages[0]!.from, pki.c.uri);
  t.is(str(sev.messages[0]!.data), 'hello from c');
  t.is(str(cev.messages[0]!.data), 'hello from a');
  t.is(cev.messages[1]!.data.length, 0);

  const k1 = server.exportKeyingMaterial(pki.c.uri, 32, 'EXPORTER-keyglass-test');
  const k2 = client.exportKeyingMaterial(pki.a.uri, 32, 'EXPORTER-keyglass-test');
  t.truthy(k1);
  t.deepEqual(k1, k2);
  t.notDeepEqual(k1, server.exportKeyingMaterial(pki.c.uri, 32, 'EXPORTER-other'));
  t.is(server.exportKeyingMaterial('keyglass://g1/core/nobody', 32, 'x'), undefined);
  t.deepEqual(server.peers(), [pki.c.uri]);

  t.false(server.send('keyglass://g1/core/nobody', text('x')), 'no link, not sent');
  t.throws(() => server.send(pki.c.uri, new Uint8Array(server.maxMessageBytes + 1)), {
    instanceOf: RangeError,
  });
});

test('refused: client without certificate, client from another CA, wrong group, unexpected identity', async (t) => {
  const { tr: server, ev: sev } = endpoint(t, pki.a);
  const { port } = await server.listen(0);

  const reasonOf = async (p: Promise<string>): Promise<LinkDownReason> => {
    const err = await t.throwsAsync(p, { instanceOf: LinkError });
    return (err as LinkError).reason;
  };

  // No certificate at all: TLS itself refuses (requestCert + rejectUnauthorized).
  const noCert = endpoint(t, pki.c, { tls: { ca: pki.ca.certPem } }).tr;
  t.is(await reasonOf(noCert.connect('127.0.0.1', port)), 'auth');

  // Certificate from another CA (the client trusts both CAs, so only the server refuses).
  const rogue = endpoint(t, pki.rogue, {
    tls: { ...pki.rogue.tls, ca: [pki.rogue.tls.ca, pki.ca.certPem] },
  }).tr;
  t.is(await reasonOf(rogue.connect('127.0.0.1', port)), 'auth');

  // Valid chain, but `identify` refuses the group.
  const stranger = endpoint(t, pki.otherGroup, { identify: (cert) => identifyByUri(cert) }).tr;
  t.is(await reasonOf(stranger.connect('127.0.0.1', port)), 'auth');

  // The client pins the identity it expects.
  const pinned = endpoint(t, pki.c).tr;
  t.is(await reasonOf(pinned.connect('127.0.0.1', port, 'keyglass://g1/core/b')), 'auth');

  await until(() => sev.failures.length === 4, 'server-side refusals');
  t.true(
    sev.failures.every((f) => f.reason === 'auth'),
    JSON.stringify(sev.failures),
  );
  t.deepEqual(sev.ups, [], 'no refused client ever came up');
  const details = sev.failures.map((f) => f.detail).join('\n');
  t.regex(details, /did not return a certificate/, 'no-cert refusal says why');
  t.regex(details, /SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_GET_ISSUER_CERT/, 'foreign-CA refusal says why');
  t.regex(details, /wrong group/, 'identify refusal says why');

  // The server still serves a good client afterwards.
  const good = endpoint(t, pki.b).tr;
  t.is(await good.connect('127.0.0.1', port), pki.a.uri);
});

test('close and reconnect', async (t) => {
  const { tr: server, ev: sev } = endpoint(t, pki.a);
  const { port } = await server.listen(0);
  const { tr: client, ev: cev } = endpoint(t, pki.b);

  await client.connect('127.0.0.1', port);
  await until(() => sev.ups.length === 1, 'up');
  client.disconnect(pki.a.uri);
  await until(() => sev.downs.length === 1, 'server sees the close');
  t.is(sev.downs[0]!.reason, 'closed');
  t.is(cev.downs[0]!.reason, 'closed');
  t.false(client.send(pki.a.uri, text('gone')));

  t.is(await client.connect('127.0.0.1', port), pki.a.uri);
  t.true(client.send(pki.a.uri, text('again')));
  await until(() => sev.messages.length === 1, 'message after reconnect');
  t.is(str(sev.messages[0]!.data), 'again');

  // A whole new transport for the same identity (a restarted process) also gets through.
  await client.close();
  await until(() => sev.downs.length === 2, 'second close');
  const { tr: again } = endpoint(t, pki.b);
  t.is(await again.connect('127.0.0.1', port), pki.a.uri);
  t.true(again.send(pki.a.uri, text('restarted')));
  await until(() => sev.messages.length === 2, 'message after restart');
  t.deepEqual(sev.ups, [pki.b.uri, pki.b.uri, pki.b.uri]);
});

test('oversize frame and garbage streams close only their own connection', async (t) => {
  const { tr: server, ev: sev } = endpoint(t, pki.a, { maxMessageBytes: 64 * 1024 });
  const { port } = await server.listen(0);
  const { tr: good, ev: gev } = endpoint(t, pki.b);
  await good.connect('127.0.0.1', port);

  // 1. Authenticated peer declares a frame over the cap.
  const big = await rawClient(t, port, pki.c);
  big.write(frameForStream(LINK_HELLO, 1024));
  await until(() => sev.ups.includes(pki.c.uri), 'raw client up');
  const header = new Uint8Array(4);
  new DataView(header.buffer).setUint32(0, 64 * 1024 + 1);
  big.write(header);
  await until(() => sev.downs.some((d) => d.peer === pki.c.uri), 'oversize closes');
  t.is(sev.downs.find((d) => d.peer === pki.c.uri)!.reason, 'bad-frame');

  // 2. Authenticated peer sends random bytes after its hello.
  const noisy = await rawClient(t, port, pki.c);
  noisy.write(frameForStream(LINK_HELLO, 1024));
  await until(() => sev.ups.filter((u) => u === pki.c.uri).length === 2, 'second raw client up');
  noisy.write(Buffer.concat([Buffer.from([0xff, 0xff, 0xff, 0xff]), randomBytes(4096)]));
  await until(() => sev.downs.filter((d) => d.peer === pki.c.uri).length === 2, 'garbage closes');
  t.is(sev.downs.filter((d) => d.peer === pki.c.uri)[1]!.reason, 'bad-frame');

  // 3. Authenticated peer whose first frame is not the hello.
  const noHello = await rawClient(t, port, pki.c);
  noHello.write(frameForStream(text('not a hello'), 1024));
  await until(() => sev.failures.some((f) => f.reason === 'bad-frame'), 'bad first frame refused');

  // 4. Plain TCP garbage that is not TLS at all.
  const raw = net.connect(port, '127.0.0.1');
  raw.on('error', () => {});
  t.teardown(() => void raw.destroy());
  raw.write(randomBytes(2048));
  await until(() => sev.failures.some((f) => f.reason === 'auth'), 'non-TLS bytes refused');
  t.is(server.stats.badFrames, 3);

  // The good link never noticed.
  t.deepEqual(
    sev.downs.filter((d) => d.peer === pki.b.uri),
    [],
  );
  t.true(good.send(pki.a.uri, text('still here')));
  t.true(server.send(pki.b.uri, text('me too')));
  await until(() => sev.messages.length === 1 && gev.messages.length === 1, 'good link still works');
  t.is(str(sev.messages[0]!.data), 'still here');
});

test('handshake timeout: silent TCP client and a TLS client that never says hello', async (t) => {
  const { tr: server, ev: sev } = endpoint(t, pki.a, { handshakeTimeoutMs: 300 });
  const { port } = await server.listen(0);
  const silent = net.connect(port, '127.0.0.1');
  silent.on('error', () => {});
  t.teardown(() => void silent.destroy());
  await rawClient(t, port, pki.c); // completes TLS, sends no hello
  await until(() => sev.failures.filter((f) => f.reason === 'timeout').length === 2, 'both time out', 3000);
  t.deepEqual(sev.ups, []);
});

test('idle timeout closes a silent link', async (t) => {
  const { tr: server, ev: sev } = endpoint(t, pki.a, { idleTimeoutMs: 200 });
  const { port } = await server.listen(0);
  const { tr: client } = endpoint(t, pki.b, { idleTimeoutMs: 0 });
  await client.connect('127.0.0.1', port);
  await until(() => sev.downs.length === 1, 'idle close', 3000);
  t.is(sev.downs[0]!.reason, 'timeout');
});

test('backpressure: send returns false once the per-link queue is full', async (t) => {
  const maxQueuedBytes = 256 * 1024;
  const { tr: server, ev: sev } = endpoint(t, pki.a, { maxQueuedBytes, maxMessageBytes: 64 * 1024 });
  const { port } = await server.listen(0);
  const sink = await rawClient(t, port, pki.c);
  sink.write(frameForStream(LINK_HELLO, 1024));
  await until(() => sev.ups.length === 1, 'sink up');
  sink.pause(); // never read: the kernel buffers fill, then our queue does

  const msg = new Uint8Array(64 * 1024);
  let accepted = 0;
  let refused = false;
  for (let i = 0; i < 4096 && !refused; i++) {
    if (server.send(pki.c.uri, msg)) accepted++;
    else refused = true;
    if (i % 16 === 15) await new Promise((r) => setImmediate(r)); // let the socket flush into the kernel
  }
  t.true(refused, `send never refused after ${accepted} messages`);
  t.true(server.stats.sendQueueFull >= 1);
  t.true(accepted > 0);
});

test('two links to one identity: newest wins in one direction, simultaneous dials converge', async (t) => {
  const { tr: a, ev: aev } = endpoint(t, pki.a);
  const { tr: b, ev: bev } = endpoint(t, pki.b);
  const { port: aPort } = await a.listen(0);
  const { port: bPort } = await b.listen(0);

  // Same direction twice: the second link replaces the first.
  await b.connect('127.0.0.1', aPort);
  await until(() => aev.ups.length === 1, 'first link');
  await b.connect('127.0.0.1', aPort);
  await until(() => aev.ups.length === 2, 'second link');
  t.deepEqual(
    aev.downs.map((d) => d.detail),
    ['replaced'],
  );
  t.deepEqual(a.peers(), [pki.b.uri]);

  // Both dial each other at once: both ends keep the same single link.
  const [x, y] = await Promise.all([a.connect('127.0.0.1', bPort), b.connect('127.0.0.1', aPort)]);
  t.is(x, pki.b.uri);
  t.is(y, pki.a.uri);
  await new Promise((r) => setTimeout(r, 100)); // let losers close
  t.deepEqual(a.peers(), [pki.b.uri]);
  t.deepEqual(b.peers(), [pki.a.uri]);
  const ka = a.exportKeyingMaterial(pki.b.uri, 32, 'EXPORTER-same-link');
  const kb = b.exportKeyingMaterial(pki.a.uri, 32, 'EXPORTER-same-link');
  t.deepEqual(ka, kb, 'both ends chose the same link');
  t.true(a.send(pki.b.uri, text('ping')));
  t.true(b.send(pki.a.uri, text('pong')));
  await until(() => aev.messages.length === 1 && bev.messages.length === 1, 'messages over the kept link');
});
