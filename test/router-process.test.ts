import test, { type ExecutionContext } from 'ava';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import http from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { pino } from 'pino';
import type { AccessEntry } from '../daemon/router/router.js';
import { RouterClient } from '../daemon/router/router-client.js';
import { named, upstream } from './support/upstreams.js';
import { alive, routerPids, waitFor } from './support/router-processes.js';

// Real router processes on real sockets, loopback only. Each test has its own directory (so its
// own router) and shuts that router down at the end, whatever happened.

const logger = pino({ level: 'silent' });
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Dir {
  socketPath: string;
  statePath: string;
  logPath: string;
}

async function routerDir(t: ExecutionContext): Promise<Dir> {
  const base = await mkdtemp(join(tmpdir(), 'rr-'));
  const dir = { socketPath: join(base, 'router.sock'), statePath: join(base, 'router.json'), logPath: join(base, 'router.log') };
  t.teardown(async () => {
    await new RouterClient({ ...dir, bind: '127.0.0.1', port: 0, logger }).shutdown();
    // A router that would not answer any more is still ours to end.
    for (const pid of await routerPids(dir.socketPath)) process.kill(pid, 'SIGKILL');
    await rm(base, { recursive: true, force: true });
  });
  return dir;
}

function client(dir: Dir, more: { port?: number; onAccess?: (e: AccessEntry) => void } = {}): RouterClient {
  return new RouterClient({ ...dir, bind: '127.0.0.1', port: more.port ?? 0, logger, onAccess: more.onAccess });
}

interface Reply {
  status: number;
  body: string;
  reused: boolean;
}

function get(port: number, host: string, path = '/', agent: http.Agent | false = false): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, headers: { host }, agent }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('error', reject);
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, reused: req.reusedSocket }));
    });
    req.on('error', reject);
  });
}

test('the router process keeps serving after its client stops; a new client finds the same process', async (t) => {
  const dir = await routerDir(t);
  const [a, b] = await Promise.all([named(t, 'a'), named(t, 'b')]);
  const first = client(dir);
  const port = await first.start();
  first.setApp('web', ['web.test'], [a]);
  await first.flush();
  t.deepEqual(await get(port, 'web.test'), { status: 200, body: 'a', reused: false });
  const { pid } = await first.ping();
  t.not(pid, process.pid);
  t.is((await stat(dir.socketPath)).mode & 0o777, 0o600);
  t.deepEqual(JSON.parse(await readFile(`${dir.statePath}.pid`, 'utf8')), {
    pid,
    httpPort: port,
    httpsPort: 0,
    bind: '127.0.0.1',
    socket: dir.socketPath,
    startedAt: (await first.ping()).startedAt,
  });
  const state = JSON.parse(await readFile(dir.statePath, 'utf8')) as { apps: Record<string, unknown> };
  t.deepEqual(state.apps, { web: { hosts: ['web.test'], upstreams: [a] } });

  await first.stop();
  t.is((await get(port, 'web.test')).body, 'a', 'serves with no client connected');

  const second = client(dir);
  t.is(await second.start(), port);
  t.is((await second.ping()).pid, pid, 'no new process');
  second.setApp('web', ['web.test'], [b]);
  await second.flush();
  t.is((await get(port, 'web.test')).body, 'b');
  t.deepEqual(await second.routes(), [{ app: 'web', hosts: ['web.test'], upstreams: [b] }]);

  await second.shutdown();
  t.false(alive(pid));
  await t.throwsAsync(stat(dir.socketPath), undefined, 'socket removed');
  await t.throwsAsync(stat(`${dir.statePath}.pid`), undefined, 'pid file removed');
  await t.throwsAsync(get(port, 'web.test'));
});

test('a router killed with -9 is replaced by one that serves its persisted table at once', async (t) => {
  const dir = await routerDir(t);
  const a = await named(t, 'a');
  const first = client(dir);
  await first.start();
  first.setApp('web', ['web.test', 'www.web.test'], [a]);
  first.setApp('other', ['other.test'], []);
  first.removeApp('other');
  await first.flush();
  const { pid } = await first.ping();
  await first.stop();
  process.kill(pid, 'SIGKILL');
  await waitFor('the router to die', () => !alive(pid));

  const second = client(dir);
  const port = await second.start();
  const now = await second.ping();
  t.not(now.pid, pid);
  t.is((await get(port, 'www.web.test')).body, 'a', 'served without any setApp');
  t.is((await get(port, 'other.test')).status, 404);
  await second.stop();

  // SIGTERM is a clean stop: the process exits 0 after removing its socket and pid file.
  process.kill(now.pid, 'SIGTERM');
  await waitFor('the router to stop', () => !alive(now.pid));
  await t.throwsAsync(stat(dir.socketPath));
  await t.throwsAsync(stat(`${dir.statePath}.pid`));
  // In order, whatever else the router logged between them (a connection, a late table change).
  const lines = (await readFile(dir.logPath, 'utf8')).split('\n');
  const stopping = lines.findIndex((l) => l.includes('"why":"SIGTERM"') && l.includes('router: stopping'));
  t.not(stopping, -1, 'the SIGTERM is logged');
  t.true(lines.slice(stopping + 1).some((l) => l.includes('router: stopped')), 'and the clean stop after it');
});

