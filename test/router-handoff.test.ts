import test, { type ExecutionContext } from 'ava';
import { once } from 'node:events';
import { cp, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import { connect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { RackError } from '../daemon/rack-error.js';
import { RouterClient } from '../daemon/router/router-client.js';
import { ROUTER_PROCESS_SCRIPT } from '../daemon/router/router-spawner.js';
import { TestCa } from './support/test-certs.js';
import { named, upstream } from './support/upstreams.js';
import { alive, routerPids, waitFor } from './support/router-processes.js';
import { get, httpLoad as load } from './support/http-load.js';

// Real router processes handing their listening sockets to real successors, under real HTTP load.
// Each test has its own directory (so its own routers) and ends every router of it, whatever happened.

const logger = pino({ level: 'silent' });

interface Dir {
  base: string;
  socketPath: string;
  statePath: string;
  logPath: string;
}

async function routerDir(t: ExecutionContext): Promise<Dir> {
  const base = await mkdtemp(join(tmpdir(), 'rh-'));
  const dir = { base, socketPath: join(base, 'router.sock'), statePath: join(base, 'router.json'), logPath: join(base, 'router.log') };
  t.teardown(async () => {
    await new RouterClient({ ...dir, bind: '127.0.0.1', port: 0, logger }).shutdown();
    for (const pid of await routerPids(dir.socketPath)) process.kill(pid, 'SIGKILL');
    await rm(base, { recursive: true, force: true });
  });
  return dir;
}

/** Stopped when the test ends (before its router is shut down: teardowns run last first). */
function client(t: ExecutionContext, dir: Dir): RouterClient {
  const c = new RouterClient({ ...dir, bind: '127.0.0.1', port: 0, logger });
  t.teardown(() => c.stop());
  return c;
}

/** A copy of the built router (dist/daemon) in its own install folder, of another version. */
async function routerCopy(t: ExecutionContext, version: string): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'rh-install-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const daemon = join(dirname(dirname(ROUTER_PROCESS_SCRIPT)));
  await mkdir(join(root, 'dist'), { recursive: true });
  await cp(daemon, join(root, 'dist', 'daemon'), { recursive: true });
  await writeFile(join(root, 'package.json'), JSON.stringify({ name: 'rack', version, type: 'module' }));
  // Resolved from the copy's own folder upwards, as an installed rack has its own.
  await symlink(join(fileURLToPath(new URL('../../', import.meta.url)), 'node_modules'), join(root, 'node_modules'));
  return join(root, 'dist', 'daemon', 'router', 'router-process.js');
}

test('a handoff under keep-alive and new-connection load fails no request; the successor serves the same table', async (t) => {
  const dir = await routerDir(t);
  const a = await named(t, 'a');
  const c = client(t, dir);
  const port = await c.start();
  await c.setApp('web', ['web.test'], [a]);
  const before = await c.ping();
  const routes = await c.routes();

  const traffic = load(port, 'web.test', 6, 2);
  await waitFor('traffic', async () => (await get(port, 'web.test', false)).status === 200);
  const successor = await c.replace();
  // A change made while nobody is sure which router has the table must land on the new one.
  const added = c.setApp('more', ['more.test'], [a]);
  await waitFor('the old router to exit', () => !alive(before.pid));
  const { ok, failed } = await traffic.stop();
  await added;

  t.deepEqual(failed, []);
  t.true(ok > 0);
  t.not(successor.pid, before.pid);
  t.is(successor.httpPort, port);
  t.is((await c.ping()).pid, successor.pid);
  t.deepEqual(await c.routes(), [...routes, { app: 'more', hosts: ['more.test'], upstreams: [a] }]);
  t.is((JSON.parse(await readFile(`${dir.statePath}.pid`, 'utf8')) as { pid: number }).pid, successor.pid);
  t.deepEqual(await routerPids(dir.socketPath), [successor.pid]);
  // It holds the single-instance lock: a router spawned for the same socket gives up.
  const second = client(t, dir);
  await second.start();
  t.is((await second.ping()).pid, successor.pid);
  await second.stop();
});

test('a change sent on the old connection during a handoff is applied by the successor', async (t) => {
  const dir = await routerDir(t);
  const [a, b] = await Promise.all([named(t, 'a'), named(t, 'b')]);
  const c = client(t, dir);
  const port = await c.start();
  await c.setApp('web', ['web.test'], [a]);
  const replaced = c.replace();
  // Sent right behind the handoff request: the old router holds it unanswered, the client sends it again.
  const changed = c.setApp('web', ['web.test'], [b]);
  const successor = await replaced;
  await changed;
  t.is((await c.ping()).pid, successor.pid);
  t.is((await get(port, 'web.test', false)).body, 'b');
  t.deepEqual(await c.routes(), [{ app: 'web', hosts: ['web.test'], upstreams: [b] }]);
});

test('a handoff to another install of the router runs that script and reports its version', async (t) => {
  const dir = await routerDir(t);
  const a = await named(t, 'a');
  const script = await routerCopy(t, '9.9.9-test');
  const c = client(t, dir);
  const port = await c.start();
  await c.setApp('web', ['web.test'], [a]);
  const before = await c.ping();
  t.is(before.script, ROUTER_PROCESS_SCRIPT);

  const traffic = load(port, 'web.test', 4, 1);
  await waitFor('traffic', async () => (await get(port, 'web.test', false)).status === 200);
  const successor = await c.replace(script);
  await waitFor('the old router to exit', () => !alive(before.pid));
  const { ok, failed } = await traffic.stop();

  t.deepEqual(failed, []);
  t.true(ok > 0);
  t.is(successor.script, script);
  t.is(successor.version, '9.9.9-test');
  t.is((await c.ping()).script, script);
  t.is((await get(port, 'web.test', false)).body, 'a');

  // And back to this install's router: what rackd does when it finds another rack's router at start.
  const restarted = client(t, dir);
  await c.stop();
  const traffic2 = load(port, 'web.test', 4, 1);
  await waitFor('traffic', async () => (await get(port, 'web.test', false)).status === 200);
  t.is(await restarted.start(), port);
  await waitFor('the other install\'s router to exit', () => !alive(successor.pid));
  t.deepEqual((await traffic2.stop()).failed, []);
  const back = await restarted.ping();
  t.is(back.script, ROUTER_PROCESS_SCRIPT);
  t.not(back.pid, successor.pid);
  t.deepEqual(await restarted.routes(), [{ app: 'web', hosts: ['web.test'], upstreams: [a] }]);
  await restarted.stop();
});

test('a slow request and a tunnel opened on the old router finish there; then it exits', async (t) => {
  const dir = await routerDir(t);
  let release: (() => void) | undefined;
  let started: (() => void) | undefined;
  const slowStarted = new Promise<void>((resolve) => (started = resolve));
  const u = await upstream(t, (req, res) => {
    if (req.url !== '/slow') {
      res.end('quick');
      return;
    }
    release = () => res.end('slow done');
    started?.();
  });
  const echoServer = http.createServer((_req, res) => res.end('plain'));
  echoServer.on('upgrade', (_req: IncomingMessage, socket) => {
    socket.on('error', () => {});
    socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n');
    socket.pipe(socket);
  });
  echoServer.listen(0, '127.0.0.1');
  await once(echoServer, 'listening');
  t.teardown(() => {
    echoServer.closeAllConnections();
    echoServer.close();
  });
  const echo = { host: '127.0.0.1', port: (echoServer.address() as AddressInfo).port };
  const c = client(t, dir);
  const port = await c.start();
  await c.setApp('web', ['web.test'], [u]);
  await c.setApp('ws', ['ws.test'], [echo]);
  const before = await c.ping();

  const slow = new Promise<string>((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/slow', headers: { host: 'web.test' }, agent: false }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve(body));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
  await slowStarted;

  const tunnel = connect(port, '127.0.0.1');
  tunnel.on('error', () => {});
  await once(tunnel, 'connect');
  tunnel.setEncoding('latin1');
  let received = '';
  tunnel.on('data', (d: string) => (received += d));
  tunnel.write('GET /chat HTTP/1.1\r\nHost: ws.test\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n');
  await waitFor('the 101', () => received.includes('\r\n\r\n'));
  t.regex(received, /^HTTP\/1\.1 101 /);

  const successor = await c.replace();
  t.not(successor.pid, before.pid);
  t.is((await get(port, 'web.test', false)).body, 'quick', 'new connections reach the successor');
  t.true(alive(before.pid), 'the old router waits for its open connections');

  received = '';
  tunnel.write('still here');
  await waitFor('the echo', () => received === 'still here');
  release?.();
  t.is(await slow, 'slow done');
  tunnel.end();
  await waitFor('the old router to exit', () => !alive(before.pid));
  t.deepEqual(await routerPids(dir.socketPath), [successor.pid]);
});

test('a successor that exits at once fails the handoff with a clear error; the old router serves on', async (t) => {
  const dir = await routerDir(t);
  const a = await named(t, 'a');
  const broken = join(dir.base, 'router-process.js');
  await writeFile(broken, 'process.exit(2);\n');
  const c = client(t, dir);
  const port = await c.start();
  await c.setApp('web', ['web.test'], [a]);
  const before = await c.ping();

  const traffic = load(port, 'web.test', 2, 1);
  const failing = c.replace(broken);
  // Held while the handoff was under way; applied here once it failed.
  const held = c.setApp('held', ['held.test'], [a]);
  const err = await t.throwsAsync(failing, { instanceOf: RackError });
  await held;
  t.is((await get(port, 'held.test', false)).body, 'a');
  t.is((err as RackError | undefined)?.code, 'router_failed');
  t.regex(err?.message ?? '', /could not hand off to .*router-process\.js: the successor router process exited \(code 2\) before it was ready/);
  const { failed } = await traffic.stop();
  t.deepEqual(failed, []);
  t.is((await c.ping()).pid, before.pid);
  await c.setApp('web', ['web.test', 'www.test'], [a]);
  t.is((await get(port, 'www.test', false)).body, 'a', 'its table still takes changes');

  // A handoff that works after the failed one: nothing was left half handed over.
  const successor = await c.replace();
  t.not(successor.pid, before.pid);
  t.is((await get(port, 'www.test', false)).body, 'a');
});

test('a router with a TLS listener hands both listeners over: HTTPS keeps answering through the handoff', async (t) => {
  const dir = await routerDir(t);
  const certDir = join(dir.base, 'certs');
  await mkdir(certDir);
  const ca = await TestCa.create();
  const pem = await ca.leaf({ names: ['web.test'] });
  await writeFile(join(certDir, 'web.test.pem'), pem.cert + ca.ca.cert + pem.key, { mode: 0o600 });
  const a = await named(t, 'a');
  const c = new RouterClient({ ...dir, bind: '127.0.0.1', port: 0, https: { port: 0, certDir }, logger });
  t.teardown(() => c.stop());
  await c.start();
  await c.setApp('web', ['web.test'], [a]);
  const before = await c.ping();
  t.not(before.httpsPort, 0);

  let running = true;
  const failed: string[] = [];
  let ok = 0;
  const agent = new https.Agent({ keepAlive: true, maxSockets: 2, ca: ca.ca.cert, servername: 'web.test' });
  const one = (): Promise<void> =>
    new Promise((resolve) => {
      const req = https.get({ host: '127.0.0.1', port: before.httpsPort, path: '/', headers: { host: 'web.test' }, agent, servername: 'web.test' }, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => {
          if (res.statusCode === 200 && body === 'a') ok++;
          else failed.push(`${res.statusCode}: ${body}`);
          resolve();
        });
        res.on('error', (err) => {
          failed.push(String(err));
          resolve();
        });
      });
      req.on('error', (err) => {
        failed.push(String(err));
        resolve();
      });
    });
  const loops = [0, 1, 2].map(async () => {
    while (running) await one();
  });
  await waitFor('HTTPS traffic', () => ok > 0);
  const successor = await c.replace();
  await waitFor('the old router to exit', () => !alive(before.pid));
  const served = ok;
  await waitFor('HTTPS answers from the successor', () => ok > served);
  running = false;
  await Promise.all(loops);
  agent.destroy();
  t.deepEqual(failed, []);
  t.is(successor.httpsPort, before.httpsPort);
  t.is((await c.ping()).pid, successor.pid);
});

test('a handoff whose caller hung up before the answer still completes: the old router exits, the successor serves', async (t) => {
  const dir = await routerDir(t);
  const a = await named(t, 'a');
  const c = client(t, dir);
  const port = await c.start();
  await c.setApp('web', ['web.test'], [a]);
  const before = await c.ping();

  const control = connect(dir.socketPath);
  control.on('error', () => {});
  await once(control, 'connect');
  control.end(`${JSON.stringify({ id: 1, method: 'handoff', params: { script: ROUTER_PROCESS_SCRIPT } })}\n`);
  control.destroy();
  await waitFor('the old router to exit', () => !alive(before.pid));
  await waitFor('the client to reach the successor', async () => (await c.ping()).pid !== before.pid);
  t.is((await get(port, 'web.test', false)).body, 'a');
  t.deepEqual(await routerPids(dir.socketPath), [(await c.ping()).pid]);
});
