/** `keyglass server` configuration: defaults, and one clear error naming the field for each mistake. */
import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, parseServerConfig } from '../../server/index.js';
import { keyglass } from './cluster.js';

const good = {
  name: 'core-1',
  group: 'g',
  listen: { core: '127.0.0.1:7001', leaf: '127.0.0.1:7101', admin: '127.0.0.1:7201' },
  peers: { 'core-2': '127.0.0.1:7002', 'core-3': '[::1]:7003' },
  credentials: { cert: 'core-1.pem', key: 'core-1.key' },
  trustAnchors: 'ca.pem',
  dataDir: 'data',
};

test('a minimal config gets defaults and absolute paths', (t) => {
  const c = parseServerConfig(good, '/etc/keyglass');
  t.is(c.batchIntervalMs, 100);
  t.is(c.leaseMs, 30_000);
  t.is(c.generation, 0);
  t.is(c.coreKeyRefreshMs, 600_000);
  t.is(c.leafKeyRefreshMs, 86_400_000);
  t.is(c.fullRefreshWindowMs, 1_800_000);
  t.is(parseServerConfig({ ...good, leafKeyRefreshMs: 10_000 }, '/').leafKeyRefreshMs, 10_000);
  t.is(parseServerConfig({ ...good, fullRefreshWindowMs: 1000 }, '/').fullRefreshWindowMs, 1000);
  t.true(c.leafTlsThread);
  t.false(parseServerConfig({ ...good, leafTlsThread: false }, '/').leafTlsThread);
  t.is(parseServerConfig({ ...good, coreKeyRefreshMs: 0 }, '/').coreKeyRefreshMs, 0);
  t.is(c.credentials.cert, '/etc/keyglass/core-1.pem');
  t.is(c.dataDir, '/etc/keyglass/data');
  t.deepEqual(c.peers.get('core-3'), { host: '::1', port: 7003 });
  t.is(c.crl, undefined);
});

test('the gossip block: defaults from the leaf listener, and every bound settable', (t) => {
  t.deepEqual(parseServerConfig(good, '/').gossip, {
    enabled: true,
    host: '127.0.0.1', // the leaf listener's IP
    port: 0,
    fanout: 3,
    maxDatagramBytes: 8192,
    history: { maxItems: 4096, maxBytes: 16 * 1024 * 1024 },
    pullBytesPerSec: 4 * 1024 * 1024,
  });
  const g = parseServerConfig(
    { ...good, gossip: { historyItems: 100, historyBytes: 1 << 20, pullBytesPerSec: 65536, fanout: 5 } },
    '/',
  ).gossip;
  t.deepEqual([g.history, g.pullBytesPerSec, g.fanout], [{ maxItems: 100, maxBytes: 1 << 20 }, 65536, 5]);
});

