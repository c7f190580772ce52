/**
 * What the key server's ports refuse (server/refusals.ts): each refusal counted once under its
 * reason, duplicate-identity error lines at most once per peer per 10 s, and the peers remembered
 * for that bounded (a refused inbound duplicate is known by its address, port included).
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

test('duplicate identity: every refusal counted, one error line per peer per 10 s', async (t) => {
  const { refusals, metrics, lines } = harness();
  const detail = `${DUPLICATE_IDENTITY}: g/core/core-1 is already linked to another live process`;
  refusals.duplicateIdentity('g/core/core-1', detail);
  refusals.handshakeFailed('core', 'g/core/core-1', 'auth', detail);
  refusals.duplicateIdentity('g/core/core-2', detail);
  t.deepEqual(await counted(metrics), { 'core/duplicate-identity': 3 });
  t.is(lines.filter((l) => l.level === 'error').length, 2, 'core-1 once, core-2 once');
});

test('the peers remembered for the duplicate-identity log are bounded', (t) => {
  const { refusals } = harness();
  const bound = 4 * MAX_CORE_SERVERS;
  // A duplicate that keeps dialing: each attempt comes from a new source port.
  for (let port = 0; port < 3 * bound; port++)
    refusals.handshakeFailed('core', `10.0.0.9:${port}`, 'auth', `${DUPLICATE_IDENTITY}: g/core/core-1`);
  const remembered = (refusals as unknown as { duplicateLogged: Map<string, number> }).duplicateLogged;
  t.is(remembered.size, bound);
  t.true(remembered.has(`10.0.0.9:${3 * bound - 1}`), 'the newest stay');
});
