/**
 * What the key server's ports refuse (server/refusals.ts): each refusal counted once under its
 * reason, duplicate-identity error lines at most once per identity per 10 s (a refused inbound
 * duplicate dials from a new port each time), and the identities remembered for that bounded.
 */
import test from 'ava';
import { DUPLICATE_IDENTITY } from '../../net/index.js';
import { MAX_CORE_SERVERS, PortRefusals, ServerMetrics, type Logger } from '../../server/index.js';

function harness(): {
  refusals: PortRefusals;
  metrics: ServerMetrics;
  lines: { level: string; msg: string }[];
} {
  const metrics = new ServerMetrics();
  const lines: { level: string; msg: string }[] = [];
  const at = (level: string) => (msg: string) => void lines.push({ level, msg });
  const log: Logger = { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
  return { refusals: new PortRefusals(metrics, log), metrics, lines };
}

async function counted(metrics: ServerMetrics): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const v of (await metrics.refusals.get()).values)
    out[`${v.labels['port']}/${v.labels['reason']}`] = v.value;
  return out;
}

test('each refusal is counted once, under the reason that says why', async (t) => {
  const { refusals, metrics, lines } = harness();
  refusals.refused('leaf', 'revoked', 'serial 0a is revoked');
  // The identify callback counted that certificate already: its handshake failure is not counted again.
  refusals.handshakeFailed('leaf', '10.0.0.1:5000', 'auth', 'revoked: serial 0a is revoked');
  refusals.handshakeFailed('core', '10.0.0.2:5000', 'auth', 'tls alert');
  refusals.handshakeFailed('core', '10.0.0.3:5000', 'timeout', 'no hello');
  t.deepEqual(await counted(metrics), { 'leaf/revoked': 1, 'core/handshake': 1, 'core/timeout': 1 });
  t.deepEqual(
    lines.map((l) => `${l.level} ${l.msg}`),
    ['warn peer refused', 'warn handshake failed', 'warn handshake failed'],
  );
});

test('duplicate identity: every refusal counted, one error line per identity per 10 s', async (t) => {
  const { refusals, metrics, lines } = harness();
  const detail = (name: string): string =>
    `${DUPLICATE_IDENTITY}: ${name} is already linked to another live process`;
  refusals.duplicateIdentity('g/core/core-1', detail('g/core/core-1'));
  refusals.handshakeFailed('core', 'g/core/core-1', 'auth', detail('g/core/core-1'));
  refusals.duplicateIdentity('g/core/core-2', detail('g/core/core-2'));
  // The same duplicate dialing in again and again: a new source port each time, one line.
  for (let port = 40_000; port < 40_100; port++)
    refusals.handshakeFailed('core', `10.0.0.9:${port}`, 'auth', detail('g/core/core-3'));
  t.deepEqual(await counted(metrics), { 'core/duplicate-identity': 103 });
  t.is(lines.filter((l) => l.level === 'error').length, 3, 'core-1, core-2 and core-3 once each');
});

test('the identities remembered for the duplicate-identity log are bounded', (t) => {
  const { refusals, lines } = harness();
  const bound = 4 * MAX_CORE_SERVERS;
  // Refusals that name no identity are known by their remote address: a new one per attempt.
  for (let port = 0; port < 3 * bound; port++)
    refusals.handshakeFailed('core', `10.0.0.9:${port}`, 'auth', DUPLICATE_IDENTITY);
  const remembered = (refusals as unknown as { duplicateLogged: Map<string, number> }).duplicateLogged;
  t.is(remembered.size, bound);
  t.true(remembered.has(`10.0.0.9:${3 * bound - 1}`), 'the newest stay');
  t.is(lines.length, 3 * bound);
});
