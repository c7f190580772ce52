/**
 * Bad peers over real mutual TLS 1.3 on 127.0.0.1: each is refused with its typed reason,
 * while good peers (Ed25519, P-256, a bring-your-own chain with an intermediate, a clock
 * within the skew) connect. The server admits leaves of group 'g'; clients expect a core server.
 */
import test from 'ava';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import type { Server, TLSSocket } from 'node:tls';
import {
  MutualTls,
  PeerVerifier,
  PeerRefusedError,
  RevocationRegistry,
  LiveConnections,
  parseAdmissionPolicy,
  type RefusalReason,
  type Credentials,
  type AcceptedPeer,
} from '../../auth/index.js';
import { buildCrl } from '../../ca-tools/index.js';
import { toPem } from '../../auth/index.js';
import { makeCa, makeMember, type TestCa } from './pki-helpers.js';

const HOUR = 3_600_000;
const CODE_SIGNING = '1.3.6.1.5.5.7.3.3';

interface ServerVerdict {
  readonly ok: boolean;
  readonly reason?: RefusalReason;
  readonly peer?: AcceptedPeer;
  readonly socket?: TLSSocket;
}

interface Harness {
  ca: TestCa;
  server: Server;
  port: number;
  revocation: RevocationRegistry;
  live: LiveConnections;
  evicted: AcceptedPeer[];
  /** Resolves with the server's verdict on the connection from local port `p`. */
  verdictFor(p: number): Promise<ServerVerdict>;
  clientTls(creds: Credentials, anchors?: TestCa[]): MutualTls;
}

