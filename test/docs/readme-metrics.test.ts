/**
 * The README's metrics reference must describe exactly the metrics a server registers, with the
 * right type and labels: the expectations come from a live ServerMetrics registry, so adding a
 * metric without documenting it (or documenting one that does not exist) fails here.
 */
import test from 'ava';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Readiness, ServerMetrics, jsonLogger } from '../../server/index.js';

/** Compiled to <root>/<outDir>/test/docs/, so the sources are three levels up. */
const README = fileURLToPath(new URL('../../../README.md', import.meta.url));

interface Row {
  readonly type: string;
  readonly labels: readonly string[];
}

/** Rows `| \`name\` | type | labels | meaning |` of the section headed "Metrics reference". */
function documented(markdown: string): Map<string, Row> {
  const start = markdown.search(/^#+ Metrics reference/m);
  if (start < 0) return new Map();
  const rest = markdown.slice(start);
  const body = rest.indexOf('\n') + 1; // the section ends at the next heading after its own
  const next = rest.slice(body).search(/^#+ /m);
  const section = next < 0 ? rest : rest.slice(0, body + next);
  const rows = new Map<string, Row>();
  for (const line of section.split('\n')) {
    const m = /^\|\s*`(keyglass_[a-z0-9_]+)`\s*\|\s*(\w+)\s*\|([^|]*)\|/.exec(line);
    if (!m) continue;
    const labels = [...(m[3] ?? '').matchAll(/`([a-z_]+)`/g)].map((l) => l[1] ?? '').sort();
    rows.set(m[1] ?? '', { type: m[2] ?? '', labels });
  }
  return rows;
}

async function registered(): Promise<Map<string, Row>> {
  const metrics = new ServerMetrics();
  // A server also registers its readiness gauges on the same registry (key-server.ts).
  new Readiness(
    metrics.registry,
    jsonLogger('error', {}, () => {}),
    () => 0,
  );
  const out = new Map<string, Row>();
  for (const m of await metrics.registry.getMetricsAsJSON()) {
    if (!m.name.startsWith('keyglass_')) continue; // prom-client's process_*/nodejs_* defaults
    const single = metrics.registry.getSingleMetric(m.name) as unknown as { labelNames?: readonly string[] };
    out.set(m.name, { type: String(m.type), labels: [...(single.labelNames ?? [])].sort() });
  }
  return out;
}

test('the parser reads a reference row', (t) => {
  const rows = documented(
    '## Metrics reference\n\n| `keyglass_x_total` | counter | `a`, `b` | what |\n## Next\n',
  );
  t.deepEqual([...rows], [['keyglass_x_total', { type: 'counter', labels: ['a', 'b'] }]]);
});

test('README metrics reference lists every server metric with its type and labels, and nothing else', async (t) => {
  const docs = documented(readFileSync(README, 'utf8'));
  const live = await registered();
  t.true(live.size >= 15, `registry has ${live.size} keyglass_ metrics`);
  const missing = [...live.keys()].filter((n) => !docs.has(n));
  const unknown = [...docs.keys()].filter((n) => !live.has(n));
  t.deepEqual(missing, [], 'registered but not documented');
  t.deepEqual(unknown, [], 'documented but not registered');
  for (const [name, row] of live) {
    const d = docs.get(name);
    if (d === undefined) continue;
    t.is(d.type, row.type, `${name} type`);
    t.deepEqual(d.labels, row.labels, `${name} labels`);
  }
});
