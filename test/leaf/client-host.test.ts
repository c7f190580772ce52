/**
 * The parts of LeafClient's host, each on its own: ServerLink (dialing core servers in turn over
 * real mutual TLS 1.3 on 127.0.0.1, the welcome wait, staying on the server that welcomed us, leave
 * without a link), ServerTrust (CRLs read at the handshake), clientOptions (what goes to the
 * session, what to the host), RealTimers, the gossip command with no link, and a close while
 * connect binds the gossip socket.
 */
import test from 'ava';
import { loadSuite } from '../../crypto/index.js';
import { MAX_LEAF_FRAME_BYTES } from '../../gossip-edge/index.js';
import { TlsTransport } from '../../net/index.js';
import { MutualTls, PeerVerifier, RevocationRegistry } from '../../auth/index.js';
import { LeafClient, LeafConnectError, LeafEvictedError, type LeafLinkInfo } from '../../leaf-sdk/index.js';
import { ServerLink, type ServerLinkOptions } from '../../leaf-sdk/server-link.js';
import { ServerTrust } from '../../leaf-sdk/server-trust.js';
import { clientOptions } from '../../leaf-sdk/client-options.js';
import { RealTimers } from '../../leaf-sdk/real-timers.js';
import { discardGossipCommand } from '../../leaf-sdk/gossip-host.js';
import { makeCa, makeCrl, makeMember, type TestCa, type TestMember } from '../auth/pki-helpers.js';

/** A core server that only accepts links and records the frames it is sent. */
interface CoreStub {
  readonly name: string;
  readonly member: TestMember;
  readonly port: number;
  readonly received: Uint8Array[];
  readonly transport: TlsTransport;
}

async function coreStub(ca: TestCa, name: string): Promise<CoreStub> {
  const member = await makeMember(ca, name, { group: 'g', role: 'core' });
  const mtls = new MutualTls(member.credentials, new PeerVerifier({ anchors: [ca.info], group: 'g' }));
  const transport = new TlsTransport({
    local: `g/core/${name}`,
    tls: mtls.contextOptions(),
    identify: mtls.transportIdentify({ roles: ['leaf'], peerSide: 'client' }),
    maxMessageBytes: MAX_LEAF_FRAME_BYTES,
  });
  const received: Uint8Array[] = [];
  transport.setHandler({ onMessage: (_from, data) => received.push(data), onPeerDown: () => {} });
  const { port } = await transport.listen(0);
  return { name, member, port, received, transport };
}

interface Rig {
  ca: TestCa;
  leaf: TestMember;
  cores: CoreStub[];
  revocation: RevocationRegistry;
  trust: ServerTrust;
  revokedAtHandshake: number;
}

async function rig(t: { teardown(fn: () => Promise<void>): void }, servers = 2): Promise<Rig> {
  const ca = await makeCa('Host Test CA');
  const leaf = await makeMember(ca, 'leaf-1', { group: 'g', role: 'leaf' });
  const cores: CoreStub[] = [];
  for (let i = 1; i <= servers; i++) cores.push(await coreStub(ca, `core-${i}`));
  t.teardown(async () => {
    await Promise.all(cores.map((c) => c.transport.close()));
  });
  const revocation = new RevocationRegistry();
  const r: Rig = { ca, leaf, cores, revocation, trust: undefined!, revokedAtHandshake: 0 };
  r.trust = new ServerTrust(
    { credentials: leaf.credentials, trust: { caPem: ca.pem } },
    { revocation, requireFreshCrl: false, onRevoked: () => r.revokedAtHandshake++ },
  );
  return r;
}

