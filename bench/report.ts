/**
 * bench/REPORT.md generator: reads every `<suite>.json` in the results directory and renders one
 * markdown section per suite (provenance, the SVG plot, one table per case) plus the anchors
 * that sit side by side with our figures (ts-mls in keytree, raw libraries in crypto, published
 * figures from the literature). Numbers come only from the JSON files or the cited constants.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import type { BenchResult, ParamValue, ResultFile } from './harness.js';

/** A published figure quoted next to our measurements; `source` must say where it comes from. */
export interface PublishedAnchor {
  readonly suite: string;
  readonly what: string;
  readonly figure: string;
  readonly setting: string;
  readonly source: string;
}

/**
 * Figures from the literature. They are not comparable one-to-one (other hardware, other
 * protocols) and are shown as orientation only. The Bimodal Multicast paper's measured figures
 * are left out: we could not re-check them against the paper here; the gossip suite is anchored
 * to the classic analytical bound for push rumour spreading instead.
 */
export const PUBLISHED_ANCHORS: readonly PublishedAnchor[] = [
  {
    suite: 'core-rekey',
    what: 'Ensemble Rekey_dt (distributed tree rekey, Rodeh)',
    figure: '≈ 100 ms per rekey at 20 members',
    setting: '2000-era hardware, real network',
    source:
      'O. Rodeh, K. Birman, D. Dolev, "Using AVL Trees for Fault Tolerant Group Key Management", Int. J. Inf. Secur. 1(2), 2002 (tech. report 2000); figure as given in the Keyglass project brief',
  },
  {
    suite: 'core-rekey',
    what: 'mls-rs commit (MLS, Rust)',
    figure: '13.7 ms per commit at 128 members',
    setting: 'figure as given in the Keyglass project brief (mls-rs benchmarks); not re-measured here',
    source: 'awslabs/mls-rs benchmark figures',
  },
  {
    suite: 'gossip',
    what: 'push rumour spreading, one random target per informed node per round (analysis)',
    figure: 'log₂ n + ln n + O(1) rounds to reach all n w.h.p.: ≈ 17 at 10³, ≈ 34 at 10⁶',
    setting: 'complete graph, no loss, no failures; our push-then-anti-entropy runs with fan-out 4',
    source:
      'B. Pittel, "On Spreading a Rumor", SIAM J. Appl. Math. 47(1), 1987; A. M. Frieze, G. R. Grimmett, "The shortest-path problem for graphs with random arc-lengths", Discrete Appl. Math. 10, 1985',
  },
];

/** Strings longer than this (e.g. gossip delivery curves) are listed under the table, not in it. */
const MAX_CELL_CHARS = 40;

export class ReportError extends Error {
  override readonly name = 'ReportError';
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Checks the shape `writeResults` produces; a malformed file is a ReportError naming it. */
export function parseResultFile(text: string, name: string): ResultFile {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ReportError(`${name}: not JSON (${(e as Error).message})`);
  }
  const bad = (what: string): never => {
    throw new ReportError(`${name}: ${what}`);
  };
  if (!isRecord(json)) return bad('not an object');
  const { suite, commit, date, machine, results } = json;
  if (typeof suite !== 'string' || typeof commit !== 'string' || typeof date !== 'string')
    return bad('suite, commit and date must be strings');
  if (!isRecord(machine) || typeof machine['cpus'] !== 'number' || typeof machine['cpuModel'] !== 'string')
    return bad('machine must have cpus and cpuModel');
  if (typeof machine['node'] !== 'string') return bad('machine.node must be a string');
  if (!Array.isArray(results)) return bad('results must be a list');
  for (const [i, r] of results.entries()) {
    if (!isRecord(r) || typeof r['case'] !== 'string' || !isRecord(r['params']) || !isRecord(r['metrics']))
      return bad(`results[${i}] must have case, params and metrics`);
    for (const v of Object.values(r['metrics']))
      if (typeof v !== 'number') return bad(`results[${i}].metrics must be numbers`);
  }
  return json as unknown as ResultFile;
}

/** Every `*.json` in `dir`, sorted by suite name. */
export function loadResultFiles(dir: string): ResultFile[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .map((f) => parseResultFile(readFileSync(join(dir, f), 'utf8'), f))
    .sort((a, b) => a.suite.localeCompare(b.suite));
}

/** Compact, exact-looking numbers: integers with separators, others to 3 significant digits. */
export function formatNumber(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  if (Number.isInteger(x)) return x.toLocaleString('en-US');
  const abs = Math.abs(x);
  if (abs >= 1000) return Math.round(x).toLocaleString('en-US');
  return Number(x.toPrecision(3)).toString();
}

