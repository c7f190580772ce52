/**
 * The deployment examples in docs/deploy: the systemd unit passes `systemd-analyze verify` with
 * no complaint about it (where the tool exists; skipped with a logged reason elsewhere), and the
 * StatefulSet probes readiness on /readyz and ships a PodDisruptionBudget of one.
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Compiled to <root>/<outDir>/test/docs/, so the sources are three levels up. */
const DEPLOY = fileURLToPath(new URL('../../../docs/deploy/', import.meta.url));

function run(cmd: string, args: readonly string[]): Promise<{ code: number | string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: 30_000 }, (err, _stdout, stderr) =>
      resolve({ code: err ? ((err as NodeJS.ErrnoException).code ?? 1) : 0, stderr }),
    );
  });
}

test('the systemd unit passes systemd-analyze verify without warnings', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kg-unit-'));
  try {
    // A template unit is verified as one of its instances.
    const unit = join(dir, 'keyglass@core-1.service');
    copyFileSync(join(DEPLOY, 'keyglass.service'), unit);
    const r = await run('systemd-analyze', ['verify', unit]);
    if (r.code === 'ENOENT') {
      t.log('skipped: systemd-analyze is not installed here');
      t.pass();
      return;
    }
    // Complaints about other units on this host are not the unit's; its own name the file.
    const own = r.stderr.split('\n').filter((l) => l.includes('keyglass@core-1.service'));
    t.deepEqual(own, []);
    t.is(r.code, 0, r.stderr);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the StatefulSet is ready on /readyz and ships a PodDisruptionBudget of one', (t) => {
  const yaml = readFileSync(join(DEPLOY, 'statefulset.yaml'), 'utf8');
  t.regex(yaml, /readinessProbe:\s*\n\s*httpGet: \{ path: \/readyz, port: admin \}/);
  t.regex(yaml, /livenessProbe:\s*\n\s*httpGet: \{ path: \/healthz, port: admin \}/);
  t.regex(
    yaml,
    /kind: PodDisruptionBudget[\s\S]*maxUnavailable: 1\n\s*selector:\n\s*matchLabels: \{ app: keyglass \}/,
  );
});

test("the StatefulSet's header names the config path its command reads", (t) => {
  const yaml = readFileSync(join(DEPLOY, 'statefulset.yaml'), 'utf8');
  const used = /server --config "([^"]+)\$\{POD_NAME\}\.json"/.exec(yaml)?.[1];
  t.truthy(used, 'the server command line');
  const header = yaml
    .split('\n')
    .filter((l) => l.startsWith('#'))
    .join('\n');
  t.true(header.includes(`${used}keyglass-N.json`), `header names ${used}keyglass-N.json`);
});
