/**
 * LeafClient end to end over real mutual TLS 1.3 on 127.0.0.1, against the server double backed by
 * the real leaf state machine and keytree (two replicas fed one total order).
 */
import { randomBytes } from 'node:crypto';
import test from 'ava';
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { loadSuite, type CipherSuite } from '../../crypto/index.js';
import { encodeHeader, signedBytes, decodeHeader } from '../../keytree/index.js';
import {
  DataKeyring,
  DataOpener,
  DataEnvelopeError,
  decodeDataEnvelope,
  deriveDataKey,
  encodeLeafFrame,
  exportGroupSecret,
} from '../../gossip-edge/index.js';
import {
  ExportUnavailableError,
  LeafClient,
  LeafConnectError,
  type LeafClientEvents,
  type LeafClientOptions,
} from '../../leaf-sdk/index.js';
import { makeCa, makeMember, type TestCa } from '../auth/pki-helpers.js';
import { TestCoreGroup } from './server-double.js';

interface World {
  suite: CipherSuite;
  ca: TestCa;
  group: TestCoreGroup;
  clients: LeafClient[];
  leaf(name: string, servers?: number[], options?: LeafClientOptions): Promise<Leaf>;
}

interface Leaf {
  client: LeafClient;
  keys: LeafClientEvents['key'][0][];
  messages: LeafClientEvents['message'][0][];
  errors: Error[];
  evicted: string[];
  connected: string[];
}

async function world(
  t: { teardown(fn: () => Promise<void>): void },
  servers = 2,
  leaseMs = 3000,
): Promise<World> {
  const suite = await loadSuite();
  const ca = await makeCa('Leaf Test CA');
  const group = new TestCoreGroup(suite, leaseMs, 25);
  for (let i = 1; i <= servers; i++) {
    const m = await makeMember(ca, `core-${i}`, { group: 'g', role: 'core' });
    await group.addServer(`core-${i}`, m.credentials, ca.info);
  }
  group.startBatching();
  const clients: LeafClient[] = [];
  t.teardown(async () => {
    await Promise.all(clients.map((c) => c.close({ leave: false })));
    await group.stop();
  });
  return {
    suite,
    ca,
    group,
    clients,
    async leaf(name, order = [0, 1], options = {}) {
      const m = await makeMember(ca, name, { group: 'g', role: 'leaf' });
      const client = new LeafClient({
        suite,
        backoffBaseMs: 20,
        backoffMaxMs: 200,
        welcomeTimeoutMs: 3000,
        ...options,
      });
      clients.push(client);
      const leaf: Leaf = { client, keys: [], messages: [], errors: [], evicted: [], connected: [] };
      client.on('key', (k) => leaf.keys.push(k));
      client.on('message', (m) => leaf.messages.push(m));
      client.on('error', (e) => leaf.errors.push(e));
      client.on('evicted', (e) => leaf.evicted.push(e.reason));
      client.on('connected', (c) => leaf.connected.push(c.server));
      const servers = order
        .filter((i) => i < group.servers.length)
        .map((i) => ({ host: '127.0.0.1', port: group.servers[i]!.port }));
      await client.connect({ servers, credentials: m.credentials, trust: { caPem: ca.pem } });
      return leaf;
    },
  };
}

