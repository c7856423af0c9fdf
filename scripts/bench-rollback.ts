/**
 * Measures `releases:rollback` / `releases:promote` / `config:set` → the release answering through
 * the router, for a small Node app, against a real rackd over real ssh and Docker.
 *   npm run build && node dist/scripts/bench-rollback.js [rounds]
 */
import { commitFile, RackDaemon } from '../test/support/rack-daemon.js';

const rounds = Number(process.argv[2] ?? 5);
const app = 'bench-rollback';
const server = (marker: string) =>
  `require('http').createServer((q, s) => s.end('${marker}' + (process.env.N || ''))).listen(process.env.PORT);\n`;

async function until(rack: RackDaemon, body: string, t0: number): Promise<number> {
  for (;;) {
    const res = await rack.get(app).catch(() => ({ status: 0, body: '' }));
    if (res.body === body) return performance.now() - t0;
    if (performance.now() - t0 > 60_000) throw new Error(`never answered ${body}`);
  }
}

async function timed(rack: RackDaemon, args: string[], body: string): Promise<number> {
  const t0 = performance.now();
  const r = await rack.ssh([...args, '-a', app]);
  if (r.code !== 0) throw new Error(`${args.join(' ')} failed: ${r.stderr}`);
  return until(rack, body, t0);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

const rack = await RackDaemon.create();
try {
  const dir = await rack.appRepo('node-hello', app);
  await commitFile(dir, 'server.js', server('one'), 'one');
  if ((await rack.push(dir)).code !== 0) throw new Error('first push failed');
  await commitFile(dir, 'server.js', server('two'), 'two');
  if ((await rack.push(dir)).code !== 0) throw new Error('second push failed');
  const rollbacks: number[] = [];
  const promotes: number[] = [];
  const configs: number[] = [];
  for (let i = 0; i < rounds; i++) {
    rollbacks.push(await timed(rack, ['releases:rollback', 'v1'], 'one'));
    promotes.push(await timed(rack, ['releases:promote', 'v2'], 'two'));
    configs.push(await timed(rack, ['config:set', `N=${i}`], `two${i}`));
  }
  console.log(`releases:rollback → answering (n=${rounds}): median ${fmt(median(rollbacks))}, max ${fmt(Math.max(...rollbacks))}`);
  console.log(`releases:promote  → answering (n=${rounds}): median ${fmt(median(promotes))}, max ${fmt(Math.max(...promotes))}`);
  console.log(`config:set        → answering (n=${rounds}): median ${fmt(median(configs))}, max ${fmt(Math.max(...configs))}`);
  console.log(`goal < 2 s (issue), ≤ 1 s (design): rollback median/1 s = ${(median(rollbacks) / 1000).toFixed(2)}`);
} finally {
  await rack.destroy();
}
