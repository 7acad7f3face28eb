/** Hand-written SVG charts (no dependencies): a line chart and a grouped bar chart. */

export interface Point {
  x: number;
  y: number;
  /** Spread across rounds, drawn as an error bar. */
  yMin?: number;
  yMax?: number;
}

export interface LineSeries {
  name: string;
  points: Point[];
}

export interface BarSeries {
  name: string;
  values: number[];
  mins?: number[];
  maxs?: number[];
}

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b'];
const WIDTH = 720;
const HEIGHT = 420;
const MARGIN = { left: 80, right: 200, top: 48, bottom: 60 };

function esc(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** Round tick values covering [0, max]. */
function ticks(max: number, count = 5): number[] {
  if (!(max > 0)) return [0, 1];
  const raw = max / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = ([1, 2, 2.5, 5, 10].find((m) => m * magnitude >= raw) ?? 10) * magnitude;
  const out: number[] = [];
  for (let v = 0; v <= max + step * 0.001; v += step) out.push(Math.round(v * 1e6) / 1e6);
  if ((out.at(-1) ?? 0) < max) out.push((out.at(-1) ?? 0) + step);
  return out;
}

function label(value: number): string {
  if (Math.abs(value) >= 1e6) return `${value / 1e6}M`;
  if (Math.abs(value) >= 1e4) return `${value / 1e3}k`;
  return String(value);
}

function frame(title: string, xLabel: string, yLabel: string, yTicks: number[], yMax: number, body: string[], legend: string[]): string {
  const plotW = WIDTH - MARGIN.left - MARGIN.right;
  const plotH = HEIGHT - MARGIN.top - MARGIN.bottom;
  const y = (v: number): number => MARGIN.top + plotH - (v / yMax) * plotH;
  const grid = yTicks
    .map(
      (t) =>
        `<line x1="${MARGIN.left}" x2="${MARGIN.left + plotW}" y1="${y(t).toFixed(1)}" y2="${y(t).toFixed(1)}" stroke="#e5e5e5"/>` +
        `<text x="${MARGIN.left - 8}" y="${(y(t) + 4).toFixed(1)}" text-anchor="end">${label(t)}</text>`,
    )
    .join('');
  const legendItems = legend
    .map((name, i) => {
      const ly = MARGIN.top + 10 + i * 22;
      const lx = MARGIN.left + plotW + 20;
      return `<rect x="${lx}" y="${ly - 9}" width="14" height="10" fill="${COLORS[i % COLORS.length]}"/><text x="${lx + 20}" y="${ly}">${esc(name)}</text>`;
    })
    .join('');
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="sans-serif" font-size="12">`,
    `<rect width="${WIDTH}" height="${HEIGHT}" fill="white"/>`,
    `<text x="${WIDTH / 2}" y="24" text-anchor="middle" font-size="15" font-weight="bold">${esc(title)}</text>`,
    grid,
    `<line x1="${MARGIN.left}" x2="${MARGIN.left}" y1="${MARGIN.top}" y2="${MARGIN.top + plotH}" stroke="#333"/>`,
    `<line x1="${MARGIN.left}" x2="${MARGIN.left + plotW}" y1="${MARGIN.top + plotH}" y2="${MARGIN.top + plotH}" stroke="#333"/>`,
    `<text x="${MARGIN.left + plotW / 2}" y="${HEIGHT - 14}" text-anchor="middle">${esc(xLabel)}</text>`,
    `<text transform="translate(18 ${MARGIN.top + plotH / 2}) rotate(-90)" text-anchor="middle">${esc(yLabel)}</text>`,
    ...body,
    legendItems,
    '</svg>',
  ].join('\n');
}

/** Lines with markers (and error bars where a point has yMin/yMax), x numeric. */
export function lineChart(options: { title: string; xLabel: string; yLabel: string; series: LineSeries[] }): string {
  const all = options.series.flatMap((s) => s.points);
  const xs = all.map((p) => p.x);
  const xMin = Math.min(...xs);
  const xMax = Math.max(...xs);
  const yTicks = ticks(Math.max(0, ...all.map((p) => Math.max(p.y, p.yMax ?? p.y)).filter(Number.isFinite)));
  const yMax = yTicks.at(-1) ?? 1;
  const plotW = WIDTH - MARGIN.left - MARGIN.right;
  const plotH = HEIGHT - MARGIN.top - MARGIN.bottom;
  const x = (v: number): number => MARGIN.left + 20 + (xMax === xMin ? plotW / 2 : ((v - xMin) / (xMax - xMin)) * (plotW - 40));
  const y = (v: number): number => MARGIN.top + plotH - (v / yMax) * plotH;
  const body: string[] = [];
  for (const v of [...new Set(xs)].sort((a, b) => a - b)) {
    body.push(`<text x="${x(v).toFixed(1)}" y="${MARGIN.top + plotH + 18}" text-anchor="middle">${label(v)}</text>`);
  }
  options.series.forEach((series, i) => {
    const color = COLORS[i % COLORS.length];
    const points = series.points.filter((p) => Number.isFinite(p.y)).sort((a, b) => a.x - b.x);
    if (points.length > 1)
      body.push(
        `<polyline fill="none" stroke="${color}" stroke-width="2" points="${points.map((p) => `${x(p.x).toFixed(1)},${y(p.y).toFixed(1)}`).join(' ')}"/>`,
      );
    for (const p of points) {
      if (p.yMin !== undefined && p.yMax !== undefined && Number.isFinite(p.yMin) && Number.isFinite(p.yMax)) {
        body.push(
          `<line x1="${x(p.x).toFixed(1)}" x2="${x(p.x).toFixed(1)}" y1="${y(p.yMin).toFixed(1)}" y2="${y(p.yMax).toFixed(1)}" stroke="${color}"/>`,
        );
      }
      body.push(
        `<circle cx="${x(p.x).toFixed(1)}" cy="${y(p.y).toFixed(1)}" r="4" fill="${color}"><title>${esc(series.name)}: ${p.x} -> ${p.y.toFixed(1)}</title></circle>`,
      );
    }
  });
  return frame(
    options.title,
    options.xLabel,
    options.yLabel,
    yTicks,
    yMax,
    body,
    options.series.map((s) => s.name),
  );
}

/** Grouped bars: one group per category, one bar per series (error bars from mins/maxs). */
export function barChart(options: { title: string; yLabel: string; xLabel?: string; categories: string[]; series: BarSeries[] }): string {
  const values = options.series.flatMap((s) => s.values.map((v, i) => Math.max(v, s.maxs?.[i] ?? v)));
  const yTicks = ticks(Math.max(0, ...values.filter(Number.isFinite)));
  const yMax = yTicks.at(-1) ?? 1;
  const plotW = WIDTH - MARGIN.left - MARGIN.right;
  const plotH = HEIGHT - MARGIN.top - MARGIN.bottom;
  const y = (v: number): number => MARGIN.top + plotH - (v / yMax) * plotH;
  const groupW = plotW / Math.max(1, options.categories.length);
  const barW = (groupW * 0.7) / Math.max(1, options.series.length);
  const body: string[] = [];
  options.categories.forEach((category, c) => {
    const gx = MARGIN.left + c * groupW + groupW * 0.15;
    body.push(
      `<text x="${(MARGIN.left + c * groupW + groupW / 2).toFixed(1)}" y="${MARGIN.top + plotH + 18}" text-anchor="middle">${esc(category)}</text>`,
    );
    options.series.forEach((series, s) => {
      const v = series.values[c] ?? Number.NaN;
      if (!Number.isFinite(v)) return;
      const bx = gx + s * barW;
      const color = COLORS[s % COLORS.length];
      body.push(
        `<rect x="${bx.toFixed(1)}" y="${y(v).toFixed(1)}" width="${(barW - 2).toFixed(1)}" height="${(MARGIN.top + plotH - y(v)).toFixed(1)}" fill="${color}"><title>${esc(series.name)} ${esc(category)}: ${v.toFixed(1)}</title></rect>`,
      );
      const lo = series.mins?.[c];
      const hi = series.maxs?.[c];
      if (lo !== undefined && hi !== undefined && Number.isFinite(lo) && Number.isFinite(hi)) {
        const cx = bx + (barW - 2) / 2;
        body.push(`<line x1="${cx.toFixed(1)}" x2="${cx.toFixed(1)}" y1="${y(lo).toFixed(1)}" y2="${y(hi).toFixed(1)}" stroke="#222"/>`);
      }
    });
  });
  return frame(
    options.title,
    options.xLabel ?? '',
    options.yLabel,
    yTicks,
    yMax,
    body,
    options.series.map((s) => s.name),
  );
}
