/**
 * What observability costs. Part 1: a real rackd, its router process and a small app container,
 * driven by wrk (`-t2 -c16`, rounds of 8 s) with nobody following the app's logs, then with a
 * `logs -f` follower reading every line: req/s and the CPU time per request of the router process
 * and of rackd (from /proc/PID/stat, before and after each round). Part 2: the metrics store after
 * `days` of 10 s points of 50 apps (router counts with a latency histogram, and a web and a worker
 * process sample each), written through the recorder with a moved clock into a real LevelDB: the
 * time it took, this process's memory before and after, the database's size on disk, and how long
 * `metrics --since 1h|24h|7d` takes to read. No drain yet: drains come in another change.
 *   npm run build && node dist/scripts/bench-observability.js [rounds] [days]   (rounds 0: the store only)
 *   (needs wrk: apt-get install -y wrk)
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { recordLatency, type LatencyHistogram } from '../daemon/latency-histogram.js';
import { MetricsRecorder } from '../daemon/metrics/metrics-recorder.js';
import type { MetricPoint } from '../daemon/store/records.js';
import { Store } from '../daemon/store/store.js';
import { RackDaemon } from '../test/support/rack-daemon.js';
import { routerPids } from '../test/support/router-processes.js';
import { median } from './bench-host.js';

const run = promisify(execFile);
const ROUNDS = Number(process.argv[2] ?? 3);
const DAYS = Number(process.argv[3] ?? 1);
const APPS = 50;
const APP = 'bench-obs';

/** User + system CPU time of one process, ms (USER_HZ 100). */
async function cpuMs(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

async function wrk(port: number): Promise<{ requests: number; rps: number; p99: string }> {
  const { stdout } = await run('wrk', ['-t2', '-c16', '-d8s', '--latency', '-H', `Host: ${APP}.localhost`, `http://127.0.0.1:${port}/`], { maxBuffer: 1 << 20 });
  const requests = Number(/(\d+) requests in/.exec(stdout)?.[1] ?? 0);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(stdout)?.[1] ?? 0);
  const p99 = /99%\s+(\S+)/.exec(stdout)?.[1] ?? '?';
  return { requests, rps, p99 };
}

async function cpuPerRequest(): Promise<void> {
  const rack = await RackDaemon.create();
  try {
    const push = await rack.push(await rack.appRepo('node-status', APP));
    if (push.code !== 0) throw new Error(push.stderr);
    const rackd = rack.child?.pid;
    const [router] = await routerPids(join(rack.home, 'router.sock'));
    if (rackd === undefined || router === undefined) throw new Error('no rackd or router process');
    const figures: Record<string, { rps: number; router: number; rackd: number; p99: string }[]> = { 'nobody follows': [], 'logs -f follows': [] };
    for (let round = 0; round < ROUNDS; round++) {
      for (const mode of Object.keys(figures)) {
        const follower = mode === 'logs -f follows' ? spawn('ssh', [...rack.sshArgs(), '--', 'logs', '-f', '-n', '0', '-a', APP], { stdio: ['ignore', 'pipe', 'ignore'] }) : undefined;
        let lines = 0;
        follower?.stdout?.on('data', (c: Buffer) => (lines += c.toString().split('\n').length - 1));
        follower?.on('error', () => undefined);
        if (follower !== undefined) {
          // Following once a request's line comes through.
          while (lines === 0) {
            await rack.get(APP, '/warm');
            await new Promise((r) => setTimeout(r, 50));
          }
        }
        const before = [await cpuMs(router), await cpuMs(rackd)] as const;
        const load = await wrk(rack.httpPort);
        const after = [await cpuMs(router), await cpuMs(rackd)] as const;
        follower?.kill();
        const per = (i: 0 | 1) => ((after[i] - before[i]) * 1000) / Math.max(1, load.requests);
        figures[mode]!.push({ rps: load.rps, router: per(0), rackd: per(1), p99: load.p99 });
        console.log(`round ${round + 1} ${mode.padEnd(16)} ${load.rps.toFixed(0).padStart(6)} req/s  p99 ${load.p99.padStart(8)}  router ${per(0).toFixed(1)} µs/req  rackd ${per(1).toFixed(1)} µs/req${follower ? `  (${lines} lines followed)` : ''}`);
      }
    }
    console.log('\nmedians (CPU per proxied request, wrk -t2 -c16, 8 s rounds):');
    for (const [mode, rows] of Object.entries(figures)) {
      const r = median(rows.map((x) => x.router));
      const d = median(rows.map((x) => x.rackd));
      console.log(`  ${mode.padEnd(16)} ${median(rows.map((x) => x.rps)).toFixed(0).padStart(6)} req/s  router ${r.toFixed(1)} µs  rackd ${d.toFixed(1)} µs  together ${(r + d).toFixed(1)} µs`);
    }
  } finally {
    await rack.destroy();
  }
}

