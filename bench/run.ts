/**
 * Benchmark entry: `node dist/bench/run.js <suite> [--quick|--full] [--out DIR]`
 * (`npm run bench -- <suite>`). A suite is the default export of bench/suites/<name>.js, so
 * new suites need no registration here.
 */
import { existsSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  defaultResultsDir,
  TIMING_DEFAULT,
  TIMING_FULL,
  TIMING_QUICK,
  writeResults,
  type BenchContext,
  type BenchSuite,
} from './harness.js';

const SUITES_DIR = new URL('./suites/', import.meta.url);
const SUITE_NAME = /^[a-z0-9][a-z0-9-]*$/;

function availableSuites(): string[] {
  const dir = fileURLToPath(SUITES_DIR);
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.js'))
    .map((f) => f.slice(0, -3))
    .filter((n) => SUITE_NAME.test(n))
    .sort();
}

function fail(message: string): never {
  process.stderr.write(`bench: ${message}\n`);
  process.exit(2);
}

interface Args {
  readonly suite: string;
  readonly quick: boolean;
  readonly full: boolean;
  readonly out: string;
}

function parseArgs(argv: readonly string[]): Args {
  let suite: string | undefined;
  let quick = false;
  let full = false;
  let out = defaultResultsDir();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--quick') quick = true;
    else if (arg === '--full') full = true;
    else if (arg === '--out') out = argv[++i] ?? fail('--out needs a directory');
    else if (arg.startsWith('-')) fail(`unknown option '${arg}' (options: --quick, --full, --out DIR)`);
    else if (suite === undefined) suite = arg;
    else fail(`one suite at a time (got '${suite}' and '${arg}')`);
  }
  if (quick && full) fail('--quick and --full exclude each other');
  if (suite === undefined)
    fail(`usage: bench <suite> [--quick|--full] [--out DIR]; suites: ${availableSuites().join(', ')}`);
  return { suite, quick, full, out };
}

async function loadBenchSuite(name: string): Promise<BenchSuite> {
  const available = availableSuites();
  if (!SUITE_NAME.test(name) || !available.includes(name)) {
    fail(`unknown suite '${name}' (available: ${available.join(', ') || 'none'})`);
  }
  const mod = (await import(new URL(`${name}.js`, SUITES_DIR).href)) as { default?: BenchSuite };
  const suite = mod.default;
  if (suite === undefined || typeof suite.run !== 'function' || suite.name !== name) {
    fail(`bench/suites/${name}.js must default-export a BenchSuite named '${name}'`);
  }
  return suite;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const suite = await loadBenchSuite(args.suite);
  const ctx: BenchContext = {
    quick: args.quick,
    full: args.full,
    timing: args.quick ? TIMING_QUICK : args.full ? TIMING_FULL : TIMING_DEFAULT,
    log: (line) => process.stderr.write(`${line}\n`),
  };
  const started = performance.now();
  ctx.log(`bench ${suite.name}: ${suite.description}`);
  const results = await suite.run(ctx);
  const files = writeResults(suite, results, args.out);
  ctx.log(
    `bench ${suite.name}: ${results.length} results in ${((performance.now() - started) / 1000).toFixed(1)} s → ${files.json}, ${files.svg}`,
  );
}

main().catch((err: unknown) => {
  process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
