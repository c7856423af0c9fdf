/**
 * What observability costs, in one run (the machine is shared: other work runs beside it, so the
 * modes alternate within each round and every ratio is against the baseline of the same run).
 *
 * (a) CPU per proxied request of the deployed router process and of rackd (from /proc/PID/stat,
 *     before and after each wrk round of 8 s, `-t2 -c16`), through a real rackd started as the README
 *     says, in four modes: nobody follows the app's logs (router summaries only); a `logs -f`
 *     follower over ssh; an HTTPS drain to a Logplex receiver in this process (strict octet framing,
 *     frames counted); and the follower and the drain together.
 * (b) The metric store after DAYS days of 10 s points for 50 apps (router counts with a latency
 *     histogram, a web and a worker sample each), written through the recorder with a moved clock
 *     into a real LevelDB: time, size on disk, and this process's heap and RSS, with the store open
 *     and after it is closed. RSS less V8's heap is native: LevelDB's block cache, memtables and
 *     table indexes, which malloc mostly keeps after LevelDB frees them (closing gives little back),
 *     so the bound on them in store.ts is what lowers it.
 * (c) The log store: LOG_MB megabytes of router and app lines over a week of one app (so a day is
 *     a seventh of it), written through the real LogStore, its memory, then the queries `logs` makes,
 *     `--grep` over all of it among them. This is the LogStore query in process (bench-logs.ts's
 *     fill and queries), not `ssh logs`: filling a running rackd's store with 1 GB would take its
 *     writer's pace and the ssh round trip adds nothing that grows with the data.
 *
 *   npm run bench:observability                 (3 rounds, 1 day, 1024 MB of logs)
 *   node --expose-gc dist/scripts/bench-observability.js [rounds] [days] [logMB]   (0 skips a part)
 *   (needs wrk: scripts/setup.sh installs it)
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
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
import { fillLogs, timeLogQueries } from './bench-logs.js';
import { LogplexReceiver } from './logplex-receiver.js';

const run = promisify(execFile);
const ROUNDS = Number(process.argv[2] ?? 3);
const DAYS = Number(process.argv[3] ?? 1);
const LOG_MB = Number(process.argv[4] ?? 1024);
const APPS = 50;
const APP = 'bench-obs';

const MODES = ['nobody follows', 'logs -f follows', 'HTTPS drain', 'drain + logs -f'] as const;
type Mode = (typeof MODES)[number];
const follows = (m: Mode) => m === 'logs -f follows' || m === 'drain + logs -f';
const drains = (m: Mode) => m === 'HTTPS drain' || m === 'drain + logs -f';

const mb = (bytes: number): string => `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** User + system CPU time of one process, ms (USER_HZ 100). */
async function cpuMs(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

async function rssOf(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? 0) * 1024;
}

async function wrk(port: number): Promise<{ requests: number; rps: number; p99: string }> {
  const { stdout } = await run('wrk', ['-t2', '-c16', '-d8s', '--latency', '-H', `Host: ${APP}.localhost`, `http://127.0.0.1:${port}/`], { maxBuffer: 1 << 20 });
  const requests = Number(/(\d+) requests in/.exec(stdout)?.[1] ?? 0);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(stdout)?.[1] ?? 0);
  const p99 = /99%\s+(\S+)/.exec(stdout)?.[1] ?? '?';
  return { requests, rps, p99 };
}

interface Row {
  rps: number;
  router: number;
  rackd: number;
  p99: string;
  followed: number;
  drained: number;
}

