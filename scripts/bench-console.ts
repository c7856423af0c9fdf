/**
 * The Console's server time per page, through a real rackd (and its router), for a rack of APPS
 * apps with RELEASES releases each and a week of metrics each (target: each page ≤ 300 ms).
 *
 * The apps are made with `apps:create` (so each has its repo), then, with rackd stopped, their
 * builds and releases go in through the Store and their metrics through the metric store's own
 * writer (`MetricStore.put`, as the recorder's rollups write them): a week at 10 min, a day at
 * 1 min and an hour at 10 s, with router counts, a latency histogram and a web sample in each. rackd
 * is started again on that store; a token signs in as a browser would and each page is fetched
 * ROUNDS times in turn (after a warm-up); the figure is from the request's start to its last byte.
 * (No app runs: the releases' images do not exist, so rackd's start-up restart of them fails fast.)
 *
 *   npm run bench:console [rounds] [apps] [releases]       (defaults: 20, 50, 100)
 */
import { request } from 'node:http';
import { join } from 'node:path';
import { recordLatency, type LatencyHistogram } from '../daemon/latency-histogram.js';
import { RESOLUTIONS } from '../daemon/metrics/metric-points.js';
import type { Resolution } from '../daemon/store/metric-store.js';
import type { MetricPoint } from '../daemon/store/records.js';
import { Store } from '../daemon/store/store.js';
import { RackDaemon } from '../test/support/rack-daemon.js';

const ROUNDS = Number(process.argv[2] ?? 20);
const APPS = Number(process.argv[3] ?? 50);
const RELEASES = Number(process.argv[4] ?? 100);
const TARGET_MS = 300;
const HOST = 'rack.localhost';
const WEEK_MS = 7 * 86_400_000;

const PAGES = [
  ['apps list', '/console/'],
  ['overview (1h)', '/console/apps/APP/'],
  ['overview (7d)', '/console/apps/APP/?range=7d'],
  ['metrics (24h)', '/console/apps/APP/metrics?range=24h'],
  ['metrics (7d)', '/console/apps/APP/metrics?range=7d'],
  ['releases', '/console/apps/APP/releases'],
  ['builds', '/console/apps/APP/builds'],
  ['processes', '/console/apps/APP/processes'],
  ['environment', '/console/apps/APP/environment'],
  ['add-ons', '/console/apps/APP/addons'],
  ['domains', '/console/apps/APP/domains'],
  ['logs (search 1h)', '/console/apps/APP/logs?since=1h&grep=GET'],
  ['audit', '/console/apps/APP/audit'],
] as const;

