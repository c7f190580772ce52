import test from 'ava';
import type { ExecutionContext } from 'ava';
import { Worker } from 'node:worker_threads';
import { TlsTransport, ThreadTransport } from '../../net/index.js';
import type { LinkDownReason, ThreadTransportOptions } from '../../net/index.js';
import { createTestCa, identifyByUri, issueMember } from '../fixtures/pki.js';
import type { TestMember } from '../fixtures/pki.js';
import type { EntryData } from './tls-thread-entry.js';

const GROUP = 'g1';
const MAX_MESSAGE = 16 * 1024;

let server: TestMember;
let client: TestMember;
let outsider: TestMember; // another group: refused by the thread's identify

test.before(async () => {
  const ca = await createTestCa('Keyglass Test CA', 'Ed25519');
  [server, client, outsider] = (await Promise.all([
    issueMember(ca, { group: GROUP, role: 'core', name: 'a' }),
    issueMember(ca, { group: GROUP, role: 'leaf', name: 'b' }),
    issueMember(ca, { group: 'g2', role: 'leaf', name: 'x' }),
  ])) as [TestMember, TestMember, TestMember];
});

interface Events {
  ups: string[];
  downs: { peer: string; reason: LinkDownReason; detail: string | undefined }[];
  messages: { from: string; data: Uint8Array }[];
  infos: unknown[];
  events: unknown[];
  failures: { reason: LinkDownReason; detail: string }[];
  exits: string[];
}

/** A ThreadTransport for `server` on a test thread; closed when the test ends. */
function threaded(
  t: ExecutionContext,
  extra: Partial<ThreadTransportOptions> = {},
  entry: Partial<EntryData> = {},
): { tr: ThreadTransport; ev: Events } {
  const ev: Events = { ups: [], downs: [], messages: [], infos: [], events: [], failures: [], exits: [] };
  const data: EntryData = {
    local: server.uri,
    group: GROUP,
    tls: server.tls,
    maxMessageBytes: MAX_MESSAGE,
    ...entry,
  };
  const tr = new ThreadTransport({
    local: server.uri,
    maxMessageBytes: MAX_MESSAGE,
    spawn: () => new Worker(new URL('./tls-thread-entry.js', import.meta.url), { workerData: data }),
    onLinkUp: (_peer, info) => void ev.infos.push(info),
    onEvent: (e) => ev.events.push(e),
    onHandshakeFailed: (_remote, reason, detail) => ev.failures.push({ reason, detail }),
    onThreadExit: (detail) => ev.exits.push(detail),
    restartDelayMs: 50,
    ...extra,
  });
  tr.setHandler({
    onMessage: (from, d) => ev.messages.push({ from, data: d }),
    onPeerUp: (peer) => ev.ups.push(peer),
    onPeerDown: (peer, reason, detail) => ev.downs.push({ peer, reason, detail }),
  });
  t.teardown(() => tr.close());
  return { tr, ev };
}

/** An in-process dialer for `member`; records what it receives and when its link drops. */
function dialer(t: ExecutionContext, member: TestMember) {
  const got: Uint8Array[] = [];
  const downs: string[] = [];
  const tr = new TlsTransport({
    local: member.uri,
    tls: member.tls,
    identify: (cert) => identifyByUri(cert),
    maxMessageBytes: MAX_MESSAGE,
    handshakeTimeoutMs: 3000,
  });
  tr.setHandler({
    onMessage: (_from, d) => got.push(d),
    onPeerDown: (_peer, _reason, detail) => downs.push(detail ?? ''),
  });
  t.teardown(() => tr.close());
  return { tr, got, downs };
}

/** A threaded server with `client` linked to it (the link up on the main thread). */
async function linked(
  t: ExecutionContext,
  extra: Partial<ThreadTransportOptions> = {},
  entry: Partial<EntryData> = {},
): Promise<{ tr: ThreadTransport; ev: Events; port: number; c: ReturnType<typeof dialer> }> {
  const { tr, ev } = threaded(t, extra, entry);
  const { port } = await tr.listen(0);
  const c = dialer(t, client);
  t.is(await c.tr.connect('127.0.0.1', port), server.uri);
  await until(() => ev.ups.length === 1, 'the link up on the main thread');
  return { tr, ev, port, c };
}

