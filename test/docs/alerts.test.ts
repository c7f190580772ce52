/**
 * docs/monitoring/alerts.yml: the alerts docs/operations.md recommends. promtool checks the
 * rules and runs their unit tests (alerts.test.yml); every metric they name must be one a server
 * registers (read from a live registry, as for the dashboard), so a renamed metric cannot leave
 * an alert that never fires.
 */
import test from 'ava';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Readiness, ServerMetrics, jsonLogger } from '../../server/index.js';
import { PROMTOOL_ABSENT, promtool, promtoolVersion } from './promtool.js';
import { metricNames, resolve } from './promql.js';

/** Compiled to <root>/<outDir>/test/docs/, so the sources are three levels up. */
const path = (p: string): string => fileURLToPath(new URL(`../../../${p}`, import.meta.url));
const RULES = path('docs/monitoring/alerts.yml');
const RULE_TESTS = path('docs/monitoring/alerts.test.yml');

/** Series Prometheus itself writes for every target. */
const PROMETHEUS_SERIES = new Set(['up']);

/** The `expr:` of every rule: one line, or a `>-` block of more-indented lines. */
function ruleExprs(yaml: string): string[] {
  const lines = yaml.split('\n');
  const out: string[] = [];
  lines.forEach((line, i) => {
    const m = /^(\s*)expr:\s*(.*)$/.exec(line);
    if (!m) return;
    const indent = m[1]!.length;
    if (!/^[>|]-?$/.test(m[2]!)) {
      out.push(m[2]!);
      return;
    }
    const body: string[] = [];
    for (const next of lines.slice(i + 1)) {
      if (next.trim() !== '' && next.length - next.trimStart().length <= indent) break;
      body.push(next.trim());
    }
    out.push(body.join(' ').trim());
  });
  return out;
}

async function registered(): Promise<Map<string, string>> {
  const metrics = new ServerMetrics();
  // A server also registers its readiness gauges on the same registry (key-server.ts).
  new Readiness(
    metrics.registry,
    jsonLogger('error', {}, () => {}),
    () => 0,
  );
  return new Map((await metrics.registry.getMetricsAsJSON()).map((m) => [m.name, String(m.type)]));
}

test('the expression reader sees one-line and folded expressions', (t) => {
  t.deepEqual(
    ruleExprs('  - alert: A\n    expr: x > 1\n  - alert: B\n    expr: >-\n      a\n      / b\n    for: 1m\n'),
    ['x > 1', 'a / b'],
  );
  t.deepEqual(metricNames('y < on (job) group_left () max by (job) (y offset 2m)'), ['y', 'y']);
});

test('every metric an alert names is registered by a server', async (t) => {
  const known = await registered();
  const exprs = ruleExprs(readFileSync(RULES, 'utf8'));
  t.true(exprs.length >= 12, `${exprs.length} rules`);
  const unknown: string[] = [];
  for (const expr of exprs) {
    const names = metricNames(expr);
    t.true(names.length > 0, `expression names no metric: ${expr}`);
    for (const n of names)
      if (!PROMETHEUS_SERIES.has(n) && resolve(n, known) === undefined) unknown.push(`${n} in ${expr}`);
  }
  t.deepEqual(unknown, []);
});

test('promtool check rules accepts alerts.yml', (t) => {
  const version = promtoolVersion();
  if (version === undefined) return t.log(PROMTOOL_ABSENT);
  const out = promtool(['check', 'rules', RULES]);
  t.log(`${version}: promtool check rules →\n${out.stdout}${out.stderr}`.trim());
  t.is(out.code, 0, out.stderr);
  t.regex(out.stdout, /SUCCESS: \d+ rules found/);
});

test('promtool test rules: every alert fires on its case and stays quiet on the others', (t) => {
  const version = promtoolVersion();
  if (version === undefined) return t.log(PROMTOOL_ABSENT);
  const out = promtool(['test', 'rules', RULE_TESTS]);
  t.log(`${version}: promtool test rules →\n${out.stdout}${out.stderr}`.trim());
  t.is(out.code, 0, `${out.stdout}${out.stderr}`);
  t.regex(out.stdout, /SUCCESS/);
  // Every alert of the rules file has at least one unit test case.
  const alerts = [...readFileSync(RULES, 'utf8').matchAll(/^\s*- alert: (\w+)$/gm)].map((m) => m[1]);
  const tested = new Set(
    [...readFileSync(RULE_TESTS, 'utf8').matchAll(/^\s*alertname: (\w+)$/gm)].map((m) => m[1]),
  );
  t.deepEqual(
    alerts.filter((a) => !tested.has(a)),
    [],
  );
});
