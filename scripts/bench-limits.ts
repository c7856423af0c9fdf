/**
 * What the tenant limits cost: push → answering and router throughput for one small Node app under
 * rack's default limits (memory=512m, cpu=1, pids=256), without the CPU cap (cpu=shared), and with
 * the limits raised out of reach (memory=16g, pids=4096), in the same run
 * against the same rackd. Network isolation and the unprivileged user apply in all three (they
 * have no off switch); the ratios isolate the cgroup limits.
 *   npm run build && node dist/scripts/bench-limits.js [rounds] [seconds]
 */
import { RackDaemon } from '../test/support/rack-daemon.js';
import { pushToAnswering as pushAndWait } from './bench-host.js';
import { ms, runLoad } from './load-generator.js';

const rounds = Number(process.argv[2] ?? 5);
const seconds = Number(process.argv[3] ?? 5);
const app = 'bench-limits';
const pushToAnswering = async (rack: RackDaemon, dir: string, marker: string): Promise<number> => (await pushAndWait(rack, dir, app, marker)).ms;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** The settings compared; each round measures every one in turn, so drift in the machine's load hits all alike. */
const SETTINGS: [string, string[]][] = [
  ['defaults', ['memory=512m', 'cpu=1', 'pids=256']],
  ['cpu=shared', ['memory=512m', 'cpu=shared', 'pids=256']],
  ['no limits', ['memory=16g', 'cpu=shared', 'pids=4096']],
];

const rack = await RackDaemon.create();
try {
  const dir = await rack.appRepo('node-hello', app);
  await pushToAnswering(rack, dir, 'warm-up');
  const results = new Map<string, { push: number[]; rps: number[]; p99: number[] }>(SETTINGS.map(([l]) => [l, { push: [], rps: [], p99: [] }]));
  for (let round = 0; round < rounds; round++) {
    for (const [label, words] of SETTINGS) {
      const set = await rack.ssh(['ps:limit', 'web', ...words, '-a', app]);
      if (set.code !== 0) throw new Error(set.stderr);
      const r = results.get(label)!;
      r.push.push(await pushToAnswering(rack, dir, `${label}-${round}`));
      const load = await runLoad({ url: `http://127.0.0.1:${rack.httpPort}/`, host: `${app}.localhost`, connections: 16, durationMs: seconds * 1000 });
      if (load.failed > 0) throw new Error(`${load.failed} requests failed under load`);
      r.rps.push(load.rps);
      r.p99.push(load.latency.p99);
    }
  }
  const open = results.get('no limits')!;
  for (const [label] of SETTINGS) {
    const r = results.get(label)!;
    const ratio = label === 'no limits' ? '' : `; vs no limits: push ${(median(r.push) / median(open.push)).toFixed(2)}×, throughput ${(median(r.rps) / median(open.rps)).toFixed(2)}×, p99 ${(median(r.p99) / median(open.p99)).toFixed(2)}×`;
    console.log(`${label.padEnd(10)} push → answering median ${(median(r.push) / 1000).toFixed(2)} s; router ${median(r.rps).toFixed(0)} req/s, p99 ${ms(median(r.p99))} (medians of ${rounds})${ratio}`);
  }
} finally {
  await rack.destroy();
}
