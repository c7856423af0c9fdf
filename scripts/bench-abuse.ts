/**
 * The router under abuse, against the same load without it. Two healthy apps (A and B) take a
 * steady load; then the same load runs while 8 abusive clients pipeline requests they never read
 * (to a host nobody serves, to app A, and to an app that answers every request with endless
 * `103 Early Hints`), then quiet again. Printed: the router's resident memory at its highest during
 * the abuse, the healthy apps' failed requests, and their p99 against the quiet runs', each with
 * PASS or MISSED, and each process's CPU.
 * The apps, the router (the built `Router` class), the flooding app and the abusers each run in
 * their own process; the load (scripts/load-generator.ts: undici, keep-alive clients in a closed
 * loop) runs in this one. All traffic goes to 127.0.0.1, and every child is killed on exit.
 *   npm run bench:abuse [-- SECONDS]     (default 30 s per run)
 */
import type { ChildProcess } from 'node:child_process';
import { cpus } from 'node:os';
import { groupCpuMs, killChildrenOnExit, nodeChild, routerChild, rssMb, stopChild, stopChildren } from './bench-children.js';
import { ms, startLoad, type LoadReport } from './load-generator.js';

const seconds = Number(process.argv[2] ?? 30);
if (!Number.isFinite(seconds) || seconds <= 0 || seconds > 600) throw new Error('usage: bench-abuse [SECONDS], 1-600');
/** Keep-alive clients per healthy app. */
const CLIENTS = 8;
const WARMUP_MS = 1_000;
const RSS_TARGET_MB = 150;

killChildrenOnExit();

/** Apps A and B, answering `ok` at once, in one process. */
async function healthyApps(): Promise<{ port: number; b: number; pid: number }> {
  const apps = await nodeChild(
    'apps',
    `import { createServer } from 'node:http';
const listen = (server) => new Promise((r) => server.listen(0, '127.0.0.1', () => r(server.address().port)));
const app = () => { const s = createServer((req, res) => { res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '2' }); res.end('ok'); }); s.keepAliveTimeout = 120000; return s; };
console.log(JSON.stringify({ port: await listen(app()), b: await listen(app()) }));`,
  );
  return { port: apps.port, b: Number(apps['b']), pid: apps.child.pid as number };
}

/** An app that answers every request with 103 Early Hints for as long as its connection lasts. */
async function floodingApp(): Promise<{ port: number; pid: number }> {
  const app = await nodeChild(
    'flooding app',
    `import { createServer } from 'node:net';
const hints = Buffer.from('HTTP/1.1 103 Early Hints\\r\\nLink: </style.css>; rel=preload\\r\\n\\r\\n'.repeat(64));
const server = createServer((socket) => {
  socket.on('error', () => {});
  let flooding = false;
  const flood = () => { while (!socket.destroyed && socket.write(hints)); if (!socket.destroyed) socket.once('drain', flood); };
  socket.on('data', () => { if (!flooding) { flooding = true; flood(); } });
});
server.listen(0, '127.0.0.1', () => console.log(JSON.stringify({ port: server.address().port })));`,
  );
  return { port: app.port, pid: app.child.pid as number };
}

function router(a: number, b: number, flooder: number): Promise<{ port: number; child: ChildProcess }> {
  const apps = [
    { app: 'a', host: 'a.localhost', port: a },
    { app: 'b', host: 'b.localhost', port: b },
    { app: 'hints', host: 'hints.localhost', port: flooder },
  ];
  return routerChild(apps, { level: 'error' });
}

/**
 * 8 clients that write pipelined `GET /` as fast as the router takes them and read nothing: 3 to a
 * host nobody serves (the router's own 404s), 3 to app A, 2 to the flooding app. Each second they
 * print how many bytes of requests the router has taken from them.
 */
async function abusers(port: number, onSent: (bytes: number) => void): Promise<{ pid: number; child: ChildProcess }> {
  const child = await nodeChild(
    'abusers',
    `import { connect } from 'node:net';
const requests = (host) => Buffer.from(\`GET / HTTP/1.1\\r\\nHost: \${host}\\r\\n\\r\\n\`.repeat(1000));
let sent = 0;
function pipeline(host) {
  const chunk = requests(host);
  const socket = connect(${port}, '127.0.0.1');
  socket.on('error', () => {});
  socket.pause();
  const pump = () => { while (!socket.destroyed && socket.write(chunk)) sent += chunk.length; if (!socket.destroyed) socket.once('drain', () => { sent += chunk.length; pump(); }); };
  socket.on('connect', pump);
  // Cut off (the router's idle timeout, a cap): come back, as an abuser would.
  socket.on('close', () => setTimeout(() => pipeline(host), 100));
}
for (const host of ['nobody.localhost', 'nobody.localhost', 'nobody.localhost', 'a.localhost', 'a.localhost', 'a.localhost', 'hints.localhost', 'hints.localhost']) pipeline(host);
setInterval(() => console.log(JSON.stringify({ sent })), 1000);
console.log(JSON.stringify({ port: 0 }));`,
    (line) => {
      try {
        onSent((JSON.parse(line) as { sent: number }).sent);
      } catch {
        /* not a stats line */
      }
    },
  );
  return { pid: child.child.pid as number, child: child.child };
}

