/**
 * Hand-written SVG charts for benchmark results: a grouped horizontal bar chart and a line
 * chart, each with title, units, axis ticks and a legend, optionally on log axes. No
 * dependencies; output is plain SVG 1.1 any browser or `rsvg-convert` renders.
 */

export interface BarChart {
  readonly kind: 'bar';
  readonly title: string;
  /** Unit of the bar values, shown on the axis, e.g. "ops/s". */
  readonly unit: string;
  readonly log?: boolean;
  /** One group per row label (e.g. an operation); one bar per series (e.g. a backend). */
  readonly groups: ReadonlyArray<{
    readonly label: string;
    readonly bars: ReadonlyArray<{ readonly series: string; readonly value: number }>;
  }>;
}

export interface LineChart {
  readonly kind: 'line';
  readonly title: string;
  readonly xLabel: string;
  readonly yLabel: string;
  readonly logX?: boolean;
  readonly logY?: boolean;
  readonly series: ReadonlyArray<{
    readonly name: string;
    readonly points: ReadonlyArray<{ readonly x: number; readonly y: number }>;
  }>;
}

export type Chart = BarChart | LineChart;

interface Rendered {
  readonly width: number;
  readonly height: number;
  readonly body: string;
}

const WIDTH = 960;
const LEGEND_ROW = 18;
const FONT = 'font-family="Helvetica, Arial, sans-serif"';
/** Colour-blind-safe palette (Okabe–Ito), cycled by series index. */
const PALETTE = ['#0072B2', '#E69F00', '#009E73', '#CC79A7', '#56B4E9', '#D55E00', '#F0E442', '#000000'];

export function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function text(x: number, y: number, content: string, attrs = ''): string {
  return `<text x="${x.toFixed(1)}" y="${y.toFixed(1)}" ${attrs}>${escapeXml(content)}</text>`;
}

/** Short human label for an axis value: 1500 → 1.5k, 2e6 → 2M. */
export function shortNumber(v: number): string {
  const abs = Math.abs(v);
  const fmt = (x: number) => String(Number(x.toPrecision(3)));
  if (abs >= 1e9) return `${fmt(v / 1e9)}G`;
  if (abs >= 1e6) return `${fmt(v / 1e6)}M`;
  if (abs >= 1e3) return `${fmt(v / 1e3)}k`;
  return fmt(v);
}

interface Scale {
  readonly map: (v: number) => number; // value → [0, 1]
  readonly ticks: readonly number[];
}

function linearScale(max: number): Scale {
  const top = max > 0 ? max : 1;
  const step = 10 ** Math.floor(Math.log10(top / 5));
  const niceStep = [1, 2, 5, 10].map((m) => m * step).find((s) => top / s <= 6) ?? step * 10;
  const niceMax = Math.ceil(top / niceStep) * niceStep;
  const ticks: number[] = [];
  for (let t = 0; t <= niceMax + niceStep / 2; t += niceStep) ticks.push(t);
  return { map: (v) => Math.max(0, v) / niceMax, ticks };
}

function logScale(min: number, max: number): Scale {
  const lo = Math.floor(Math.log10(Math.max(min, Number.MIN_VALUE)));
  const hi = Math.max(lo + 1, Math.ceil(Math.log10(Math.max(max, Number.MIN_VALUE))));
  const ticks: number[] = [];
  for (let e = lo; e <= hi; e++) ticks.push(10 ** e);
  return { map: (v) => (v <= 0 ? 0 : (Math.log10(v) - lo) / (hi - lo)), ticks };
}

/** Legend items laid out left to right, wrapping at the chart width; returns markup and rows used. */
function legend(names: readonly string[], x: number, y: number): { svg: string; rows: number } {
  let at = x;
  let row = 0;
  const items = names.map((name, i) => {
    const width = 28 + name.length * 7;
    if (at + width > WIDTH - 10 && at > x) {
      at = x;
      row++;
    }
    const yy = y + row * LEGEND_ROW;
    const item =
      `<rect x="${at}" y="${yy - 10}" width="12" height="12" fill="${PALETTE[i % PALETTE.length]}"/>` +
      text(at + 16, yy, name, `${FONT} font-size="12"`);
    at += width;
    return item;
  });
  return { svg: items.join(''), rows: row + 1 };
}

function seriesNames(chart: BarChart): string[] {
  const names: string[] = [];
  for (const g of chart.groups) for (const b of g.bars) if (!names.includes(b.series)) names.push(b.series);
  return names;
}

