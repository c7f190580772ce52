/**
 * The leaf edge in isolation, over a recording stand-in for its TLS transport; its timers run on
 * the test's event loop and its clock stands still unless a test passes its own.
 */
import test from 'ava';
import { loadSuite } from '../../crypto/index.js';
import { refreshedLeafKey } from '../../keytree/index.js';
import {
  LeafEdge,
  LeafStateMachine,
  type InBandCrls,
  type LeafCommand,
  type LeafEdgeDeps,
  type LeafLinks,
} from '../../leaf-plane/index.js';
import { EdgeRelay, MAX_LEAF_LINKS, ServerMetrics, jsonLogger } from '../../server/index.js';
import {
  type RelayOptions,
  DataSealer,
  DataKeyring,
  decodeLeafFrame,
  encodeLeafFrame,
  MAX_LEAF_FRAME_BYTES,
  type LeafFrame,
} from '../../gossip-edge/index.js';

async function edge(
  extra: Partial<LeafEdgeDeps> = {},
  opts: { crls?: () => InBandCrls; busy?: ReadonlySet<string> } = {},
): Promise<{
  edge: LeafEdge;
  sent: Map<string, string[]>;
  frames: Map<string, LeafFrame[]>;
  machine: LeafStateMachine;
  ordered: LeafCommand[];
  /** Binds an edge relay (the host's job) and attaches it to the edge. */
  startRelay: (opts: RelayOptions) => Promise<void>;
  stopRelay: () => Promise<void>;
}> {
  const suite = await loadSuite();
  const sent = new Map<string, string[]>();
  const frames = new Map<string, LeafFrame[]>();
  const transport = {
    send(peer: string, bytes: Uint8Array): boolean {
      if (opts.busy?.has(peer) === true) return false;
      const f = decodeLeafFrame(bytes);
      sent.set(peer, [...(sent.get(peer) ?? []), f.type]);
      frames.set(peer, [...(frames.get(peer) ?? []), f]);
      return true;
    },
    disconnect(): void {},
    remoteAddress: (): string => '127.0.0.1',
  } as unknown as LeafLinks;
  const machine = new LeafStateMachine({
    suite,
    group: new TextEncoder().encode('g'),
    secret: new Uint8Array(32).fill(3),
    leaseMs: 60_000,
  });
  machine.setPrimary(true);
  const ordered: LeafCommand[] = [];
  const seed = new Uint8Array(32).fill(5);
  const e = new LeafEdge({
    transport,
    machine,
    suite,
    signingSeed: seed,
    signingPublic: suite.ed25519PublicKey(seed),
    leaseMs: 60_000,
    leafKeyRefreshMs: 86_400_000,
    exporter: (peer) => suite.sha256(new TextEncoder().encode(`exporter of ${peer}`)),
    signers: () => [],
    crls: opts.crls ?? (() => ({ ders: [], lowest: undefined })),
    // The total order of one replica: applied at once.
    order: (cmd) => {
      ordered.push(cmd);
      machine.apply(cmd);
      return true;
    },
    publish: () => true,
    metrics: new ServerMetrics(),
    log: jsonLogger('error', {}, () => {}),
    // A virtual clock that stands still unless a test passes its own: budgets do not refill
    // while a slow machine runs the test (a wall clock made the burst counts flaky under load).
    now: () => Date.UTC(2026, 0, 1),
    setTimer: (timer, delayMs) => void setTimeout(() => e.onTimer(timer), delayMs),
    ...extra,
  });
  e.settle(); // one replica applying at once: everything it holds is committed
  const startRelay = async (relayOpts: RelayOptions): Promise<void> =>
    e.attachRelay(
      await EdgeRelay.bind(suite, relayOpts, {
        publicKey: suite.ed25519PublicKey(seed),
        sign: (message) => suite.ed25519Sign(seed, message),
      }),
    );
  const stopRelay = async (): Promise<void> => void (await e.detachRelay()?.close());
  return { edge: e, sent, frames, machine, ordered, startRelay, stopRelay };
}