function cell(v: ParamValue | number | undefined): string {
  if (v === undefined) return '—';
  if (typeof v === 'number') return formatNumber(v);
  return String(v).replace(/\|/g, '\\|');
}

function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const line = (cells: readonly string[]): string => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

function unionKeys(records: readonly Readonly<Record<string, unknown>>[]): string[] {
  const keys: string[] = [];
  for (const r of records) for (const k of Object.keys(r)) if (!keys.includes(k)) keys.push(k);
  return keys;
}

/** One table per case, in first-seen order; long string params are listed below the table. */
function caseTables(results: readonly BenchResult[]): string[] {
  const cases = [...new Set(results.map((r) => r.case))];
  return cases.map((name) => {
    const rows = results.filter((r) => r.case === name);
    const long = new Set(
      unionKeys(rows.map((r) => r.params)).filter((k) =>
        rows.some((r) => typeof r.params[k] === 'string' && String(r.params[k]).length > MAX_CELL_CHARS),
      ),
    );
    const params = unionKeys(rows.map((r) => r.params)).filter((k) => !long.has(k));
    const metrics = unionKeys(rows.map((r) => r.metrics));
    const body = rows.map((r) => [
      ...params.map((k) => cell(r.params[k])),
      ...metrics.map((k) => cell(r.metrics[k])),
    ]);
    const parts = [`#### \`${name}\``, '', table([...params, ...metrics], body)];
    for (const k of long) {
      parts.push('', `\`${k}\` per row:`, '');
      for (const r of rows) {
        const id = params.map((p) => `${p}=${cell(r.params[p])}`).join(' ');
        parts.push(`- ${id}: \`${String(r.params[k] ?? '')}\``);
      }
    }
    return parts.join('\n');
  });
}

function num(r: BenchResult | undefined, metric: string): number | undefined {
  return r?.metrics[metric];
}

/** keytree: Keyglass LKH single leave vs ts-mls remove at the same n (same process, same run). */
function keytreeAnchors(file: ResultFile): string | undefined {
  const mls = file.results.filter((r) => r.case === 'mls-remove');
  if (mls.length === 0) return undefined;
  const rows = mls.map((m) => {
    const n = m.params['n'];
    const lkh = file.results.find((r) => r.case === 'leave' && r.params['n'] === n);
    const server = num(lkh, 'server_ms');
    const create = num(m, 'create_ms');
    return [
      cell(n),
      cell(server),
      cell(create),
      server !== undefined && create !== undefined ? `${formatNumber(create / server)}×` : '—',
      cell(num(lkh, 'message_bytes')),
      cell(num(m, 'message_bytes')),
      lkh ? `${cell(num(lkh, 'leaf_us'))} µs` : '—',
      `${cell(num(m, 'process_ms'))} ms`,
    ];
  });
  return [
    'Side by side with **ts-mls** (MLS remove + commit, measured in the same run). LKH is a',
    'centralised key server tree and MLS a peer-to-peer ratchet tree with its own guarantees, so',
    'this is a cost comparison, not a like-for-like protocol comparison.',
    '',
    table(
      [
        'n',
        'LKH leave server ms',
        'ts-mls remove create ms',
        'ratio',
        'LKH message B',
        'ts-mls message B',
        'LKH per-leaf (deepest)',
        'ts-mls process',
      ],
      rows,
    ),
  ].join('\n');
}

/** crypto: our `fast` backend against the fastest raw library call of the same case and size. */
function cryptoAnchors(file: ResultFile): string | undefined {
  const ours = file.results.filter((r) => r.params['impl'] === 'fast');
  const rows: string[][] = [];
  for (const f of ours) {
    const same = file.results.filter(
      (r) =>
        r.case === f.case &&
        r.params['bytes'] === f.params['bytes'] &&
        !String(r.params['impl']).startsWith('fast') &&
        r.params['impl'] !== 'noble',
    );
    if (same.length === 0) continue;
    const best = same.reduce((a, b) => ((num(b, 'opsPerSec') ?? 0) > (num(a, 'opsPerSec') ?? 0) ? b : a));
    const a = num(f, 'opsPerSec');
    const b = num(best, 'opsPerSec');
    rows.push([
      f.case,
      cell(f.params['bytes']),
      cell(a),
      cell(String(best.params['impl'])),
      cell(b),
      a !== undefined && b !== undefined ? formatNumber(a / b) : '—',
    ]);
  }
  if (rows.length === 0) return undefined;
  return [
    'Keyglass `fast` backend (through the CipherSuite interface) against the fastest raw library',
    'call of the same operation and size, timed interleaved in the same process. A ratio near 1',
    'means the abstraction costs nothing; the `spreadPct` column of the results says how noisy each row is.',
    '',
    table(['case', 'bytes', 'fast ops/s', 'best raw anchor', 'anchor ops/s', 'fast / anchor'], rows),
  ].join('\n');
}

