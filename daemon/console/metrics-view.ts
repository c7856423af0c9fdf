import type { MetricRow } from '../metrics/metric-points.js';
import { html, type SafeHtml } from './html-template.js';
import { appPath } from './layout-view.js';
import { lineChart } from './svg-chart.js';

/** The ranges a chart can show, as `metrics --since` takes them. */
export const RANGES = ['1h', '6h', '24h', '7d'] as const;
export type Range = (typeof RANGES)[number];
/** Points per chart at most: the server merges spans so a week reads as fast as an hour. */
export const CHART_POINTS = 300;

export function parseRange(raw: string | null): Range {
  return (RANGES as readonly string[]).includes(raw ?? '') ? (raw as Range) : '1h';
}

/** `metrics --json` (the part the charts read). */
export interface MetricsAnswer {
  resolution: string;
  points: MetricRow[];
}

const ms = (v: number) => (v >= 1000 ? `${(v / 1000).toFixed(1)} s` : `${v < 10 ? v.toFixed(1) : Math.round(v)} ms`);
const mb = (v: number) => `${(v / (1024 * 1024)).toFixed(v >= 100 * 1024 * 1024 ? 0 : 1)} MB`;
const count = (v: number) => (v >= 100 ? String(Math.round(v)) : String(Math.round(v * 100) / 100));

/** Requests, latency, 5xx, CPU and memory: one chart each, over the same times. */
export function metricCharts(answer: MetricsAnswer, size: 'small' | 'large'): SafeHtml {
  const rows = answer.points;
  const times = rows.map((r) => Date.parse(r.at));
  const span = rows[0]?.span ?? 0;
  const per = span >= 60 ? `per ${span % 60 === 0 ? `${span / 60} min` : `${span} s`}` : `per ${span} s`;
  return html`<div class="charts charts-${size}">
${lineChart({ id: `requests-${size}`, title: 'Requests per second', times, series: [{ label: 'req/s', values: rows.map((r) => r.rps) }], format: count, size })}
${lineChart({ id: `latency-${size}`, title: 'Latency', times, series: [{ label: 'p50', values: rows.map((r) => r.p50) }, { label: 'p99', values: rows.map((r) => r.p99) }], format: ms, size })}
${lineChart({ id: `errors-${size}`, title: `5xx answers ${rows.length ? per : ''}`, times, series: [{ label: '5xx', values: rows.map((r) => r.status['5xx']) }], format: count, size })}
${lineChart({ id: `cpu-${size}`, title: 'CPU (% of one core)', times, series: [{ label: 'CPU', values: rows.map((r) => r.cpu) }], format: (v) => `${Math.round(v * 10) / 10}%`, size })}
${lineChart({ id: `memory-${size}`, title: 'Memory', times, series: [{ label: 'mean', values: rows.map((r) => r.memory) }, { label: 'max', values: rows.map((r) => r.memoryMax) }], format: mb, size })}
</div>`;
}

/** Links to the same page over each range; the one shown is marked. */
export function rangeSwitch(path: string, range: Range): SafeHtml {
  return html`<nav class="ranges" aria-label="time range">${RANGES.map(
    (r) => html`<a href="${path}?range=${r}"${r === range ? html` aria-current="true"` : ''}>${r}</a> `,
  )}</nav>`;
}

/** The Metrics tab: the Overview's charts, larger. */
export function metricsTab(app: string, range: Range, answer: MetricsAnswer): SafeHtml {
  return html`<div class="row chart-head"><h2>Last ${range}</h2>${rangeSwitch(appPath(app, '/metrics'), range)}</div>
${answer.points.length === 0 ? html`<p class="empty">No metrics in this range yet: they come from the router's requests and the processes' samples every 10 s.</p>` : ''}
${metricCharts(answer, 'large')}`;
}
