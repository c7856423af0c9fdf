import { mergeHistogram, percentile } from '../latency-histogram.js';
import type { MetricPoint, ProcessMetric } from '../store/records.js';
import type { Resolution } from '../store/metric-store.js';

/** Each resolution's span and how long its points are kept. */
export const RESOLUTIONS: { res: Resolution; spanS: number; keepMs: number }[] = [
  { res: '10s', spanS: 10, keepMs: 60 * 60_000 },
  { res: '1m', spanS: 60, keepMs: 24 * 60 * 60_000 },
  { res: '10m', spanS: 600, keepMs: 7 * 24 * 60 * 60_000 },
];

function combineProcess(a: ProcessMetric, b: ProcessMetric): ProcessMetric {
  return {
    cpuMs: a.cpuMs + b.cpuMs,
    memorySum: a.memorySum + b.memorySum,
    samples: a.samples + b.samples,
    memoryMax: Math.max(a.memoryMax, b.memoryMax),
    count: Math.max(a.count, b.count),
    running: Math.max(a.running, b.running),
    restarts: a.restarts + b.restarts,
  };
}

/**
 * Two measurements of one app as one, over `span` seconds from `at`: counts add (so the requests
 * of an hour are exactly those of its 360 buckets), histograms merge bucket by bucket, memory keeps
 * its sum and sample count (the mean stays a true mean) and its maximum. Pure.
 */
export function combinePoints(at: number, span: number, points: MetricPoint[]): MetricPoint {
  const out: MetricPoint = { at, span };
  for (const p of points) {
    if (p.requests !== undefined) {
      const r = out.requests ?? [0, 0, 0, 0, 0];
      p.requests.forEach((n, i) => (r[i] = (r[i] ?? 0) + n));
      out.requests = r;
      out.bytesIn = (out.bytesIn ?? 0) + (p.bytesIn ?? 0);
      out.bytesOut = (out.bytesOut ?? 0) + (p.bytesOut ?? 0);
    }
    if (p.latency !== undefined) mergeHistogram((out.latency ??= {}), p.latency);
    for (const [type, m] of Object.entries(p.processes ?? {})) {
      const procs = (out.processes ??= {});
      const had = procs[type];
      procs[type] = had === undefined ? { ...m } : combineProcess(had, m);
    }
  }
  return out;
}

/** Adds a contribution to a stored point of the same span and start (the store's `combine`). */
export const addPoint = (stored: MetricPoint, added: MetricPoint): MetricPoint => combinePoints(stored.at, stored.span, [stored, added]);

/** The start of the span of `spanS` seconds that holds `ms`. */
export const spanStart = (ms: number, spanS: number): number => Math.floor(ms / (spanS * 1000)) * spanS * 1000;

/**
 * Downsampling: the finer points grouped into spans of `spanS` seconds, each group combined into
 * one point. Pure; the rollup of a span is recomputed whole whenever a finer point in it changes.
 */
export function downsample(points: MetricPoint[], spanS: number): MetricPoint[] {
  const groups = new Map<number, MetricPoint[]>();
  for (const p of points) {
    const at = spanStart(p.at, spanS);
    const group = groups.get(at);
    if (group === undefined) groups.set(at, [p]);
    else group.push(p);
  }
  return [...groups].sort((a, b) => a[0] - b[0]).map(([at, group]) => combinePoints(at, spanS, group));
}

/**
 * The span to merge points into so `rangeS` seconds at a resolution of `resolutionS` make at most
 * `maxPoints` points: the smallest whole multiple of the resolution (a week of 10 min points for a
 * chart of 300 becomes 40 min points). Pure.
 */
export function stepFor(rangeS: number, resolutionS: number, maxPoints: number): number {
  return Math.max(1, Math.ceil(rangeS / Math.max(1, maxPoints) / resolutionS)) * resolutionS;
}

/** One row of `metrics`: what a point says, in the units people read. */
export interface MetricRow {
  at: string;
  span: number;
  requests: number;
  rps: number;
  status: { '1xx': number; '2xx': number; '3xx': number; '4xx': number; '5xx': number };
  bytesIn: number;
  bytesOut: number;
  /** ms; null with no requests. */
  p50: number | null;
  p95: number | null;
  p99: number | null;
  /** Percent of one core, summed over the processes; null with no sample. */
  cpu: number | null;
  /** Mean bytes in use, summed over the processes; null with no sample. */
  memory: number | null;
  memoryMax: number | null;
  restarts: number;
  processes: number;
}

const round = (n: number, places: number): number => Math.round(n * 10 ** places) / 10 ** places;

/** A point as a row; `type` keeps only that process type (requests only reach `web`). */
export function metricRow(p: MetricPoint, type?: string): MetricRow {
  const withRequests = type === undefined || type === 'web';
  const r = withRequests ? (p.requests ?? [0, 0, 0, 0, 0]) : [0, 0, 0, 0, 0];
  const total = r.reduce((s, n) => s + n, 0);
  const latency = withRequests ? (p.latency ?? {}) : {};
  const pct = (q: number): number | null => {
    const v = percentile(latency, q);
    return v === undefined ? null : round(v, 1);
  };
  const procs = Object.entries(p.processes ?? {}).filter(([t]) => type === undefined || t === type).map(([, m]) => m);
  const sampled = procs.filter((m) => m.samples > 0);
  return {
    at: new Date(p.at).toISOString(),
    span: p.span,
    requests: total,
    rps: round(total / p.span, 2),
    status: { '1xx': r[0] ?? 0, '2xx': r[1] ?? 0, '3xx': r[2] ?? 0, '4xx': r[3] ?? 0, '5xx': r[4] ?? 0 },
    bytesIn: withRequests ? (p.bytesIn ?? 0) : 0,
    bytesOut: withRequests ? (p.bytesOut ?? 0) : 0,
    p50: pct(0.5),
    p95: pct(0.95),
    p99: pct(0.99),
    cpu: sampled.length === 0 ? null : round(sampled.reduce((s, m) => s + m.cpuMs, 0) / p.span / 10, 1),
    memory: sampled.length === 0 ? null : Math.round(sampled.reduce((s, m) => s + m.memorySum / m.samples, 0)),
    memoryMax: sampled.length === 0 ? null : sampled.reduce((s, m) => s + m.memoryMax, 0),
    restarts: procs.reduce((s, m) => s + m.restarts, 0),
    processes: procs.reduce((s, m) => s + m.count, 0),
  };
}