const SUITE_ANCHORS: Readonly<Record<string, (f: ResultFile) => string | undefined>> = {
  keytree: keytreeAnchors,
  crypto: cryptoAnchors,
};

function publishedSection(suite: string): string | undefined {
  const rows = PUBLISHED_ANCHORS.filter((a) => a.suite === suite);
  if (rows.length === 0) return undefined;
  return [
    'Published figures for orientation (other hardware and protocols; not measured here):',
    '',
    table(
      ['system', 'figure', 'setting', 'source'],
      rows.map((a) => [a.what, a.figure, a.setting, a.source]),
    ),
  ].join('\n');
}

export interface ReportOptions {
  /** Directory holding the JSON/SVG files. */
  readonly resultsDir: string;
  /** Where REPORT.md goes; image links are made relative to it. */
  readonly reportFile: string;
}

/** Renders the whole report from already-loaded result files. Pure: no clock, no file access. */
export function renderReport(
  files: readonly ResultFile[],
  opts: ReportOptions,
  svgExists: (suite: string) => boolean,
): string {
  const rel = relative(dirname(opts.reportFile), opts.resultsDir).split('\\').join('/') || '.';
  const out: string[] = [
    '# Keyglass benchmark report',
    '',
    '<!-- Generated by bench/report.ts from bench/results/*.json: `npm run bench -- report`. Do not edit by hand. -->',
    '',
    'Every figure below is read from the JSON a benchmark run wrote; each suite names the commit,',
    'date and machine it ran on. Runs on a shared or small machine are noisy: compare rows of one',
    'suite with each other (they were measured side by side), and treat absolute timings as',
    'indicative. Byte counts and round counts are exact.',
    '',
  ];
  if (files.length === 0) out.push('_No results yet: run `npm run bench`._', '');
  else {
    out.push('| suite | commit | date | machine | rows |', '| --- | --- | --- | --- | --- |');
    for (const f of files)
      out.push(
        `| [${f.suite}](#${f.suite}) | ${f.commit} | ${f.date} | ${f.machine.cpus} × ${f.machine.cpuModel}, node ${f.machine.node} | ${f.results.length} |`,
      );
    out.push('');
  }
  const suites = new Set(files.map((f) => f.suite));
  for (const f of files) {
    out.push(`## ${f.suite}`, '');
    out.push(
      `Commit \`${f.commit}\`, ${f.date}; ${f.machine.cpus} × ${f.machine.cpuModel}, node ${f.machine.node}.`,
      '',
    );
    if (svgExists(f.suite)) out.push(`![${f.suite} plot](${rel}/${f.suite}.svg)`, '');
    const anchors = SUITE_ANCHORS[f.suite]?.(f);
    if (anchors !== undefined) out.push('### Anchors', '', anchors, '');
    const published = publishedSection(f.suite);
    if (published !== undefined) out.push(anchors === undefined ? '### Anchors' : '', '', published, '');
    out.push('### Results', '', ...caseTables(f.results).flatMap((t) => [t, '']));
  }
  // Published anchors whose suite has no results yet still appear, clearly marked as such.
  for (const suite of [...new Set(PUBLISHED_ANCHORS.map((a) => a.suite))].filter((s) => !suites.has(s))) {
    out.push(`## ${suite}`, '', `_No results yet: run \`npm run bench -- ${suite}\`._`, '');
    out.push(publishedSection(suite) ?? '', '');
  }
  return `${out
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')
    .trimEnd()}\n`;
}

/** Reads `resultsDir`, writes the report; returns its path and the suites it covers. */
export function writeReport(opts: ReportOptions): { file: string; suites: string[] } {
  const files = loadResultFiles(opts.resultsDir);
  const text = renderReport(files, opts, (s) => existsSync(join(opts.resultsDir, `${s}.svg`)));
  writeFileSync(opts.reportFile, text);
  return { file: opts.reportFile, suites: files.map((f) => f.suite) };
}

/** REPORT.md sits next to the results directory (bench/results → bench/REPORT.md). */
export function defaultReportFile(resultsDir: string): string {
  return join(dirname(resultsDir.replace(/[\\/]+$/, '')), 'REPORT.md');
}