test('access entries reach onAccess, again after the router process dies under a connected client', async (t) => {
  const dir = await routerDir(t);
  const a = await named(t, 'a');
  const entries: AccessEntry[] = [];
  const c = client(dir, { onAccess: (e) => entries.push(e) });
  // Lines are sent only for the apps asked for, again to the router that replaces this one.
  c.setAccessApps(['web', 'api']);
  let port = await c.start();
  c.setApp('web', ['web.test'], [a]);
  await c.flush();
  await get(port, 'Web.Test:80', '/hello?x=1');
  await waitFor('an access entry', () => entries.length === 1);
  const [entry] = entries;
  t.like(entry, { app: 'web', method: 'GET', path: '/hello?x=1', host: 'web.test', status: 200, ip: '127.0.0.1' });
  t.is(typeof entry?.ms, 'number');

  // The client notices, spawns a new router (which loads the table) and re-subscribes; a change
  // made while it is disconnected waits in its queue.
  const { pid } = await c.ping();
  process.kill(pid, 'SIGKILL');
  await waitFor('the router to die', () => !alive(pid));
  c.setApp('api', ['api.test'], [a]);
  await c.flush();
  const now = await c.ping();
  t.not(now.pid, pid);
  port = now.httpPort;
  t.is((await get(port, 'web.test', '/again')).body, 'a');
  t.is((await get(port, 'api.test')).body, 'a');
  await waitFor('access entries after reconnecting', () => entries.some((e) => e.path === '/again') && entries.some((e) => e.app === 'api'));
  await c.stop();
});

test('waitIdle and inFlight answer over the socket while a slow request is in flight', async (t) => {
  const dir = await routerDir(t);
  let release: () => void = () => undefined;
  const released = new Promise<void>((r) => (release = r));
  const slow = await upstream(t, (_req, res) => void released.then(() => res.end('done')));
  const c = client(dir);
  const port = await c.start();
  c.setApp('slow', ['slow.test'], [slow]);
  await c.flush();
  const reply = get(port, 'slow.test');
  await waitFor('the request to be in flight', async () => (await c.inFlight(slow)) === 1);
  t.false(await c.waitIdle([slow], 50), 'busy: times out');
  const idle = c.waitIdle([slow], 10_000);
  await sleep(100);
  release();
  t.is((await reply).body, 'done');
  t.true(await idle);
  t.is(await c.inFlight(slow), 0);
  await c.stop();
});

test('200 sequential keep-alive requests across a client stop and start: no failure', async (t) => {
  const dir = await routerDir(t);
  const a = await named(t, 'a');
  const first = client(dir);
  const port = await first.start();
  first.setApp('web', ['web.test'], [a]);
  await first.flush();

  let done = 0;
  let doneAtRestart = 0;
  const restart = (async () => {
    await waitFor('50 requests', () => done >= 50);
    await first.stop();
    await waitFor('100 requests', () => done >= 100);
    // What a restarted rackd does: connect, then re-send the routes of the processes it re-adopts.
    const second = client(dir);
    t.is(await second.start(), port);
    second.setApp('web', ['web.test'], [a]);
    await second.flush();
    doneAtRestart = done;
    await second.stop();
  })();
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const failures: string[] = [];
  let reused = 0;
  for (let i = 0; i < 200; i++) {
    try {
      const r = await get(port, 'web.test', `/${i}`, agent);
      if (r.status !== 200 || r.body !== 'a') failures.push(`${i}: ${r.status} ${r.body}`);
      if (r.reused) reused++;
    } catch (err) {
      failures.push(`${i}: ${String(err)}`);
    }
    done++;
    if (i % 10 === 0) await sleep(5); // spread the loop over the restart
  }
  await restart;
  agent.destroy();
  t.deepEqual(failures, []);
  t.true(doneAtRestart < 200, 'the new client connected while the loop ran');
  t.is(reused, 199, 'one keep-alive connection throughout');
});

test('a router whose socket file was deleted puts it back and stays reachable', async (t) => {
  const dir = await routerDir(t);
  const first = client(dir);
  await first.start();
  const { pid } = await first.ping();
  await first.stop();
  await rm(dir.socketPath);
  await waitFor('the socket file to come back', () => stat(dir.socketPath).then(() => true, () => false));
  const second = client(dir);
  await second.start();
  t.is((await second.ping()).pid, pid);
  await second.stop();
});