test('every acknowledged lease renewal reaches the next renewal command, up to a full leaf port', async (t) => {
  const { edge: e, sent } = await edge();
  const n = MAX_LEAF_LINKS; // one per linked leaf: a server outside the primary component collects them all
  for (let i = 0; i < n; i++) {
    const peer = `g/leaf/l-${i}`;
    e.rememberCert(peer, { name: `l-${i}`, serial: (i + 1).toString(16), fingerprint: new Uint8Array(32) });
    e.onMessage(peer, encodeLeafFrame('leaseRenew', { seq: 1 }));
    e.onMessage(peer, encodeLeafFrame('leaseRenew', { seq: 2 })); // twice: one renewal per name
  }
  t.is([...sent.values()].flat().filter((f) => f === 'leaseAck').length, 2 * n);
  const cmd = e.takeRenewals(1_000) as Extract<LeafCommand, { kind: 'renewLeases' }>;
  t.is(cmd.kind, 'renewLeases');
  t.is(cmd.value.renewals.length, n, 'none acknowledged and dropped');
  t.is(new Set(cmd.value.renewals.map((r) => r.name)).size, n);
  t.is(e.takeRenewals(2_000), undefined);
});

test('a join repeated while its admission waits for the batch joins that admission', async (t) => {
  const { edge: e, sent, machine, ordered } = await edge();
  const peer = 'g/leaf/slow';
  e.rememberCert(peer, { name: 'slow', serial: 'abc', fingerprint: new Uint8Array(32) });
  e.onMessage(peer, encodeLeafFrame('join', { resume: undefined, crlNumber: undefined }));
  t.is(machine.entry('slow')?.slot, -1, 'ordered, waiting for the batch');
  const memberId = machine.entry('slow')!.memberId;
  // The leaf gave up waiting and asked again (the same link, or a new one: the same identity).
  e.onPeerDown(peer);
  e.rememberCert(peer, { name: 'slow', serial: 'abc', fingerprint: new Uint8Array(32) });
  e.onMessage(peer, encodeLeafFrame('join', { resume: undefined, crlNumber: undefined }));
  t.is(ordered.filter((c) => c.kind === 'admit').length, 1, 'no second admission');
  const { batch } = machine.apply({ kind: 'cutBatch', value: { epoch: machine.epoch + 1, now: 1 } });
  e.distribute(batch!);
  t.deepEqual(sent.get(peer), ['welcome']);
  t.is(machine.entry('slow')!.memberId, memberId, 'the first admission, not a replacement');
});

test('data pulls: gossip leaves get the relay history, rate-limited per link; lease acks name the stream', async (t) => {
  const { edge: e, frames, machine, startRelay, stopRelay } = await edge();
  const suite = await loadSuite();
  await startRelay({ host: '127.0.0.1', port: 0, fanout: 3, maxDatagramBytes: 8192 });
  try {
    const peers = ['g/leaf/a', 'g/leaf/b'];
    peers.forEach((peer, i) => {
      e.rememberCert(peer, { name: `n${i}`, serial: `${i + 1}`, fingerprint: new Uint8Array(32) });
      e.onMessage(peer, encodeLeafFrame('join', { resume: undefined, crlNumber: undefined }));
    });
    const { batch } = machine.apply({ kind: 'cutBatch', value: { epoch: machine.epoch + 1, now: 1 } });
    e.distribute(batch!);
    // Only a: gossip (its UDP endpoint on the address of its TLS link); b stays on TLS.
    e.onMessage(peers[0]!, encodeLeafFrame('gossipHello', { host: '127.0.0.1', port: 40_000 }));
    const last = (peer: string): LeafFrame => frames.get(peer)!.at(-1)!;
    const seed = last(peers[0]!);
    if (seed.type !== 'gossipSeed') return t.fail(`expected a seed, got ${seed.type}`);
    const { origin } = seed.body.stream;
    const keyring = new DataKeyring(suite, { now: Date.now });
    keyring.install(machine.epoch, suite.randomBytes(32));
    const sealer = new DataSealer(suite, keyring, { sender: 9 });
    for (let k = 0; k < 3; k++) {
      e.deliverData(undefined, sealer.seal(new Uint8Array([k])));
      await new Promise((r) => setImmediate(r)); // a turn each: three stream entries
    }
    e.onMessage(peers[0]!, encodeLeafFrame('dataPull', { origin, fromSeq: 1 }));
    const reply = last(peers[0]!);
    if (reply.type !== 'dataPullReply') return t.fail(`expected a pull reply, got ${reply.type}`);
    t.deepEqual(
      reply.body.items.map((i) => i.seq),
      [1, 2],
    );
    t.is(reply.body.head, 3);
    const count = frames.get(peers[0]!)!.length;
    e.onMessage(peers[0]!, encodeLeafFrame('dataPull', { origin, fromSeq: 0 }));
    t.is(frames.get(peers[0]!)!.length, count, 'a second pull within MIN_PULL_INTERVAL_MS is not answered');
    const before = frames.get(peers[1]!)!.length;
    e.onMessage(peers[1]!, encodeLeafFrame('dataPull', { origin, fromSeq: 0 }));
    t.is(
      frames.get(peers[1]!)!.length,
      before,
      'a TLS leaf (it got every envelope on its link) is not answered',
    );
    e.onMessage(peers[0]!, encodeLeafFrame('leaseRenew', { seq: 1 }));
    const ack = last(peers[0]!);
    t.deepEqual(ack.type === 'leaseAck' && ack.body.stream, { origin, next: 3 });
    e.onMessage(peers[1]!, encodeLeafFrame('leaseRenew', { seq: 1 }));
    const tlsAck = last(peers[1]!);
    t.is(tlsAck.type === 'leaseAck' ? tlsAck.body.stream : 'no ack', undefined);
  } finally {
    await stopRelay();
  }
});

