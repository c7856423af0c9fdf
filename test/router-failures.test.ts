import test, { type ExecutionContext } from 'ava';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, open, readdir, readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { RackError } from '../daemon/rack-error.js';
import { RouterClient } from '../daemon/router/router-client.js';
import type { Upstream } from '../daemon/router/upstream.js';
import { named } from './support/upstreams.js';
import { routerPids } from './support/router-processes.js';

// Real router processes, real files, a real full disk (a small tmpfs): what a router does when a
// table change cannot be made, and that one failed change fails only itself.

const run = promisify(execFile);
const logger = pino({ level: 'silent' });

interface Dir {
  base: string;
  socketPath: string;
  statePath: string;
  logPath: string;
}

/** A router's files; with `tinyDisk`, its state file lives on a 64 KiB tmpfs the test can fill. */
async function routerDir(t: ExecutionContext, tinyDisk = false): Promise<Dir> {
  const base = await mkdtemp(join(tmpdir(), 'rf-'));
  const stateDir = join(base, 'state');
  await mkdir(stateDir);
  if (tinyDisk) await run('mount', ['-t', 'tmpfs', '-o', 'size=64k,mode=0700', 'tmpfs', stateDir]);
  const dir = { base, socketPath: join(base, 'router.sock'), statePath: join(stateDir, 'router.json'), logPath: join(base, 'router.log') };
  t.teardown(async () => {
    await new RouterClient({ ...dir, bind: '127.0.0.1', port: 0, logger }).shutdown();
    for (const pid of await routerPids(dir.socketPath)) process.kill(pid, 'SIGKILL');
    if (tinyDisk) await run('umount', [stateDir]);
    await rm(base, { recursive: true, force: true });
  });
  return dir;
}

/** Stopped at the end whatever happened: a running client would start its router again after the teardown's shutdown. */
function client(t: ExecutionContext, dir: Dir): RouterClient {
  const c = new RouterClient({ ...dir, bind: '127.0.0.1', port: 0, logger });
  t.teardown(() => c.stop());
  return c;
}