async function cpuPerRequest(): Promise<void> {
  const receiver = await LogplexReceiver.start(join(tmpdir(), `rack-bench-drain-ca-${process.pid}.pem`));
  // As the README starts it, plus what a drain to a loopback receiver with a private CA needs.
  const rack = await RackDaemon.create({ NODE_EXTRA_CA_CERTS: receiver.caFile, RACK_FETCH_ALLOW: 'localhost' });
  const ssh = async (args: string[]): Promise<void> => {
    const r = await rack.ssh(args);
    if (r.code !== 0) throw new Error(`ssh ${args.join(' ')}: ${r.stderr}`);
  };
  try {
    const push = await rack.push(await rack.appRepo('node-status', APP));
    if (push.code !== 0) throw new Error(push.stderr);
    const rackd = rack.child?.pid;
    const [router] = await routerPids(join(rack.home, 'router.sock'));
    if (rackd === undefined || router === undefined) throw new Error('no rackd or router process');
    const figures = new Map<Mode, Row[]>(MODES.map((m) => [m, []]));
    for (let round = 0; round < ROUNDS; round++) {
      for (const mode of MODES) {
        let follower: ChildProcess | undefined;
        let lines = 0;
        if (follows(mode)) {
          follower = spawn('ssh', [...rack.sshArgs(), '--', 'logs', '-f', '-n', '0', '-a', APP], { stdio: ['ignore', 'pipe', 'ignore'] });
          follower.stdout?.on('data', (c: Buffer) => (lines += c.toString().split('\n').length - 1));
          follower.on('error', () => undefined);
        }
        if (drains(mode)) await ssh(['drains:add', receiver.url, '-a', APP]);
        try {
          // Measured once the lines flow: a request's line has reached each reader.
          const frames0 = receiver.frames;
          while ((follower !== undefined && lines === 0) || (drains(mode) && receiver.frames === frames0)) {
            await rack.get(APP, '/warm');
            await pause(50);
          }
          const lines0 = lines;
          const framesBefore = receiver.frames;
          const before = [await cpuMs(router), await cpuMs(rackd)] as const;
          const load = await wrk(rack.httpPort);
          // The lines of the last requests are still on their way (a drain posts in batches): their
          // cost is this mode's, so the CPU is read once every request's line is in, or 15 s passed.
          const settled = performance.now() + 15_000;
          while (performance.now() < settled && ((follower !== undefined && lines - lines0 < load.requests) || (drains(mode) && receiver.frames - framesBefore < load.requests))) await pause(100);
          const after = [await cpuMs(router), await cpuMs(rackd)] as const;
          const per = (i: 0 | 1) => ((after[i] - before[i]) * 1000) / Math.max(1, load.requests);
          const row = { rps: load.rps, router: per(0), rackd: per(1), p99: load.p99, followed: lines - lines0, drained: receiver.frames - framesBefore };
          figures.get(mode)!.push(row);
          const seen = [follower ? `${row.followed} lines followed` : '', drains(mode) ? `${row.drained} frames drained` : ''].filter(Boolean).join(', ');
          console.log(`round ${round + 1} ${mode.padEnd(16)} ${load.rps.toFixed(0).padStart(6)} req/s  p99 ${load.p99.padStart(8)}  router ${row.router.toFixed(1)} µs/req  rackd ${row.rackd.toFixed(1)} µs/req${seen ? `  (${seen} of ${load.requests} requests)` : ''}`);
        } finally {
          follower?.kill();
          if (drains(mode)) await ssh(['drains:remove', receiver.url, '-a', APP]);
        }
      }
    }
    const base = figures.get('nobody follows')!;
    const baseR = median(base.map((x) => x.router));
    const baseD = median(base.map((x) => x.rackd));
    console.log(`\nmedians of ${ROUNDS} round(s): CPU per proxied request (wrk -t2 -c16, 8 s), ratio to nobody following in this run:`);
    for (const [mode, rows] of figures) {
      const r = median(rows.map((x) => x.router));
      const d = median(rows.map((x) => x.rackd));
      // rackd's baseline is near nothing (summaries only), so its ratio is large and its added µs say more.
      const ratio = mode === 'nobody follows' ? '' : `  ×${(r / baseR).toFixed(2)} / ×${(d / baseD).toFixed(1)} / ×${((r + d) / (baseR + baseD)).toFixed(2)}  (+${(r - baseR).toFixed(1)} / +${(d - baseD).toFixed(1)} µs)`;
      console.log(`  ${mode.padEnd(16)} ${median(rows.map((x) => x.rps)).toFixed(0).padStart(6)} req/s  router ${r.toFixed(1)} µs  rackd ${d.toFixed(1)} µs  together ${(r + d).toFixed(1)} µs${ratio}`);
    }
    console.log(`  (ratios and added µs: router / rackd / together; drain receiver: ${receiver.posts} posts, ${receiver.badPosts} badly framed)`);
    console.log(`  resident memory after the rounds: rackd ${mb(await rssOf(rackd))}, router ${mb(await rssOf(router))}`);
  } finally {
    await rack.destroy();
    await receiver.stop();
    await rm(receiver.caFile, { force: true });
  }
}

function memory(): NodeJS.MemoryUsage {
  global.gc?.();
  return process.memoryUsage();
}

