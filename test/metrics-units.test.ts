import test from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { parseSince } from '../daemon/commands/metrics.js';
import { bucketBoundMs, latencyBucket, mergeHistogram, percentile, recordLatency, type LatencyHistogram } from '../daemon/latency-histogram.js';
import { LogHub } from '../daemon/logs/log-hub.js';
import { combinePoints, downsample, metricRow } from '../daemon/metrics/metric-points.js';
import { MetricsRecorder } from '../daemon/metrics/metrics-recorder.js';
import { ProcessSampler, type SampledProcess } from '../daemon/metrics/process-sampler.js';
import { RouteSummaries } from '../daemon/router/route-summaries.js';
import type { MetricPoint } from '../daemon/store/records.js';
import { Store } from '../daemon/store/store.js';

const logger = pino({ level: 'silent' });

test('a percentile is the bound of the bucket holding it, within 19 % above the true latency', (t) => {
  const h: LatencyHistogram = {};
  // 1..1000 ms: the true p50 is 500, p95 950, p99 990.
  for (let ms = 1; ms <= 1000; ms++) recordLatency(h, ms);
  for (const [q, truth] of [[0.5, 500], [0.95, 950], [0.99, 990], [1, 1000]] as const) {
    const p = percentile(h, q) ?? 0;
    t.true(p >= truth && p <= truth * 2 ** 0.25, `p${q * 100} = ${p} for ${truth}`);
  }
  t.is(percentile({}, 0.5), undefined);
  // Each latency is in the first bucket whose bound is at or above it.
  for (const ms of [0.05, 0.1, 0.11, 1, 7.3, 250, 30_000]) {
    const i = latencyBucket(ms);
    t.true(bucketBoundMs(i) >= ms - 1e-9 && (i === 0 || bucketBoundMs(i - 1) < ms), `${ms} ms in bucket ${i}`);
  }
});

test('histograms merge exactly: the percentiles of merged buckets are those of one histogram of every request', (t) => {
  const whole: LatencyHistogram = {};
  const parts: LatencyHistogram[] = [{}, {}, {}];
  for (let i = 0; i < 3000; i++) {
    const ms = ((i * 7919) % 997) / 3 + 0.2;
    recordLatency(whole, ms);
    recordLatency(parts[i % 3]!, ms);
  }
  const merged: LatencyHistogram = {};
  for (const p of parts) mergeHistogram(merged, p);
  t.deepEqual(merged, whole);
  for (const q of [0.5, 0.95, 0.99]) t.is(percentile(merged, q), percentile(whole, q));
});

test('the router sums requests in wall-clock 10 s buckets and hands over only closed ones', (t) => {
  let now = 1_000_003;
  const s = new RouteSummaries(() => now);
  s.record('a', 'u1', 200, 3, 100, 200);
  s.record('a', 'u1', 404, 5, 10, 20);
  s.record('a', 'u2', 502, 40, 1, 2);
  s.record('b', '', 503, 0.1, 0, 0);
  t.deepEqual(s.take(), [], 'the bucket is still open');
  now = 1_010_000;
  s.record('a', 'u1', 101, 1, 0, 0);
  const [bucket, ...more] = s.take();
  t.deepEqual(more, []);
  t.is(bucket?.at, 1_000_000);
  t.is(bucket?.span, 10);
  t.like(bucket?.routes.find((r) => r.app === 'a' && r.upstream === 'u1'), { requests: [0, 1, 0, 1, 0], bytesIn: 110, bytesOut: 220 });
  t.like(bucket?.routes.find((r) => r.app === 'a' && r.upstream === 'u2'), { requests: [0, 0, 0, 0, 1] });
  t.like(bucket?.routes.find((r) => r.app === 'b'), { requests: [0, 0, 0, 0, 1] });
  t.like(s.closeAll()[0], { at: 1_010_000, routes: [{ app: 'a', requests: [1, 0, 0, 0, 0] }] });
});

const point = (at: number, requests: number[], cpuMs: number, memory: number): MetricPoint => ({
  at,
  span: 10,
  requests,
  bytesIn: 1,
  bytesOut: 2,
  latency: { '40': requests.reduce((a, b) => a + b, 0) },
  processes: { web: { cpuMs, memorySum: memory, samples: 1, memoryMax: memory, count: 1, running: 1, restarts: 0 } },
});