async function until(what: string, cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const text = (s: string): Uint8Array => new TextEncoder().encode(s);
const lastKey = (l: Leaf): string | undefined => l.keys[l.keys.length - 1]?.keyId;

test.serial(
  'connect, agree on the key, publish to everyone; leave rekeys and locks the leaver out',
  async (t) => {
    const w = await world(t);
    const a = await w.leaf('leaf-a', [0, 1]);
    const b = await w.leaf('leaf-b', [0, 1]);
    const c = await w.leaf('leaf-c', [1, 0]); // on the other server
    const epochOf = (l: Leaf): number | undefined => l.client.epoch;
    await until(
      'one epoch for all',
      () => new Set([a, b, c].map(epochOf)).size === 1 && epochOf(a) === w.group.servers[0]!.machine.epoch,
    );
    t.is(new Set([a, b, c].map(lastKey)).size, 1, 'all leaves hold the same group key');
    t.not(a.client.server, c.client.server);

    a.client.publish(text('hello from a'));
    await until('b and c receive', () => b.messages.length === 1 && c.messages.length === 1);
    t.is(new TextDecoder().decode(c.messages[0]!.data), 'hello from a');
    t.is(c.messages[0]!.sender, a.client.member!);
    t.is(a.messages.length, 0);

    // c leaves: a and b move to a new epoch whose key c never had.
    const leftAt = c.client.epoch!;
    const lastKnownByC = w.group.groupKeys.get(leftAt)!;
    await c.client.close();
    await until(
      'rekey after leave',
      () => (a.client.epoch ?? 0) > leftAt && b.client.epoch === a.client.epoch,
    );
    t.is(lastKey(a), lastKey(b));
    t.not(lastKey(a), c.keys[c.keys.length - 1]!.keyId);
    a.client.publish(text('secret after c left'));
    await until('b receives', () => b.messages.length === 2);
    const env = w.group.relayed[w.group.relayed.length - 1]!;
    const newEpoch = decodeDataEnvelope(env).header.epoch;
    t.true(newEpoch > leftAt);
    // c's last key cannot open it: not as its epoch, and not by deriving the new epoch's key from it.
    const cRing = new DataKeyring(w.suite, { now: Date.now });
    cRing.install(leftAt, lastKnownByC);
    const err = t.throws(() => new DataOpener(w.suite, cRing).open(env), { instanceOf: DataEnvelopeError });
    t.is(err.reason, 'unknown-epoch');
    const forged = new DataKeyring(w.suite, { now: Date.now });
    forged.install(newEpoch, lastKnownByC);
    t.is(
      t.throws(() => new DataOpener(w.suite, forged).open(env), { instanceOf: DataEnvelopeError }).reason,
      'auth-failed',
    );
    t.notDeepEqual(
      deriveDataKey(w.suite, lastKnownByC, newEpoch),
      deriveDataKey(w.suite, w.group.groupKeys.get(newEpoch)!, newEpoch),
    );

    // A leaf admitted after that envelope was sealed cannot read it either (backward secrecy),
    // and counts it as sealed before its admission, not as a decryption failure.
    const d = await w.leaf('leaf-d', [0]);
    t.true(d.client.admissionEpoch! > newEpoch);
    const server = w.group.servers[0]!;
    server.sendRaw(server.sessionOf('leaf-d')!.peer, encodeLeafFrame('dataDeliver', { envelope: env }));
    await until('d judged the old envelope', () => d.client.stats.dataBeforeAdmission === 1);
    t.is(d.messages.length, 0);
    t.is(d.client.stats.decryptFailures['unknown-epoch'], 0);
  },
);

test.serial(
  'server failover: a crashed server’s leaves resume on the next one and keep following',
  async (t) => {
    const w = await world(t);
    const a = await w.leaf('leaf-a', [0, 1]);
    const b = await w.leaf('leaf-b', [1, 0]);
    await until(
      'same epoch',
      () => a.client.epoch === b.client.epoch && a.client.epoch === w.group.servers[1]!.machine.epoch,
    );
    const memberBefore = a.client.member;
    await w.group.servers[0]!.stop();
    await until('a fails over', () => a.connected.length === 2);
    t.is(a.connected[1], 'g/core/core-2');
    t.is(a.client.member, memberBefore, 'resumed the same admission');
    const epochBefore = a.client.epoch!;
    const d = await w.leaf('leaf-d', [1]);
    await until(
      'a follows the next rekey',
      () => (a.client.epoch ?? 0) > epochBefore && a.client.epoch === d.client.epoch,
    );
    t.is(lastKey(a), lastKey(d));
    d.client.publish(text('after failover'));
    await until('a and b receive', () => a.messages.length === 1 && b.messages.length === 1);
    t.is(a.client.stats.reconnects, 1);
  },
);

test.serial(
  'a leave asked for during failover waits for the new link and reaches the next server',
  async (t) => {
    const w = await world(t);
    const a = await w.leaf('leaf-a', [0, 1]);
    const b = await w.leaf('leaf-b', [1, 0]);
    const survivor = w.group.servers[1]!;
    await until(
      'same epoch',
      () => a.client.epoch === b.client.epoch && a.client.epoch === survivor.machine.epoch,
    );
    t.not(survivor.machine.entry('leaf-a'), undefined);
    await w.group.servers[0]!.stop();
    await until('a is failing over', () => a.client.server === undefined);
    await a.client.close({ leave: true });
    t.deepEqual(a.connected, ['g/core/core-1', 'g/core/core-2'], 'closed only after the new link was up');
    await until('the survivor evicts a', () => survivor.machine.entry('leaf-a') === undefined);
    t.true(survivor.received.includes('leave'));
  },
);

test.serial('a leave asked for after failover gave up links again just to leave', async (t) => {
  const w = await world(t, 1, 60_000); // a long lease: only the leave can remove the leaf
  const server = w.group.servers[0]!;
  const a = await w.leaf('leaf-a', [0], { maxAttempts: 2 });
  server.refuseJoins = true;
  server.transport.disconnect(server.sessionOf('leaf-a')!.peer, 'test: cut the link');
  await until('the failover gave up', () => a.errors.some((e) => e.name === 'LeafConnectError'));
  t.is(a.client.server, undefined);
  t.not(server.machine.entry('leaf-a'), undefined, 'still registered');
  server.refuseJoins = false;
  await a.client.close({ leave: true });
  await until('the leave evicted it', () => server.machine.entry('leaf-a') === undefined);
  t.is(server.received.filter((f) => f === 'leave').length, 1);
});

test.serial(
  'publish flow control: a window of unanswered publishes, drain, and refusals that keep the link',
  async (t) => {
    const w = await world(t, 1);
    const server = w.group.servers[0]!;
    const { client } = await w.leaf('leaf-p', [0], { publishWindow: 4 });
    const refused: { seq: number; reason: string }[] = [];
    let drains = 0;
    client.on('refused', (r) => refused.push(r));
    client.on('drain', () => drains++);

    server.holdPublishAnswers = true;
    t.deepEqual(
      [1, 2, 3, 4, 5, 6].map((i) => client.publish(text(`m${i}`))),
      [true, true, true, true, false, false],
      'the fifth waits for an answer',
    );
    t.is(client.publishesInFlight, 4);
    t.is(client.stats.publishesDeferred, 2);
    await until('the server got the four', () => w.group.relayed.length === 4);
    server.releasePublishAnswers();
    await until('drain', () => drains === 1);
    t.is(client.publishesInFlight, 0);
    t.is(client.stats.publishes.accepted, 4);

    // Refusals are answered in order, name the publish, and do not make the leaf leave its server.
    const before = client.server;
    server.refusePublishes = 2;
    for (let i = 0; i < 3; i++) t.true(client.publish(text(`r${i}`))); // seqs 4, 5, 6
    await until('answers', () => client.publishesInFlight === 0);
    t.deepEqual(refused, [
      { seq: 4, reason: 'overloaded' },
      { seq: 5, reason: 'overloaded' },
    ]);
    t.is(client.stats.publishes.accepted, 5);
    t.is(client.server, before, 'still on the same server');
    t.is(client.stats.reconnects, 0);
  },
);

test.serial('revocation evicts with an event; later keys never reach the evicted leaf', async (t) => {
  const w = await world(t, 1);
  const a = await w.leaf('leaf-a', [0]);
  const b = await w.leaf('leaf-b', [0]);
  await until(
    'same epoch',
    () => a.client.epoch === b.client.epoch && a.client.epoch === w.group.servers[0]!.machine.epoch,
  );
  const before = b.client.epoch!;
  w.group.order({ kind: 'revoke', value: { target: { kind: 'name', value: 'leaf-b' }, immediate: true } });
  await until('b evicted', () => b.evicted.length === 1);
  t.deepEqual(b.evicted, ['revoked']);
  await until('a rekeyed', () => (a.client.epoch ?? 0) > before);
  t.is(b.client.epoch, undefined, 'keys are wiped on eviction');
  t.throws(() => b.client.publish(text('x')));
});

test.serial(
  'exported secrets: one per epoch for every member, new at each key event, none for an evicted leaf',
  async (t) => {
    const w = await world(t, 1);
    const opts = { retiredEpochGraceMs: 60_000 }; // retired epochs stay exportable through the test
    const a = await w.leaf('leaf-a', [0], opts);
    const b = await w.leaf('leaf-b', [0], opts);
    const c = await w.leaf('leaf-c', [0], opts);
    const server = w.group.servers[0]!;
    await until(
      'one epoch',
      () =>
        new Set([a, b, c, server.machine].map((x) => ('client' in x ? x.client.epoch : x.epoch))).size === 1,
    );
    const hex = (x: Uint8Array): string => Buffer.from(x).toString('hex');
    const ctx = text('file 42');
    const e0 = a.client.exportSecret('myapp file key', ctx, 32);
    const expected = exportGroupSecret(
      w.suite,
      w.group.groupKeys.get(e0.epoch)!,
      { group: w.group.groupId, epoch: e0.epoch },
      'myapp file key',
      ctx,
      32,
    );
    t.is(hex(e0.secret), hex(expected), 'the group key of the epoch, through the documented derivation');
    for (const l of [b, c]) {
      const got = l.client.exportSecret('myapp file key', ctx, 32);
      t.is(got.epoch, e0.epoch);
      t.is(hex(got.secret), hex(e0.secret), 'every member derives the same secret');
    }
    const others = [
      a.client.exportSecret('myapp other key', ctx, 32),
      a.client.exportSecret('myapp file key', text('file 43'), 32),
      a.client.exportSecret('myapp file key', new Uint8Array(0), 32),
    ];
    t.is(new Set([e0, ...others].map((x) => hex(x.secret))).size, 4, 'label and context are bound');

    // The key event announces new secrets: exported in its handler, they are the new epoch's.
    const atKeyEvent: { epoch: number; exported: number; secret: string }[] = [];
    a.client.on('key', ({ epoch }) => {
      const x = a.client.exportSecret('myapp file key', ctx, 32);
      atKeyEvent.push({ epoch, exported: x.epoch, secret: hex(x.secret) });
    });
    w.group.order({ kind: 'revoke', value: { target: { kind: 'name', value: 'leaf-c' }, immediate: true } });
    await until('c evicted', () => c.evicted.length === 1);
    await until('a and b rekeyed', () => a.client.epoch! > e0.epoch && b.client.epoch === a.client.epoch);
    const e1 = a.client.exportSecret('myapp file key', ctx, 32);
    t.true(e1.epoch > e0.epoch);
    t.not(hex(e1.secret), hex(e0.secret), 'a new epoch, a new secret');
    t.is(hex(b.client.exportSecret('myapp file key', ctx, 32).secret), hex(e1.secret));
    t.deepEqual(atKeyEvent, [{ epoch: e1.epoch, exported: e1.epoch, secret: hex(e1.secret) }]);

    // The retired epoch stays exportable (to read what was protected under it) within the window.
    const copy = hex(e0.secret);
    e0.secret.fill(0); // the caller's buffer: wiping it touches nothing the client holds
    t.is(hex(a.client.exportSecretAt(e0.epoch, 'myapp file key', ctx, 32).secret), copy);
    const notYet = t.throws(() => a.client.exportSecretAt(e1.epoch + 5, 'myapp file key', ctx, 32), {
      instanceOf: ExportUnavailableError,
    });
    t.is(notYet.reason, 'not-yet');

    // c was evicted before epoch e1: it can export nothing now (keys wiped), e1 least of all, and
    // what it last held does not give e1's secret.
    for (const fn of [
      () => c.client.exportSecret('myapp file key', ctx, 32),
      () => c.client.exportSecretAt(e1.epoch, 'myapp file key', ctx, 32),
    ])
      t.is(t.throws(fn, { instanceOf: ExportUnavailableError }).reason, 'no-key');
    const fromOld = exportGroupSecret(
      w.suite,
      w.group.groupKeys.get(e0.epoch)!,
      { group: w.group.groupId, epoch: e1.epoch },
      'myapp file key',
      ctx,
      32,
    );
    t.not(hex(fromOld), hex(e1.secret));

    // A leaf admitted later cannot export for epochs before its admission (backward secrecy).
    const d = await w.leaf('leaf-d', [0], opts);
    const before = t.throws(() => d.client.exportSecretAt(e1.epoch, 'myapp file key', ctx, 32), {
      instanceOf: ExportUnavailableError,
    });
    t.is(before.reason, 'before-admission');
    t.throws(() => d.client.exportSecret('', ctx, 32), { instanceOf: RangeError });
  },
);

// ── the README's worked example, as it is printed there ──────────────────────────────────────

const FILE_LABEL = 'myapp file v1'; // names this use: another use, another label

/** file = "KGF1" ‖ u64be epoch ‖ 24-byte nonce ‖ XChaCha20-Poly1305(data) ‖ tag; the header is the AAD. */
function sealFile(leaf: LeafClient, fileId: string, data: Uint8Array): Uint8Array {
  const { epoch, secret } = leaf.exportSecret(FILE_LABEL, Buffer.from(fileId), 32);
  try {
    const header = Buffer.alloc(12);
    header.write('KGF1');
    header.writeBigUInt64BE(BigInt(epoch), 4);
    const nonce = randomBytes(24);
    return Buffer.concat([header, nonce, xchacha20poly1305(secret, nonce, header).encrypt(data)]);
  } finally {
    secret.fill(0);
  }
}

function openFile(leaf: LeafClient, fileId: string, file: Uint8Array): Uint8Array {
  const header = Buffer.from(file.subarray(0, 12));
  if (file.length < 12 + 24 + 16 || header.toString('latin1', 0, 4) !== 'KGF1')
    throw new Error('not a KGF1 file');
  const epoch = Number(header.readBigUInt64BE(4));
  // The current epoch, or a retired one still within the window; ExportUnavailableError otherwise.
  const { secret } = leaf.exportSecretAt(epoch, FILE_LABEL, Buffer.from(fileId), 32);
  try {
    return xchacha20poly1305(secret, file.subarray(12, 36), header).decrypt(file.subarray(36));
  } finally {
    secret.fill(0);
  }
}

test.serial('README example: a file sealed for the group, re-sealed at each key event', async (t) => {
  const w = await world(t, 1);
  const opts = { retiredEpochGraceMs: 60_000 }; // b's late read of the old file must not race a loaded machine
  const a = await w.leaf('leaf-a', [0], opts);
  const b = await w.leaf('leaf-b', [0], opts);
  const c = await w.leaf('leaf-c', [0], opts);
  await until('one epoch', () => a.client.epoch === c.client.epoch && b.client.epoch === c.client.epoch);
  const store = new Map<string, Uint8Array>([
    ['report.pdf', sealFile(a.client, 'report.pdf', text('quarterly'))],
  ]);
  t.is(new TextDecoder().decode(openFile(c.client, 'report.pdf', store.get('report.pdf')!)), 'quarterly');
  t.throws(
    () => openFile(c.client, 'other.pdf', store.get('report.pdf')!),
    undefined,
    'bound to its file id',
  );

  // Rotate with the epoch: re-seal under the new epoch's secret, while the old one is readable.
  const resealed: number[] = [];
  a.client.on('key', ({ epoch }) => {
    for (const [id, file] of store) store.set(id, sealFile(a.client, id, openFile(a.client, id, file)));
    resealed.push(epoch);
  });
  const sealedForC = store.get('report.pdf')!;
  w.group.order({ kind: 'revoke', value: { target: { kind: 'name', value: 'leaf-c' }, immediate: true } });
  await until('a re-sealed', () => resealed.length === 1 && b.client.epoch === a.client.epoch);
  const now = store.get('report.pdf')!;
  t.is(Buffer.from(now).readBigUInt64BE(4), BigInt(resealed[0]!));
  t.is(new TextDecoder().decode(openFile(b.client, 'report.pdf', now)), 'quarterly');
  // c, evicted, reads nothing sealed since; what it could read before it still could with the
  // secret it exported then (the secrecy rule for anything sealed under its epochs).
  t.throws(() => openFile(c.client, 'report.pdf', now), { instanceOf: ExportUnavailableError });
  t.true(openFile(b.client, 'report.pdf', sealedForC).length > 0, 'b reads the old file within the window');
});

test.serial(
  'garbage and forged rekeys from a server: error event, reconnect, no crash; gaps are caught up',
  async (t) => {
    const w = await world(t, 2);
    const a = await w.leaf('leaf-a', [0, 1]);
    const b = await w.leaf('leaf-b', [0, 1]);
    await until(
      'same epoch',
      () => a.client.epoch === b.client.epoch && a.client.epoch === w.group.servers[0]!.machine.epoch,
    );
    const s0 = w.group.servers[0]!;
    const peerA = s0.sessionOf('leaf-a')!.peer;
    s0.sendRaw(peerA, Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11));
    await until('a reconnects after garbage', () => a.connected.length === 2);
    t.true(a.errors.some((e) => /bad-frame/.test(e.message)));

    // A rekey push signed by a key that is not a core server's.
    const server = a.connected[1] === 'g/core/core-1' ? w.group.servers[0]! : w.group.servers[1]!;
    const hist = server.history;
    await until('history', () => hist.newest !== undefined);
    const forgedSeed = new Uint8Array(32).fill(9);
    const header = decodeHeader(hist.pushFor(hist.newest!, 0)!.push.header);
    server.send(server.sessionOf('leaf-a')!.peer, 'rekeyPush', {
      header: encodeHeader(header),
      signer: w.suite.ed25519PublicKey(forgedSeed),
      signature: w.suite.ed25519Sign(forgedSeed, signedBytes(header)),
      parts: [],
    });
    await until('a reconnects after a forged rekey', () => a.connected.length === 3);
    t.true(a.errors.some((e) => /unknown-signer/.test(e.message)));
    // A real push whose signature was tampered with: the signer is known, the signature fails.
    const cur = w.group.servers.find((s) => s.sessionOf('leaf-a') !== undefined)!;
    await until('a is welcomed again', () => cur.sessionOf('leaf-a')?.awaitingWelcome === false);
    const real = cur.history.pushFor(cur.history.newest!, 0)!.push;
    const signature = real.signature.slice();
    signature[5]! ^= 1;
    cur.send(cur.sessionOf('leaf-a')!.peer, 'rekeyPush', { ...real, signature });
    await until('a reconnects after a bad signature', () => a.connected.length === 4);
    t.true(a.errors.some((e) => /bad-signature/.test(e.message)));
    // A frame the server must never send.
    const cur2 = w.group.servers.find((s) => s.sessionOf('leaf-a') !== undefined)!;
    await until('a is welcomed once more', () => cur2.sessionOf('leaf-a')?.awaitingWelcome === false);
    // A replayed, validly signed push of an epoch already held: ignored, the link stays.
    const ignoredBefore = a.client.stats.rekeysIgnored;
    cur2.send(cur2.sessionOf('leaf-a')!.peer, 'rekeyPush', real);
    await until('replay ignored', () => a.client.stats.rekeysIgnored > ignoredBefore);
    t.is(a.connected.length, 4);
    cur2.sendRaw(cur2.sessionOf('leaf-a')!.peer, encodeLeafFrame('leave', { admittedEpoch: undefined }));
    await until('a reconnects after an unexpected frame', () => a.connected.length === 5);

    // Withhold one push: the next one shows a gap, and the leaf catches up from the history.
    const now = w.group.servers.find((s) => s.sessionOf('leaf-a') !== undefined)!;
    await until('a is welcomed', () => now.sessionOf('leaf-a')?.awaitingWelcome === false);
    now.withholdNextPush.add('leaf-a');
    await w.leaf('leaf-c', [1]);
    await w.leaf('leaf-d', [1]);
    const target = (): number => w.group.servers[0]!.machine.epoch;
    await until('a caught up', () => a.client.epoch === target() && b.client.epoch === target());
    t.true(a.client.stats.catchUps >= 1);
    t.is(lastKey(a), lastKey(b));

    // The server lost its history (say it restarted from a snapshot): the gap needs a fresh welcome.
    const host = w.group.servers.find((s) => s.sessionOf('leaf-a') !== undefined)!;
    host.withholdNextPush.add('leaf-a');
    await w.leaf('leaf-e', [1]);
    host.history.clear();
    await w.leaf('leaf-f', [1]);
    await until('a re-joined', () => a.client.epoch === target() && b.client.epoch === target());
    t.true(a.client.stats.rejoins >= 1);
    t.is(lastKey(a), lastKey(b));
    b.client.publish(text('still fine'));
    await until('a receives', () => a.messages.length === 1);
  },
);

