/**
 * `keyglass leaf` and its CRL: the config's `crl`, `crlPollMs` and `requireFreshCrl` fields (and
 * their refusals), and the file watch that hands a changed CRL to the client.
 */
import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CliError } from '../../cli/index.js';
import { DEFAULT_CRL_POLL_MS, loadLeafConfig, watchCrlFile } from '../../cli/leaf.js';

function dir(t: { teardown(fn: () => void): void }): string {
  const d = mkdtempSync(join(tmpdir(), 'kg-leaf-crl-'));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  for (const f of ['leaf.pem', 'leaf.key', 'ca.pem']) writeFileSync(join(d, f), `${f}\n`);
  writeFileSync(join(d, 'ca.crl'), 'CRL v1\n');
  return d;
}

function config(d: string, extra: Record<string, unknown>): string {
  const file = join(d, 'leaf.json');
  writeFileSync(
    file,
    JSON.stringify({
      servers: ['127.0.0.1:7000'],
      cert: 'leaf.pem',
      key: 'leaf.key',
      trustAnchors: 'ca.pem',
      ...extra,
    }),
  );
  return file;
}

test('crl, crlPollMs and requireFreshCrl are read from the config, with defaults', (t) => {
  const d = dir(t);
  const plain = loadLeafConfig(config(d, {}));
  t.is(plain.crl, undefined);
  t.is(plain.crlPollMs, DEFAULT_CRL_POLL_MS);
  t.false(plain.requireFreshCrl);
  const full = loadLeafConfig(config(d, { crl: 'ca.crl', crlPollMs: 200, requireFreshCrl: true }));
  t.deepEqual(full.crl, { path: join(d, 'ca.crl'), pem: 'CRL v1\n' });
  t.is(full.crlPollMs, 200);
  t.true(full.requireFreshCrl);
});

test('bad crl fields are refused with one line naming the field', (t) => {
  const d = dir(t);
  const refused = (extra: Record<string, unknown>): string =>
    t.throws(() => loadLeafConfig(config(d, extra)), { instanceOf: CliError })!.message;
  t.regex(refused({ crl: 'missing.crl' }), /^crl: cannot read missing\.crl \(ENOENT\)$/);
  t.regex(refused({ crl: '' }), /^crl: must be a file path$/);
  t.regex(refused({ crlPollMs: 10 }), /^crlPollMs: must be an integer 50\.\.3600000$/);
  t.regex(refused({ crlPollMs: 'often' }), /^crlPollMs: /);
  t.regex(refused({ requireFreshCrl: 'yes' }), /^requireFreshCrl: must be true or false$/);
});

test('a changed CRL file is handed to the client; failures are reported, not thrown', async (t) => {
  const d = dir(t);
  const path = join(d, 'ca.crl');
  const seen: string[] = [];
  const reports: Record<string, unknown>[] = [];
  const stop = watchCrlFile(
    path,
    50,
    (pem) => {
      seen.push(pem);
      return pem.includes('old')
        ? Promise.reject(new Error('CRL number 1 is older than the installed 2'))
        : Promise.resolve({ applied: 1, ignored: 0 });
    },
    (o) => reports.push(o),
  );
  t.teardown(stop);
  const until = async (cond: () => boolean): Promise<void> => {
    const end = Date.now() + 5000;
    while (!cond() && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  };
  await new Promise((r) => setTimeout(r, 120)); // the watch takes its first look at the file
  writeFileSync(path, 'CRL v2, a longer one\n');
  await until(() => reports.length >= 1);
  t.deepEqual(seen, ['CRL v2, a longer one\n']);
  t.deepEqual(reports[0], { event: 'crl', path, applied: 1, ignored: 0 });
  writeFileSync(path, 'CRL old\n');
  await until(() => reports.length >= 2);
  t.deepEqual(reports[1], { event: 'error', error: 'crl: CRL number 1 is older than the installed 2' });
  stop();
  writeFileSync(path, 'CRL v3 after the watch stopped\n');
  await new Promise((r) => setTimeout(r, 200));
  t.is(seen.length, 2, 'no reload once stopped');
});