test('downsampling synthetic 10 s buckets keeps counts exact, memory a true mean and its maximum', (t) => {
  const t0 = 1_800_000_000_000 - (1_800_000_000_000 % 600_000);
  // An hour of 10 s points: 3 requests each (2xx, 4xx, 5xx), 500 ms of CPU, memory rising 1 MB a bucket.
  const fine = Array.from({ length: 360 }, (_, i) => point(t0 + i * 10_000, [0, 1, 0, 1, 1], 500, (i + 1) * 1_048_576));
  const minutes = downsample(fine, 60);
  t.is(minutes.length, 60);
  t.true(minutes.every((m, i) => m.at === t0 + i * 60_000 && m.span === 60));
  t.deepEqual(minutes[0]?.requests, [0, 6, 0, 6, 6]);
  const tens = downsample(minutes, 600);
  t.is(tens.length, 6);
  const hour = combinePoints(t0, 3600, tens);
  t.deepEqual(hour.requests, [0, 360, 0, 360, 360]);
  t.is(hour.bytesIn, 360);
  t.is(hour.latency?.['40'], 1080);
  const row = metricRow(hour);
  t.is(row.requests, 1080);
  t.is(row.rps, 0.3);
  t.is(row.cpu, 5, '500 ms of CPU each 10 s is 5 % of a core');
  t.is(row.memory, Math.round(180.5 * 1_048_576), 'the mean of 1..360 MB');
  t.is(row.memoryMax, 360 * 1_048_576);
  t.is(metricRow(hour, 'worker').requests, 0, 'requests reach web processes only');
  t.is(metricRow(hour, 'worker').cpu, null);
});

test('the recorder rolls closed minutes up in the store, answers exact counts at any range, and keeps each resolution its age', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'rack-metrics-'));
  const store = new Store(join(dir, 'db'), join(dir, 'builds'));
  await store.start();
  t.teardown(async () => {
    await store.stop().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  });
  await store.createApp('web-app');
  const start = 1_800_000_000_000 - (1_800_000_000_000 % 600_000);
  let now = start;
  const recorder = new MetricsRecorder(store.metrics, async () => ['web-app'], logger, () => now);
  // Three hours of router buckets, one 2xx and one 5xx each, as the router would send them.
  for (let i = 0; i < 3 * 360; i++) {
    const at = start + i * 10_000;
    now = at + 10_500;
    await recorder.addSummary({ at, span: 10, routes: [
      { app: 'web-app', upstream: 'u1', requests: [0, 1, 0, 0, 0], bytesIn: 5, bytesOut: 7, latency: { '30': 1 } },
      { app: 'web-app', upstream: 'u2', requests: [0, 0, 0, 0, 1], bytesIn: 5, bytesOut: 7, latency: { '50': 1 } },
    ] });
    if (i % 6 === 5) await recorder.tick();
  }
  const sum = (points: MetricPoint[]) => points.reduce((s, p) => s + (p.requests ?? []).reduce((a, b) => a + b, 0), 0);
  const hour = await recorder.points('web-app', 3_600_000);
  t.is(hour.resolution, '10s');
  t.is(hour.points.length, 360);
  t.is(sum(hour.points), 720);
  // Over 2 h: 1 min points, the minute not yet rolled up filled in from its 10 s points.
  const two = await recorder.points('web-app', 2 * 3_600_000);
  t.is(two.resolution, '1m');
  t.is(sum(two.points), 2 * 720);
  t.true(two.points.some((p) => p.span === 60) && two.points.at(-1)?.span === 10);
  // A late summary for a minute already rolled up: the minute is rolled up again.
  const late = start + 3 * 3_600_000 - 30 * 60_000;
  await recorder.addSummary({ at: late, span: 10, routes: [{ app: 'web-app', upstream: 'u1', requests: [0, 0, 0, 1, 0], bytesIn: 0, bytesOut: 0, latency: {} }] });
  now += 60_000;
  await recorder.tick();
  const minute = await store.metrics.range('web-app', '1m', late, late + 60_000);
  t.deepEqual(minute[0]?.requests, [0, 6, 0, 1, 6]);
  // Pruning: 10 s points older than an hour go; the 1 min ones stay for the day.
  t.is((await store.metrics.range('web-app', '10s', 0, now - 3_610_000)).length, 0);
  t.true((await store.metrics.range('web-app', '1m', 0)).length >= 179);
  t.true((await store.metrics.range('web-app', '10m', 0)).length >= 17);
  // A week on, only the 10 min points are left, and they still hold every request.
  now += 25 * 3_600_000;
  await recorder.tick();
  t.is((await store.metrics.range('web-app', '1m', 0)).length, 0);
  const week = await recorder.points('web-app', 7 * 24 * 3_600_000);
  t.is(week.resolution, '10m');
  t.is(sum(week.points), 3 * 720 + 1);
  // A destroyed app takes its metrics: a new app of its name starts blank.
  await store.destroyApp('web-app');
  await store.createApp('web-app');
  t.deepEqual((await recorder.points('web-app', 7 * 24 * 3_600_000)).points, []);
});

