/**
 * What the tenant limits cost: push → answering and router throughput for one small Node app under
 * rack's default limits (memory=512m, pids=256, an equal CPU weight), under a hard CPU cap
 * (cpu=1), and with the limits raised out of reach (memory=16g, pids=4096), in the same run
 * against the same rackd. Network isolation and the unprivileged user apply in all three (they
 * have no off switch); the ratios isolate the cgroup limits.
 *   npm run build && node dist/scripts/bench-limits.js [redeploys] [seconds]
 */
import { commitFile, RackDaemon } from '../test/support/rack-daemon.js';
import { ms, runLoad } from './load-generator.js';

const redeploys = Number(process.argv[2] ?? 5);
const seconds = Number(process.argv[3] ?? 5);
const app = 'bench-limits';
const server = (marker: string) => `require('http').createServer((q, s) => s.end('${marker}')).listen(process.env.PORT);\n`;

async function pushToAnswering(rack: RackDaemon, dir: string, marker: string): Promise<number> {
  await commitFile(dir, 'server.js', server(marker), marker);
  const t0 = performance.now();
  const result = await rack.push(dir);
  if (result.code !== 0) throw new Error(`push failed:\n${result.stderr}`);
  for (;;) {
    const res = await rack.get(app).catch(() => ({ status: 0, body: '' }));
    if (res.body === marker) return performance.now() - t0;
    if (performance.now() - t0 > 120_000) throw new Error('new release never answered');
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function measure(rack: RackDaemon, dir: string, label: string): Promise<{ push: number; rps: number; p99: number }> {
  const pushes: number[] = [];
  for (let i = 0; i < redeploys; i++) pushes.push(await pushToAnswering(rack, dir, `${label}-${i}`));
  const load = await runLoad({ url: `http://127.0.0.1:${rack.httpPort}/`, host: `${app}.localhost`, connections: 16, durationMs: seconds * 1000 });
  if (load.failed > 0) throw new Error(`${load.failed} requests failed under load`);
  const push = median(pushes);
  console.log(`${label.padEnd(10)} push → answering median ${(push / 1000).toFixed(2)} s (n=${redeploys}); router ${load.rps.toFixed(0)} req/s, p99 ${ms(load.latency.p99)}`);
  return { push, rps: load.rps, p99: load.latency.p99 };
}

async function limit(rack: RackDaemon, words: string[]): Promise<void> {
  const set = await rack.ssh(['ps:limit', 'web', ...words, '-a', app]);
  if (set.code !== 0) throw new Error(set.stderr);
}

const rack = await RackDaemon.create();
try {
  const dir = await rack.appRepo('node-hello', app);
  await pushToAnswering(rack, dir, 'warm-up');
  const defaults = await measure(rack, dir, 'defaults');
  await limit(rack, ['cpu=1']);
  const capped = await measure(rack, dir, 'cpu=1');
  await limit(rack, ['memory=16g', 'cpu=shared', 'pids=4096']);
  const open = await measure(rack, dir, 'no limits');
  for (const [label, m] of [['defaults', defaults], ['cpu=1', capped]] as const) {
    console.log(`${label} / no limits: push → answering ${(m.push / open.push).toFixed(2)}×, router throughput ${(m.rps / open.rps).toFixed(2)}×, p99 ${(m.p99 / open.p99).toFixed(2)}×`);
  }
} finally {
  await rack.destroy();
}
