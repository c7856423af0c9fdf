import test from 'ava';
import { spawn } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { commitFile, exec, RackDaemon, ROOT } from './support/rack-daemon.js';

// Crashes and hangs: whatever rackd was doing when it died, the next start keeps only what was
// checked and switched to, removes every leftover, and the app keeps serving.

let rack: RackDaemon;
const app = 'faults';
test.before(async () => {
  rack = await RackDaemon.create();
  const dir = await rack.appRepo('tenant', app);
  // A slow first health check (4 s) keeps new processes unchecked long enough to stop rackd among them.
  const check = { healthchecks: { web: [{ path: '/', initialDelay: 4, attempts: 20 }] } };
  await commitFile(dir, 'app.json', JSON.stringify(check), 'slow health check');
  const push = await rack.push(dir);
  if (push.code !== 0) throw new Error(push.stderr);
});
test.after.always(async () => {
  await rack?.destroy();
});

const containers = async (...labels: string[]) =>
  (await exec('docker', ['ps', '-aq', ...labels.flatMap((l) => ['--filter', `label=${l}`])])).stdout.split('\n').filter(Boolean);

/** Runs `ssh rack ARGS`, resolving when its output first matches `line` (the phase's own line). */
function sshUntil(args: string[], line: RegExp): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('ssh', [...rack.sshArgs(), '--', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const timer = setTimeout(() => reject(new Error(`never saw ${line}:\n${out}`)), 120_000);
    const seen = (c: Buffer) => {
      out += c.toString();
      if (line.test(out)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout.on('data', seen);
    child.stderr.on('data', seen);
    child.on('close', () => {
      clearTimeout(timer);
      if (!line.test(out)) reject(new Error(`ssh ended before ${line}:\n${out}`));
    });
  });
}

test.serial('rackd killed during ps:scale: the unchecked new processes are removed, the checked ones adopted', async (t) => {
  const before = await containers(`rack.app=${app}`, 'rack.role=process');
  t.is(before.length, 1);
  // Only what is missing starts: web.2 and web.3 beside the running web.1.
  await sshUntil(['ps:scale', 'web=3', '-a', app], /Starting web=2 of v\d+ \(web\.2 web\.3\)/);
  // The new processes exist but their checks (app.json: 4 s initial delay) have not passed.
  for (let i = 0; i < 100 && (await containers(`rack.app=${app}`, 'rack.role=process')).length < 3; i++) await new Promise((r) => setTimeout(r, 50));
  t.is((await containers(`rack.app=${app}`, 'rack.role=process')).length, 3, 'two new processes started');
  await rack.stop('SIGKILL');
  t.deepEqual(await rack.get(app), { status: 200, body: 'tenant unnamed\n' }, 'the router kept serving');
  await rack.start();
  const after = await containers(`rack.app=${app}`, 'rack.role=process');
  t.deepEqual(after.map((id) => id.slice(0, 12)), before.map((id) => id.slice(0, 12)), 'only the process that was switched to remains');
  const ps = JSON.parse((await rack.ssh(['ps', '--json', '-a', app])).stdout) as unknown[];
  t.is(ps.length, 1);
  t.deepEqual(await rack.get(app), { status: 200, body: 'tenant unnamed\n' });
});

test.serial('a run container left by a crash is removed at the next start, and the app goes on', async (t) => {
  const run = spawn('ssh', [...rack.sshArgs(), '--', 'run', '-a', app, 'sleep 120'], { stdio: 'ignore' });
  for (let i = 0; i < 200 && (await containers(`rack.app=${app}`, 'rack.role=run')).length === 0; i++) await new Promise((r) => setTimeout(r, 50));
  t.is((await containers(`rack.app=${app}`, 'rack.role=run')).length, 1);
  await rack.stop('SIGKILL');
  run.kill();
  await rack.start();
  t.deepEqual(await containers(`rack.app=${app}`, 'rack.role=run'), []);
  t.deepEqual(await containers(`rack.app=${app}`, 'rack.role=build'), []);
  t.deepEqual(await containers(`rack.app=${app}`, 'rack.role=release'), []);
  t.deepEqual(await rack.get(app), { status: 200, body: 'tenant unnamed\n' });
  const next = await rack.ssh(['config:set', 'NAME=after', '-a', app]);
  t.is(next.code, 0, next.stderr);
  t.deepEqual(await rack.get(app), { status: 200, body: 'tenant after\n' });
});

test('a Docker engine that accepts and never answers fails rackd\'s start in one clear line', async (t) => {
  const dir = join(rack.work, 'hung-docker');
  await exec('mkdir', ['-p', dir]);
  const socket = join(dir, 'docker.sock');
  const held: import('node:net').Socket[] = [];
  const hung: Server = createServer((s) => held.push(s)); // accepts, reads, never answers
  await new Promise<void>((r) => hung.listen(socket, r));
  try {
    const started = Date.now();
    const child = await exec(process.execPath, [join(ROOT, 'dist', 'daemon', 'main.js')], {
      env: { ...process.env, RACK_HOME: join(dir, 'home'), RACK_SSH_PORT: '0', RACK_HTTP_PORT: '0', RACK_HTTPS_PORT: '0', RACK_BIND: '127.0.0.1', DOCKER_HOST: `unix://${socket}` },
    });
    t.not(child.code, 0);
    t.regex(child.stderr + child.stdout, /no Docker engine answers/);
    t.true(Date.now() - started < 60_000, 'it gave up instead of hanging');
  } finally {
    for (const s of held) s.destroy();
    hung.close();
    await rm(dir, { recursive: true, force: true });
  }
});