test('LogHub counts the wanters of an app\'s router lines and says when the set changes', (t) => {
  const logs = new LogHub();
  let changes = 0;
  logs.changes.on('wanted', () => changes++);
  const stopA = logs.follow('a', () => undefined);
  const drain = logs.want('a');
  const stopB = logs.follow('b', () => undefined);
  t.deepEqual(logs.wantedApps().sort(), ['a', 'b']);
  t.is(changes, 2);
  stopA();
  t.deepEqual(logs.wantedApps().sort(), ['a', 'b'], 'the drain still wants a');
  drain();
  drain();
  t.deepEqual(logs.wantedApps(), ['b']);
  stopB();
  t.deepEqual(logs.wantedApps(), []);
  t.is(changes, 4);
});

test('--since takes a duration up to the week kept', (t) => {
  t.is(parseSince('90s'), 90_000);
  t.is(parseSince('1h'), 3_600_000);
  t.is(parseSince('7d'), 7 * 86_400_000);
  for (const bad of ['8d', '0h', '1', 'h', '1w', '-1h', '1.5h']) t.throws(() => parseSince(bad), { message: /--since takes a duration/ });
});

test('the sampler turns cgroup counters into CPU time per span, memory and restarts by process type', async (t) => {
  let procs: SampledProcess[] = [
    { id: 'w1', app: 'a', type: 'web', running: true, restarts: 0 },
    { id: 'w2', app: 'a', type: 'web', running: true, restarts: 0 },
    { id: 'k1', app: 'a', type: 'worker', running: true, restarts: 2 },
  ];
  const usage = new Map([['w1', { cpuNs: 1e9, memoryBytes: 10e6 }], ['w2', { cpuNs: 5e9, memoryBytes: 20e6 }]]);
  const recorded: { app: string; point: MetricPoint }[][] = [];
  const sampler = new ProcessSampler({ list: async () => procs, usage: async (id) => usage.get(id), record: async (p) => void recorded.push(p), logger, now: () => 1_000_000 });
  await sampler.sample();
  t.like(recorded[0]?.[0]?.point.processes?.['web'], { cpuMs: 0, memorySum: 30e6, samples: 1, count: 2, running: 2, restarts: 0 });
  t.like(recorded[0]?.[0]?.point.processes?.['worker'], { samples: 0, memorySum: 0, count: 1 }, 'no cgroup found: no memory figure, not 0 MB');
  usage.set('w1', { cpuNs: 1.5e9, memoryBytes: 12e6 });
  usage.set('w2', { cpuNs: 6e9, memoryBytes: 20e6 });
  procs = procs.map((p) => (p.id === 'k1' ? { ...p, restarts: 3, running: false } : p));
  await sampler.sample();
  t.like(recorded[1]?.[0]?.point.processes?.['web'], { cpuMs: 1500, memorySum: 32e6, memoryMax: 32e6 });
  t.like(recorded[1]?.[0]?.point.processes?.['worker'], { restarts: 1, running: 0 });
  t.is(metricRow(recorded[1]![0]!.point, 'web').cpu, 15, '1.5 s of CPU in 10 s is 15 % of a core');
});
