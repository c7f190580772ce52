/**
 * `keyglass demo` (real mode) end to end, as a child process of the compiled CLI: a small run
 * passes its computed verdicts, and afterwards no server process is left and the temp dir is
 * gone — after a normal exit and after Ctrl-C in the middle of the run.
 */
import test, { type ExecutionContext } from 'ava';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { BIN } from '../../cli/cluster/index.js';
import { CliError } from '../../cli/index.js';
import { parseRealDemoArgs, REAL_DEMO_DEFAULTS } from '../../cli/demo-real/options.js';

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs `keyglass demo ARGS`; `onLine` may act on each stdout line (e.g. send a signal). */
function demo(args: readonly string[], onLine?: (line: string, pid: number) => void): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, 'demo', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let partial = '';
    const killer = setTimeout(() => child.kill('SIGKILL'), 55_000);
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (c: string) => (stderr += c));
    child.stdout.on('data', (c: string) => {
      stdout += c;
      partial += c;
      let i;
      while ((i = partial.indexOf('\n')) >= 0) {
        onLine?.(partial.slice(0, i), child.pid!);
        partial = partial.slice(i + 1);
      }
    });
    child.once('close', (code, signal) => {
      clearTimeout(killer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

const tempDirOf = (out: string): string => /temp dir (\S+)/.exec(out)?.[1] ?? '';
const adminPortsOf = (out: string): number[] =>
  [...out.matchAll(/metrics http:\/\/127\.0\.0\.1:(\d+)\/metrics/g)].map((m) => Number(m[1]));

/** Processes whose command line names the demo's temp dir (the servers' --config path). */
function processesUsing(dir: string): string[] {
  const ps = execFileSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' });
  return ps.split('\n').filter((l) => l.includes(dir) && l.includes(' server '));
}

async function adminAnswers(port: number): Promise<boolean> {
  try {
    await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(1000) });
    return true;
  } catch {
    return false;
  }
}

async function assertNothingLeft(t: ExecutionContext, out: string): Promise<void> {
  const dir = tempDirOf(out);
  t.true(dir.length > 0, 'the banner names the temp dir');
  t.false(existsSync(dir), `temp dir ${dir} removed`);
  t.deepEqual(processesUsing(dir), []);
  const ports = adminPortsOf(out);
  t.is(ports.length, 3);
  for (const p of ports) t.false(await adminAnswers(p), `admin port ${p} no longer answers`);
}

test.serial('a small real run passes its verdicts; no server process or temp dir is left', async (t) => {
  const t0 = Date.now();
  const r = await demo(['--leaves', '10', '--duration', '10']);
  t.log(`demo wall time ${Date.now() - t0} ms`);
  t.is(r.code, 0, `${r.stdout}\n${r.stderr}`);
  t.regex(r.stdout, /verdict: all current leaves agree on the key: yes, .* → PASS/);
  // Every phase of the script ran, with figures measured on the run.
  for (const phase of ['servers', 'join', 'churn', 'revoke', 'crash', 'restart'])
    t.regex(r.stdout, new RegExp(`^\\[\\s*[\\d.]+ s\\] ${phase} `, 'm'), `phase ${phase}`);
  t.regex(r.stdout, /rekey latency .* p50 \d+ ms {2}p99 \d+ ms/);
  t.regex(r.stdout, /coordinator SIGKILL\s+core-\d: primary view of the rest after \d+ ms/);
  t.regex(
    r.stdout,
    /revoked leaf\s+leaf-\d+: evicted \(revoked\) \d+ ms after the CRL; read 0 of \d+ messages/,
  );
  const m = /messages\s+(\d+) published, (\d+)\/(\d+) deliveries/.exec(r.stdout);
  t.truthy(m);
  t.true(Number(m![1]) > 10 && Number(m![2]) > 0 && Number(m![2]) <= Number(m![3]));
  await assertNothingLeft(t, r.stdout);
});

test.serial('Ctrl-C in the middle: exit 130, servers killed, temp dir removed', async (t) => {
  let sent = false;
  const r = await demo(['--leaves', '6', '--duration', '30'], (line, pid) => {
    if (!sent && /^\[\s*[\d.]+ s\] join /.test(line)) {
      sent = true;
      process.kill(pid, 'SIGINT');
    }
  });
  t.true(sent, r.stdout);
  t.is(r.code, 130, `${r.stdout}\n${r.stderr}`);
  t.regex(r.stdout, /verdict: interrupted/);
  await assertNothingLeft(t, r.stdout);
});

test('flags: defaults, ranges, bad values', (t) => {
  t.deepEqual(parseRealDemoArgs([]), REAL_DEMO_DEFAULTS);
  t.deepEqual(parseRealDemoArgs(['--leaves', '20', '--servers', '5', '--duration', '15', '--quiet']), {
    leaves: 20,
    servers: 5,
    durationS: 15,
    quiet: true,
  });
  t.throws(() => parseRealDemoArgs(['--servers', '2']), { instanceOf: CliError, message: /--servers/ });
  t.throws(() => parseRealDemoArgs(['--leaves', 'x']), { instanceOf: CliError });
  t.throws(() => parseRealDemoArgs(['--seed', '1']), { instanceOf: CliError });
});