const cases: [string, Record<string, unknown>, RegExp][] = [
  ['missing name', { name: undefined }, /^name: must be a non-empty string$/],
  ['bad name', { name: 'a/b' }, /^name: 'a\/b' must be/],
  ['unknown field', { colour: 'blue' }, /^colour: unknown field$/],
  [
    'bad listen',
    { listen: { ...good.listen, leaf: 'localhost' } },
    /^listen\.leaf: 'localhost' is not host:port/,
  ],
  ['port out of range', { listen: { ...good.listen, admin: '127.0.0.1:70000' } }, /^listen\.admin:/],
  [
    'peer lists itself',
    { peers: { 'core-1': '127.0.0.1:1' } },
    /^peers\.core-1: a server must not list itself$/,
  ],
  ['bad batch interval', { batchIntervalMs: 0 }, /^batchIntervalMs: must be a whole number in 5\.\.60000$/],
  ['fractional lease', { leaseMs: 1000.5 }, /^leaseMs: must be a whole number/],
  [
    'core key refresh too short',
    { coreKeyRefreshMs: 999 },
    /^coreKeyRefreshMs: must be 0 \(off\) or at least 1000$/,
  ],
  ['negative core key refresh', { coreKeyRefreshMs: -1 }, /^coreKeyRefreshMs: must be a whole number/],
  [
    'leaf key refresh too short',
    { leafKeyRefreshMs: 9999 },
    /^leafKeyRefreshMs: must be a whole number in 10000\.\.2592000000$/,
  ],
  ['leaf key refresh off', { leafKeyRefreshMs: 0 }, /^leafKeyRefreshMs: must be a whole number/],
  [
    'full refresh window too short',
    { fullRefreshWindowMs: 999 },
    /^fullRefreshWindowMs: must be a whole number in 1000\.\.86400000$/,
  ],
  ['full refresh window not a number', { fullRefreshWindowMs: '10m' }, /^fullRefreshWindowMs: must be/],
  [
    'both passphrase sources',
    { credentials: { ...good.credentials, passphraseFile: 'a', passphraseEnv: 'B' } },
    /^credentials: give passphraseFile or passphraseEnv, not both$/,
  ],
  [
    'unset passphrase env',
    { credentials: { ...good.credentials, passphraseEnv: 'KG_TEST_SURELY_UNSET' } },
    /^credentials\.passphraseEnv: KG_TEST_SURELY_UNSET is not set$/,
  ],
  ['bad log level', { logLevel: 'loud' }, /^logLevel: must be one of debug, info, warn, error$/],
  ['leafTlsThread not a boolean', { leafTlsThread: 'yes' }, /^leafTlsThread: must be true or false$/],
  ['bad policy', { admissionPolicy: 5 }, /^admissionPolicy: /],
  ['unknown gossip field', { gossip: { fanOut: 3 } }, /^gossip\.fanOut: unknown field$/],
  [
    'gossip host not an IP',
    { gossip: { host: 'localhost' } },
    /^gossip\.host: must be a literal IP address$/,
  ],
  ['gossip fan-out 0', { gossip: { fanout: 0 } }, /^gossip\.fanout: must be a whole number in 1\.\.32$/],
  [
    'empty history',
    { gossip: { historyItems: 0 } },
    /^gossip\.historyItems: must be a whole number in 1\.\.1048576$/,
  ],
  [
    'tiny history',
    { gossip: { historyBytes: 1000 } },
    /^gossip\.historyBytes: must be a whole number in 65536\.\./,
  ],
  [
    'no pull budget',
    { gossip: { pullBytesPerSec: 0 } },
    /^gossip\.pullBytesPerSec: must be a whole number in 65536\.\./,
  ],
  [
    'no leaf request budget',
    { leafRequestsPerSec: 0 },
    /^leafRequestsPerSec: must be a whole number in 1\.\.10000$/,
  ],
  [
    'a fractional request burst',
    { leafRequestBurst: 2.5 },
    /^leafRequestBurst: must be a whole number in 1\.\.100000$/,
  ],
];

test('leaf request budget: defaults, and given values kept', (t) => {
  t.deepEqual(parseServerConfig(good, '/x').leafRequests, { perSec: 20, burst: 40 });
  t.is(parseServerConfig(good, '/x').catchUpBytesPerSec, 16 * 1024 * 1024);
  t.deepEqual(parseServerConfig({ ...good, leafRequestsPerSec: 5, leafRequestBurst: 7 }, '/x').leafRequests, {
    perSec: 5,
    burst: 7,
  });
});

for (const [what, patch, re] of cases) {
  test(`refused: ${what}`, (t) => {
    const e = t.throws(() => parseServerConfig({ ...good, ...patch }, '/x'), { instanceOf: ConfigError });
    t.regex(e!.message, re);
    t.false(e!.message.includes('\n'));
  });
}

test('keyglass server: a bad config or missing credentials is one line on stderr and a non-zero exit', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kg-server-cfg-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const bad = join(dir, 'bad.json');
  writeFileSync(bad, JSON.stringify({ ...good, batchIntervalMs: 'fast' }));
  const r1 = await keyglass(['server', '--config', bad]);
  t.not(r1.code, 0);
  t.is(r1.stderr.trim(), 'keyglass server: batchIntervalMs: must be a whole number in 5..60000');
  const noCert = join(dir, 'nocert.json');
  writeFileSync(noCert, JSON.stringify(good));
  const r2 = await keyglass(['server', '--config', noCert]);
  t.not(r2.code, 0);
  t.is(r2.stderr.trim().split('\n').length, 1, r2.stderr);
  t.regex(r2.stderr, /certificate/);
  const r3 = await keyglass(['server']);
  t.is(r3.code, 2);
  t.regex(r3.stderr, /--config is required/);
});
