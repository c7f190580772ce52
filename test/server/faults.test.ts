/**
 * Real-process faults on three `keyglass server` processes (127.0.0.1): a server frozen past the
 * failure detector (SIGSTOP/SIGCONT), a network partition of one server through fault-injecting
 * TCP proxies on its core links, and slow or hostile connections (stalled TLS handshakes on the
 * leaf and core ports, an oversize frame from an authenticated leaf).
 *
 * Topology: core-3's core links all run through proxies (core-1 and core-2 dial core-3 through
 * `toCore3`; core-3 dials core-1 and core-2 through `fromCore3[…]`), so cutting those three
 * proxies partitions core-3 from the mesh. Leaf ports are direct: a leaf can still reach core-3.
 * core-1's leaf port runs its TLS on the main thread, core-2's and core-3's on a worker thread.
 */
import test from 'ava';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MAX_LEAF_FRAME_BYTES } from '../../gossip-edge/index.js';
import { LeafClient, LeafConnectError } from '../../leaf-sdk/index.js';
import { LINK_HELLO } from '../../net/index.js';
import { frameForStream } from '../../wire/index.js';
import type { ServerStatus } from '../../server/index.js';
import { Cluster, until, type Leaf, type ServerProc } from './cluster.js';
import { FaultProxy } from './proxy.js';

const cluster = new Cluster();
const proxies: FaultProxy[] = [];
const HANDSHAKE_TIMEOUT_MS = 1500;

const srv = (i: number): ServerProc => cluster.servers[i]!;
const statuses = (): Promise<ServerStatus[]> => Promise.all(cluster.servers.map((s) => cluster.status(s)));

/** Every server in one primary view of all three, with every signer known. */
const fullView = (timeoutMs = 15_000): Promise<ServerStatus[]> => cluster.untilOnePrimaryView(timeoutMs);

/** One replicated leaf state on every server: same epoch, same registry size, nothing pending. */
async function oneLeafState(timeoutMs = 8000): Promise<ServerStatus[]> {
  let last: ServerStatus[] = [];
  await until(
    'one leaf state on every server',
    async () => {
      last = await statuses();
      return (
        new Set(last.map((s) => s.leafEpoch)).size === 1 &&
        new Set(last.map((s) => s.leaves)).size === 1 &&
        last.every((s) => s.pendingBatch === 0)
      );
    },
    timeoutMs,
  );
  return last;
}

const lastKey = (l: Leaf): string | undefined => l.keys[l.keys.length - 1]?.keyId;
const lastEpoch = (l: Leaf): number => l.keys[l.keys.length - 1]?.epoch ?? -1;

/** Every given leaf holds one key (same id and epoch), of epoch `atLeast` or later. */
async function sameKey(leaves: readonly Leaf[], atLeast: number, timeoutMs = 8000): Promise<void> {
  await until(
    `every leaf on one key of epoch ≥ ${atLeast}`,
    () =>
      new Set(leaves.map(lastEpoch)).size === 1 &&
      lastEpoch(leaves[0]!) >= atLeast &&
      new Set(leaves.map(lastKey)).size === 1,
    timeoutMs,
  );
}

function rewriteConfig(
  s: ServerProc,
  peers: Record<string, string>,
  extra: Record<string, unknown> = {},
): void {
  const file = cluster.configFile(s);
  const cfg = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  writeFileSync(file, JSON.stringify({ ...cfg, peers, ...extra }, null, 2));
}