function get(port: number, host: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', headers: { host }, agent: false }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

/** Writes a file until the file system is full; returns its path. */
async function fillDisk(folder: string): Promise<string> {
  const path = join(folder, 'filler');
  const fh = await open(path, 'w');
  try {
    for (;;) await fh.write(Buffer.alloc(4096, 1));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    await fh.close();
  }
  return path;
}

const routerFailed = (message: RegExp) => ({ instanceOf: RackError, message });

test('on a full disk a route change fails, the table stays as it was and the old upstream still serves', async (t) => {
  const dir = await routerDir(t, true);
  const [old, fresh] = await Promise.all([named(t, 'old'), named(t, 'new')]);
  const c = client(t, dir);
  const port = await c.start();
  await c.setApp('web', ['web.test'], [old]);
  const before = await c.routes();
  t.is((await get(port, 'web.test')).body, 'old');

  const filler = await fillDisk(join(dir.base, 'state'));
  // Sent together, so some share a batch: a batch that cannot be saved fails every change in it.
  const [err] = await Promise.all([
    t.throwsAsync(c.setApp('web', ['web.test'], [fresh]), routerFailed(/route change for app "web".*no space left on device/i)),
    t.throwsAsync(c.removeApp('web'), routerFailed(/removal of app "web".*no space left on device/i)),
    t.throwsAsync(c.setApp('other', ['other.test'], [fresh]), routerFailed(/no space left on device/i)),
  ]);
  t.is((err as RackError | undefined)?.code, 'router_failed');

  t.deepEqual(await c.routes(), before, 'the table in memory is unchanged');
  t.is((await get(port, 'web.test')).body, 'old', 'requests still reach the old upstream');
  t.is((await get(port, 'other.test')).status, 404);
  const saved = JSON.parse(await readFile(dir.statePath, 'utf8')) as { apps: Record<string, { upstreams: Upstream[] }> };
  t.deepEqual(saved.apps['web']?.upstreams, [old], 'the state file is unchanged');
  t.deepEqual((await readdir(join(dir.base, 'state'))).filter((f) => f.includes('.tmp-')), [], 'no temp file left taking space');

  // Nothing of the failure sticks: with space again the next change goes through.
  await rm(filler);
  await c.setApp('web', ['web.test'], [fresh]);
  t.is((await get(port, 'web.test')).body, 'new');
  await c.stop();
});

test("a failed change of one app fails only that change, not another app's", async (t) => {
  const dir = await routerDir(t);
  const b = await named(t, 'b');
  const c = client(t, dir);
  const port = await c.start();
  // Sent together: the router refuses A's (port 70000) and must still save and apply B's.
  const changeA = c.setApp('appa', ['a.test'], [{ host: '127.0.0.1', port: 70000 }]);
  const changeB = c.setApp('appb', ['b.test'], [b]);
  await t.throwsAsync(changeA, routerFailed(/route change for app "appa".*port/));
  await t.notThrowsAsync(changeB);
  await t.notThrowsAsync(c.flush(), 'flush no longer carries an earlier failure');
  t.is((await get(port, 'b.test')).body, 'b');
  await t.notThrowsAsync(c.setApp('appb', ['b.test', 'www.b.test'], [b]));
  t.deepEqual(
    (await c.routes()).map((r) => r.app),
    ['appb'],
  );
  await c.stop();
});

test('a router that never answers a change makes it fail within its deadline, with a clear message', async (t) => {
  const base = await mkdtemp(join(tmpdir(), 'rf-'));
  const socketPath = join(base, 'router.sock');
  // Answers the handshake like a router, then is stuck: nothing else ever gets an answer.
  const sockets = new Set<Socket>();
  const stuck = createServer((socket) => {
    sockets.add(socket);
    let rest = '';
    socket.on('data', (chunk: Buffer) => {
      const lines = (rest + chunk.toString()).split('\n');
      rest = lines.pop() ?? '';
      for (const line of lines) {
        const msg = JSON.parse(line) as { id: number; method: string };
        if (msg.method !== 'ping') continue;
        const identity = { pid: 2 ** 22 + 1, httpPort: 1, bind: '127.0.0.1', protocol: 1, startedAt: new Date().toISOString() };
        socket.write(`${JSON.stringify({ id: msg.id, result: identity })}\n`);
      }
    });
  });
  stuck.listen(socketPath);
  await once(stuck, 'listening');
  t.teardown(async () => {
    for (const s of sockets) s.destroy();
    stuck.close();
    await rm(base, { recursive: true, force: true });
  });
  const logPath = join(base, 'router.log');
  const c = new RouterClient({ socketPath, statePath: join(base, 'router.json'), logPath, bind: '127.0.0.1', port: 0, logger });
  t.teardown(() => c.stop());
  await c.start();
  const deadline = /no answer from the router process within 10 s; it may be stuck or unable to start \(router log: .*router\.log\)/;
  await Promise.all([
    t.throwsAsync(c.setApp('web', ['web.test'], [{ host: '127.0.0.1', port: 1 }]), routerFailed(new RegExp(`route change for app "web": ${deadline.source}`))),
    t.throwsAsync(c.removeApp('gone'), routerFailed(new RegExp(`removal of app "gone": ${deadline.source}`))),
    t.throwsAsync(c.routes(), routerFailed(/did not answer routes: no answer from the router process within 10 s/)),
  ]);
  await c.stop();

  // A client whose router never came up at all: its changes fail the same way instead of waiting forever.
  const never = new RouterClient({ socketPath: join(base, 'none.sock'), statePath: join(base, 'none.json'), logPath, bind: '127.0.0.1', port: 0, logger });
  t.teardown(() => never.stop());
  await t.throwsAsync(never.setApp('web', ['web.test'], []), routerFailed(deadline));
  await never.stop();
});

test('a change that leaves the table as it is does not hold up the changes after it', async (t) => {
  const dir = await routerDir(t);
  const [a, b] = await Promise.all([named(t, 'a'), named(t, 'b')]);
  const c = client(t, dir);
  const port = await c.start();
  await c.setApp('web', ['web.test'], [a]);
  // rackd re-sends every route when it adopts its apps: the same table again, nothing to save.
  await c.setApp('web', ['web.test'], [a]);
  await c.setApp('web', ['web.test'], [b]);
  t.deepEqual(await get(port, 'web.test'), { status: 200, body: 'b' });
});
