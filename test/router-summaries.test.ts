import test, { type ExecutionContext } from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import type { SummaryBucket } from '../daemon/router/route-summaries.js';
import type { AccessEntry } from '../daemon/router/router.js';
import { RouterClient } from '../daemon/router/router-client.js';
import { upstream } from './support/upstreams.js';
import { routerPids, waitFor } from './support/router-processes.js';

// A real router process on loopback, driven through RouterClient: what it sends rackd is counted
// at the client, as rackd receives it.

const logger = pino({ level: 'silent' });

async function routerDir(t: ExecutionContext): Promise<{ socketPath: string; statePath: string; logPath: string }> {
  const base = await mkdtemp(join(tmpdir(), 'rs-'));
  const dir = { socketPath: join(base, 'router.sock'), statePath: join(base, 'router.json'), logPath: join(base, 'router.log') };
  t.teardown(async () => {
    await new RouterClient({ ...dir, bind: '127.0.0.1', port: 0, logger }).shutdown();
    for (const pid of await routerPids(dir.socketPath)) process.kill(pid, 'SIGKILL');
    await rm(base, { recursive: true, force: true });
  });
  return dir;
}

function get(port: number, host: string, path: string, agent: http.Agent): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, headers: { host }, agent }, (res) => {
      res.resume();
      res.on('error', reject);
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
  });
}

/** The answer a path asks for: /s/404 → 404, anything else 200. */
const byPath = (t: ExecutionContext) =>
  upstream(t, (req, res) => {
    const m = /^\/s\/(\d{3})$/.exec(req.url ?? '');
    res.statusCode = m?.[1] === undefined ? 200 : Number(m[1]);
    res.end('ok');
  });

function totals(buckets: SummaryBucket[], app: string): { requests: number[]; latency: number; bytesIn: number; bytesOut: number } {
  const requests = [0, 0, 0, 0, 0];
  let latency = 0;
  let bytesIn = 0;
  let bytesOut = 0;
  for (const b of buckets) {
    for (const r of b.routes) {
      if (r.app !== app) continue;
      r.requests.forEach((n, i) => (requests[i] = (requests[i] ?? 0) + n));
      latency += Object.values(r.latency).reduce((s, n) => s + n, 0);
      bytesIn += r.bytesIn;
      bytesOut += r.bytesOut;
    }
  }
  return { requests, latency, bytesIn, bytesOut };
}