/** The steady load on A and B together for `seconds`, the router's RSS sampled meanwhile, and each child's CPU share. */
async function load(port: number, pid: number, groups: Record<string, number>): Promise<{ a: LoadReport; b: LoadReport; rssMax: number; cpu: Record<string, number> }> {
  const target = (host: string, durationMs: number) => startLoad({ url: `http://127.0.0.1:${port}/`, host, connections: CLIENTS, durationMs });
  await Promise.all([target('a.localhost', WARMUP_MS).done, target('b.localhost', WARMUP_MS).done]);
  let rssMax = await rssMb(pid);
  const timer = setInterval(() => void rssMb(pid).then((mb) => (rssMax = Math.max(rssMax, mb))), 250);
  const cpuTimes = async () => Object.fromEntries(await Promise.all(Object.entries(groups).map(async ([name, g]) => [name, await groupCpuMs(g)] as const)));
  try {
    const before = await cpuTimes();
    const started = performance.now();
    const [a, b] = await Promise.all([target('a.localhost', seconds * 1000).done, target('b.localhost', seconds * 1000).done]);
    const wall = performance.now() - started;
    const after = await cpuTimes();
    // Share of one core over the run.
    const cpu = Object.fromEntries(Object.keys(groups).map((name) => [name, ((after[name] ?? 0) - (before[name] ?? 0)) / wall]));
    return { a, b, rssMax, cpu };
  } finally {
    clearInterval(timer);
  }
}

const verdict = (ok: boolean): string => (ok ? 'PASS' : 'MISSED');

try {
  const apps = await healthyApps();
  const flooder = await floodingApp();
  const rt = await router(apps.port, apps.b, flooder.port);
  const pid = rt.child.pid as number;
  console.log(`load: scripts/load-generator.ts, ${CLIENTS} keep-alive clients on each of apps A and B, ${WARMUP_MS / 1000} s warm-up + ${seconds} s per run`);

  const groups: Record<string, number> = { router: pid, apps: apps.pid, 'flooding app': flooder.pid };
  // Quiet, abused, quiet again: the machine is shared, so the abused run is held against both
  // quiet ones (their mean p99), not against whatever the load elsewhere was at the start.
  const quiet = await load(rt.port, pid, groups);
  let sent = 0;
  const bad = await abusers(rt.port, (bytes) => (sent = bytes));
  const abused = await load(rt.port, pid, { ...groups, abusers: bad.pid });
  const rssAfter = await rssMb(pid);
  await stopChild(bad.child);
  const after = await load(rt.port, pid, groups);

  const row = (name: string, r: LoadReport) =>
    `${name.padEnd(16)} ${r.rps.toFixed(0).padStart(7)} ${ms(r.latency.p50).padStart(10)} ${ms(r.latency.p99).padStart(10)} ${ms(r.latency.max).padStart(10)} ${String(r.failed).padStart(7)}`;
  console.log(`\n${'run'.padEnd(16)} ${'req/s'.padStart(7)} ${'p50'.padStart(10)} ${'p99'.padStart(10)} ${'max'.padStart(10)} ${'failed'.padStart(7)}`);
  const runs = [['quiet A', quiet.a], ['quiet B', quiet.b], ['abused A', abused.a], ['abused B', abused.b], ['quiet again A', after.a], ['quiet again B', after.b]] as const;
  for (const [name, r] of runs) console.log(row(name, r));
  for (const [name, r] of runs) if (r.failed > 0) console.log(`${name} failures: ${JSON.stringify(r.reasons)}`);
  console.log(`\nthe abusers wrote ${(sent / 1e6).toFixed(1)} MB of pipelined requests and read no answer`);
  const share = (cpu: Record<string, number>) => Object.entries(cpu).map(([name, c]) => `${name} ${(c * 100).toFixed(0)} %`).join(', ');
  console.log(`CPU, share of one core (${cpus().length} cores, shared with whatever else runs here):`);
  console.log(`  quiet: ${share(quiet.cpu)}\n  abused: ${share(abused.cpu)}\n  quiet again: ${share(after.cpu)}`);
  console.log(`router RSS: ${quiet.rssMax.toFixed(1)} MB max in the first quiet run, ${rssAfter.toFixed(1)} MB after the abuse, ${after.rssMax.toFixed(1)} MB max in the last run`);

  const failed = abused.a.failed + abused.b.failed;
  const ratio = (r: LoadReport, q1: LoadReport, q2: LoadReport) => r.latency.p99 / ((q1.latency.p99 + q2.latency.p99) / 2);
  const ratioA = ratio(abused.a, quiet.a, after.a);
  const ratioB = ratio(abused.b, quiet.b, after.b);
  console.log(`router RSS max during the abuse: ${abused.rssMax.toFixed(1)} MB (target < ${RSS_TARGET_MB} MB) ${verdict(abused.rssMax < RSS_TARGET_MB)}`);
  console.log(`healthy apps' failed requests during the abuse: ${failed} (target 0) ${verdict(failed === 0)}`);
  console.log(`p99 abused / mean of the quiet runs: A ${ratioA.toFixed(2)}, B ${ratioB.toFixed(2)} (target ≤ 2) ${verdict(ratioA <= 2 && ratioB <= 2)}`);
} finally {
  await stopChildren('SIGKILL');
}
