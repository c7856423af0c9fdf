import test, { type ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { RouterClient } from '../daemon/router/router-client.js';
import { ROOT } from './support/rack-daemon.js';

// The real rackd (dist/daemon/main.js, with Docker and the stack image) whose router cannot start:
// it must exit non-zero with one line saying why, not hang. Needs Docker, like every rackd start.

interface Exit {
  code: number | null;
  stderr: string;
}

async function tempHome(t: ExecutionContext): Promise<string> {
  const base = await mkdtemp(join(tmpdir(), 'rack-start-'));
  t.teardown(() => rm(base, { recursive: true, force: true }));
  return join(base, 'home');
}

/** Pids of the router processes for `socketPath` (found by the socket in their environment). */
async function routersFor(socketPath: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const env = await readFile(`/proc/${entry}/environ`, 'latin1').catch(() => '');
    if (env.split('\0').includes(`RACK_ROUTER_SOCKET=${socketPath}`)) pids.push(Number(entry));
  }
  return pids;
}

async function startRackd(t: ExecutionContext, env: Record<string, string>, home?: string): Promise<{ home: string; exit: Exit }> {
  home ??= await tempHome(t);
  const child = spawn(process.execPath, [join(ROOT, 'dist', 'daemon', 'main.js')], {
    env: { ...process.env, RACK_HOME: home, RACK_SSH_PORT: '0', RACK_HTTPS_PORT: '0', RACK_BIND: '127.0.0.1', RACK_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  t.teardown(() => void (child.exitCode === null && child.signalCode === null && child.kill('SIGKILL')));
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  // Generous: a hung rackd is what this catches, and that never exits.
  const killer = setTimeout(() => child.kill('SIGKILL'), 120_000);
  const [code] = (await once(child, 'exit')) as [number | null];
  clearTimeout(killer);
  return { home, exit: { code, stderr } };
}

test('rackd fails to start, in one clear line, when its HTTP port is taken by another program', async (t) => {
  const squatter = createServer().listen(0, '127.0.0.1');
  await once(squatter, 'listening');
  t.teardown(() => void squatter.close());
  const port = (squatter.address() as AddressInfo).port;

  const { home, exit } = await startRackd(t, { RACK_HTTP_PORT: String(port) });
  t.is(exit.code, 1, exit.stderr);
  const log = join(home, 'logs', 'router.log');
  t.is(exit.stderr, `rackd: the router could not start: HTTP port ${port} on 127.0.0.1 is already in use by another program (router log: ${log})\n`);
  t.regex(await readFile(log, 'utf8'), /HTTP port already in use/);
  t.regex(await readFile(join(home, 'logs', 'rackd.log'), 'utf8'), /"code":"router_failed"/, 'rackd logs it in its own log file too');
});

test('rackd fails to start, in one clear line, when its router process exits at once', async (t) => {
  // An address this host does not have: the router cannot listen on it and exits.
  const { home, exit } = await startRackd(t, { RACK_HTTP_PORT: '0', RACK_BIND: '192.0.2.1' });
  t.is(exit.code, 1, exit.stderr);
  const log = join(home, 'logs', 'router.log');
  t.is(exit.stderr.split('\n').filter((l) => l !== '').length, 1, exit.stderr);
  t.regex(exit.stderr, /^rackd: the router could not start: the router process exited with code 1: router: cannot listen: .*EADDRNOTAVAIL/);
  t.true(exit.stderr.includes(`(router log: ${log})`), exit.stderr);
});

test('rackd fails to start, in one clear line, when the router already running for its home is stuck', async (t) => {
  const home = await tempHome(t);
  const files = { socketPath: join(home, 'router.sock'), statePath: join(home, 'router.json'), logPath: join(home, 'logs', 'router.log') };
  const earlier = new RouterClient({ ...files, bind: '127.0.0.1', port: 0, logger: pino({ level: 'silent' }) });
  await earlier.start();
  const { pid } = await earlier.ping();
  await earlier.stop();
  // Stopped, it keeps its lock and its socket accepts connections, but it never answers.
  process.kill(pid, 'SIGSTOP');
  t.teardown(() => {
    process.kill(pid, 'SIGKILL');
    process.kill(pid, 'SIGCONT');
  });

  const { exit } = await startRackd(t, { RACK_HTTP_PORT: '0' }, home);
  t.is(exit.code, 1, exit.stderr);
  t.is(exit.stderr.split('\n').filter((l) => l !== '').length, 1, exit.stderr);
  t.true(
    exit.stderr.startsWith(`rackd: the router could not start: the router process already running for ${files.socketPath} did not answer within 15 s`),
    exit.stderr,
  );
  t.true(exit.stderr.includes(`(router log: ${files.logPath})`), exit.stderr);
  // A router rackd spawned and gave up on is stopped: it would otherwise take the socket once the
  // stuck one goes, a router nobody manages. The killed one goes as soon as init reaps it.
  let others = (await routersFor(files.socketPath)).filter((p) => p !== pid);
  while (others.length > 0) {
    await new Promise((r) => setTimeout(r, 50));
    others = (await routersFor(files.socketPath)).filter((p) => p !== pid);
  }
  t.deepEqual(others, []);
});
