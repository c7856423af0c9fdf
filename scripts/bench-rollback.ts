/**
 * Measures `releases:rollback` / `releases:promote` / `config:set` → the release answering through
 * the router, for a small Node app, against a real rackd over real ssh and Docker, on a host
 * already running other apps (20 unless `--others N`). Prints the medians and, beside them, the
 * median of each phase rack itself timed.
 *   npm run build && node dist/scripts/bench-rollback.js [rounds] [--others N]
 */
import { commitFile, RackDaemon } from '../test/support/rack-daemon.js';
import { median, medianPhases, othersArg, parseTimings, positional, runOtherApps, secs, type PhaseFigures } from './bench-host.js';

const argv = process.argv.slice(2);
const rounds = Number(positional(argv)[0] ?? 5);
const others = othersArg(argv);
const app = 'bench-rollback';
const GOAL_MS = 600;
const server = (marker: string) =>
  `require('http').createServer((q, s) => s.end('${marker}' + (process.env.N || ''))).listen(process.env.PORT);\n`;

async function until(rack: RackDaemon, body: string, t0: number): Promise<number> {
  for (;;) {
    const res = await rack.get(app).catch(() => ({ status: 0, body: '' }));
    if (res.body === body) return performance.now() - t0;
    if (performance.now() - t0 > 60_000) throw new Error(`never answered ${body}`);
  }
}

interface Kind {
  label: string;
  totals: number[];
  phases: PhaseFigures[];
}

async function timed(rack: RackDaemon, kind: Kind, args: string[], body: string): Promise<void> {
  const t0 = performance.now();
  const r = await rack.ssh([...args, '-a', app]);
  if (r.code !== 0) throw new Error(`${args.join(' ')} failed: ${r.stderr}`);
  kind.totals.push(await until(rack, body, t0));
  kind.phases.push(parseTimings(r.stdout + r.stderr));
}

const rack = await RackDaemon.create();
try {
  await runOtherApps(rack, others);
  const dir = await rack.appRepo('node-hello', app);
  await commitFile(dir, 'server.js', server('one'), 'one');
  if ((await rack.push(dir)).code !== 0) throw new Error('first push failed');
  await commitFile(dir, 'server.js', server('two'), 'two');
  if ((await rack.push(dir)).code !== 0) throw new Error('second push failed');
  const rollback: Kind = { label: 'releases:rollback', totals: [], phases: [] };
  const promote: Kind = { label: 'releases:promote ', totals: [], phases: [] };
  const config: Kind = { label: 'config:set       ', totals: [], phases: [] };
  for (let i = 0; i < rounds; i++) {
    await timed(rack, rollback, ['releases:rollback', 'v1'], 'one');
    await timed(rack, promote, ['releases:promote', 'v2'], 'two');
    await timed(rack, config, ['config:set', `N=${i}`], `two${i}`);
  }
  console.log(`${rounds} rounds, ${others} other apps running`);
  for (const k of [rollback, promote, config]) {
    console.log(`${k.label} → answering: median ${secs(median(k.totals))}, max ${secs(Math.max(...k.totals))}`);
    console.log(`  phases (median): ${medianPhases(k.phases)}`);
  }
  const worst = Math.max(...[rollback, promote, config].map((k) => median(k.totals)));
  console.log(`goal ≤ ${secs(GOAL_MS)} each: worst median/goal = ${(worst / GOAL_MS).toFixed(2)} ${worst <= GOAL_MS ? 'ok' : 'MISSED'}`);
} finally {
  await rack.destroy();
}
