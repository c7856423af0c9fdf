import test from 'ava';
import { downsample, stepFor } from '../daemon/metrics/metric-points.js';
import { lineChart, niceMax, seriesPath } from '../daemon/console/svg-chart.js';
import type { MetricPoint } from '../daemon/store/records.js';

test('the y axis ends on a round number at or above the largest value', (t) => {
  t.is(niceMax(0), 1);
  t.is(niceMax(Number.NaN), 1);
  t.is(niceMax(0.7), 1);
  t.is(niceMax(1.2), 2);
  t.is(niceMax(3), 5);
  t.is(niceMax(7), 10);
  t.is(niceMax(100), 100);
  t.is(niceMax(101), 200);
  t.is(niceMax(4321), 5000);
});

test('a series is one path; a missing value breaks the line instead of dropping it to zero', (t) => {
  t.is(seriesPath([0, 5, 10], 100, 50, 10), 'M0 50L50 25L100 0');
  // The gap starts a new segment; the lone point after it stays visible as a tiny segment.
  t.is(seriesPath([10, null, 5, null, null], 100, 50, 10), 'M0 0h0.1M50 25h0.1');
  t.is(seriesPath([null, null], 100, 50, 10), '');
  // Values past the axis are drawn at its top, not outside the plot.
  t.is(seriesPath([20], 100, 50, 10), 'M50 0h0.1');
});

test('a chart has a title, a summary and its data as a table, and its labels are text', (t) => {
  const chart = String(
    lineChart({
      id: 'latency',
      title: 'Latency <b>',
      times: [Date.UTC(2026, 11, 6, 4, 0), Date.UTC(2026, 11, 6, 4, 1)],
      series: [
        { label: 'p50', values: [12, null] },
        { label: 'p99', values: [80, 95] },
      ],
      format: (v) => `${v} ms`,
    }),
  );
  t.regex(chart, /<svg [^>]*role="img" aria-labelledby="chart-latency-title chart-latency-desc"/);
  t.regex(chart, /<title id="chart-latency-title">Latency &lt;b&gt;<\/title>/);
  t.regex(chart, /<desc id="chart-latency-desc">p50: latest 12 ms, peak 12 ms; p99: latest 95 ms, peak 95 ms \(2 points, UTC\)\.<\/desc>/);
  t.regex(chart, /<tr><td>04:01<\/td><td>-<\/td><td>95 ms<\/td><\/tr>/);
  t.notRegex(chart, /style=/, 'no inline style: the CSP refuses it');
  t.is(chart.match(/<path class="line series-\d"/g)?.length, 2);
});

test('a chart with no points says so', (t) => {
  const chart = String(lineChart({ id: 'cpu', title: 'CPU', times: [], series: [{ label: 'CPU', values: [] }], format: String }));
  t.regex(chart, /No data in this range\./);
  t.regex(chart, />no data</);
});

test('every range reads as at most 300 points, in whole multiples of its resolution', (t) => {
  t.is(stepFor(3600, 10, 300), 20);
  t.is(stepFor(6 * 3600, 60, 300), 120);
  t.is(stepFor(24 * 3600, 60, 300), 300);
  t.is(stepFor(7 * 24 * 3600, 600, 300), 2400);
  for (const [range, res] of [[3600, 10], [6 * 3600, 60], [86_400, 60], [7 * 86_400, 600]] as const) {
    t.true(range / stepFor(range, res, 300) <= 300);
  }
  // A week of 10 min points merged into 40 min ones: requests add up exactly.
  const start = Date.UTC(2026, 10, 29);
  const week: MetricPoint[] = Array.from({ length: 1008 }, (_, i) => ({ at: start + i * 600_000, span: 600, requests: [0, 3, 0, 0, 1] }));
  const merged = downsample(week, stepFor(7 * 86_400, 600, 300));
  t.true(merged.length <= 253);
  t.is(merged.reduce((s, p) => s + (p.requests?.[1] ?? 0), 0), 3 * 1008);
});