test.serial(
  'a lagging leaf: refused catch-ups are retried on the same link; no publish under a retired key meanwhile',
  async (t) => {
    const w = await world(t, 1);
    const server = w.group.servers[0]!;
    const a = await w.leaf('leaf-a', [0], { retiredEpochGraceMs: 300 });
    const refused: { seq: number; reason: string }[] = [];
    let drains = 0;
    a.client.on('refused', (r) => refused.push(r));
    a.client.on('drain', () => drains++);
    await until('a welcomed', () => server.sessionOf('leaf-a')?.awaitingWelcome === false);
    const lagging = a.client.epoch!;
    // a misses one push, and its catch-ups are refused for a while: it lags behind the group.
    server.withholdNextPush.add('leaf-a');
    server.rateLimitCatchUps = 1_000;
    await w.leaf('leaf-b', [0]);
    await w.leaf('leaf-c', [0]);
    await until('a saw the gap and was refused', () => a.client.stats.rateLimited >= 2);
    t.is(a.client.epoch, lagging);
    await new Promise((r) => setTimeout(r, 400)); // past its grace window
    t.false(a.client.publish(text('under a retired key')), 'nothing sealed under the retired key');
    t.deepEqual(
      refused.map((r) => r.reason),
      ['retired-epoch'],
    );
    t.is(a.client.stats.publishesRetired, 1);
    server.rateLimitCatchUps = 0; // the budget refills: the next retry is served
    await until('a caught up', () => a.client.epoch === server.machine.epoch, 5000);
    t.deepEqual(a.connected, ['g/core/core-1'], 'refusals kept the link');
    t.true(drains >= 1, "'drain' after the refused publish, at the next key");
    t.true(a.client.publish(text('under the current key')));
  },
);