/** A ServerLink over `r`'s servers whose joins `answer` decides (welcome, or the error that fails it). */
function serverLink(
  r: Rig,
  answer: (server: string) => Error | 'welcome' | 'welcome, then drop' | 'wait',
  opts: Partial<ServerLinkOptions> = {},
): { link: ServerLink; ups: Omit<LeafLinkInfo, 'gossip'>[]; downs: boolean[] } {
  const ups: Omit<LeafLinkInfo, 'gossip'>[] = [];
  const downs: boolean[] = [];
  const link: ServerLink = new ServerLink(
    r.trust,
    {
      servers: r.cores.map((c) => ({ host: '127.0.0.1', port: c.port })),
      maxAttempts: 6,
      backoffBaseMs: 10,
      backoffMaxMs: 40,
      handshakeTimeoutMs: 5000,
      random: () => 0,
      ...opts,
    },
    {
      linkUp: (info) => {
        ups.push(info);
        const a = answer(info.server);
        if (a === 'welcome') link.welcomed();
        else if (a === 'welcome, then drop') {
          link.welcomed();
          link.drop('a frame right behind the welcome broke the protocol');
        } else if (a !== 'wait') link.joinFailed(a);
      },
      frame: () => {},
      linkDown: (_error, joining) => downs.push(joining),
    },
  );
  return { link, ups, downs };
}

