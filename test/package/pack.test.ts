/**
 * The package as a user gets it: `npm pack` the project (its compiled dist/, no scripts run),
 * unpack the tarball as `node_modules/keyglass` of an empty project, and load both entry points
 * and the `keyglass` command from there in fresh node processes.
 *
 * Offline, so the declared dependencies are linked from this checkout's node_modules rather than
 * resolved by npm (this machine's npm cache holds no registry metadata). What it proves: the
 * tarball holds every file the entry points and the command load, `exports` maps `keyglass` and
 * `keyglass/leaf`, every package the shipped code imports is a declared dependency, and
 * `keyglass/leaf` loads no server, CA, metrics or @peculiar/x509 code nor adds a global. What it
 * does not: that npm resolves those dependencies' version ranges (`npm ls` / `npm ci` do that).
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import {
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  version: string;
  dependencies: Record<string, string>;
};
/** Far above what ships today (~390 files): a regression guard against tests or results leaking in. */
const MAX_FILES = 600;
const CHILD_TIMEOUT_MS = 60_000;

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

function run(cmd: string, args: readonly string[], cwd: string): Promise<Run> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd, timeout: CHILD_TIMEOUT_MS, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

/** Every file under `dir`, relative to it. */
function walk(dir: string, base = dir): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? walk(p, base) : [p.slice(base.length + 1)];
  });
}

/** A loader hook that prints every module URL the process resolves (on stderr, one per line). */
const TRACE_HOOKS = `export async function resolve(s, c, next) {
  const r = await next(s, c);
  if (!r.url.startsWith('node:')) process.stderr.write('RESOLVED ' + r.url + '\\n');
  return r;
}`;

test('npm pack ships what users run; both entry points load from the tarball; keyglass/leaf adds no global', async (t) => {
  const work = mkdtempSync(join(tmpdir(), 'kg-pack-'));
  t.teardown(() => rmSync(work, { recursive: true, force: true }));

  const packed = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], ROOT);
  t.is(packed.code, 0, packed.stderr);
  const [info] = JSON.parse(packed.stdout) as { filename: string; files: { path: string }[] }[];
  const files = info!.files.map((f) => f.path);
  t.true(files.length < MAX_FILES, `${files.length} files`);
  for (const must of [
    'LICENSE',
    'README.md',
    'package.json',
    'bin/keyglass.js',
    'dist/index.js',
    'dist/leaf.js',
    'dist/leaf.d.ts',
    'dist/cli/bin.js',
    'dist/server/leaf-port-thread.js',
  ])
    t.true(files.includes(must), `${must} is shipped`);
  const leaked = files.filter(
    (f) => /^(dist\/)?(test|bench)\/|^\.ci\/|\.map$|\.ts$/.test(f) && !f.endsWith('.d.ts'),
  );
  t.deepEqual(leaked, [], 'no tests, bench results, CI scripts, sources or maps');

  // Unpack as an installed dependency of an empty project; link the declared dependencies.
  const app = join(work, 'app');
  const installed = join(app, 'node_modules', 'keyglass');
  mkdirSync(installed, { recursive: true });
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
  const untar = await run(
    'tar',
    ['-xzf', join(work, info!.filename), '-C', installed, '--strip-components=1'],
    app,
  );
  t.is(untar.code, 0, untar.stderr);
  for (const dep of Object.keys(pkg.dependencies)) {
    const link = join(app, 'node_modules', dep);
    mkdirSync(dirname(link), { recursive: true });
    symlinkSync(join(ROOT, 'node_modules', dep), link, 'dir');
  }

  // Every package the shipped code imports is declared (a missing one would work here, in the
  // repository, and fail for a user).
  const bare = new Set<string>();
  for (const f of walk(installed).filter((f) => f.endsWith('.js'))) {
    const src = readFileSync(join(installed, f), 'utf8');
    for (const m of src.matchAll(
      /(?:^|[;\s])(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|^import\s+['"]([^'"]+)['"]/gm,
    )) {
      const spec = m[1] ?? m[2] ?? m[3]!;
      if (spec.startsWith('.') || spec.startsWith('node:')) continue;
      bare.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!);
    }
  }
  t.deepEqual(
    [...bare].filter((d) => !(d in pkg.dependencies)),
    [],
    'undeclared dependencies',
  );

  writeFileSync(join(app, 'trace-hooks.mjs'), TRACE_HOOKS);
  writeFileSync(
    join(app, 'trace.mjs'),
    `import { register } from 'node:module'; register('./trace-hooks.mjs', import.meta.url);`,
  );
  const leaf = await run(
    process.execPath,
    [
      '--import',
      './trace.mjs',
      '--input-type=module',
      '-e',
      `const before = Object.getOwnPropertyNames(globalThis).sort().join();
       const m = await import('keyglass/leaf');
       console.log(JSON.stringify({
         leafClient: typeof m.LeafClient,
         getMetadata: typeof globalThis.Reflect.getMetadata,
         newGlobals: Object.getOwnPropertyNames(globalThis).sort().join() === before,
       }));`,
    ],
    app,
  );
  t.is(leaf.code, 0, leaf.stderr);
  t.deepEqual(JSON.parse(leaf.stdout), {
    leafClient: 'function',
    getMetadata: 'undefined',
    newGlobals: true,
  });
  const resolved = leaf.stderr
    .split('\n')
    .filter((l) => l.startsWith('RESOLVED '))
    .map((l) => l.slice(9));
  t.true(
    resolved.some((u) => u.includes('/node_modules/keyglass/dist/leaf-sdk/')),
    'the trace sees the SDK',
  );
  const unwanted = resolved.filter((u) =>
    /\/(prom-client|@peculiar|reflect-metadata|node-forge)\/|\/keyglass\/dist\/(server|ca-tools|core-group|leaf-plane|sim|cli)\//.test(
      u,
    ),
  );
  t.deepEqual(unwanted, [], 'keyglass/leaf loads no server, CA, metrics or x509 module');

  const main = await run(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `const m = await import('keyglass');
       console.log(JSON.stringify([typeof m.LeafClient, typeof m.server.KeyServer, typeof m.auth.PeerVerifier]));`,
    ],
    app,
  );
  t.is(main.code, 0, main.stderr);
  t.deepEqual(JSON.parse(main.stdout), ['function', 'function', 'function']);

  // The command runs from the tarball (dist/ is shipped: a tarball install runs no `prepare`).
  const version = await run(process.execPath, [join(installed, 'bin', 'keyglass.js'), '--version'], app);
  t.is(version.code, 0, version.stderr);
  t.is(version.stdout.trim(), pkg.version);
});
