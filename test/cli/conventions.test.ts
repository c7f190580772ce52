/**
 * CLI conventions a newcomer reaches for: --version, progress on a long `ca issue --count`,
 * revocation reasons by name in `ca inspect`, a missing --out folder named before any work, and
 * `status` naming the connection error.
 */
import test from 'ava';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { issueArgs, keyglass, tempDir } from '../ca/run-cli.js';

const CA_PW = { KEYGLASS_CA_PASSPHRASE: 'ca secret phrase', KEYGLASS_KEY_PASSPHRASE: 'member secret' };
const VERSION = (
  JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

async function newCa(): Promise<{ work: string; dir: string }> {
  const work = tempDir('kg-conv-');
  const dir = join(work, 'ca');
  const r = await keyglass(['ca', 'init', '--dir', dir, '--name', 'Test CA'], { env: CA_PW });
  if (r.code !== 0) throw new Error(r.stderr);
  return { work, dir };
}

function listen(onConnection: (c: Socket) => void): Promise<Server> {
  return new Promise((resolve) => {
    const s = createServer(onConnection);
    s.listen(0, '127.0.0.1', () => resolve(s));
  });
}
const portOf = (s: Server): number => (s.address() as AddressInfo).port;

test('keyglass --version and -V print the package version', async (t) => {
  for (const flag of ['--version', '-V']) {
    const r = await keyglass([flag]);
    t.is(r.code, 0, r.stderr);
    t.is(r.stdout, `${VERSION}\n`);
  }
});

test('ca issue --out into a missing folder fails first, naming it; nothing is asked or written', async (t) => {
  const { work, dir } = await newCa();
  const before = readdirSync(join(dir, 'certs')).length;
  const missing = join(work, 'no', 'such');
  // No passphrases in the environment: reaching the CA key would fail differently.
  const r = await keyglass([...issueArgs(dir, 'leaf', 'x'), '--out', join(missing, 'x'), '--count', '3']);
  t.is(r.code, 1);
  t.is(r.stderr, `keyglass ca: --out: folder ${missing} does not exist (create it first)\n`);
  t.is(readdirSync(join(dir, 'certs')).length, before);
  t.false(existsSync(missing));
});

test('ca issue --count reports progress on stderr, the result stays one line on stdout', async (t) => {
  const { work, dir } = await newCa();
  const r = await keyglass(
    [...issueArgs(dir, 'leaf', 'n'), '--count', '20', '--out', join(work, 'n'), '--insecure-no-passphrase'],
    { env: CA_PW },
  );
  t.is(r.code, 0, r.stderr);
  const lines = r.stderr.trim().split('\n');
  t.deepEqual(
    lines,
    [2, 4, 6, 8, 10, 12, 14, 16, 18, 20]
      .map((n) => `keyglass ca issue: signed ${n}/20`)
      .concat([2, 4, 6, 8, 10, 12, 14, 16, 18, 20].map((n) => `keyglass ca issue: files written ${n}/20`)),
  );
  t.is(r.stdout.trim().split('\n').length, 1);
  t.true(existsSync(join(work, 'n-19.pem')));
});

test('ca inspect names revocation reasons as ca list does', async (t) => {
  const { work, dir } = await newCa();
  for (const name of ['a', 'b'])
    t.is(
      (
        await keyglass(
          [...issueArgs(dir, 'leaf', name), '--out', join(work, name), '--insecure-no-passphrase'],
          { env: CA_PW },
        )
      ).code,
      0,
    );
  t.is((await keyglass(['ca', 'revoke', '--dir', dir, '--name', 'a', '--reason', 'superseded'])).code, 0);
  t.is((await keyglass(['ca', 'revoke', '--dir', dir, '--name', 'b', '--reason', 'caCompromise'])).code, 0);
  const crl = await keyglass(['ca', 'crl', '--dir', dir, '--out', join(work, 'crl.pem')], { env: CA_PW });
  t.is(crl.code, 0, crl.stderr);
  const list = JSON.parse((await keyglass(['ca', 'list', '--dir', dir, '--json'])).stdout) as {
    serial: string;
    reason: string | null;
  }[];
  const inspected = await keyglass(['ca', 'inspect', join(work, 'crl.pem')]);
  t.is(inspected.code, 0, inspected.stderr);
  for (const rec of list) {
    t.truthy(rec.reason);
    t.regex(inspected.stdout, new RegExp(`^    ${rec.serial}  \\S+  ${rec.reason}$`, 'm'));
  }
});

test('status names the connection error: refused, reset, not HTTP', async (t) => {
  const closed = await listen(() => {});
  const closedPort = portOf(closed);
  await new Promise((r) => closed.close(r));
  const refused = await keyglass(['status', '--admin', `127.0.0.1:${closedPort}`]);
  t.is(refused.code, 1);
  t.regex(
    refused.stderr,
    new RegExp(`^keyglass status: ECONNREFUSED 127\\.0\\.0\\.1:${closedPort} — nothing listens there`),
  );

  const resetter = await listen((c) => c.destroy());
  const tlsLike = await listen((c) => c.end(Buffer.from([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x46])));
  t.teardown(() => {
    resetter.close();
    tlsLike.close();
  });
  const reset = await keyglass(['status', '--admin', `127.0.0.1:${portOf(resetter)}`]);
  t.regex(reset.stderr, /^keyglass status: (ECONNRESET|UND_ERR_SOCKET) 127\.0\.0\.1:\d+ — .*plain HTTP/);
  const notHttp = await keyglass(['status', '--admin', `127.0.0.1:${portOf(tlsLike)}`]);
  t.regex(notHttp.stderr, /^keyglass status: [A-Z_]+ 127\.0\.0\.1:\d+ — .*plain HTTP/);
  for (const r of [refused, reset, notHttp]) t.is(r.stderr.trim().split('\n').length, 1, r.stderr);
});
