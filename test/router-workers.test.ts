import test, { type ExecutionContext } from 'ava';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { RouteSummaries, type SummaryBucket } from '../daemon/router/route-summaries.js';
import type { AccessEntry } from '../daemon/router/router.js';
import { RouterClient } from '../daemon/router/router-client.js';
import { get, httpLoad } from './support/http-load.js';
import { alive, routerPids, waitFor } from './support/router-processes.js';
import { named, upstream } from './support/upstreams.js';

// A real router process with two workers (three processes on the same listeners), on loopback,
// driven through RouterClient as rackd drives it. The router processes inherit this environment.
process.env['RACK_ROUTER_PROCESSES'] = '3';

const logger = pino({ level: 'silent' });

interface Dir {
  socketPath: string;
  statePath: string;
  logPath: string;
}

async function routerDir(t: ExecutionContext): Promise<Dir> {
  const base = await mkdtemp(join(tmpdir(), 'rw-'));
  const dir = { socketPath: join(base, 'router.sock'), statePath: join(base, 'router.json'), logPath: join(base, 'router.log') };
  t.teardown(async () => {
    await new RouterClient({ ...dir, bind: '127.0.0.1', port: 0, logger }).shutdown();
    for (const pid of await routerPids(dir.socketPath)) {
      for (const w of await childPids(pid)) process.kill(w, 'SIGKILL');
      process.kill(pid, 'SIGKILL');
    }
    await rm(base, { recursive: true, force: true });
  });
  return dir;
}

