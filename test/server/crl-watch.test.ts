/**
 * The CRL file watch of a running server: a reload that fails in an unexpected way (not a bad
 * CRL, which is a CrlError and logged as such) is logged as an error by the server's event rule,
 * never left as an unhandled rejection — which ends a Node process.
 */
import test from 'ava';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RevocationRegistry } from '../../auth/index.js';
import { CrlWatch, GuardedEvents, ServerMetrics, type Logger } from '../../server/index.js';
import { until } from './cluster.js';

test('a reload failing with an unexpected error (here: reading the anchors) is logged, not unhandled', async (t) => {
  const path = join(mkdtempSync(join(tmpdir(), 'kg-crlwatch-')), 'ca.crl');
  writeFileSync(path, 'not yet\n');
  const errors: string[] = [];
  const log: Logger = {
    debug() {},
    info() {},
    warn() {},
    error: (msg, fields) => void errors.push(`${msg}: ${String(fields?.['error'])}`),
  };
  const events = new GuardedEvents(log, () => t.fail('not a store failure'));
  const watch = new CrlWatch({
    path,
    pollMs: 20,
    revocation: new RevocationRegistry(),
    anchors: () => {
      throw new TypeError('anchors unavailable');
    },
    mesh: { revoke: () => [] },
    leafPort: { crlLoaded: () => {} },
    plane: { crlInstalled: () => false, pushCrl: () => 0, revoked: () => [] },
    metrics: new ServerMetrics(),
    log,
    events,
  });
  watch.start();
  try {
    await new Promise((r) => setTimeout(r, 60));
    writeFileSync(path, 'changed: the watch reloads\n');
    await until('the failed reload logged', () => errors.length > 0, 5000);
    t.deepEqual(errors, ['CRL reload failed: anchors unavailable']);
  } finally {
    watch.stop();
    events.stop();
  }
});