test.serial(
  'no server reachable: connect gives up after the bounded attempts with every reason',
  async (t) => {
    const w = await world(t, 1);
    const port = w.group.servers[0]!.port;
    await w.group.servers[0]!.stop();
    const m = await makeMember(w.ca, 'leaf-z', { group: 'g', role: 'leaf' });
    const client = new LeafClient({ suite: w.suite, maxAttempts: 3, backoffBaseMs: 5, random: () => 0.5 });
    const started = Date.now();
    const err = await t.throwsAsync(
      client.connect({
        servers: [{ host: '127.0.0.1', port }],
        credentials: m.credentials,
        trust: { caPem: w.ca.pem },
      }),
      { instanceOf: LeafConnectError },
    );
    t.is(err.attempts.length, 3);
    t.true(Date.now() - started < 3000);
    await client.close();

    // A server with a leaf certificate is not a core server: refused at the TLS link.
    const rogueCreds = await makeMember(w.ca, 'rogue', { group: 'g', role: 'leaf' });
    const rogue = await w.group.addServer('rogue', rogueCreds.credentials, w.ca.info);
    const c2 = new LeafClient({ suite: w.suite, maxAttempts: 2, backoffBaseMs: 5 });
    const err2 = await t.throwsAsync(
      c2.connect({
        servers: [{ host: '127.0.0.1', port: rogue.port }],
        credentials: m.credentials,
        trust: { caPem: w.ca.pem },
      }),
      { instanceOf: LeafConnectError },
    );
    t.regex(err2.attempts[0]!, /role/);
    await c2.close();
  },
);

