/** bench/report.ts: parsing result files and rendering the markdown report. */
import test from 'ava';
import { formatNumber, parseResultFile, renderReport, ReportError } from '../../bench/report.js';
import type { ResultFile } from '../../bench/harness.js';

const machine = { cpus: 2, cpuModel: 'Test CPU', node: 'v20.0.0' };

const keytree: ResultFile = {
  suite: 'keytree',
  commit: 'abc1234',
  date: '2026-01-01T00:00:00.000Z',
  machine,
  results: [
    { case: 'leave', params: { n: 1000 }, metrics: { server_ms: 0.5, message_bytes: 700, leaf_us: 100 } },
    {
      case: 'mls-remove',
      params: { n: 1000 },
      metrics: { create_ms: 2000, process_ms: 1000, message_bytes: 80000 },
    },
  ],
};

const gossip: ResultFile = {
  suite: 'gossip',
  commit: 'def5678',
  date: '2026-01-02T00:00:00.000Z',
  machine,
  results: [
    {
      case: 'gossip.delivery',
      params: { n: 10, curve: '0:0.0 1:0.5 2:0.9 3:1.0 '.repeat(4) },
      metrics: { dataR100: 3 },
    },
  ],
};

const opts = { resultsDir: '/x/bench/results', reportFile: '/x/bench/REPORT.md' };

test('renders provenance, plot, per-case tables and the ts-mls side-by-side', (t) => {
  const md = renderReport([gossip, keytree], opts, (s) => s === 'keytree');
  t.true(
    md.includes(
      '| [keytree](#keytree) | abc1234 | 2026-01-01T00:00:00.000Z | 2 × Test CPU, node v20.0.0 | 2 |',
    ),
  );
  t.true(md.includes('![keytree plot](results/keytree.svg)'));
  t.false(md.includes('results/gossip.svg'), 'no link to a missing plot');
  t.true(md.includes('| n | server_ms | message_bytes | leaf_us |'));
  t.true(md.includes('| 1,000 | 0.5 | 700 | 100 |'));
  // 2000 ms ts-mls vs 0.5 ms LKH, same n: ratio 4,000×.
  t.regex(md, /\| 1,000 \| 0\.5 \| 2,000 \| 4,000× \| 700 \| 80,000 \|/);
  // The long curve string goes below the table, not in it.
  t.false(md.includes('| curve |'));
  t.true(md.includes('`curve` per row:'));
  // Published anchors appear for a suite without results, marked as such.
  t.true(md.includes('## core-rekey'));
  t.true(md.includes('13.7 ms per commit at 128 members'));
});

test('an empty results directory renders a hint, not an error', (t) => {
  t.true(renderReport([], opts, () => false).includes('No results yet'));
});

test('malformed result files are ReportErrors naming the file', (t) => {
  t.throws(() => parseResultFile('{', 'a.json'), { instanceOf: ReportError, message: /^a\.json: not JSON/ });
  t.throws(() => parseResultFile('{"suite":"x"}', 'b.json'), {
    instanceOf: ReportError,
    message: /^b\.json:/,
  });
  const bad = { ...keytree, results: [{ case: 'c', params: {}, metrics: { m: 'fast' } }] };
  t.throws(() => parseResultFile(JSON.stringify(bad), 'c.json'), { message: /metrics must be numbers/ });
  t.deepEqual(parseResultFile(JSON.stringify(keytree), 'k.json'), keytree);
});

test('numbers: integers exact with separators, fractions to 3 significant digits', (t) => {
  t.is(formatNumber(15182057), '15,182,057');
  t.is(formatNumber(0.4551), '0.455');
  t.is(formatNumber(14854.627), '14,855');
  t.is(formatNumber(2.3517874875868916), '2.35');
});
