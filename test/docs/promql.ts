/**
 * Metric names in PromQL expressions, for the tests that check the docs' dashboards and alert
 * rules name only metrics a server registers.
 */

/** PromQL functions, aggregations and keywords the docs may use (anything else is a metric). */
const PROMQL_WORDS = new Set([
  'sum',
  'avg',
  'min',
  'max',
  'count',
  'topk',
  'bottomk',
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'and',
  'or',
  'unless',
  'rate',
  'irate',
  'increase',
  'delta',
  'histogram_quantile',
  'label_values',
  'clamp_min',
  'clamp_max',
  'abs',
  'changes',
  'resets',
  'max_over_time',
  'min_over_time',
  'avg_over_time',
  'time',
  'vector',
  'scalar',
  'offset',
]);

const HISTOGRAM_SUFFIXES = ['_bucket', '_sum', '_count'] as const;

/**
 * Metric names in one PromQL expression: label matchers `{…}`, range selectors `[…]`, the label
 * lists of `by (…)`/`without (…)`, strings, durations and Grafana variables are removed first.
 */
export function metricNames(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, ' ')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring)\s*\([^)]*\)/g, ' ')
    .replace(/\$\{?\w+\}?/g, ' ')
    .replace(/\b\d+(?:ms|[smhdwy])\b/g, ' '); // durations (offset 2m)
  const words = stripped.match(/[A-Za-z_:][A-Za-z0-9_:]*/g) ?? [];
  return words.filter((w) => !PROMQL_WORDS.has(w));
}

/** A used name is valid if registered, or a histogram's _bucket/_sum/_count series. */
export function resolve(name: string, known: ReadonlyMap<string, string>): string | undefined {
  if (known.has(name)) return name;
  for (const s of HISTOGRAM_SUFFIXES) {
    const base = name.endsWith(s) ? name.slice(0, -s.length) : undefined;
    if (base !== undefined && known.get(base) === 'histogram') return base;
  }
  return undefined;
}
