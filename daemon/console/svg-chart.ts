import { html, type SafeHtml } from './html-template.js';

/** One line of a chart: a value per time (null where nothing was measured). */
export interface ChartSeries {
  label: string;
  /** Picks the line's colour in console.css (`.series-0` … `.series-3`). */
  values: (number | null)[];
}

export interface ChartSpec {
  /** Also the id stem: letters, digits and dashes only (rack's own constants). */
  id: string;
  title: string;
  /** Start of each point, ms since the epoch, ascending. */
  times: number[];
  series: ChartSeries[];
  /** A value as people read it (`12 ms`, `3.4 MB`). */
  format: (v: number) => string;
  size?: 'small' | 'large';
}

const SIZES = { small: { w: 320, h: 120 }, large: { w: 720, h: 220 } };
/** Room on the left for the y labels, below for the x labels. */
const PAD = { left: 56, right: 8, top: 8, bottom: 20 };

/**
 * A round upper bound for the y axis (1, 2 or 5 times a power of ten) at or above the largest
 * value, so the grid lines fall on numbers people read at a glance. Pure.
 */
export function niceMax(max: number): number {
  if (!(max > 0) || !Number.isFinite(max)) return 1;
  const power = 10 ** Math.floor(Math.log10(max));
  for (const step of [1, 2, 5, 10]) if (step * power >= max) return step * power;
  return 10 * power;
}

/**
 * The SVG path of one series over a `w`×`h` plot: x spread evenly by index, y scaled to `max`. A
 * null breaks the line (a new `M`), so a gap in the data is a gap on the chart, not a fall to zero.
 * A lone point between gaps is drawn as a dot-long segment so it stays visible. Pure.
 */
export function seriesPath(values: (number | null)[], w: number, h: number, max: number): string {
  const n = values.length;
  const x = (i: number) => (n <= 1 ? w / 2 : (i * w) / (n - 1));
  const y = (v: number) => h - (Math.min(v, max) / max) * h;
  const fmt = (v: number) => (Math.round(v * 10) / 10).toString();
  let d = '';
  let drawing = false;
  let run = 0;
  values.forEach((v, i) => {
    if (v === null || !Number.isFinite(v)) {
      if (run === 1) d += 'h0.1';
      drawing = false;
      run = 0;
      return;
    }
    d += `${drawing ? 'L' : 'M'}${fmt(x(i))} ${fmt(y(v))}`;
    drawing = true;
    run++;
  });
  if (run === 1) d += 'h0.1';
  return d;
}

const clock = (ms: number, long: boolean): string => {
  const iso = new Date(ms).toISOString();
  return long ? `${iso.slice(5, 10)} ${iso.slice(11, 16)}` : iso.slice(11, 16);
};

/**
 * A line chart as server-rendered SVG: no script and no inline style (the console's CSP allows
 * neither), colours and sizes from console.css classes. Its text alternative is a one-line summary
 * (the SVG's title and description) and the whole data as a table under a disclosure.
 */
export function lineChart(spec: ChartSpec): SafeHtml {
  const { w, h } = SIZES[spec.size ?? 'small'];
  const plotW = w - PAD.left - PAD.right;
  const plotH = h - PAD.top - PAD.bottom;
  const all = spec.series.flatMap((s) => s.values.filter((v): v is number => v !== null));
  const max = niceMax(Math.max(0, ...all));
  const first = spec.times[0];
  const last = spec.times.at(-1);
  const long = first !== undefined && last !== undefined && last - first > 86_400_000;
  const latest = spec.series.map((s) => {
    const v = [...s.values].reverse().find((x) => x !== null);
    const peak = s.values.reduce<number | null>((m, x) => (x === null ? m : m === null ? x : Math.max(m, x)), null);
    return `${s.label}: latest ${v === undefined || v === null ? 'none' : spec.format(v)}, peak ${peak === null ? 'none' : spec.format(peak)}`;
  });
  const summary = spec.times.length === 0 ? 'No data in this range.' : `${latest.join('; ')} (${spec.times.length} points, UTC).`;
  const grid = [0, 0.5, 1].map((f) => ({ y: PAD.top + plotH - f * plotH, label: spec.format(max * f) }));
  return html`<figure class="chart chart-${spec.size ?? 'small'}" id="chart-${spec.id}">
<figcaption>${spec.title}${spec.series.length > 1 ? html` <span class="legend">${spec.series.map((s, i) => html`<span class="key series-${i}">${s.label}</span> `)}</span>` : ''}</figcaption>
<svg viewBox="0 0 ${w} ${h}" role="img" aria-labelledby="chart-${spec.id}-title chart-${spec.id}-desc" class="chart-svg">
<title id="chart-${spec.id}-title">${spec.title}</title>
<desc id="chart-${spec.id}-desc">${summary}</desc>
${grid.map((g) => html`<line class="grid" x1="${PAD.left}" x2="${w - PAD.right}" y1="${g.y}" y2="${g.y}"></line><text class="axis" x="${PAD.left - 4}" y="${g.y + 4}" text-anchor="end">${g.label}</text>`)}
${first !== undefined && last !== undefined
    ? html`<text class="axis" x="${PAD.left}" y="${h - 4}">${clock(first, long)}</text><text class="axis" x="${w - PAD.right}" y="${h - 4}" text-anchor="end">${clock(last, long)}</text>`
    : html`<text class="axis" x="${PAD.left + plotW / 2}" y="${PAD.top + plotH / 2}" text-anchor="middle">no data</text>`}
<g transform="translate(${PAD.left} ${PAD.top})">
${spec.series.map((s, i) => html`<path class="line series-${i}" d="${seriesPath(s.values, plotW, plotH, max)}"></path>`)}
</g>
</svg>
<details class="chart-data"><summary>Data<span class="sr"> of ${spec.title}</span></summary>
<div class="table-wrap" tabindex="0" aria-label="${spec.title}: data"><table>
<thead><tr><th scope="col">Time (UTC)</th>${spec.series.map((s) => html`<th scope="col">${s.label}</th>`)}</tr></thead>
<tbody>${spec.times.map((t, i) => html`<tr><td>${clock(t, long)}</td>${spec.series.map((s) => html`<td>${s.values[i] === null || s.values[i] === undefined ? '-' : spec.format(s.values[i]!)}</td>`)}</tr>`)}</tbody>
</table></div>
</details>
</figure>`;
}