/** The workers of a router process: its children. */
async function childPids(parent: number): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = await readFile(`/proc/${entry}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === parent) pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

function totalRequests(buckets: SummaryBucket[], app: string): number {
  let n = 0;
  for (const b of buckets) for (const r of b.routes) if (r.app === app) n += r.requests.reduce((s, x) => s + x, 0);
  return n;
}

/** Requests on new connections, so the kernel spreads them over the processes, until `enough` holds. */
async function requestUntil(port: number, host: string, enough: () => boolean, each: (body: string) => void = () => undefined): Promise<number> {
  let sent = 0;
  // The bound only turns a hang into a message: three processes accept on one socket.
  while (!enough()) {
    if (sent >= 5000) throw new Error(`still not there after ${sent} requests`);
    const r = await get(port, host, false);
    if (r.status !== 200) throw new Error(`status ${r.status}: ${r.body}`);
    each(r.body);
    sent++;
  }
  return sent;
}

test('requests land on every router process: access lines carry each pid, and the summaries count each request once', async (t) => {
  const dir = await routerDir(t);
  const access: AccessEntry[] = [];
  const buckets: SummaryBucket[] = [];
  const c = new RouterClient({ ...dir, bind: '127.0.0.1', port: 0, logger, onAccess: (e) => access.push(e), onSummary: (b) => buckets.push(b) });
  const port = await c.start();
  t.teardown(() => c.stop());
  const { pid } = await c.ping();
  const workers = await childPids(pid);
  t.is(workers.length, 2);
  c.setApp('web', ['web.test'], [await named(t, 'a')]);
  c.setAccessApps(['web']);
  await c.flush();
  await c.ping(); // the access set went before this on the same connection
  const seen = (): Set<number | undefined> => new Set(access.map((e) => e.pid));
  const sent = await requestUntil(port, 'web.test', () => [pid, ...workers].every((p) => seen().has(p)));
  await waitFor('every access line', () => access.length === sent);
  t.deepEqual([...seen()].sort(), [pid, ...workers].sort());
  // Each worker's buckets are merged into the primary's: every request counted once.
  await waitFor('every request summed', () => totalRequests(buckets, 'web') === sent);
  t.is(totalRequests(buckets, 'web'), sent);
});

test('a table change, an access set and an ACME challenge reach every worker before the call is answered', async (t) => {
  const dir = await routerDir(t);
  const access: AccessEntry[] = [];
  const c = new RouterClient({ ...dir, bind: '127.0.0.1', port: 0, logger, onAccess: (e) => access.push(e) });
  const port = await c.start();
  t.teardown(() => c.stop());
  const [a, b] = await Promise.all([named(t, 'a'), named(t, 'b')]);
  c.setApp('web', ['web.test'], [a]);
  await c.flush();
  c.setApp('web', ['web.test'], [b]);
  c.setAccessApps(['web']);
  await c.flush();
  await c.ping();
  const { pid } = await c.ping();
  const all = [pid, ...(await childPids(pid))];
  const bodies = new Set<string>();
  await requestUntil(port, 'web.test', () => all.every((p) => access.some((e) => e.pid === p)), (body) => bodies.add(body));
  t.deepEqual([...bodies], ['b'], 'no process routed by the old table once the change was answered');
  // The CA may ask any process. A keep-alive connection stays with the process that accepted it:
  // its first request's access line says which one, and its second asks for the challenge there.
  await c.setChallenge('tok-1', 'web.test', 'tok-1.key');
  const challenged = new Set<number>();
  for (let i = 0; challenged.size < all.length; i++) {
    if (i >= 5000) throw new Error('the challenge was not asked of every process');
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      t.is((await fetchVia(agent, port, `/probe-${i}`)).status, 200);
      await waitFor('the probe\'s access line', () => access.some((e) => e.path === `/probe-${i}`));
      const served = access.find((e) => e.path === `/probe-${i}`)?.pid;
      const r = await fetchVia(agent, port, '/.well-known/acme-challenge/tok-1');
      t.deepEqual(r, { status: 200, body: 'tok-1.key', reused: true });
      if (served !== undefined) challenged.add(served);
    } finally {
      agent.destroy();
    }
  }
});

test('a table change is answered only once a stopped worker has applied it too', async (t) => {
  const dir = await routerDir(t);
  const c = new RouterClient({ ...dir, bind: '127.0.0.1', port: 0, logger });
  await c.start();
  t.teardown(() => c.stop());
  const [a, b] = await Promise.all([named(t, 'a'), named(t, 'b')]);
  await c.setApp('web', ['web.test'], [a]);
  const { pid } = await c.ping();
  const [worker] = (await childPids(pid)) as [number];
  process.kill(worker, 'SIGSTOP');
  let answered = false;
  const change = c.setApp('web', ['web.test'], [b]).then(() => (answered = true));
  try {
    // The primary has saved (and applied) the change: only the stopped worker holds the answer back.
    await waitFor('the change saved', async () => (await readFile(dir.statePath, 'utf8')).includes(`"port": ${(b as { port: number }).port}`));
    await c.ping();
    t.false(answered, 'answered before every worker had applied the change');
  } finally {
    process.kill(worker, 'SIGCONT');
  }
  await change;
  t.true(answered);
});

function fetchVia(agent: http.Agent, port: number, path: string): Promise<{ status: number; body: string; reused: boolean }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, headers: { host: 'web.test' }, agent }, (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('error', reject);
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, reused: req.reusedSocket }));
    });
    req.on('error', reject);
  });
}

test('a worker told to stop finishes its requests and another takes its place; a killed one too; no request fails', async (t) => {
  const dir = await routerDir(t);
  const c = new RouterClient({ ...dir, bind: '127.0.0.1', port: 0, logger });
  const port = await c.start();
  t.teardown(() => c.stop());
  c.setApp('web', ['web.test'], [await upstream(t, (_req, res) => res.end('ok'))]);
  await c.flush();
  const { pid } = await c.ping();
  const first = await childPids(pid);
  t.is(first.length, 2);
  const load = httpLoad(port, 'web.test', 4, 2);
  await waitFor('some answers', () => load.ok() >= 100);
  const [gone] = first as [number];
  process.kill(gone, 'SIGTERM');
  await waitFor('the stopped worker gone', () => !alive(gone));
  await waitFor('another worker in its place', async () => (await childPids(pid)).filter((p) => !first.includes(p)).length === 1);
  const mark = load.ok();
  await waitFor('answers after the replacement', () => load.ok() >= mark + 200);
  const { failed } = await load.stop();
  t.deepEqual(failed, []);
  // Killed outright, between requests: the primary starts another, and every process serves.
  const now = await childPids(pid);
  const [killed] = now as [number];
  process.kill(killed, 'SIGKILL');
  await waitFor('the killed worker replaced', async () => {
    const after = await childPids(pid);
    return !after.includes(killed) && after.length === 2;
  });
  const again = httpLoad(port, 'web.test', 4, 2);
  await waitFor('answers after the kill', () => again.ok() >= 300);
  t.deepEqual((await again.stop()).failed, []);
});

test('a handoff with workers fails no request and ends the old workers; a stop ends every process and frees the port', async (t) => {
  const dir = await routerDir(t);
  const c = new RouterClient({ ...dir, bind: '127.0.0.1', port: 0, logger });
  const port = await c.start();
  t.teardown(() => c.stop());
  c.setApp('web', ['web.test'], [await upstream(t, (_req, res) => res.end('ok'))]);
  await c.flush();
  const old = (await c.ping()).pid;
  const oldWorkers = await childPids(old);
  t.is(oldWorkers.length, 2);
  const load = httpLoad(port, 'web.test', 4, 2);
  await waitFor('some answers', () => load.ok() >= 100);
  const next = await c.replace();
  t.not(next.pid, old);
  const mark = load.ok();
  await waitFor('answers from the successor', () => load.ok() >= mark + 200);
  t.deepEqual((await load.stop()).failed, []);
  await waitFor('the old router and its workers gone', () => [old, ...oldWorkers].every((p) => !alive(p)));
  const newWorkers = await childPids(next.pid);
  t.is(newWorkers.length, 2);
  // A stop: every process exits, and nothing holds the port any more.
  await c.shutdown();
  await waitFor('every router process gone', () => [next.pid, ...newWorkers].every((p) => !alive(p)));
  const probe = createServer();
  await new Promise<void>((resolve, reject) => {
    probe.once('error', reject);
    probe.listen(port, '127.0.0.1', () => resolve());
  });
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  t.pass();
});

test('a primary killed with -9 takes its workers off the port: the next router binds it', async (t) => {
  const dir = await routerDir(t);
  const c = new RouterClient({ ...dir, bind: '127.0.0.1', port: 0, logger });
  const port = await c.start();
  c.setApp('web', ['web.test'], [await named(t, 'a')]);
  await c.flush();
  const { pid } = await c.ping();
  const workers = await childPids(pid);
  t.is(workers.length, 2);
  await c.stop();
  process.kill(pid, 'SIGKILL');
  await waitFor('its workers gone', () => workers.every((p) => !alive(p)));
  const again = new RouterClient({ ...dir, bind: '127.0.0.1', port, logger });
  t.is(await again.start(), port);
  t.teardown(() => again.stop());
  t.is((await get(port, 'web.test', false)).body, 'a');
});

test('RouteSummaries.add merges a worker\'s bucket into the one of the same time, current or held', (t) => {
  let now = 1_000_000;
  const s = new RouteSummaries(() => now);
  s.record('web', 'u1', 200, 1, 10, 20);
  const route = { app: 'web', upstream: 'u1', requests: [0, 2, 0, 1, 0] as [number, number, number, number, number], bytesIn: 5, bytesOut: 6, latency: { '0': 3 } };
  s.add({ at: 1_000_000, span: 10, routes: [route] });
  s.add({ at: 990_000, span: 10, routes: [{ ...route, app: 'other' }] });
  now += 10_000;
  const taken = s.take();
  t.deepEqual(taken.map((b) => b.at), [990_000, 1_000_000]);
  t.deepEqual(taken[1]?.routes, [{ app: 'web', upstream: 'u1', requests: [0, 3, 0, 1, 0], bytesIn: 15, bytesOut: 26, latency: { '0': 3, '14': 1 } }]);
  t.deepEqual(route.requests, [0, 2, 0, 1, 0], 'the worker\'s bucket is not changed');
  // With workers, a closed bucket waits out a grace for their counts of it before it is taken.
  s.record('web', 'u1', 200, 1, 0, 0);
  now += 10_000;
  t.deepEqual(s.take(3000), [], 'not before the grace is over');
  s.add({ at: now - 10_000, span: 10, routes: [route] });
  now += 3000;
  const late = s.take(3000);
  t.is(late.length, 1);
  t.deepEqual(late[0]?.routes[0]?.requests, [0, 3, 0, 1, 0]);
});