const mb = (bytes: number): string => `${(bytes / (1024 * 1024)).toFixed(1)} MB`;

async function metricsStore(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'rack-bench-metrics-'));
  const store = new Store(join(dir, 'db'), join(dir, 'builds'));
  await store.start();
  try {
    const apps = Array.from({ length: APPS }, (_, i) => `app-${String(i + 1).padStart(2, '0')}`);
    for (const app of apps) await store.createApp(app);
    const start = Date.now() - (Date.now() % 600_000) - DAYS * 86_400_000;
    let now = start;
    const recorder = new MetricsRecorder(store.metrics, async () => apps, pino({ level: 'silent' }), () => now);
    global.gc?.();
    const heapBefore = process.memoryUsage();
    const t0 = performance.now();
    const buckets = DAYS * 8640;
    for (let i = 0; i < buckets; i++) {
      const at = start + i * 10_000;
      now = at + 10_500;
      const points = apps.map((app, a) => {
        const latency: LatencyHistogram = {};
        // A spread of latencies, so each point has the dozen histogram buckets a real app has.
        for (let k = 0; k < 12; k++) recordLatency(latency, 1 + ((a + k * 37 + i) % 200));
        const point: MetricPoint = {
          at,
          span: 10,
          requests: [0, 95 + (i % 7), 2, 3, i % 11 === 0 ? 1 : 0],
          bytesIn: 40_000,
          bytesOut: 250_000,
          latency,
          processes: {
            web: { cpuMs: 300, memorySum: 80e6, samples: 1, memoryMax: 80e6, count: 2, running: 2, restarts: 0 },
            worker: { cpuMs: 50, memorySum: 40e6, samples: 1, memoryMax: 40e6, count: 1, running: 1, restarts: 0 },
          },
        };
        return { app, point };
      });
      await recorder.addSamples(points);
      if (i % 6 === 5) await recorder.tick();
      if (i % 8640 === 8639) console.log(`  day ${(i + 1) / 8640} written (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
    }
    const writeS = (performance.now() - t0) / 1000;
    global.gc?.();
    const heapAfter = process.memoryUsage();
    const du = await run('du', ['-sb', join(dir, 'db')]);
    console.log(`\nmetrics store: ${APPS} apps × ${DAYS} day(s) of 10 s points (${buckets} buckets) written and rolled up in ${writeS.toFixed(1)} s (${((writeS * 1000) / buckets).toFixed(2)} ms per bucket of ${APPS} apps)`);
    console.log(`  on disk: ${mb(Number(du.stdout.split('\t')[0]))} (LevelDB, compacting as it goes)`);
    console.log(`  this process: heap ${mb(heapBefore.heapUsed)} → ${mb(heapAfter.heapUsed)}, RSS ${mb(heapBefore.rss)} → ${mb(heapAfter.rss)}${global.gc ? '' : ' (run with --expose-gc for settled figures)'}`);
    for (const [label, since] of [['1h', 3_600_000], ['24h', 86_400_000], ['7d', 7 * 86_400_000]] as const) {
      const q0 = performance.now();
      const { resolution, points } = await recorder.points('app-01', since);
      console.log(`  metrics --since ${label}: ${points.length} points at ${resolution} read in ${(performance.now() - q0).toFixed(1)} ms`);
    }
  } finally {
    await store.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  if (ROUNDS > 0) {
    console.log(`== CPU per request through the deployed router (${ROUNDS} rounds)`);
    await cpuPerRequest();
  }
  console.log(`\n== the metrics store after ${DAYS} day(s)`);
  await metricsStore();
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