test('catch-up: welcomed sessions only, their own path only, within the per-leaf budget', async (t) => {
  const { edge: e, frames, machine } = await edge();
  const last = (peer: string): LeafFrame => frames.get(peer)!.at(-1)!;
  const peers = ['g/leaf/a', 'g/leaf/b'];
  peers.forEach((peer, i) =>
    e.rememberCert(peer, { name: `n${i}`, serial: `${i + 1}`, fingerprint: new Uint8Array(32) }),
  );
  e.onMessage(peers[0]!, encodeLeafFrame('catchUpRequest', { fromEpoch: 1, slot: 0 }));
  const early = last(peers[0]!);
  t.true(early.type === 'error' && early.body.code === 'not-admitted', 'no session: refused');
  for (const peer of peers)
    e.onMessage(peer, encodeLeafFrame('join', { resume: undefined, crlNumber: undefined }));
  for (let k = 0; k < 3; k++) {
    const { batch } = machine.apply({ kind: 'cutBatch', value: { epoch: machine.epoch + 1, now: 1 } });
    e.distribute(batch!);
    if (k === 0) {
      // both welcomed at this epoch; one more leaf per batch after it
      e.rememberCert(`g/leaf/x${k}`, { name: `x${k}`, serial: `x${k}`, fingerprint: new Uint8Array(32) });
    }
    e.onMessage(`g/leaf/x${k}`, encodeLeafFrame('join', { resume: undefined, crlNumber: undefined }));
    e.rememberCert(`g/leaf/x${k + 1}`, {
      name: `x${k + 1}`,
      serial: `x${k + 1}`,
      fingerprint: new Uint8Array(32),
    });
  }
  const slotOf = (name: string): number => machine.entry(name)!.slot;
  const from = e.history.oldest! + 1;
  e.onMessage(peers[0]!, encodeLeafFrame('catchUpRequest', { fromEpoch: from, slot: slotOf('n0') }));
  const own = last(peers[0]!);
  if (own.type !== 'catchUpReply') return t.fail(`expected a reply, got ${own.type}`);
  t.false(own.body.rejoin);
  t.true(own.body.pushes.length >= 1, 'its own path is served');
  e.onMessage(peers[0]!, encodeLeafFrame('catchUpRequest', { fromEpoch: from, slot: slotOf('n1') }));
  const foreign = last(peers[0]!);
  if (foreign.type !== 'catchUpReply') return t.fail(`expected a reply, got ${foreign.type}`);
  t.deepEqual(foreign.body, { pushes: [], rejoin: true }, "another leaf's path: nothing but rejoin");
  // The budget (default burst 40, shared with join): a burst, then refusals, then the link closes.
  const before = frames.get(peers[1]!)?.length ?? 0;
  for (let k = 0; k < 100; k++)
    e.onMessage(peers[1]!, encodeLeafFrame('catchUpRequest', { fromEpoch: from, slot: slotOf('n1') }));
  const answers = frames.get(peers[1]!)!.slice(before);
  const refused = answers.filter((f) => f.type === 'error' && f.body.code === 'rate-limited').length;
  t.is(answers.length - refused, 40 - 1, 'the burst (default 40) less its join: served');
  t.is(refused, 41, 'then a burst of refusals, the last closing the link; the rest dropped unanswered');
});