test.before(async () => {
  await cluster.init();
  // Long leases: the partition test must not turn into a lease-expiry test.
  await cluster.startServers(3, { leaseMs: 20_000, handshakeTimeoutMs: HANDSHAKE_TIMEOUT_MS });
  // The harness wires the mesh directly; restart it with core-3's links through proxies.
  for (const s of cluster.servers) cluster.kill(s);
  for (const s of cluster.servers)
    rmSync(join(cluster.dir, `data-${s.name}`), { recursive: true, force: true });
  const [c1, c2, c3] = [srv(0), srv(1), srv(2)];
  const toCore3 = await FaultProxy.start(c3.ports.core);
  const fromCore3To1 = await FaultProxy.start(c1.ports.core);
  const fromCore3To2 = await FaultProxy.start(c2.ports.core);
  proxies.push(toCore3, fromCore3To1, fromCore3To2);
  const at = (port: number): string => `127.0.0.1:${port}`;
  // core-1 runs its leaf port's TLS on the main thread (`leafTlsThread: false`), the others on
  // their TLS thread (the default, which every other server test runs): the stalled-handshake
  // and oversize-frame cases below hit core-1, so both paths meet hostile connections.
  rewriteConfig(c1, { [c2.name]: at(c2.ports.core), [c3.name]: at(toCore3.port) }, { leafTlsThread: false });
  rewriteConfig(c2, { [c1.name]: at(c1.ports.core), [c3.name]: at(toCore3.port) });
  rewriteConfig(c3, { [c1.name]: at(fromCore3To1.port), [c2.name]: at(fromCore3To2.port) });
  await Promise.all(cluster.servers.map((s) => cluster.spawn(s)));
  await fullView(20_000);
});

test.after.always(async () => {
  // SIGKILL reaches a stopped process too; SIGCONT first anyway so nothing lingers frozen.
  for (const s of cluster.servers) s.child?.kill('SIGCONT');
  await cluster.stop();
  await Promise.all(proxies.map((p) => p.close()));
});

/** Opens a TCP connection, writes `bytes`, and resolves with how long the server kept it open. */
function heldOpenMs(port: number, bytes: Uint8Array): Promise<number> {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const sock: Socket = netConnect(port, '127.0.0.1', () => {
      if (bytes.length > 0) sock.write(bytes);
    });
    sock.on('error', () => {});
    sock.resume();
    sock.on('close', () => resolve(Date.now() - t0));
    sock.setTimeout(4 * HANDSHAKE_TIMEOUT_MS, () => sock.destroy());
  });
}

/** The first 48 bytes of a TLS 1.3 ClientHello record: a plausible start, then silence. */
const PARTIAL_CLIENT_HELLO = Uint8Array.from([
  0x16,
  0x03,
  0x01,
  0x01,
  0x00,
  0x01,
  0x00,
  0x00,
  0xfc,
  0x03,
  0x03,
  ...new Array<number>(37).fill(0x2a),
]);

test.serial('stalled TLS handshakes on the leaf and core ports are closed after the timeout', async (t) => {
  const s = srv(0);
  t.true(
    s.logs.some((l) => l.includes('"msg":"listening"') && l.includes('"leafTls":"main thread"')),
    'core-1 runs its leaf TLS on the main thread',
  );
  const logsBefore = s.logs.length;
  const cases = [
    ['leaf', s.ports.leaf, new Uint8Array(0)],
    ['leaf', s.ports.leaf, PARTIAL_CLIENT_HELLO],
    ['core', s.ports.core, new Uint8Array(0)],
    ['core', s.ports.core, PARTIAL_CLIENT_HELLO],
  ] as const;
  const held = await Promise.all(cases.map(([, port, bytes]) => heldOpenMs(port, bytes)));
  for (const [i, ms] of held.entries()) {
    const [port, , bytes] = cases[i]!;
    const what = `${port} port, ${bytes.length} bytes sent`;
    t.true(ms >= HANDSHAKE_TIMEOUT_MS - 100, `${what}: closed early (${ms} ms)`);
    t.true(ms < 2 * HANDSHAKE_TIMEOUT_MS, `${what}: closed by the server's timeout, not ours (${ms} ms)`);
  }
  await until('every stall logged with its reason', () => {
    const lines = s.logs.slice(logsBefore).filter((l) => l.includes('"msg":"handshake failed"'));
    const timeouts = (port: string): number =>
      lines.filter((l) => l.includes(`"port":"${port}"`) && l.includes('"reason":"timeout"')).length;
    return timeouts('leaf') === 2 && timeouts('core') === 2;
  });
  const metrics = await (await cluster.get(s, '/metrics')).text();
  t.regex(metrics, /keyglass_refusals_total\{port="leaf",reason="timeout"\} 2/);
  t.regex(metrics, /keyglass_refusals_total\{port="core",reason="timeout"\} 2/);
  for (const x of cluster.servers) t.is((await cluster.get(x, '/healthz')).status, 200);
  await fullView(2000);
});