test.serial('leases: renewals keep leaves admitted; a leaf whose renewals stop is evicted', async (t) => {
  const w = await world(t, 1, 300);
  const a = await w.leaf('leaf-a', [0]);
  const b = await w.leaf('leaf-b', [0]);
  await new Promise((r) => setTimeout(r, 1000)); // three lease periods
  t.deepEqual([a.evicted, b.evicted], [[], []]);
  t.truthy(w.group.servers[0]!.machine.entry('leaf-b'));
  t.true(w.group.servers[0]!.received.filter((f) => f === 'leaseRenew').length >= 4);
  w.group.servers[0]!.ignoreRenewals.add('leaf-b');
  await until('b evicted', () => b.evicted.length === 1, 3000);
  t.deepEqual(b.evicted, ['lease-expired']);
  t.deepEqual(a.evicted, []);
});

test.serial(
  'a leaf evicted as key-exposed (not refreshed after a core revocation) joins afresh',
  async (t) => {
    const w = await world(t, 1);
    const a = await w.leaf('leaf-a', [0]);
    const machine = w.group.servers[0]!.machine;
    await until('welcomed', () => a.client.epoch === machine.epoch);
    const memberId = machine.entry('leaf-a')!.memberId;
    // The server double orders no refreshes: the window lapses with the leaf still exposed.
    w.group.order({ kind: 'revokeCore', value: { serial: 'core-x', now: Date.now(), windowMs: 100 } });
    await until(
      'a new admission',
      () => (machine.entry('leaf-a')?.memberId ?? memberId) !== memberId && a.client.epoch === machine.epoch,
      10_000,
    );
    t.deepEqual(a.evicted, [], 'not an eviction from the group');
    t.true(a.connected.length >= 2);
    t.is(a.client.stats.rejoins, 1);
  },
);
