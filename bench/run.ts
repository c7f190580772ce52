/**
 * Benchmark entry: `node dist/bench/run.js [<suite> | report] [--quick|--full] [--out DIR]`
 * (`npm run bench -- <suite>`). A suite is the default export of bench/suites/<name>.js, so
 * new suites need no registration here. Without a suite every suite runs (each in its own
 * process, so one suite's heap does not weigh on the next) and bench/REPORT.md is rewritten;
 * `report` only rewrites REPORT.md from the JSON files already there.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { defaultReportFile, writeReport } from './report.js';
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

/** Not a suite name: regenerates REPORT.md from the existing results. */
const REPORT = 'report';

interface Args {
  /** undefined: every suite, then the report. */
  readonly suite: string | undefined;
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

function report(out: string): void {
  const { file, suites } = writeReport({ resultsDir: out, reportFile: defaultReportFile(out) });
  process.stderr.write(`bench: report of ${suites.length} suite(s) (${suites.join(', ')}) → ${file}\n`);
}

/** Every suite in a child process of its own, in name order; the report is written even if one fails. */
function runAll(args: Args): void {
  const suites = availableSuites();
  if (suites.length === 0) fail('no suites found');
  const flags = [...(args.quick ? ['--quick'] : []), ...(args.full ? ['--full'] : []), '--out', args.out];
  const failed: string[] = [];
  for (const name of suites) {
    const child = spawnSync(process.execPath, [fileURLToPath(import.meta.url), name, ...flags], {
      stdio: 'inherit',
    });
    if (child.status !== 0) failed.push(name);
  }
  report(args.out);
  if (failed.length > 0)
    fail(`suite(s) failed: ${failed.join(', ')} (the report keeps their previous results)`);
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (args.suite === undefined) return runAll(args);
  if (args.suite === REPORT) return report(args.out);
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
