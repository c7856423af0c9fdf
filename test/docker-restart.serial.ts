import test from 'ava';
import { spawn } from 'node:child_process';
import { open, readFile } from 'node:fs/promises';
import { exec, RackDaemon } from './support/rack-daemon.js';

// Restarts the Docker engine itself, so it runs alone, after the other test files (`npm test` runs
// the *.serial files in a second pass): an app's rows in its Postgres and keys in its Redis are
// there when Docker is back, and rack serves the app again without anyone touching it.

let rack: RackDaemon;
test.before(async () => {
  rack = await RackDaemon.create();
});
test.after.always(async () => {
  await rack?.destroy();
});

const body = async (p: Promise<{ status: number; body: string }>) => (await p).body.trim();

async function eventually(what: string, fn: () => Promise<boolean>, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await fn().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** Stops dockerd (its containers stop with it) and starts it again as it was started. */
async function restartDocker(): Promise<void> {
  if ((await exec('systemctl', ['is-active', '--quiet', 'docker'])).code === 0) {
    const r = await exec('systemctl', ['restart', 'docker']);
    if (r.code !== 0) throw new Error(`systemctl restart docker: ${r.stderr}`);
    return;
  }
  const pid = (await exec('pidof', ['dockerd'])).stdout.trim().split(/\s+/)[0];
  if (!pid) throw new Error('no dockerd process to restart (and no systemd unit): this test restarts the engine rack uses');
  const argv = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0').filter(Boolean);
  process.kill(Number(pid), 'SIGTERM');
  await eventually('dockerd to stop', async () => (await exec('pidof', ['dockerd'])).stdout.trim() === '', 90_000);
  const log = await open('/var/log/rack-dockerd.log', 'a');
  try {
    spawn(argv[0]!, argv.slice(1), { detached: true, stdio: ['ignore', log.fd, log.fd] }).unref();
  } finally {
    await log.close();
  }
  await eventually('dockerd to answer', async () => (await exec('docker', ['info'])).code === 0, 60_000);
}

test.serial('after a Docker restart the rows and keys are there and the app serves them', async (t) => {
  const dir = await rack.appRepo('addon-app', 'keep');
  t.is((await rack.push(dir)).code, 0);
  for (const kind of ['postgres', 'redis']) {
    const r = await rack.ssh(['addons:create', kind, '-a', 'keep']);
    t.is(r.code, 0, r.stderr);
  }
  t.is(await body(rack.post('keep', '/rows?n=100')), 'added 100');
  t.is(await body(rack.post('keep', '/key?k=kept&v=yes')), 'ok');
  // Redis writes its append-only file every second.
  await new Promise((r) => setTimeout(r, 1500));

  const started = Date.now();
  await restartDocker();
  await eventually('the app to read its rows again', async () => (await body(rack.get('keep', '/rows'))) === '100');
  t.log(`Docker restarted; the app read its rows again ${((Date.now() - started) / 1000).toFixed(1)} s after the restart began`);
  t.is(await body(rack.get('keep', '/key?k=kept')), 'yes');
  for (const name of ['keep-postgres', 'keep-redis']) {
    await eventually(`${name} healthy`, async () => {
      const info = JSON.parse((await rack.ssh(['addons:info', name, '--json'])).stdout) as { status: string };
      return info.status === 'healthy';
    });
  }
  const ps = JSON.parse((await rack.ssh(['ps', '--json', '-a', 'keep'])).stdout) as { state: string }[];
  t.deepEqual(ps.map((p) => p.state), ['up']);
});
