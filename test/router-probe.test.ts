import test, { type ExecutionContext } from 'ava';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { RouterClient } from '../daemon/router/router-client.js';
import { probeRouter } from '../daemon/router/router-probe.js';
import { spawnRouterProcess } from '../daemon/router/router-spawner.js';
import { routerPids, waitFor } from './support/router-processes.js';

// The launcher's question when rackd dies: is the router alive? Asked of real router processes.

const logger = pino({ level: 'silent' });

async function routerDir(t: ExecutionContext): Promise<{ socketPath: string; statePath: string; logPath: string; portsFile: string }> {
  const base = await mkdtemp(join(tmpdir(), 'rp-'));
  const dir = { socketPath: join(base, 'router.sock'), statePath: join(base, 'router.json'), logPath: join(base, 'router.log'), portsFile: join(base, 'ports.json') };
  t.teardown(async () => {
    for (const pid of await routerPids(dir.socketPath)) process.kill(pid, 'SIGKILL');
    await rm(base, { recursive: true, force: true });
  });
  return dir;
}

async function listen(t: ExecutionContext, path: string, onConnection: (socket: Socket) => void): Promise<void> {
  const server = createServer(onConnection);
  await new Promise<void>((r) => server.listen(path, r));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
}

test('a running router answers; one stopped (SIGSTOP) is silent although the kernel accepts; a killed one is gone', async (t) => {
  const dir = await routerDir(t);
  const client = new RouterClient({ ...dir, bind: '127.0.0.1', port: 0, logger });
  await client.start();
  await client.stop();
  t.is(await probeRouter(dir.socketPath, 5_000), 'answers');
  const [pid] = await routerPids(dir.socketPath);
  process.kill(pid!, 'SIGSTOP');
  t.is(await probeRouter(dir.socketPath, 300), 'silent');
  process.kill(pid!, 'SIGKILL');
  process.kill(pid!, 'SIGCONT');
  await waitFor('the router to be gone', async () => (await probeRouter(dir.socketPath, 5_000)) === 'gone');
  t.pass();
});

test('nothing listening, or a listener that hangs up without answering, is gone', async (t) => {
  const dir = await routerDir(t);
  t.is(await probeRouter(dir.socketPath, 5_000), 'gone');
  await listen(t, dir.socketPath, (socket) => socket.destroy());
  t.is(await probeRouter(dir.socketPath, 5_000), 'gone');
});

test('a router started with port 0 binds the port ports.json last gave, so it comes back where it served', async (t) => {
  const dir = await routerDir(t);
  const first = new RouterClient({ ...dir, bind: '127.0.0.1', port: 0, logger });
  const port = await first.start();
  await first.shutdown();
  await writeFile(dir.portsFile, `${JSON.stringify({ ssh: 1, http: port, https: 0 })}\n`);
  const spawned = await spawnRouterProcess({ ...dir, bind: '127.0.0.1', port: 0 });
  t.is(spawned.port, port);
  const again = new RouterClient({ ...dir, bind: '127.0.0.1', port: 0, logger });
  t.is(await again.start(), port);
  await again.shutdown();
});