test('catch-up replies over all leaves stay within the server-wide byte budget', async (t) => {
  const budget = MAX_LEAF_FRAME_BYTES; // the smallest allowed: one second holds one largest reply
  let now = 0;
  const {
    edge: e,
    frames,
    machine,
  } = await edge({
    catchUpBytesPerSec: budget,
    requestLimits: { perSec: 1, burst: 100_000 }, // no per-leaf limit in the way
    now: () => now,
  });
  const peer = 'g/leaf/a';
  e.rememberCert(peer, { name: 'a', serial: '1', fingerprint: new Uint8Array(32) });
  e.onMessage(peer, encodeLeafFrame('join', { resume: undefined, crlNumber: undefined }));
  for (let k = 0; k < 3; k++) {
    const { batch } = machine.apply({ kind: 'cutBatch', value: { epoch: machine.epoch + 1, now: 1 } });
    e.distribute(batch!);
    machine.apply({
      kind: 'admit',
      value: { name: `x${k}`, serial: `x${k}`, fingerprint: new Uint8Array(32), now: 1 },
    });
  }
  const request = encodeLeafFrame('catchUpRequest', {
    fromEpoch: e.history.oldest! + 1,
    slot: machine.entry('a')!.slot,
  });
  const served = (): number => frames.get(peer)!.filter((f) => f.type === 'catchUpReply').length;
  let replyBytes = 0;
  while (frames.get(peer)!.at(-1)!.type !== 'error') {
    e.onMessage(peer, request);
    const f = frames.get(peer)!.at(-1)!;
    if (f.type === 'catchUpReply') replyBytes = encodeLeafFrame('catchUpReply', f.body).length;
  }
  const first = served();
  t.true(
    first * replyBytes >= budget && (first - 1) * replyBytes < budget,
    `${first} replies of ${replyBytes} B`,
  );
  const refusal = frames.get(peer)!.at(-1)!;
  t.true(
    refusal.type === 'error' &&
      refusal.body.code === 'rate-limited' &&
      /server-wide/.test(refusal.body.detail),
  );
  now += 1000; // a second later the budget has refilled
  e.onMessage(peer, request);
  t.is(served(), first + 1);
});

test('CRLs in band: welcomes carry them unless the leaf holds them; a newer CRL goes out to every leaf, busy links later', async (t) => {
  let crls: InBandCrls = { ders: [new Uint8Array([7])], lowest: 7n };
  const busy = new Set<string>();
  const { edge: e, frames, machine, stopRelay } = await edge({}, { crls: () => crls, busy });
  const peers = ['g/leaf/a', 'g/leaf/b', 'g/leaf/c'];
  peers.forEach((peer, i) => {
    e.rememberCert(peer, { name: `n${i}`, serial: `${i + 1}`, fingerprint: new Uint8Array(32) });
    // a holds CRL number 7 already; b and c hold none.
    e.onMessage(peer, encodeLeafFrame('join', { resume: undefined, crlNumber: i === 0 ? '7' : undefined }));
  });
  e.distribute(machine.apply({ kind: 'cutBatch', value: { epoch: machine.epoch + 1, now: 1 } }).batch!);
  const crlsOf = (f: LeafFrame | undefined): number[] =>
    f?.type === 'welcome' || f?.type === 'crlUpdate' ? f.body.crls.map((d) => d[0]!) : [-1];
  t.deepEqual(
    peers.map((p) => crlsOf(frames.get(p)!.at(-1))),
    [[], [7], [7]],
  );

  crls = { ders: [new Uint8Array([8])], lowest: 8n };
  busy.add(peers[2]!);
  t.is(e.pushCrl(), 3);
  await new Promise((r) => setTimeout(r, 10));
  t.deepEqual(
    peers.map((p) => crlsOf(frames.get(p)!.at(-1))),
    [[8], [8], [7]],
    'c’s link is busy: it still owes',
  );
  busy.clear();
  await new Promise((r) => setTimeout(r, 120));
  t.deepEqual(crlsOf(frames.get(peers[2]!)!.at(-1)), [8], 'c got it once its link had room');
  // Nothing newer: another push carries the signer list alone.
  e.pushCrl();
  await new Promise((r) => setTimeout(r, 10));
  t.deepEqual(
    peers.map((p) => crlsOf(frames.get(p)!.at(-1))),
    [[], [], []],
  );
  await stopRelay();
});