async function until(what: string, cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('ServerLink: tries servers in turn, stays on the one that welcomed us, hands the session what the verifier accepted', async (t) => {
  const r = await rig(t);
  const { link, ups, downs } = serverLink(r, (s) =>
    s === 'g/core/core-1' ? new Error('not now') : 'welcome',
  );
  t.is(await link.dial(), 'g/core/core-2');
  t.is(link.server, 'g/core/core-2');
  t.deepEqual(
    ups.map((u) => u.server),
    ['g/core/core-1', 'g/core/core-2'],
  );
  // The session checks a live link against newer CRLs with the certificate the handshake saw.
  t.is(ups[1]!.accepted?.certificate.serial, r.cores[1]!.member.info.serial);
  t.true((ups[1]!.exportKeyingMaterial(32, 'EXPORTER-test')?.length ?? 0) === 32);
  t.true(link.send(new Uint8Array([1, 2, 3])));
  await until('core-2 got the frame', () => r.cores[1]!.received.length === 1);

  const downsBefore = downs.length; // core-1's link, ended after its join failed
  link.drop('test: fail over');
  await until('link down', () => downs.length === downsBefore + 1);
  t.false(downs[downsBefore]!, 'an established link, not a join');
  t.is(link.server, undefined);
  t.is(ups[1]!.exportKeyingMaterial(32, 'EXPORTER-test'), undefined, 'no exporter once the link is gone');
  t.is(await link.dial(), 'g/core/core-2');
  t.is(ups[2]!.server, 'g/core/core-2', 'the next dial starts at the server that welcomed us');
  await link.close('test done');
  t.false(link.send(new Uint8Array([1])));
});

test('ServerLink: bounded attempts listed in LeafConnectError; an eviction while joining stops at once', async (t) => {
  const r = await rig(t);
  const refused = serverLink(r, () => new Error('refused'), { maxAttempts: 3 });
  const err = await t.throwsAsync(refused.link.dial(), { instanceOf: LeafConnectError });
  t.regex(err.message, /after 3 attempts/);
  t.is(err.attempts.length, 3);
  t.true(err.attempts.every((a) => a.endsWith(': refused')));
  t.is(refused.ups.length, 3);
  await refused.link.close('done');

  const evicted = serverLink(r, () => new LeafEvictedError('revoked'));
  await t.throwsAsync(evicted.link.dial(), { instanceOf: LeafEvictedError });
  t.is(evicted.ups.length, 1, 'no further server is tried');
  await evicted.link.close('done');
});

test('ServerLink: a link that ends right after its welcome is not taken as up; the next server is tried', async (t) => {
  const r = await rig(t);
  const { link, ups } = serverLink(r, (s) => (s === 'g/core/core-1' ? 'welcome, then drop' : 'welcome'));
  t.is(await link.dial(), 'g/core/core-2');
  t.is(link.server, 'g/core/core-2');
  t.deepEqual(
    ups.map((u) => u.server),
    ['g/core/core-1', 'g/core/core-2'],
  );
  await link.close('done');
});

test('ServerLink: close fails the pending join and stops dialing; leaveWithoutLink still reaches a server', async (t) => {
  const r = await rig(t);
  const { link, ups } = serverLink(r, () => 'wait');
  const dialing = link.dial();
  await until('joining', () => ups.length === 1);
  await link.close('client closed');
  const err = await t.throwsAsync(dialing, { instanceOf: LeafConnectError });
  t.is(err.message, 'client closed');
  t.is(link.server, undefined);
  const leave = new Uint8Array([7, 7, 7]);
  await link.leaveWithoutLink(leave, 3000);
  await until('the first server got the leave', () => r.cores[0]!.received.length === 1);
  t.deepEqual(r.cores[0]!.received[0], leave);
});

test('ServerTrust: a server a held CRL revokes is refused at the handshake (counted), the next one is used', async (t) => {
  const r = await rig(t);
  const crl = await makeCrl(r.ca, [r.cores[0]!.member.info.serial], 1n);
  r.revocation.install(await r.trust.verifyPem(crl.pem));
  const { link, ups } = serverLink(r, () => 'welcome');
  t.is(await link.dial(), 'g/core/core-2');
  t.deepEqual(
    ups.map((u) => u.server),
    ['g/core/core-2'],
    'core-1 never got to a join',
  );
  t.is(r.revokedAtHandshake, 1);
  await link.close('done');
  await t.throwsAsync(r.trust.verifyPem('no pem here'));
});

test('clientOptions: host options never reach the session; defaults hold for options given as undefined', (t) => {
  const o = clientOptions({
    maxAttempts: 3,
    backoffBaseMs: undefined,
    gossip: false,
    welcomeTimeoutMs: 700,
    publishWindow: 8,
    random: () => 0.5,
  });
  t.deepEqual(Object.keys(o.session).sort(), ['publishWindow', 'welcomeTimeoutMs']);
  t.like(o.dial, { maxAttempts: 3, backoffBaseMs: 100, backoffMaxMs: 5000, handshakeTimeoutMs: 10_000 });
  t.is(o.dial.random?.(), 0.5);
  t.is(o.gossip, false);
  t.is(o.leaveWaitMs, 700, 'close waits as long as a welcome may take');
  t.deepEqual(clientOptions({}).gossip, {}, 'the gossip tier is on by default');
  t.is(clientOptions({}).leaveWaitMs, 10_000);
  t.throws(() => clientOptions({ maxAttempts: 0 }), { instanceOf: RangeError });
  t.throws(() => clientOptions({ maxAttempts: 1001 }), { instanceOf: RangeError });
  t.throws(() => clientOptions({ publishWindow: 0 }), { instanceOf: RangeError });
  t.throws(() => new LeafClient({ publishWindow: 5000 }), { instanceOf: RangeError });
});

test('RealTimers: one timer per name (a new one replaces it), cancel, cancelAll', async (t) => {
  const timers = new RealTimers<'a' | 'b'>();
  const fired: string[] = [];
  timers.set('a', 5, () => fired.push('a1'), false);
  timers.set('a', 10, () => fired.push('a2'), false);
  timers.set('b', 5, () => fired.push('b'), false);
  timers.cancel('b');
  await new Promise((r) => setTimeout(r, 60));
  t.deepEqual(fired, ['a2']);
  timers.set('a', 5, () => fired.push('a3'), true);
  timers.set('b', 5, () => fired.push('b2'), false);
  timers.cancelAll();
  await new Promise((r) => setTimeout(r, 40));
  t.deepEqual(fired, ['a2']);
});

test('a gossip command with no link to run it: its group key is wiped', (t) => {
  const groupKey = new Uint8Array(32).fill(9);
  discardGossipCommand({ op: 'installKey', epoch: 3, groupKey });
  t.deepEqual(groupKey, new Uint8Array(32));
});

test('close while connect binds the gossip socket: connect rejects, no gossip link is kept', async (t) => {
  const suite = await loadSuite();
  const ca = await makeCa('Close Test CA');
  const leaf = await makeMember(ca, 'leaf-x', { group: 'g', role: 'leaf' });
  const client = new LeafClient({ suite, maxAttempts: 1 });
  const connecting = client.connect({
    servers: [{ host: '127.0.0.1', port: 1 }],
    credentials: leaf.credentials,
    trust: { caPem: ca.pem },
  });
  await client.close({ leave: false });
  await t.throwsAsync(connecting, { instanceOf: LeafConnectError, message: 'client closed' });
  t.is(client.gossip, undefined);
  t.is(client.server, undefined);
});