async function startServer(ca: TestCa, extraAnchors: TestCa[], serverCreds: Credentials): Promise<Harness> {
  const revocation = new RevocationRegistry();
  const policy = parseAdmissionPolicy({ groups: { g: { roles: ['leaf', 'operator'], deny: ['banned-*'] } } });
  const verifier = new PeerVerifier({
    anchors: [ca.info, ...extraAnchors.map((a) => a.info)],
    group: 'g',
    revocation,
    policy,
  });
  const mtls = new MutualTls(serverCreds, verifier);
  const evicted: AcceptedPeer[] = [];
  const live = new LiveConnections(revocation, (p) => evicted.push(p));
  const waiting = new Map<number, (v: ServerVerdict) => void>();
  const early = new Map<number, ServerVerdict>();
  const deliver = (port: number, v: ServerVerdict): void => {
    const w = waiting.get(port);
    if (w) w(v);
    else early.set(port, v);
  };
  const server = mtls.createServer(['leaf', 'operator'], {
    onPeer(socket, peer) {
      live.track(socket, peer);
      socket.on('error', () => {});
      deliver(socket.remotePort as number, { ok: true, peer, socket });
    },
    onRefused(ev) {
      deliver(Number(ev.remote.split(':').pop()), { ok: false, reason: ev.reason });
    },
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    ca,
    server,
    port: (server.address() as AddressInfo).port,
    revocation,
    live,
    evicted,
    verdictFor(p) {
      const e = early.get(p);
      if (e) return Promise.resolve(e);
      return new Promise((resolve) => waiting.set(p, resolve));
    },
    clientTls(creds, anchors = [ca]) {
      return new MutualTls(creds, new PeerVerifier({ anchors: anchors.map((a) => a.info), group: 'g' }));
    },
  };
}

/** Connects as `creds`, returns the server's verdict (the client itself accepts the core server). */
async function attempt(h: Harness, creds: Credentials): Promise<ServerVerdict> {
  const { socket } = await h
    .clientTls(creds)
    .connect({ host: '127.0.0.1', port: h.port, expectRoles: ['core'], timeoutMs: 5000 });
  socket.on('error', () => {});
  const v = await h.verdictFor(socket.localPort as number);
  if (!v.ok) await Promise.race([once(socket, 'close'), new Promise((r) => setTimeout(r, 2000))]);
  socket.destroy();
  return v;
}

let h: Harness;
let caOther: TestCa;
let byoRoot: TestCa;
let byoIntermediate: TestCa;
let revokedSerial: string;
const members: Record<string, Credentials> = {};

test.before(async () => {
  const ca = await makeCa('Keyglass Test CA', { pathLength: 0 });
  caOther = await makeCa('Other CA');
  byoRoot = await makeCa('BYO Root', { alg: 'p256', pathLength: 1 });
  byoIntermediate = await makeCa('BYO Issuing', { alg: 'p256', issuer: byoRoot, pathLength: 0 });
  const core = await makeMember(ca, 'core-1', { role: 'core' });
  h = await startServer(ca, [byoRoot], core.credentials);
  const now = Date.now();
  const mk = async (name: string, o: Parameters<typeof makeMember>[2] = {}, issuer: TestCa = ca) => {
    members[name] = (await makeMember(issuer, name, o)).credentials;
  };
  await Promise.all([
    mk('good-ed25519'),
    mk('good-p256', { alg: 'p256' }),
    mk('good-operator', { role: 'operator' }),
    mk('good-skewed', { notBefore: new Date(now + 20_000) }), // 20 s ahead: inside the 60 s skew
    mk('good-byo', { alg: 'p256', chain: [byoIntermediate] }, byoIntermediate),
    mk('expired', { notBefore: new Date(now - 3 * HOUR), notAfter: new Date(now - 2 * HOUR) }),
    mk('not-yet-valid', { notBefore: new Date(now + HOUR), notAfter: new Date(now + 2 * HOUR) }),
    mk('other-ca', {}, caOther),
    mk('wrong-group', { group: 'other' }),
    mk('wrong-role', { role: 'core' }),
    mk('revoked'),
    mk('no-san-uri', { sanUris: [] }),
    mk('wrong-eku', { extKeyUsage: [CODE_SIGNING] }),
    mk('self-signed', { selfSigned: true }),
    mk('rsa-1024', { rsaBits: 1024 }),
    mk('ca-as-member', { isCa: true }),
    mk('banned-7'),
    mk('byo-no-intermediate', { alg: 'p256' }, byoIntermediate), // chain not sent: untrusted
  ]);
  revokedSerial = (members['revoked'] as Credentials).certificate.serial;
  const crl = await buildCrl({
    caCertificateDer: ca.der,
    caPrivateKey: ca.key,
    crlNumber: 1n,
    thisUpdate: new Date(now - 60_000),
    nextUpdate: new Date(now + HOUR),
    entries: [{ serial: revokedSerial, revokedAt: new Date(now - 60_000), reason: 'keyCompromise' }],
  });
  await h.revocation.load(toPem('X509 CRL', crl), [ca.info]);
});

test.after.always(() => {
  h?.live.dispose();
  h?.server.close();
});

for (const name of ['good-ed25519', 'good-p256', 'good-operator', 'good-skewed', 'good-byo']) {
  test.serial(`admits ${name}`, async (t) => {
    const v = await attempt(h, members[name] as Credentials);
    t.true(v.ok, `refused: ${v.reason}`);
    t.is(v.peer?.identity.name, name);
    v.socket?.destroy();
  });
}

const BAD: [string, RefusalReason][] = [
  ['expired', 'expired'],
  ['not-yet-valid', 'not-yet-valid'],
  ['other-ca', 'untrusted'],
  ['wrong-group', 'wrong-group'],
  ['wrong-role', 'wrong-role'],
  ['revoked', 'revoked'],
  ['no-san-uri', 'no-identity'],
  ['wrong-eku', 'wrong-eku'],
  ['self-signed', 'self-signed'],
  ['rsa-1024', 'weak-key'],
  ['ca-as-member', 'ca-as-member'],
  ['banned-7', 'policy-denied'],
  ['byo-no-intermediate', 'untrusted'],
];

for (const [name, reason] of BAD) {
  test.serial(`refuses ${name} with '${reason}' over TLS`, async (t) => {
    const v = await attempt(h, members[name] as Credentials);
    t.false(v.ok);
    t.is(v.reason, reason);
  });
}

test.serial("refuses a client without a certificate with 'no-certificate'", async (t) => {
  const { connect } = await import('node:tls');
  const socket = connect({
    host: '127.0.0.1',
    port: h.port,
    rejectUnauthorized: false,
    minVersion: 'TLSv1.3',
  });
  socket.on('error', () => {});
  await once(socket, 'secureConnect');
  const v = await h.verdictFor(socket.localPort as number);
  socket.destroy();
  t.is(v.reason, 'no-certificate');
});

test.serial(
  'a client refuses a leaf posing as a core server, and a core server when it expects a leaf',
  async (t) => {
    const leafServerCreds = members['good-ed25519'] as Credentials;
    const verifier = new PeerVerifier({ anchors: [h.ca.info], group: 'g' });
    const rogue = new MutualTls(leafServerCreds, verifier).createServer(['leaf', 'core'], {
      onPeer: (s) => s.destroy(),
    });
    rogue.listen(0, '127.0.0.1');
    await once(rogue, 'listening');
    const port = (rogue.address() as AddressInfo).port;
    try {
      const client = h.clientTls(members['good-p256'] as Credentials);
      const err = await t.throwsAsync(client.connect({ host: '127.0.0.1', port, expectRoles: ['core'] }), {
        instanceOf: PeerRefusedError,
      });
      t.is(err?.reason, 'wrong-role');
      // and the converse: our core server is refused by a client that expects a leaf peer
      const err2 = await t.throwsAsync(
        client.connect({ host: '127.0.0.1', port: h.port, expectRoles: ['leaf'] }),
        { instanceOf: PeerRefusedError },
      );
      t.is(err2?.reason, 'wrong-role');
    } finally {
      rogue.close();
    }
  },
);

test.serial('a client refuses a server of another CA; node codes map into the same vocabulary', async (t) => {
  const client = h.clientTls(members['good-p256'] as Credentials, [caOther]);
  const err = await t.throwsAsync(
    client.connect({ host: '127.0.0.1', port: h.port, expectRoles: ['core'] }),
    { instanceOf: PeerRefusedError },
  );
  t.is(err?.reason, 'untrusted');
});

test.serial(
  'a new CRL closes the live connection of the identity it revokes, and only that one',
  async (t) => {
    const victim = await makeMember(h.ca, 'victim');
    const bystander = h.clientTls(members['good-ed25519'] as Credentials);
    const v1 = await attempt(h, victim.credentials).catch(() => undefined);
    t.truthy(v1?.ok);
    // attempt() destroys its client socket; connect again and keep both sockets open.
    const a = await h
      .clientTls(victim.credentials)
      .connect({ host: '127.0.0.1', port: h.port, expectRoles: ['core'] });
    const b = await bystander.connect({ host: '127.0.0.1', port: h.port, expectRoles: ['core'] });
    a.socket.on('error', () => {});
    b.socket.on('error', () => {});
    const va = await h.verdictFor(a.socket.localPort as number);
    const vb = await h.verdictFor(b.socket.localPort as number);
    t.true(va.ok && vb.ok);
    const now = Date.now();
    const crl2 = await buildCrl({
      caCertificateDer: h.ca.der,
      caPrivateKey: h.ca.key,
      crlNumber: 2n,
      thisUpdate: new Date(now),
      nextUpdate: new Date(now + HOUR),
      entries: [
        { serial: revokedSerial, revokedAt: new Date(now - 60_000), reason: 'keyCompromise' },
        { serial: victim.info.serial, revokedAt: new Date(now), reason: 'superseded' },
      ],
    });
    const closed = once(a.socket, 'close');
    const fresh = await h.revocation.load(toPem('X509 CRL', crl2), [h.ca.info]);
    t.deepEqual(
      fresh.map((f) => f.serial),
      [victim.info.serial],
    );
    await closed;
    t.deepEqual(
      h.evicted.map((p) => p.identity.name),
      ['victim'],
    );
    t.false(vb.socket?.destroyed);
    // the replayed older CRL is refused, so the victim stays revoked
    const crl1 = await buildCrl({
      caCertificateDer: h.ca.der,
      caPrivateKey: h.ca.key,
      crlNumber: 1n,
      thisUpdate: new Date(now),
      nextUpdate: new Date(now + HOUR),
      entries: [],
    });
    await t.throwsAsync(h.revocation.load(toPem('X509 CRL', crl1), [h.ca.info]), {
      message: /older than the installed/,
    });
    t.is((await attempt(h, victim.credentials)).reason, 'revoked');
    a.socket.destroy();
    b.socket.destroy();
    vb.socket?.destroy();
  },
);