/** One page through the router as a browser asks for it: status, bytes, ms to the last byte. */
function fetchPage(port: number, path: string, cookie: string, method = 'GET', body?: string): Promise<{ status: number; bytes: number; ms: number; setCookie: string[] }> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const origin = `http://${HOST}:${port}`;
    const headers: Record<string, string> = { Host: `${HOST}:${port}`, Accept: 'text/html', Cookie: cookie };
    if (body !== undefined) Object.assign(headers, { Origin: origin, 'Content-Type': 'application/x-www-form-urlencoded', 'Content-Length': String(Buffer.byteLength(body)) });
    const req = request({ host: '127.0.0.1', port, path, method, headers }, (res) => {
      let bytes = 0;
      res.on('data', (c: Buffer) => (bytes += c.length));
      res.on('error', reject);
      res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes, ms: performance.now() - started, setCookie: res.headers['set-cookie'] ?? [] }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** A point of an app that answers about `rps` requests a second, 1 % of them 5xx, with a web process. */
function point(at: number, span: number, rps: number, seed: number): MetricPoint {
  const n = Math.max(0, Math.round(rps * span * (0.6 + 0.8 * Math.abs(Math.sin(seed)))));
  const latency: LatencyHistogram = {};
  for (let i = 0; i < 12; i++) recordLatency(latency, 2 + ((seed * 7 + i * 13) % 400));
  const scale = n / 12;
  for (const k of Object.keys(latency)) latency[k] = Math.round((latency[k] ?? 0) * scale);
  return {
    at,
    span,
    requests: [0, n - Math.floor(n / 100), 0, 0, Math.floor(n / 100)],
    bytesIn: n * 300,
    bytesOut: n * 2000,
    latency,
    processes: { web: { cpuMs: span * 1000 * 0.05 * (1 + Math.sin(seed / 5)), memorySum: 80e6 * (span / 10), samples: span / 10, memoryMax: 95e6, count: 1, running: 1, restarts: 0 } },
  };
}

async function fill(rack: RackDaemon, apps: string[]): Promise<void> {
  const store = new Store(join(rack.home, 'db'), join(rack.home, 'logs', 'builds'));
  await store.start();
  try {
    const now = Date.now();
    for (const [i, app] of apps.entries()) {
      let build = await store.createBuild(app, { commit: '0'.repeat(40), createdBy: 'alice' });
      let config: Record<string, string> = {};
      for (let v = 1; v <= RELEASES; v++) {
        if (v % 5 === 1) {
          build = await store.createBuild(app, { commit: v.toString(16).padStart(40, 'a'), createdBy: 'alice' });
          build = { ...build, status: 'succeeded', image: `rack/${app}:b${build.id}`, processTypes: { web: 'node server.js' }, finishedAt: new Date().toISOString(), durationMs: 1200 };
          await store.finishBuild(build, [Buffer.from('-----> Building\n')]);
        } else {
          config = { ...config, [`KEY_${v % 40}`]: `value-${v}` };
        }
        const release = await store.createRelease(app, {
          build: build.id,
          image: build.image ?? '',
          processTypes: build.processTypes,
          formation: { web: 1 },
          config,
          description: v % 5 === 1 ? `Deploy ${build.commit.slice(0, 7)}` : `Set KEY_${v % 40}`,
          createdBy: 'alice',
        });
        await store.finishRelease(release, v % 17 === 0 ? 'failed' : 'succeeded', v % 17 === 0 ? 'web did not answer on PORT within 30 s' : null);
      }
      // A week at each resolution's own age, as the recorder's rollups leave it.
      for (const { res, spanS, keepMs } of RESOLUTIONS) {
        const step = spanS * 1000;
        const points: { app: string; point: MetricPoint }[] = [];
        for (let at = Math.floor((now - Math.min(keepMs, WEEK_MS)) / step) * step; at < now; at += step) points.push({ app, point: point(at, spanS, 2 + (i % 5), at / step) });
        for (let k = 0; k < points.length; k += 500) await store.metrics.put(res as Resolution, points.slice(k, k + 500));
      }
    }
  } finally {
    await store.stop();
  }
}

const rack = await RackDaemon.create();
try {
  const apps = Array.from({ length: APPS }, (_, i) => `app-${String(i).padStart(2, '0')}`);
  for (const app of apps) {
    const r = await rack.ssh(['apps:create', app]);
    if (r.code !== 0) throw new Error(r.stderr);
  }
  const token = await rack.createToken('bench');
  await rack.stop();
  const filled = performance.now();
  await fill(rack, apps);
  console.log(`filled ${APPS} apps × ${RELEASES} releases and a week of metrics in ${((performance.now() - filled) / 1000).toFixed(1)} s`);
  await rack.start();
  const port = rack.httpPort;
  const signIn = await fetchPage(port, '/console/sign-in', '', 'POST', `token=${encodeURIComponent(token)}`);
  const cookie = signIn.setCookie.map((c) => c.split(';')[0]).join('; ');
  if (signIn.status !== 303 || cookie === '') throw new Error(`sign-in answered ${signIn.status}`);
  const app = apps[Math.floor(APPS / 2)]!;
  const times = new Map<string, number[]>(PAGES.map(([name]) => [name, []]));
  const sizes = new Map<string, number>();
  for (let round = -3; round < ROUNDS; round++) {
    for (const [name, path] of PAGES) {
      const r = await fetchPage(port, path.replace('APP', app), cookie);
      if (r.status !== 200) throw new Error(`${name}: ${r.status}`);
      if (round >= 0) times.get(name)!.push(r.ms);
      sizes.set(name, r.bytes);
    }
  }
  const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))]!;
  console.log(`Console pages of ${app}, ${APPS} apps × ${RELEASES} releases, a week of metrics; ${ROUNDS} rounds through the router (target ≤ ${TARGET_MS} ms)`);
  let over = 0;
  for (const [name] of PAGES) {
    const xs = times.get(name)!;
    const p95 = pct(xs, 95);
    if (p95 > TARGET_MS) over++;
    console.log(`  ${name.padEnd(18)} median ${pct(xs, 50).toFixed(1).padStart(6)} ms  p95 ${p95.toFixed(1).padStart(6)} ms  ${((sizes.get(name) ?? 0) / 1024).toFixed(0).padStart(4)} KiB${p95 > TARGET_MS ? '  OVER' : ''}`);
  }
  console.log(over === 0 ? 'PASS' : `${over} pages OVER TARGET`);
} finally {
  await rack.destroy();
}