const memLine = (m: NodeJS.MemoryUsage) => `heap ${mb(m.heapUsed)} of ${mb(m.heapTotal)}, RSS ${mb(m.rss)}`;

async function metricsStore(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'rack-bench-metrics-'));
  const store = new Store(join(dir, 'db'), join(dir, 'builds'));
  const before = memory();
  await store.start();
  let open: NodeJS.MemoryUsage | undefined;
  try {
    const apps = Array.from({ length: APPS }, (_, i) => `app-${String(i + 1).padStart(2, '0')}`);
    for (const app of apps) await store.createApp(app);
    const start = Date.now() - (Date.now() % 600_000) - DAYS * 86_400_000;
    let now = start;
    const recorder = new MetricsRecorder(store.metrics, async () => apps, pino({ level: 'silent' }), () => now);
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
    open = memory();
    const du = await run('du', ['-sb', join(dir, 'db')]);
    console.log(`metrics store: ${APPS} apps × ${DAYS} day(s) of 10 s points (${buckets} buckets) written and rolled up in ${writeS.toFixed(1)} s (${((writeS * 1000) / buckets).toFixed(2)} ms per bucket of ${APPS} apps)`);
    console.log(`  on disk: ${mb(Number(du.stdout.split('\t')[0]))} (LevelDB, compacting as it goes)`);
    for (const [label, since] of [['1h', 3_600_000], ['24h', 86_400_000], ['7d', 7 * 86_400_000]] as const) {
      const q0 = performance.now();
      const { resolution, points } = await recorder.points('app-01', since);
      console.log(`  metrics --since ${label}: ${points.length} points at ${resolution} read in ${(performance.now() - q0).toFixed(1)} ms`);
    }
  } finally {
    await store.stop();
    await rm(dir, { recursive: true, force: true });
  }
  const closed = memory();
  console.log(`  this process: before ${memLine(before)}; store open after the writes ${memLine(open)} (external ${mb(open.external)}); store closed ${memLine(closed)}${global.gc ? '' : ' (run with --expose-gc for settled figures)'}`);
  // RSS less V8's heap (its reserved size: heapTotal, which a burst of garbage grows and GC is slow
  // to give back) and Buffers is native: LevelDB's cache, memtables and table indexes, plus what
  // malloc keeps in its arenas after LevelDB's compaction thread frees it.
  const native = (m: NodeJS.MemoryUsage) => m.rss - m.heapTotal - m.external;
  console.log(`  RSS beyond the JS heap: before ${mb(native(before))}, store open ${mb(native(open))}, closed ${mb(native(closed))} (LevelDB's cache and memtables, kept by malloc once freed)`);
}

async function logStore(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'rack-bench-obs-logs-'));
  const end = Date.now();
  try {
    const before = memory();
    let open: NodeJS.MemoryUsage | undefined;
    const filled = await fillLogs(dir, LOG_MB, end, undefined, () => (open = memory()));
    const closed = memory();
    console.log(`log store: ${filled.lines} lines (${LOG_MB} MB, ${Math.round(filled.lines / 7)} a day over a week) in ${filled.segments} segments, written in ${(filled.writeMs / 1000).toFixed(1)} s (${((filled.writeMs * 1000) / filled.lines).toFixed(2)} µs a line), ${filled.dropped} dropped`);
    if (open) console.log(`  this process: before ${memLine(before)}; store open after the fill ${memLine(open)}; closed ${memLine(closed)}`);
    console.log(`  queries (the LogStore in process, opened afresh as after a restart):`);
    for (const q of await timeLogQueries(dir, filled.keep, end)) console.log(`    ${q.what.padEnd(52)} ${q.ms.toFixed(0).padStart(6)} ms  ${q.found} lines`);
    console.log(`  this process after the queries: ${memLine(memory())}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  console.log(`bench:observability on a shared machine (other work may run beside it: compare within a run)`);
  if (ROUNDS > 0) {
    console.log(`\n== (a) CPU per request through the deployed router, rackd and the router process (${ROUNDS} rounds, modes alternating)`);
    await cpuPerRequest();
  }
  if (DAYS > 0) {
    console.log(`\n== (b) the metric store after ${DAYS} day(s) of samples, in process over a real LevelDB`);
    await metricsStore();
  }
  if (LOG_MB > 0) {
    console.log(`\n== (c) the log store with ${LOG_MB} MB kept, and logs --grep over it`);
    await logStore();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