test('two clients starting at once share one router process', async (t) => {
  const dir = await routerDir(t);
  const [one, two] = [client(dir), client(dir)];
  const [p1, p2] = await Promise.all([one.start(), two.start()]);
  t.is(p1, p2);
  t.is((await one.ping()).pid, (await two.ping()).pid);
  await waitFor('the losing router processes to exit', async () => (await routerPids(dir.socketPath)).length === 1);
  await Promise.all([one.stop(), two.stop()]);
});

test('a client configured for another port replaces the router, which keeps its table', async (t) => {
  const dir = await routerDir(t);
  const a = await named(t, 'a');
  const first = client(dir);
  const oldPort = await first.start();
  first.setApp('web', ['web.test'], [a]);
  await first.flush();
  const { pid } = await first.ping();
  await first.stop();

  const probe = http.createServer().listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const wanted = (probe.address() as AddressInfo).port;
  await new Promise<void>((r) => probe.close(() => r()));
  const second = client(dir, { port: wanted });
  t.is(await second.start(), wanted);
  t.not((await second.ping()).pid, pid);
  t.false(alive(pid));
  t.is((await get(wanted, 'web.test')).body, 'a');
  await t.throwsAsync(get(oldPort, 'web.test'));
  await second.stop();
});

test('the control socket answers bad requests with errors and stays usable', async (t) => {
  const dir = await routerDir(t);
  const c = client(dir);
  await c.start();
  const socket = connect(dir.socketPath);
  await once(socket, 'connect');
  const lines: string[] = [];
  let rest = '';
  socket.on('data', (chunk: Buffer) => {
    const parts = (rest + chunk.toString()).split('\n');
    rest = parts.pop() ?? '';
    lines.push(...parts);
  });
  socket.write('not json\n');
  socket.write('{"id":1,"method":"setApp","params":{"app":"x","hosts":"nope","upstreams":[]}}\n');
  socket.write('{"id":2,"method":"bogus"}\n');
  socket.write('{"id":3,"method":"setApp","params":{"app":"x","hosts":["x.test"],"upstreams":[{"host":"127.0.0.1","port":70000}]}}\n');
  socket.write('{"id":4,"method":"inFlight","params":{"upstream":{"host":"127.0.0.1","port":1}}}\n');
  await waitFor('four answers', () => lines.length === 4);
  const answers = lines.map((l) => JSON.parse(l) as { id: number; result?: unknown; error?: { code: string } });
  answers.sort((x, y) => x.id - y.id);
  t.deepEqual(
    answers.map((x) => [x.id, x.error?.code ?? x.result]),
    [
      [1, 'bad_request'],
      [2, 'bad_request'],
      [3, 'bad_request'],
      [4, 0],
    ],
  );
  socket.destroy();
  t.deepEqual(await c.routes(), []);
  await c.stop();
});

test('the router process outlives the process that spawned it, even a killed one and its process group', async (t) => {
  const dir = await routerDir(t);
  const a = await named(t, 'a');
  // A stand-in for rackd: starts a client, routes a host, says so, then waits to be killed.
  const clientModule = new URL('../daemon/router/router-client.js', import.meta.url).href;
  const script = `
    const { RouterClient } = await import(${JSON.stringify(clientModule)});
    const quiet = { info() {}, warn() {}, error() {}, debug() {} };
    const c = new RouterClient({ ...${JSON.stringify(dir)}, bind: '127.0.0.1', port: 0, logger: quiet });
    const port = await c.start();
    c.setApp('web', ['web.test'], [${JSON.stringify(a)}]);
    await c.flush();
    process.stdout.write(port + '\\n');
    setInterval(() => {}, 1000);`;
  const parent = spawn(process.execPath, ['--input-type=module', '-e', script], { detached: true, stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => void (parent.exitCode === null && parent.kill('SIGKILL')));
  const [line] = (await once(parent.stdout!, 'data')) as [Buffer];
  const port = Number(line.toString().trim());
  const [pid] = await routerPids(dir.socketPath);
  t.truthy(pid);
  // Ctrl-C in rackd's terminal reaches its whole process group; then rackd dies outright.
  process.kill(-parent.pid!, 'SIGINT');
  process.kill(-parent.pid!, 'SIGKILL');
  await once(parent, 'exit');
  await sleep(100);
  t.true(alive(pid!));
  t.is((await get(port, 'web.test')).body, 'a');
});

test('changes made before start() or right before stop() are not lost', async (t) => {
  const dir = await routerDir(t);
  const a = await named(t, 'a');
  const first = client(dir);
  first.setApp('early', ['early.test'], [a]);
  const port = await first.start();
  first.setApp('late', ['late.test'], [a]);
  await first.stop(); // no flush: stop() waits for the acknowledgement itself
  t.is((await get(port, 'early.test')).body, 'a');
  t.is((await get(port, 'late.test')).body, 'a');
  const state = JSON.parse(await readFile(dir.statePath, 'utf8')) as { apps: Record<string, unknown> };
  t.deepEqual(Object.keys(state.apps), ['early', 'late']);
});
