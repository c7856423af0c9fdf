/**
 * rackd's resident memory while a build prints a lot: pushes an app whose buildpack prints MB
 * megabytes (default 100), samples rackd's VmRSS from /proc/PID/status during the build, and
 * prints the peak, the push's outcome and the size of the kept log.
 *   npm run build && node dist/scripts/bench-build-output.js [MB]
 */
import { cp, mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { quote } from 'shell-quote';
import { commitFile, FIXTURES, RackDaemon } from '../test/support/rack-daemon.js';

const mb = Number(process.argv[2] ?? 100);

async function rssKb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? 0);
}

const rack = await RackDaemon.create();
try {
  const pid = rack.child!.pid!;
  const loud = join(rack.home, 'buildpacks', 'loud');
  await mkdir(join(rack.home, 'buildpacks'), { recursive: true });
  await cp(join(FIXTURES, 'loud-buildpack'), loud, { recursive: true });
  const app = 'bench-loud';
  const dir = await rack.appRepo('procfile-app', app);
  await commitFile(dir, '.buildpacks', `${loud}\n`, 'loud');
  const created = await rack.ssh(['apps:create', app]);
  if (created.code !== 0) throw new Error(created.stderr);
  await rack.ssh([quote(['config:set', `LOUD_MB=${mb}`, '-a', app])]);

  const before = await rssKb(pid);
  let peak = before;
  let sampling = true;
  const timeline: string[] = [];
  const sampler = (async () => {
    for (let i = 0; sampling; i++) {
      const now = await rssKb(pid);
      peak = Math.max(peak, now);
      if (i % 10 === 0) timeline.push(`${(now / 1024).toFixed(0)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  const t0 = performance.now();
  const push = await rack.push(dir);
  const seconds = (performance.now() - t0) / 1000;
  sampling = false;
  await sampler;

  const builds = JSON.parse((await rack.ssh(['builds', '--json', '-a', app])).stdout) as { id: number; status: string }[];
  const log = await rack.ssh(['builds:logs', `b${builds[0]!.id}`, '-a', app]);
  console.log(`build printing ${mb} MB: push exit ${push.code}, build ${builds[0]!.status}, ${seconds.toFixed(1)} s`);
  console.log(`kept log: ${(log.stdout.length / 1024 / 1024).toFixed(1)} MB, truncated marker: ${log.stdout.includes('... output truncated')}`);
  console.log(`rackd RSS each second (MB): ${timeline.join(' ')}`);
  console.log(`rackd RSS: before ${(before / 1024).toFixed(0)} MB, peak during the build ${(peak / 1024).toFixed(0)} MB (target ≤ 150 MB)`);
} finally {
  await rack.destroy();
}