test('the router sums every request into summaries, and sends no access line for an app nobody follows', async (t) => {
  const dir = await routerDir(t);
  const buckets: SummaryBucket[] = [];
  const access: AccessEntry[] = [];
  const c = new RouterClient({ ...dir, bind: '127.0.0.1', port: 0, logger, onAccess: (e) => access.push(e), onSummary: (b) => buckets.push(b) });
  const port = await c.start();
  t.teardown(() => c.stop());
  c.setApp('web', ['web.test'], [await byPath(t)]);
  c.setApp('idle', ['idle.test'], []);
  await c.flush();
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  t.teardown(() => agent.destroy());
  // 40 × 200, 7 × 404, 3 × 500 from the app; 2 × 503 from the router (no process).
  const paths = [...Array(40).fill('/'), ...Array(7).fill('/s/404'), ...Array(3).fill('/s/500')] as string[];
  const statuses = await Promise.all(paths.map((p) => get(port, 'web.test', p, agent)));
  t.is(statuses.filter((s) => s === 404).length, 7);
  t.is((await get(port, 'idle.test', '/', agent)), 503);
  t.is((await get(port, 'idle.test', '/', agent)), 503);

  await waitFor('summaries of all 50 requests', () => totals(buckets, 'web').latency === 50, 60_000);
  const web = totals(buckets, 'web');
  t.deepEqual(web.requests, [0, 40, 0, 7, 3]);
  t.true(web.bytesIn > 50 * 30, `bytes in ${web.bytesIn}`);
  t.true(web.bytesOut > 50 * 60, `bytes out ${web.bytesOut}`);
  await waitFor('the idle app\'s 503s', () => totals(buckets, 'idle').latency === 2);
  t.deepEqual(totals(buckets, 'idle').requests, [0, 0, 0, 0, 2]);
  for (const b of buckets) t.is(b.at % 10_000, 0, 'buckets start on the 10 s boundaries');
  // The summaries came: had the router sent lines, they would have come before them.
  t.is(access.length, 0, 'no access line while nobody wants them');

  // Someone follows: lines for that app, and only that app.
  c.setAccessApps(['web']);
  await waitFor('the access set applied', async () => {
    await get(port, 'web.test', '/probe', agent);
    return access.length > 0;
  });
  await get(port, 'idle.test', '/', agent);
  await get(port, 'web.test', '/s/404', agent);
  await waitFor('the 404 line', () => access.some((e) => e.path === '/s/404'));
  t.true(access.every((e) => e.app === 'web'));
  t.like(access.find((e) => e.path === '/s/404'), { app: 'web', status: 404, host: 'web.test' });

  // Nobody any more: no more lines, though every request is still counted.
  c.setAccessApps([]);
  const counted = totals(buckets, 'web').latency;
  await c.ping(); // the access change went before this on the same connection, and was applied in order
  const before = access.length;
  for (let i = 0; i < 5; i++) await get(port, 'web.test', '/after', agent);
  await waitFor('the 5 requests summed', () => totals(buckets, 'web').latency >= counted + 5 + 1);
  t.is(access.length, before, 'no line once nobody wants them');
});

test('summaries counted while nobody was subscribed reach the next subscriber', async (t) => {
  const dir = await routerDir(t);
  const first = new RouterClient({ ...dir, bind: '127.0.0.1', port: 0, logger });
  const port = await first.start();
  first.setApp('web', ['web.test'], [await byPath(t)]);
  await first.flush();
  const agent = new http.Agent({ keepAlive: true });
  t.teardown(() => agent.destroy());
  for (let i = 0; i < 12; i++) await get(port, 'web.test', '/', agent);
  await first.stop();
  // rackd restarting: it subscribes again and gets what the router held.
  const buckets: SummaryBucket[] = [];
  const second = new RouterClient({ ...dir, bind: '127.0.0.1', port: 0, logger, onSummary: (b) => buckets.push(b) });
  await second.start();
  t.teardown(() => second.stop());
  await waitFor('the held summaries', () => totals(buckets, 'web').latency === 12);
  t.deepEqual(totals(buckets, 'web').requests, [0, 12, 0, 0, 0]);
});

test('a handoff loses no count: the old router sends its bucket under way, the successor counts from its start, and the access set follows', async (t) => {
  const dir = await routerDir(t);
  const buckets: SummaryBucket[] = [];
  const access: AccessEntry[] = [];
  const c = new RouterClient({ ...dir, bind: '127.0.0.1', port: 0, logger, onAccess: (e) => access.push(e), onSummary: (b) => buckets.push(b) });
  const port = await c.start();
  t.teardown(() => c.stop());
  c.setApp('web', ['web.test'], [await byPath(t)]);
  await c.flush();
  for (let i = 0; i < 9; i++) await get(port, 'web.test', '/', new http.Agent());
  const before = (await c.ping()).pid;
  c.setAccessApps(['web']);
  const after = await c.replace();
  t.not(after.pid, before);
  for (let i = 0; i < 4; i++) await get(port, 'web.test', '/s/404', new http.Agent());
  await waitFor('every request summed', () => totals(buckets, 'web').latency === 13);
  t.deepEqual(totals(buckets, 'web').requests, [0, 9, 0, 4, 0]);
  // The successor was told which apps want lines when rackd connected to it.
  await waitFor('the successor\'s access lines', () => access.filter((e) => e.status === 404).length === 4);
});
