/**
 * Shared benchmark machinery: a timing helper (warm-up, then the median of several timed
 * runs), machine/commit metadata, and the JSON + SVG result writers. Suites (bench/suites/*.ts)
 * only describe what to measure.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderDocument, type Chart } from './svg.js';

export type ParamValue = string | number | boolean;

export interface BenchResult {
  /** What was measured, e.g. "ed25519.sign". */
  readonly case: string;
  /** Inputs that distinguish this row, e.g. { backend: 'fast', bytes: 1024 }. */
  readonly params: Readonly<Record<string, ParamValue>>;
  /** Measured numbers with their unit in the name, e.g. opsPerSec, MBps, nsPerOp. */
  readonly metrics: Readonly<Record<string, number>>;
}

export interface BenchContext {
  /** --quick: short runs for a smoke check (CI); figures are noisier. */
  readonly quick: boolean;
  /** --full: longer runs and larger parameter sweeps. */
  readonly full: boolean;
  /** Timing settings derived from the flags; pass to `measure`. */
  readonly timing: TimingOptions;
  /** Progress output (one line per case), to stderr so stdout stays clean. */
  log(line: string): void;
}

export interface BenchSuite {
  readonly name: string;
  readonly description: string;
  run(ctx: BenchContext): Promise<BenchResult[]>;
  /** Charts for the SVG; without it the harness draws one bar per case of the first metric. */
  charts?(results: readonly BenchResult[]): Chart[];
}

export interface TimingOptions {
  /** Time spent running the operation before any measurement (JIT, caches). */
  readonly warmupMs: number;
  /** Number of timed runs; the median is reported. */
  readonly runs: number;
  /** Minimum duration of each timed run. */
  readonly runMs: number;
}

export interface Timing {
  readonly opsPerSec: number;
  readonly nsPerOp: number;
  /** (max − min) / median of the per-run rates, in percent: how noisy the figure is. */
  readonly spreadPct: number;
  readonly runs: number;
}

export const TIMING_DEFAULT: TimingOptions = { warmupMs: 100, runs: 5, runMs: 200 };
export const TIMING_QUICK: TimingOptions = { warmupMs: 20, runs: 3, runMs: 50 };
export const TIMING_FULL: TimingOptions = { warmupMs: 300, runs: 9, runMs: 500 };

/** Results are kept here so the optimizer cannot drop the measured call. */
let sink: unknown;
export function lastSink(): unknown {
  return sink;
}

function nowNs(): bigint {
  return process.hrtime.bigint();
}

/** Runs `fn` in batches until at least `ms` elapsed; returns [operations, elapsed ns]. */
function runFor(fn: () => unknown, ms: number, batch: number): [number, number] {
  const limit = BigInt(Math.round(ms * 1e6));
  const start = nowNs();
  let ops = 0;
  let elapsed = 0n;
  do {
    for (let i = 0; i < batch; i++) sink = fn();
    ops += batch;
    elapsed = nowNs() - start;
  } while (elapsed < limit);
  return [ops, Number(elapsed)];
}

function median(sorted: readonly number[]): number {
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

interface Calibrated {
  readonly fn: () => unknown;
  readonly batch: number;
  readonly rates: number[];
}

/** Warm up `fn` and pick a batch size that makes clock reads negligible (~1 ms per batch). */
function calibrate(fn: () => unknown, options: TimingOptions): Calibrated {
  const [warmOps, warmNs] = runFor(fn, Math.max(options.warmupMs, 1), 1);
  const batch = Math.max(1, Math.min(10_000, Math.floor((1e6 * warmOps) / warmNs)));
  return { fn, batch, rates: [] };
}

function summarize(rates: number[], runs: number): Timing {
  rates.sort((a, b) => a - b);
  const opsPerSec = median(rates);
  const spreadPct = (100 * ((rates[rates.length - 1] as number) - (rates[0] as number))) / opsPerSec;
  return { opsPerSec, nsPerOp: 1e9 / opsPerSec, spreadPct, runs };
}

/**
 * Measures alternatives side by side: after warm-up, timed runs are interleaved round-robin
 * (A B C, A B C, …) so that background load on a shared machine hits every alternative
 * alike; each alternative reports the median of its runs.
 */
export function measureSideBySide(fns: ReadonlyArray<() => unknown>, options: TimingOptions): Timing[] {
  if (options.runs < 1 || options.runMs <= 0)
    throw new RangeError('measure: runs ≥ 1 and runMs > 0 required');
  const cases = fns.map((fn) => calibrate(fn, options));
  for (let r = 0; r < options.runs; r++) {
    for (const c of cases) {
      const [ops, ns] = runFor(c.fn, options.runMs, c.batch);
      c.rates.push((ops * 1e9) / ns);
    }
  }
  return cases.map((c) => summarize(c.rates, options.runs));
}

/** Measures one synchronous operation: warm-up, then the median rate of `runs` timed runs. */
export function measure(fn: () => unknown, options: TimingOptions): Timing {
  return measureSideBySide([fn], options)[0] as Timing;
}

export interface MachineInfo {
  readonly cpus: number;
  readonly cpuModel: string;
  readonly node: string;
}

export function machineInfo(): MachineInfo {
  const list = cpus();
  return { cpus: list.length, cpuModel: list[0]?.model.trim() ?? 'unknown', node: process.version };
}

export function gitCommit(): string {
  try {
    return (
      execFileSync('git', ['rev-parse', '--short', 'HEAD'], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      }).trim() || 'unknown'
    );
  } catch {
    return 'unknown';
  }
}

export interface ResultFile {
  readonly suite: string;
  readonly commit: string;
  readonly date: string;
  readonly machine: MachineInfo;
  readonly results: readonly BenchResult[];
}

/** bench/results/ in the source tree: compiled harness lives at <root>/<outDir>/bench/harness.js. */
export function defaultResultsDir(): string {
  return fileURLToPath(new URL('../../bench/results/', import.meta.url));
}

/** Writes `<dir>/<suite>.json` and `<dir>/<suite>.svg`; returns both paths. */
export function writeResults(
  suite: BenchSuite,
  results: readonly BenchResult[],
  dir: string,
): { json: string; svg: string } {
  mkdirSync(dir, { recursive: true });
  const file: ResultFile = {
    suite: suite.name,
    commit: gitCommit(),
    date: new Date().toISOString(),
    machine: machineInfo(),
    results,
  };
  const json = join(dir, `${suite.name}.json`);
  writeFileSync(json, JSON.stringify(file, null, 2) + '\n');
  const charts = suite.charts?.(results) ?? [defaultChart(suite.name, results)];
  const svg = join(dir, `${suite.name}.svg`);
  const m = file.machine;
  writeFileSync(
    svg,
    renderDocument(charts, `${suite.name} · ${file.commit} · ${m.cpuModel} ×${m.cpus} · node ${m.node}`),
  );
  return { json, svg };
}

function defaultChart(name: string, results: readonly BenchResult[]): Chart {
  const metric = Object.keys(results[0]?.metrics ?? {})[0] ?? 'value';
  return {
    kind: 'bar',
    title: name,
    unit: metric,
    groups: results.map((r) => ({
      label: `${r.case} ${Object.values(r.params).join(' ')}`,
      bars: [{ series: metric, value: r.metrics[metric] ?? 0 }],
    })),
  };
}

/** Formats a rate compactly for tables and labels: 1234567 → "1.23M". */
export function formatRate(x: number): string {
  if (x >= 1e6) return `${(x / 1e6).toPrecision(3)}M`;
  if (x >= 1e3) return `${(x / 1e3).toPrecision(3)}k`;
  return x.toPrecision(3);
}