test.serial('an oversize frame from an authenticated leaf closes that connection alone', async (t) => {
  const s = srv(0);
  const bystander = await cluster.leaf('bystander', 0);
  const m = await cluster.issue('leaf', 'oversize');
  const logsBefore = s.logs.length;
  const outcome = await new Promise<string>((resolve) => {
    const sock = tlsConnect({
      host: '127.0.0.1',
      port: s.ports.leaf,
      cert: m.certPem,
      key: m.keyPem,
      ca: cluster.caPem,
      minVersion: 'TLSv1.3',
      checkServerIdentity: () => undefined,
    });
    let helloSeen = false;
    sock.on('data', () => {
      if (helloSeen) return;
      helloSeen = true; // the server accepted us and said hello: answer, then break the framing
      sock.write(frameForStream(LINK_HELLO, MAX_LEAF_FRAME_BYTES));
      const prefix = Buffer.alloc(4);
      prefix.writeUInt32BE(MAX_LEAF_FRAME_BYTES + 1);
      setTimeout(() => sock.write(Buffer.concat([prefix, Buffer.alloc(1024, 7)])), 100);
    });
    sock.on('error', () => {});
    sock.on('close', () => resolve(helloSeen ? 'closed after hello' : 'closed before hello'));
    sock.setTimeout(5000, () => {
      sock.destroy();
      resolve('timeout');
    });
  });
  t.is(outcome, 'closed after hello');
  await until('the bad frame was logged', () =>
    s.logs
      .slice(logsBefore)
      .some((l) => l.includes('"msg":"leaf link closed"') && l.includes('"reason":"bad-frame"')),
  );
  // The server is unharmed and its other leaf still served.
  const before = lastEpoch(bystander);
  const other = await cluster.leaf('after-oversize', 1);
  await sameKey([bystander, other], before + 1);
  t.is((await cluster.get(s, '/healthz')).status, 200);
});

test.serial(
  'a server frozen past the failure detector is excluded, rejoins with the state, serves again',
  async (t) => {
    const [c1, c2] = [srv(0), srv(1)];
    const anchor = await cluster.leaf('anchor', 0);
    const before = await fullView();
    const frozenKey = before[1]!.member;
    const logsAtFreeze = c2.logs.length;
    c2.child!.kill('SIGSTOP');
    try {
      await until(
        `${c2.name} excluded`,
        async () => {
          const st = await cluster.status(c1);
          return st.view.primary && st.view.members.length === 2 && !st.view.members.includes(frozenKey);
        },
        8000,
      );
      // The group goes on without it: a join while it is frozen moves the leaf epoch on.
      await cluster.leaf('while-frozen', 0);
    } finally {
      c2.child!.kill('SIGCONT');
    }
    const after = await fullView();
    // Back in the primary view under its own name. Which way it came back depends on who noticed
    // first: told of its exclusion, the stack rejoins as incarnation + 1; if its own failure
    // detector fired first on waking (silent peers), it sat in a non-primary view of one and
    // merged back. Either way it must have taken the group's state by state transfer.
    const rejoined = after[1]!.member;
    const incarnation = (k: string): number => Number(k.slice(k.lastIndexOf('#') + 1));
    t.is(rejoined.slice(0, rejoined.lastIndexOf('#')), c2.name);
    t.true(incarnation(rejoined) >= incarnation(frozenKey));
    t.log(`thawed ${c2.name}: ${frozenKey} → ${rejoined}`);
    const sinceThaw = c2.logs.slice(logsAtFreeze);
    const transferred = sinceThaw.findIndex((l) => l.includes('"msg":"state transferred"'));
    t.true(transferred >= 0, 'state transfer logged after the thaw');
    t.regex(sinceThaw[transferred]!, /"leaves":[1-9]/);
    const st = await oneLeafState();
    t.true(st[1]!.leafEpoch > before[1]!.leafEpoch, 'it holds the epoch it missed');
    // It serves again: a leaf that tries it first is admitted there and gets the group's key.
    const sessionsBefore = st[1]!.sessions;
    const late = await cluster.leaf('after-thaw', 1);
    t.is((await cluster.status(c2)).sessions, sessionsBefore + 1);
    const final = await oneLeafState();
    await sameKey([anchor, late], final[0]!.leafEpoch);
  },
);

