/**
 * Measures rack updating itself as an admin does it: rackd started by `bin/rackd`, one app under
 * keep-alive and new-connection HTTP load (closed-loop Node clients through the deployed router),
 * then `rack:update` to a commit one ahead of this checkout (a clone with the version bumped) and
 * `rack:rollback` back. Prints each one's time to the new version serving, the steps rack timed,
 * and the failed requests; and beside them the anchor an operator has without rack:update (stop
 * rackd with SIGTERM, start the other build), under the same load.
 *   npm run build && node dist/scripts/bench-rack-update.js
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { freePort } from '../test/support/free-port.js';
import { httpLoad } from '../test/support/http-load.js';
import { nextVersionSource } from '../test/support/next-version.js';
import { RackDaemon } from '../test/support/rack-daemon.js';
import { secs } from './bench-host.js';

async function commitOf(rack: RackDaemon): Promise<string> {
  for (;;) {
    const r = await rack.ssh(['rack', '--json']);
    if (r.code === 0) return (JSON.parse(r.stdout) as { commit: string }).commit;
    await new Promise((res) => setTimeout(res, 50));
  }
}

/** One switch under load: its time to the target serving, the steps line rack printed, failed requests. */
async function underLoad(rack: RackDaemon, label: string, work: () => Promise<string>): Promise<void> {
  const load = httpLoad(rack.httpPort, 'hello.localhost', 4, 2);
  const t0 = performance.now();
  const said = await work();
  const ms = performance.now() - t0;
  const { ok, failed } = await load.stop();
  const steps = /steps: (.*)/.exec(said)?.[1] ?? '-';
  console.log(`${label.padEnd(34)} ${secs(ms).padStart(7)}   requests ${String(ok).padStart(6)}, failed ${failed.length}   ${steps}`);
  if (failed.length > 0) console.log(`  first failures: ${failed.slice(0, 3).join(' | ')}`);
}

const { dir: sourceDir, next } = await nextVersionSource('bench');
const source = { dir: sourceDir, commit: next };
const rack = await RackDaemon.create({ RACK_SSH_PORT: String(await freePort()), RACK_HTTPS_PORT: 'off' }, { launcher: true });
try {
  const app = await rack.appRepo('node-hello', 'hello');
  if ((await rack.push(app)).code !== 0) throw new Error('push failed');
  const installed = await commitOf(rack);
  console.log('rackd started by bin/rackd; load: 4 keep-alive + 2 new-connection Node clients on one app through the deployed router');
  const ssh = async (args: string[]) => {
    const r = await rack.ssh(args);
    if (r.code !== 0) throw new Error(`${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  await underLoad(rack, 'rack:update (fetch, build, switch)', () => ssh(['rack:update', '--from', source.dir]));
  if ((await commitOf(rack)) !== source.commit) throw new Error('the update did not end on the new commit');
  await underLoad(rack, 'rack:rollback (kept install)', () => ssh(['rack:rollback']));
  await underLoad(rack, 'rack:update again (already built)', () => ssh(['rack:update', '--from', source.dir]));
  await underLoad(rack, 'rack:rollback', () => ssh(['rack:rollback']));
  if ((await commitOf(rack)) !== installed) throw new Error('the rollback did not end on the installed commit');
  // The anchor: what an operator does without rack:update, a stop and a start of rackd.
  await underLoad(rack, 'anchor: rackd SIGTERM + start', async () => {
    await rack.stop();
    await rack.start({ RACK_SSH_PORT: String(rack.sshPort), RACK_HTTPS_PORT: 'off' });
    await commitOf(rack);
    return '';
  });
} finally {
  await rack.destroy();
  await rm(join(source.dir, '..'), { recursive: true, force: true });
}
