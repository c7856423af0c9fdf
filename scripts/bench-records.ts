/**
 * rackd at size: 50 apps of 100 releases each (a push every fifth release, config changes between,
 * 20 config vars each), made through the Store in the daemon's own LevelDB while it is stopped.
 * Then a real rackd starts on that home, and this prints its memory (RSS now and its peak) and how
 * long `apps` and `releases` take over ssh: on a fresh connection each time (what a user typing
 * them sees, the ssh handshake included) and on one multiplexed connection (rack's own share).
 * Goals: RSS ≤ 150 MB; each command ≤ 100 ms on a fresh connection.
 *   npm run build && node dist/scripts/bench-records.js [apps] [releases-per-app]
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Store } from '../daemon/store/store.js';
import { RackDaemon } from '../test/support/rack-daemon.js';
import { median } from './bench-host.js';

const APPS = Number(process.argv[2] ?? 50);
const RELEASES = Number(process.argv[3] ?? 100);
const ROUNDS = 10;
const RSS_GOAL_MB = 150;
const COMMAND_GOAL_MS = 100;

async function makeRecords(home: string): Promise<void> {
  const store = new Store(join(home, 'db'), join(home, 'builds'));
  await store.start();
  try {
    for (let a = 1; a <= APPS; a++) {
      const app = `app-${String(a).padStart(2, '0')}`;
      await store.createApp(app);
      let config: Record<string, string> = {};
      for (let i = 0; i < 20; i++) config[`VAR_${i}`] = `value-${i}-${'x'.repeat(40)}`;
      let build = await store.createBuild(app, { commit: '0'.repeat(40), createdBy: 'alice' });
      for (let v = 1; v <= RELEASES; v++) {
        if (v % 5 === 1) {
          build = await store.createBuild(app, { commit: v.toString(16).padStart(40, 'a'), createdBy: 'alice' });
          // No process types: adoption at start has nothing to run for these apps.
          build = { ...build, status: 'succeeded', image: `rack/${app}:b${build.id}`, processTypes: {}, finishedAt: new Date().toISOString(), durationMs: 1200 };
          await store.finishBuild(build, [Buffer.from('-----> Building\n')]);
        } else {
          config = { ...config, [`VAR_${v % 20}`]: `changed-${v}` };
        }
        const release = await store.createRelease(app, {
          build: build.id,
          image: build.image ?? '',
          processTypes: build.processTypes,
          formation: {},
          config,
          description: v % 5 === 1 ? `Deploy ${build.commit.slice(0, 7)}` : `Set VAR_${v % 20}`,
          createdBy: 'alice',
        });
        await store.finishRelease(release, 'succeeded', null, []);
      }
    }
  } finally {
    await store.stop();
  }
}

async function memory(pid: number): Promise<{ rss: number; peak: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rss: kb('VmRSS') / 1024, peak: kb('VmHWM') / 1024 };
}

async function timeCommand(rack: RackDaemon, args: string[], extra: string[]): Promise<number> {
  const xs: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    const t0 = performance.now();
    const r = await rack.ssh(args, { extra });
    if (r.code !== 0) throw new Error(`${args.join(' ')} failed: ${r.stderr}`);
    xs.push(performance.now() - t0);
  }
  return median(xs);
}

const rack = await RackDaemon.create();
try {
  await rack.stop();
  const t0 = performance.now();
  await makeRecords(rack.home);
  console.log(`${APPS} apps × ${RELEASES} releases made in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  await rack.start();
  const pid = rack.child!.pid!;
  const rows: [string, number, number][] = [];
  for (const args of [['apps'], ['releases', '-a', 'app-25'], ['releases', '--json', '-a', 'app-25']]) {
    const fresh = await timeCommand(rack, args, []);
    const shared = await timeCommand(rack, args, rack.multiplexed());
    rows.push([args.join(' '), fresh, shared]);
  }
  const { rss, peak } = await memory(pid);
  console.log(`rackd RSS ${rss.toFixed(0)} MB, peak ${peak.toFixed(0)} MB (goal ≤ ${RSS_GOAL_MB} MB) ${peak <= RSS_GOAL_MB ? 'ok' : 'MISSED'}`);
  console.log(`median of ${ROUNDS}          fresh ssh   multiplexed`);
  for (const [label, fresh, shared] of rows) {
    console.log(`${label.padEnd(26)} ${fresh.toFixed(0).padStart(6)} ms ${shared.toFixed(0).padStart(9)} ms  ${fresh <= COMMAND_GOAL_MS ? 'ok' : 'MISSED'}`);
  }
} finally {
  await rack.destroy();
}
