/**
 * The Grafana dashboard and the Prometheus example in docs/monitoring/ must only name metrics
 * the server really registers: the registered names come from a live ServerMetrics registry,
 * never from a list kept here.
 */
import test from 'ava';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ServerMetrics } from '../../server/index.js';
import { metricNames, resolve } from './promql.js';

/** Compiled to <root>/<outDir>/test/docs/, so the sources are three levels up. */
const ROOT = new URL('../../../', import.meta.url);
const read = (path: string): string => readFileSync(fileURLToPath(new URL(path, ROOT)), 'utf8');

interface Target {
  readonly expr?: unknown;
}
interface Panel {
  readonly id?: unknown;
  readonly type?: unknown;
  readonly title?: unknown;
  readonly targets?: readonly Target[];
  readonly fieldConfig?: {
    readonly defaults?: { readonly unit?: unknown };
    readonly overrides?: readonly { readonly properties?: readonly { readonly id?: unknown }[] }[];
  };
}
interface Dashboard {
  readonly panels: readonly Panel[];
  readonly templating?: { readonly list: readonly { readonly query?: unknown }[] };
}

function dashboardExprs(d: Dashboard): string[] {
  const exprs: string[] = [];
  for (const p of d.panels)
    for (const t of p.targets ?? []) if (typeof t.expr === 'string') exprs.push(t.expr);
  for (const v of d.templating?.list ?? []) {
    const q = v.query;
    const text = typeof q === 'object' && q !== null ? (q as { query?: unknown }).query : q;
    if (typeof text === 'string' && text.includes('(')) exprs.push(text);
  }
  return exprs;
}

async function registered(): Promise<Map<string, string>> {
  const metrics = new ServerMetrics();
  const json = await metrics.registry.getMetricsAsJSON();
  return new Map(json.map((m) => [m.name, String(m.type)]));
}

const dashboard = JSON.parse(read('docs/monitoring/grafana-dashboard.json')) as Dashboard;

test('the metric-name extractor sees metrics and nothing else', (t) => {
  t.deepEqual(
    metricNames(
      'histogram_quantile(0.99, sum by (le, instance) (rate(keyglass_x_bucket{instance=~"$instance", a="b}"}[$__rate_interval])))',
    ),
    ['keyglass_x_bucket'],
  );
  t.deepEqual(metricNames('sum(rate(a_sum[5m])) / sum(rate(b_count[5m]))'), ['a_sum', 'b_count']);
  t.deepEqual(metricNames('label_values(keyglass_view_size, instance)'), ['keyglass_view_size', 'instance']);
});

test('every metric in the dashboard is registered by ServerMetrics', async (t) => {
  const known = await registered();
  t.true(known.has('keyglass_view_size'), 'the live registry was read');
  const exprs = dashboardExprs(dashboard);
  t.true(exprs.length >= 15, `dashboard has ${exprs.length} expressions`);
  const unknown: string[] = [];
  for (const expr of exprs) {
    const names = metricNames(expr).filter((n) => n !== 'instance'); // label_values' label argument
    t.true(names.length > 0, `expression names no metric: ${expr}`);
    for (const n of names) if (resolve(n, known) === undefined) unknown.push(`${n} in ${expr}`);
  }
  t.deepEqual(unknown, []);
});

test('every keyglass_ server metric (not the process defaults) has a panel', async (t) => {
  const known = await registered();
  const used = new Set(
    dashboardExprs(dashboard)
      .flatMap(metricNames)
      .map((n) => resolve(n, known))
      .filter((n): n is string => n !== undefined),
  );
  const missing = [...known.keys()].filter((n) => n.startsWith('keyglass_') && !used.has(n));
  t.deepEqual(missing, []);
});

test('process metrics go by their standard names, and the CPU panel plots the process and its threads', async (t) => {
  const known = await registered();
  t.is(known.get('process_cpu_seconds_total'), 'counter');
  t.is(known.get('nodejs_eventloop_lag_p99_seconds'), 'gauge');
  t.deepEqual(
    [...known.keys()].filter((n) => n.startsWith('keyglass_process_')),
    [],
  );
  const cpu = dashboard.panels.filter((p) => String(p.title).includes('CPU'));
  t.is(cpu.length, 1);
  const names = (cpu[0]!.targets ?? []).flatMap((x) => metricNames(String(x.expr)));
  t.deepEqual(names.sort(), ['keyglass_thread_cpu_seconds_total', 'process_cpu_seconds_total']);
});

test('every graph has one unit for its one axis', (t) => {
  for (const p of dashboard.panels) {
    if (p.type === 'row') continue;
    const unit = p.fieldConfig?.defaults?.unit;
    t.is(typeof unit, 'string', `panel '${String(p.title)}' names its unit`);
    // A unit override would put a second unit (a second axis) on the panel.
    const overridden = (p.fieldConfig?.overrides ?? []).some((o) =>
      (o.properties ?? []).some((x) => x.id === 'unit'),
    );
    t.false(overridden, `panel '${String(p.title)}' overrides the unit of a series`);
  }
});

test('panels have unique ids, titles and PromQL targets', (t) => {
  const ids = dashboard.panels.map((p) => p.id);
  t.is(new Set(ids).size, ids.length);
  for (const p of dashboard.panels) {
    t.is(typeof p.title, 'string');
    if (p.type !== 'row') t.true((p.targets ?? []).length > 0, `panel '${String(p.title)}' has no targets`);
  }
});

test('prometheus.yml has a scrape config for three admin ports at /metrics', (t) => {
  const yml = read('docs/monitoring/prometheus.yml');
  const lines = yml.split('\n').filter((l) => l.trim() !== '' && !l.trimStart().startsWith('#'));
  t.true(lines.includes('scrape_configs:'), 'top-level scrape_configs');
  for (const l of lines) t.false(l.includes('\t'), 'YAML must not indent with tabs');
  t.truthy(lines.find((l) => /^\s+- job_name: \S+$/.test(l)));
  t.truthy(lines.find((l) => /^\s+metrics_path: \/metrics$/.test(l)));
  const targets = lines.filter((l) => /^\s+- [A-Za-z0-9.-]+:[0-9]{1,5}$/.test(l));
  t.is(targets.length, 3);
});