test.serial(
  'a partitioned server stops changing leaf state; after healing the group merges into one state',
  async (t) => {
    const c3 = srv(2);
    // The previous test thawed a server; until the three are one primary view again, core-3 may
    // answer a fresh join with not-primary and the minority leaf would fail over elsewhere.
    await fullView();
    const onMajority = await cluster.leaf('majority-leaf', 0);
    const onMinority = await cluster.leaf('minority-leaf', 2);
    const start = await oneLeafState();
    t.true((await cluster.status(c3)).sessions >= 1, 'the minority leaf is served by core-3');

    const logsAtCut = c3.logs.length;
    for (const p of proxies) p.partition();
    await until(
      'core-3 alone and not primary; core-1 and core-2 a primary view of 2',
      async () => {
        const [s1, s2, s3] = await statuses();
        return (
          !s3!.view.primary &&
          s3!.view.members.length === 1 &&
          [s1!, s2!].every((s) => s.view.primary && s.view.members.length === 2)
        );
      },
      8000,
    );
    const frozen = await cluster.status(c3);

    // A fresh join at core-3 is refused (not primary); the leaf would fail over, here it has nowhere to go.
    const m = await cluster.issue('leaf', 'refused-by-minority');
    const client = new LeafClient({
      backoffBaseMs: 20,
      backoffMaxMs: 50,
      maxAttempts: 2,
      welcomeTimeoutMs: 3000,
    });
    const err = await t.throwsAsync(
      client.connect({
        servers: [{ host: '127.0.0.1', port: c3.ports.leaf }],
        credentials: { certPem: m.certPem, keyPem: m.keyPem },
        trust: { caPem: cluster.caPem },
      }),
    );
    await client.close({ leave: false }).catch(() => {});
    t.true(err instanceof LeafConnectError, String(err));
    t.regex(err!.message + JSON.stringify((err as LeafConnectError).attempts), /not-primary/);

    // The majority keeps admitting (a leaf that tries core-3 first fails over to core-1).
    const failedOver = await cluster.leaf('failed-over', 2);
    let s1!: ServerStatus, s3!: ServerStatus;
    await until('the majority admitted it, on one leaf state', async () => {
      const [a, b, c] = await statuses();
      [s1, s3] = [a!, c!];
      return a!.leaves === start[0]!.leaves + 1 && a!.leafEpoch === b!.leafEpoch && a!.leaves === b!.leaves;
    });
    t.true(s1.leafEpoch > frozen.leafEpoch);
    t.is(s3.leafEpoch, frozen.leafEpoch, 'the minority changed no leaf state');
    t.is(s3.leaves, start[2]!.leaves);
    t.true(
      proxies.some((p) => p.counts.refused > 0),
      'redials were refused while cut',
    );

    for (const p of proxies) p.heal();
    await fullView();
    const merged = await oneLeafState();
    t.is(merged[0]!.leaves, start[0]!.leaves + 1);
    t.true(c3.logs.slice(logsAtCut).some((l) => l.includes('"msg":"state transferred"')));
    // One state, one key: leaves on both sides of the former partition converge.
    // One state, one key: the leaf that stayed on core-3 is welcomed again at the merged epoch.
    await sameKey([onMajority, onMinority, failedOver], merged[0]!.leafEpoch);
    t.deepEqual(onMinority.evicted, []);
  },
);