function renderBar(chart: BarChart): Rendered {
  const names = seriesNames(chart);
  const labelWidth = Math.min(300, 20 + 7 * Math.max(...chart.groups.map((g) => g.label.length), 4));
  const left = labelWidth;
  const right = 80; // room for value labels
  const plotWidth = WIDTH - left - right;
  const barHeight = 12;
  const gap = 10;
  const key = legend(names, left, 44);
  const top = 60 + (key.rows - 1) * LEGEND_ROW;
  const values = chart.groups.flatMap((g) => g.bars.map((b) => b.value)).filter((v) => Number.isFinite(v));
  const scale = chart.log
    ? logScale(Math.min(...values.filter((v) => v > 0)), Math.max(...values))
    : linearScale(Math.max(...values, 0));
  let y = top;
  const rows: string[] = [];
  for (const g of chart.groups) {
    const groupHeight = g.bars.length * barHeight;
    rows.push(text(left - 8, y + groupHeight / 2 + 4, g.label, `${FONT} font-size="12" text-anchor="end"`));
    for (const b of g.bars) {
      const w = Math.max(1, scale.map(b.value) * plotWidth);
      const colour = PALETTE[names.indexOf(b.series) % PALETTE.length];
      rows.push(
        `<rect x="${left}" y="${y}" width="${w.toFixed(1)}" height="${barHeight - 2}" fill="${colour}"><title>${escapeXml(`${g.label} · ${b.series}: ${b.value}`)}</title></rect>`,
      );
      rows.push(
        text(left + w + 4, y + barHeight - 3, shortNumber(b.value), `${FONT} font-size="10" fill="#333"`),
      );
      y += barHeight;
    }
    y += gap;
  }
  const bottom = y;
  const axis = scale.ticks
    .map((t) => {
      const x = left + scale.map(t) * plotWidth;
      return (
        `<line x1="${x.toFixed(1)}" y1="${top - 4}" x2="${x.toFixed(1)}" y2="${bottom}" stroke="#ddd"/>` +
        text(x, bottom + 14, shortNumber(t), `${FONT} font-size="11" text-anchor="middle"`)
      );
    })
    .join('');
  const height = bottom + 44;
  const body =
    text(WIDTH / 2, 22, chart.title, `${FONT} font-size="16" font-weight="bold" text-anchor="middle"`) +
    key.svg +
    axis +
    rows.join('') +
    text(
      left + plotWidth / 2,
      bottom + 32,
      `${chart.unit}${chart.log ? ' (log scale)' : ''}`,
      `${FONT} font-size="12" text-anchor="middle"`,
    );
  return { width: WIDTH, height, body };
}

function renderLine(chart: LineChart): Rendered {
  const left = 80;
  const right = 30;
  const key = legend(
    chart.series.map((s) => s.name),
    left,
    44,
  );
  const top = 60 + (key.rows - 1) * LEGEND_ROW;
  const plotWidth = WIDTH - left - right;
  const plotHeight = 320;
  const xs = chart.series.flatMap((s) => s.points.map((p) => p.x));
  const ys = chart.series.flatMap((s) => s.points.map((p) => p.y));
  const positive = (v: readonly number[]) => v.filter((x) => x > 0);
  const sx = chart.logX
    ? logScale(Math.min(...positive(xs)), Math.max(...xs))
    : linearScale(Math.max(...xs, 0));
  const sy = chart.logY
    ? logScale(Math.min(...positive(ys)), Math.max(...ys))
    : linearScale(Math.max(...ys, 0));
  const px = (x: number) => left + sx.map(x) * plotWidth;
  const py = (y: number) => top + plotHeight - sy.map(y) * plotHeight;
  const grid =
    sx.ticks
      .map(
        (t) =>
          `<line x1="${px(t).toFixed(1)}" y1="${top}" x2="${px(t).toFixed(1)}" y2="${top + plotHeight}" stroke="#ddd"/>` +
          text(px(t), top + plotHeight + 16, shortNumber(t), `${FONT} font-size="11" text-anchor="middle"`),
      )
      .join('') +
    sy.ticks
      .map(
        (t) =>
          `<line x1="${left}" y1="${py(t).toFixed(1)}" x2="${left + plotWidth}" y2="${py(t).toFixed(1)}" stroke="#ddd"/>` +
          text(left - 6, py(t) + 4, shortNumber(t), `${FONT} font-size="11" text-anchor="end"`),
      )
      .join('');
  const lines = chart.series
    .map((s, i) => {
      const colour = PALETTE[i % PALETTE.length];
      const pts = [...s.points].sort((a, b) => a.x - b.x);
      const path = pts.map((p) => `${px(p.x).toFixed(1)},${py(p.y).toFixed(1)}`).join(' ');
      const dots = pts
        .map(
          (p) =>
            `<circle cx="${px(p.x).toFixed(1)}" cy="${py(p.y).toFixed(1)}" r="3" fill="${colour}"><title>${escapeXml(`${s.name}: (${p.x}, ${p.y})`)}</title></circle>`,
        )
        .join('');
      return `<polyline points="${path}" fill="none" stroke="${colour}" stroke-width="2"/>${dots}`;
    })
    .join('');
  const height = top + plotHeight + 50;
  const body =
    text(WIDTH / 2, 22, chart.title, `${FONT} font-size="16" font-weight="bold" text-anchor="middle"`) +
    key.svg +
    grid +
    `<rect x="${left}" y="${top}" width="${plotWidth}" height="${plotHeight}" fill="none" stroke="#999"/>` +
    lines +
    text(
      left + plotWidth / 2,
      top + plotHeight + 36,
      `${chart.xLabel}${chart.logX ? ' (log)' : ''}`,
      `${FONT} font-size="12" text-anchor="middle"`,
    ) +
    text(
      16,
      top + plotHeight / 2,
      `${chart.yLabel}${chart.logY ? ' (log)' : ''}`,
      `${FONT} font-size="12" text-anchor="middle" transform="rotate(-90 16 ${top + plotHeight / 2})"`,
    );
  return { width: WIDTH, height, body };
}

/** Renders charts stacked vertically into one SVG document with a footer line (commit, machine). */
export function renderDocument(charts: readonly Chart[], footer: string): string {
  let y = 0;
  const parts: string[] = [];
  for (const chart of charts) {
    const r = chart.kind === 'bar' ? renderBar(chart) : renderLine(chart);
    parts.push(`<g transform="translate(0,${y})">${r.body}</g>`);
    y += r.height + 20;
  }
  const height = y + 20;
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}">` +
    `<rect width="100%" height="100%" fill="white"/>` +
    parts.join('\n') +
    text(WIDTH - 10, height - 8, footer, `${FONT} font-size="10" fill="#666" text-anchor="end"`) +
    `</svg>\n`
  );
}