async function until(cond: () => boolean, what: string, ms = 8000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

test('a link through the TLS thread: info before up, messages both ways, remote address, disconnect', async (t) => {
  const { tr, ev, c } = await linked(t);
  t.deepEqual(ev.ups, [client.uri]);
  t.like(ev.infos[0], { peer: client.uri }); // the thread entry's infoOf, delivered with the up
  t.is(tr.remoteAddress(client.uri), '127.0.0.1');
  t.deepEqual(tr.peers(), [client.uri]);

  t.true(tr.send(client.uri, Uint8Array.of(1, 2, 3)));
  await until(() => c.got.length === 1, 'the message at the client');
  t.deepEqual([...c.got[0]!], [1, 2, 3]);
  t.true(c.tr.send(server.uri, Uint8Array.of(9, 8)));
  await until(() => ev.messages.length === 1, 'the message on the main thread');
  t.is(ev.messages[0]!.from, client.uri);
  t.deepEqual([...ev.messages[0]!.data], [9, 8]);
  t.false(tr.send('keyglass://g1/leaf/nobody', Uint8Array.of(1)), 'no link: refused at once');
  t.throws(() => tr.send(client.uri, new Uint8Array(MAX_MESSAGE + 1)), { instanceOf: RangeError });

  tr.control('ping');
  await until(() => ev.events.length === 1, 'the echoed control event');
  t.deepEqual(ev.events, [{ echo: 'ping' }]);

  await until(() => tr.stats.linksUp === 1, 'the thread reporting its counters');
  if (process.platform === 'linux')
    t.true((tr.threadCpuSeconds ?? -1) >= 0, 'the thread reports its own CPU time');

  tr.disconnect(client.uri, 'go away');
  await until(() => ev.downs.length === 1 && c.downs.length === 1, 'the link down on both sides');
  t.like(ev.downs[0], { peer: client.uri, reason: 'closed', detail: 'go away' });
  t.is(tr.remoteAddress(client.uri), undefined);
  t.false(tr.send(client.uri, Uint8Array.of(1)));
});

test('onLinkUp refusing a link closes it without onPeerUp; a refused certificate is reported from the thread', async (t) => {
  const { tr, ev } = threaded(t, { onLinkUp: () => 'judged against an older CRL' });
  const { port } = await tr.listen(0);
  const c = dialer(t, client);
  await c.tr.connect('127.0.0.1', port).catch(() => undefined);
  await until(() => c.downs.length === 1 || c.tr.peers().length === 0, 'the client link closed');
  await new Promise((r) => setTimeout(r, 100));
  t.deepEqual(ev.ups, [], 'the main thread never saw the link up');
  t.deepEqual(ev.downs, [], 'nor a down for a link it never had');

  const x = dialer(t, outsider);
  await t.throwsAsync(x.tr.connect('127.0.0.1', port));
  await until(() => ev.failures.length === 1, 'the handshake failure on the main thread');
  t.is(ev.failures[0]!.reason, 'auth');
  t.regex(ev.failures[0]!.detail, /wrong group/);
});

test('the thread dies: its links go down, a new thread listens on the same port and peers link again', async (t) => {
  const { tr, ev, port, c } = await linked(t);
  const firstThread = (ev.infos[0] as { threadId: number }).threadId;

  tr.control('crash');
  await until(() => ev.exits.length === 1 && ev.downs.length === 1, 'the thread exit and the link down');
  t.regex(ev.exits[0]!, /exited with code 1: boom on the TLS thread/);
  t.like(ev.downs[0], { peer: client.uri, reason: 'error' });
  t.false(tr.send(client.uri, Uint8Array.of(1)), 'no link while the thread is gone');

  // The new thread needs a moment to start and bind: dial until it answers.
  const deadline = Date.now() + 8000;
  for (;;) {
    const ok = await c.tr.connect('127.0.0.1', port).then(
      () => true,
      () => false,
    );
    if (ok || Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  await until(() => ev.ups.length === 2, 'the link up again through the new thread');
  const secondThread = (ev.infos[1] as { threadId: number }).threadId;
  t.not(secondThread, firstThread);
  t.true(tr.send(client.uri, Uint8Array.of(7)));
  await until(() => c.got.length === 1, 'a message through the new thread');
});

test('bounded: bytes handed to the thread and not yet taken are capped; the cap frees as the thread takes them', async (t) => {
  const { tr, c } = await linked(t, { maxInFlightBytes: 4 * MAX_MESSAGE });
  const big = new Uint8Array(MAX_MESSAGE).fill(5);
  const accepted = Array.from({ length: 6 }, () => tr.send(client.uri, big)); // one event-loop turn
  t.deepEqual(accepted, [true, true, true, true, false, false]);
  t.is(tr.stats.sendQueueFull, 2);
  await until(() => c.got.length === 4, 'the four accepted messages at the client');
  t.true(tr.send(client.uri, big), 'the thread took them: room again');
  await until(() => c.got.length === 5, 'the fifth');
});

test('bounded the other way: a main thread that falls behind makes the thread stop reading, then resume', async (t) => {
  const { tr, ev, c } = await linked(t, {}, { maxUnackedBytes: 4 * MAX_MESSAGE });
  const n = 40;
  for (let i = 0; i < n; i++) t.true(c.tr.send(server.uri, new Uint8Array(MAX_MESSAGE - 8).fill(i)));
  // The main thread is busy (one long synchronous stretch) while those arrive on the thread.
  const until0 = Date.now() + 400;
  while (Date.now() < until0) {
    /* a stack event that takes its time */
  }
  await until(
    () => ev.messages.length === n,
    'every message taken, in order, once the main thread catches up',
  );
  t.deepEqual(
    ev.messages.map((m) => m.data[0]),
    Array.from({ length: n }, (_, i) => i),
  );
  await until(() => tr.stats.readPauses >= 1, 'the thread reporting that it paused reading');
});

test('a port already taken: listen rejects with the reason, nothing restarts, and it can be tried again', async (t) => {
  const first = threaded(t);
  const { port } = await first.tr.listen(0);
  const second = threaded(t);
  await t.throwsAsync(second.tr.listen(port), { message: /EADDRINUSE/ });
  t.deepEqual(second.ev.exits, [], 'a refused listen is not a crash, and nothing restarts');
  await t.throwsAsync(second.tr.listen(port), { message: /EADDRINUSE/ }, 'it may be tried again');
  await second.tr.close();
});

test('close: up links reported down, later sends refused, a second close is a no-op', async (t) => {
  const { tr, ev } = await linked(t);
  await tr.close();
  t.deepEqual(
    ev.downs.map((d) => [d.peer, d.reason]),
    [[client.uri, 'closed']],
  );
  t.false(tr.send(client.uri, Uint8Array.of(1)));
  await tr.close();
  await t.throwsAsync(tr.listen(0), { message: /closed/ });
  t.deepEqual(ev.exits, [], 'a close is not a crash');
});