test('own-key refresh: once per new session, then every leafKeyRefreshMs, and for exposed leaves in a full refresh', async (t) => {
  const { edge: e, frames, machine, ordered } = await edge();
  const suite = await loadSuite();
  const peer = 'g/leaf/r';
  e.rememberCert(peer, { name: 'r', serial: '0a', fingerprint: new Uint8Array(32) });
  e.onMessage(peer, encodeLeafFrame('join', { resume: undefined, crlNumber: undefined }));
  e.distribute(machine.apply({ kind: 'cutBatch', value: { epoch: machine.epoch + 1, now: 1 } }).batch!);
  const admittedEpoch = machine.entry('r')!.admittedEpoch;
  const take = (now: number): Extract<LeafCommand, { kind: 'refreshLeafKeys' }> | undefined => {
    const cmd = e.takeRefreshes(now);
    if (cmd === undefined) return undefined;
    if (cmd.kind !== 'refreshLeafKeys') throw new Error(cmd.kind);
    ordered.push(cmd);
    machine.apply(cmd);
    e.distribute(machine.apply({ kind: 'cutBatch', value: { epoch: machine.epoch + 1, now } }).batch!);
    return cmd;
  };
  const exporter = suite.sha256(new TextEncoder().encode(`exporter of ${peer}`));
  const first = take(10_000)!;
  t.is(first.value.refreshes.length, 1);
  // The leaf is told the counter before the order; both ends derive the same key.
  const told = frames.get(peer)!.find((f) => f.type === 'leafKeyRefresh');
  t.deepEqual(told?.body, { admittedEpoch, counter: 1 });
  const key = refreshedLeafKey(suite, exporter, { group: machine.opts.group, admittedEpoch, counter: 1 });
  t.deepEqual(first.value.refreshes[0]!.key, key);
  t.deepEqual(machine.welcomeFor('r')!.keys[0]!.key, key, 'the tree holds the refreshed own key');
  t.is(take(20_000), undefined, 'nothing due until leafKeyRefreshMs');
  const periodic = take(10_000 + 86_400_000)!;
  t.deepEqual(
    periodic.value.refreshes[0]!.key,
    refreshedLeafKey(suite, exporter, { group: machine.opts.group, admittedEpoch, counter: 2 }),
  );
  // A core revocation: the leaf is exposed and refreshed at once, which ends the full refresh.
  machine.apply({ kind: 'revokeCore', value: { serial: 'c0', now: 100_000_000, windowMs: 60_000 } });
  t.is(machine.exposedLeaves, 1);
  t.truthy(take(100_000_000));
  t.is(machine.exposedLeaves, 0);
  t.is(machine.fullRefresh, undefined);
  const metrics = await new ServerMetrics().registry.getMetricsAsJSON();
  t.true(metrics.some((m) => m.name === 'keyglass_leaves_exposed'));
});

test('held (state a view change may orphan): no welcome, fresh or resumed, until the state settles', async (t) => {
  const { edge: e, sent, machine } = await edge();
  const fresh = 'g/leaf/fresh';
  e.rememberCert(fresh, { name: 'fresh', serial: 'f1', fingerprint: new Uint8Array(32) });
  e.onMessage(fresh, encodeLeafFrame('join', { resume: undefined, crlNumber: undefined }));
  e.hold(); // the host applied a batch that a majority of its view does not hold yet
  const { batch } = machine.apply({ kind: 'cutBatch', value: { epoch: machine.epoch + 1, now: 1 } });
  e.distribute(batch!); // an earlier batch the majority holds, released while a later one waits
  t.deepEqual(sent.get(fresh), undefined, 'the admission is applied, its welcome held');
  // A leaf this (possibly orphaned) state knows resumes: held too.
  const back = 'g/leaf/fresh-again';
  e.onPeerDown(fresh);
  e.rememberCert(back, { name: 'fresh', serial: 'f1', fingerprint: new Uint8Array(32) });
  e.onMessage(
    back,
    encodeLeafFrame('join', {
      resume: { admittedEpoch: machine.entry('fresh')!.admittedEpoch, epoch: machine.epoch },
      crlNumber: undefined,
    }),
  );
  t.deepEqual(sent.get(back), undefined);
  e.settle();
  await new Promise((r) => setImmediate(r));
  t.deepEqual(sent.get(back), ['welcome']);
  t.is(sent.get(fresh), undefined, 'the closed link gets nothing');
});

test('outside the primary component no lease renewal is acknowledged (the leaf fails over)', async (t) => {
  const { edge: e, sent, machine } = await edge();
  const peer = 'g/leaf/cut-off';
  e.rememberCert(peer, { name: 'cut-off', serial: 'c1', fingerprint: new Uint8Array(32) });
  machine.setPrimary(false);
  e.onMessage(peer, encodeLeafFrame('leaseRenew', { seq: 1 }));
  t.is(sent.get(peer), undefined, 'an ack would keep the leaf on a server whose renewals reach no registry');
  machine.setPrimary(true);
  e.onMessage(peer, encodeLeafFrame('leaseRenew', { seq: 2 }));
  t.deepEqual(sent.get(peer), ['leaseAck']);
});
