/**
 * The `Router` class alone, a micro-benchmark (`bench:router-class`): rack's router against the
 * upstream hit directly and against nginx as a reverse proxy to the same upstream, in the same
 * run: throughput and latency for 16 keep-alive clients each, over plain HTTP and over TLS (the
 * router and nginx serving the same certificate, made for the run). No rackd, no access events, no
 * container, and a Node load generator that saturates before nginx does: what users run is measured
 * by `bench:router` (bench-router.ts), this one isolates the class's own cost.
 * The upstream (a tiny node http server), the router (the built `Router` class) and nginx each run
 * in their own process, so the load generator here shares no event loop with them. nginx is used
 * when installed (`apt-get install -y nginx`); this script installs nothing. Every child is killed
 * on exit, also on error or Ctrl-C.
 * The router's resident memory is sampled each second of its plain-HTTP run; the memory target
 * is for a 60 s run: `npm run bench:router-class -- 60`.
 *   npm run build && node dist/scripts/bench-router-class.js [seconds] [clients]
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../test/support/free-port.js';
import { TestCa } from '../test/support/test-certs.js';
import { children, groupCpuMs, killChildrenOnExit, nodeChild, routerChild, rssMb, stopChild, track } from './bench-children.js';
import { ms, startLoad, type LoadReport } from './load-generator.js';

const seconds = Number(process.argv[2] ?? 5);
const clients = Number(process.argv[3] ?? 16);
const WARMUP_MS = 1_000;
const HOST = 'bench.localhost';

const sleep = (t: number) => new Promise<void>((r) => setTimeout(r, t));

/** Set once the temp dir exists, so an interrupted run removes it too. */
let tempDir: string | undefined;
killChildrenOnExit(() => (tempDir ? rm(tempDir, { recursive: true, force: true }) : Promise.resolve()));

function upstream(): Promise<{ child: ChildProcess; port: number }> {
  return nodeChild(
    'upstream',
    `import { createServer } from 'node:http';
const server = createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '2' });
  res.end('ok');
});
server.keepAliveTimeout = 120000;
server.listen(0, '127.0.0.1', () => console.log(JSON.stringify({ port: server.address().port })));`,
  );
}

function router(upstreamPort: number, certDir: string): Promise<{ child: ChildProcess; port: number; httpsPort: number }> {
  return routerChild([{ app: 'bench', host: HOST, port: upstreamPort }], { level: 'warn', certDir });
}


function nginxBinary(): string | undefined {
  for (const bin of ['nginx', '/usr/sbin/nginx', '/usr/local/sbin/nginx', '/usr/local/nginx/sbin/nginx']) {
    const r = spawnSync(bin, ['-v'], { stdio: 'ignore' });
    if (r.error === undefined && r.status === 0) return bin;
  }
  return undefined;
}

async function nginx(bin: string, dir: string, upstreamPort: number): Promise<{ child: ChildProcess; port: number; httpsPort: number }> {
  const port = await freePort();
  const httpsPort = await freePort();
  const conf = join(dir, 'nginx.conf');
  const errorLog = join(dir, 'error.log');
  // One worker, as node's event loop is one thread; keep-alive both ways, no request cap per
  // connection (node has none), no access log (the router here has no onAccess either).
  await writeFile(
    conf,
    `worker_processes 1;
daemon off;
pid ${join(dir, 'nginx.pid')};
error_log ${errorLog} warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${join(dir, 'body')};
  proxy_temp_path ${join(dir, 'proxy')};
  fastcgi_temp_path ${join(dir, 'fastcgi')};
  uwsgi_temp_path ${join(dir, 'uwsgi')};
  scgi_temp_path ${join(dir, 'scgi')};
  keepalive_timeout 120s;
  keepalive_requests 1000000;
  upstream app {
    server 127.0.0.1:${upstreamPort};
    keepalive 64;
    keepalive_requests 1000000;
  }
  server {
    listen 127.0.0.1:${port};
    listen 127.0.0.1:${httpsPort} ssl;
    ssl_certificate ${join(dir, 'nginx-cert.pem')};
    ssl_certificate_key ${join(dir, 'nginx-key.pem')};
    ssl_protocols TLSv1.2 TLSv1.3;
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Forwarded-Host $host;
    }
  }
}
`,
  );
  const child = track(spawn(bin, ['-p', dir, '-e', errorLog, '-c', conf], { stdio: ['ignore', 'ignore', 'pipe'], detached: true }), 'nginx');
  let err = '';
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) {
      const log = await readFile(errorLog, 'utf8').catch(() => '');
      throw new Error(`nginx exited with ${child.exitCode}:\n${err}${log}`);
    }
    const probe = startLoad({ url: `http://127.0.0.1:${port}/`, host: HOST, connections: 1, durationMs: 50, pauseAfterErrorMs: 20 });
    const r = await probe.done;
    if (r.served > 0) return { child, port, httpsPort };
    if (Date.now() > deadline) throw new Error(`nginx did not answer on ${port}:\n${err}`);
    await sleep(100);
  }
}

/** The router's resident memory once a second while it is measured: after warm-up, the last, and the highest. */
interface RssTrace {
  first: number;
  last: number;
  max: number;
}

interface Measured {
  report: LoadReport;
  /** The proxy's CPU time per served request, µs (all of its processes). */
  cpuUs?: number;
  rss?: RssTrace;
}

/** Load on `port`; with `proxy`, that proxy's CPU per request and (`watchRss`) its memory over the run. */
async function measure(port: number, tls?: { ca: string; servername: string }, proxy?: { pgid: number; watchRss: boolean }): Promise<Measured> {
  const target = { url: `${tls ? 'https' : 'http'}://127.0.0.1:${port}/`, host: HOST, connections: clients, ...(tls ? { tls } : {}) };
  await startLoad({ ...target, durationMs: WARMUP_MS }).done;
  if (proxy === undefined) return { report: await startLoad({ ...target, durationMs: seconds * 1000 }).done };
  const cpuBefore = await groupCpuMs(proxy.pgid);
  const samples = [await rssMb(proxy.pgid)];
  const load = startLoad({ ...target, durationMs: seconds * 1000 });
  const timer = proxy.watchRss ? setInterval(() => void rssMb(proxy.pgid).then((mb) => samples.push(mb)), 1_000) : undefined;
  const report = await load.done;
  clearInterval(timer);
  const cpuUs = ((await groupCpuMs(proxy.pgid)) - cpuBefore) * 1000 / Math.max(1, report.served);
  if (!proxy.watchRss) return { report, cpuUs };
  samples.push(await rssMb(proxy.pgid));
  return { report, cpuUs, rss: { first: samples[0] as number, last: samples[samples.length - 1] as number, max: Math.max(...samples) } };
}

const row = (name: string, m: Measured | undefined) => {
  if (m === undefined) return `${name.padEnd(10)} ${'skipped'.padStart(9)}`;
  const r = m.report;
  const cpu = m.cpuUs === undefined ? '' : `${m.cpuUs.toFixed(1)} µs`;
  return `${name.padEnd(10)} ${r.rps.toFixed(0).padStart(9)} ${ms(r.latency.p50).padStart(10)} ${ms(r.latency.p90).padStart(10)} ${ms(r.latency.p99).padStart(10)} ${ms(r.latency.max).padStart(10)} ${String(r.failed).padStart(7)} ${cpu.padStart(12)}`;
};

const dir = await mkdtemp(join(tmpdir(), 'rack-bench-router-class-'));
tempDir = dir;
try {
  // One certificate for both proxies: the router reads HOST.pem (chain, then key), nginx two files.
  const ca = await TestCa.create('bench CA');
  const leaf = await ca.leaf({ names: [HOST] });
  const certDir = join(dir, 'certs');
  await mkdir(certDir, { mode: 0o700 });
  await writeFile(join(certDir, `${HOST}.pem`), leaf.cert + leaf.key, { mode: 0o600 });
  await writeFile(join(dir, 'nginx-cert.pem'), leaf.cert);
  await writeFile(join(dir, 'nginx-key.pem'), leaf.key, { mode: 0o600 });
  const tls = { ca: ca.ca.cert, servername: HOST };

  const up = await upstream();
  const rt = await router(up.port, certDir);
  const bin = nginxBinary();
  const ng = bin === undefined ? undefined : await nginx(bin, dir, up.port);

  console.log(`${clients} keep-alive clients, ${WARMUP_MS / 1000} s warm-up + ${seconds} s per target, ${cpus().length} CPUs shared by the load generator, the upstream and the proxy`);
  // Each proxy is a process group of its own (spawned detached): its CPU is summed over the group.
  const routerGroup = rt.child.pid as number;
  const nginxGroup = ng?.child.pid;
  const measured = {
    direct: await measure(up.port),
    router: await measure(rt.port, undefined, { pgid: routerGroup, watchRss: true }),
    nginx: ng === undefined || nginxGroup === undefined ? undefined : await measure(ng.port, undefined, { pgid: nginxGroup, watchRss: false }),
    'router-tls': await measure(rt.httpsPort, tls, { pgid: routerGroup, watchRss: false }),
    'nginx-tls': ng === undefined || nginxGroup === undefined ? undefined : await measure(ng.httpsPort, tls, { pgid: nginxGroup, watchRss: false }),
  };
  const direct = measured.direct.report;
  const viaRouter = measured.router.report;
  const viaNginx = measured.nginx?.report;
  const viaRouterTls = measured['router-tls'].report;
  const viaNginxTls = measured['nginx-tls']?.report;

  console.log(
    `\n${'target'.padEnd(10)} ${'req/s'.padStart(9)} ${'p50'.padStart(10)} ${'p90'.padStart(10)} ${'p99'.padStart(10)} ${'max'.padStart(10)} ${'failed'.padStart(7)} ${'proxy CPU/req'.padStart(12)}`,
  );
  for (const [name, m] of Object.entries(measured)) console.log(row(name, m));
  for (const [name, m] of Object.entries(measured)) {
    const r = m?.report;
    if (r && (r.failed || r.clientErrors)) console.log(`${name} failures: ${JSON.stringify(r.reasons)}`);
  }
  console.log('');
  if (viaNginx === undefined || viaNginxTls === undefined) {
    console.log('nginx is not installed, so there is no nginx column; install it with: apt-get install -y nginx-light');
  } else {
    const ratio = viaRouter.rps / viaNginx.rps;
    const tlsRatio = viaRouterTls.rps / viaNginxTls.rps;
    console.log(`router/nginx throughput:         ${ratio.toFixed(2)} (goal ≥ 0.8) ${ratio >= 0.8 ? 'ok' : 'MISSED'}`);
    console.log(`router-tls/nginx-tls throughput: ${tlsRatio.toFixed(2)} (goal ≥ 0.5) ${tlsRatio >= 0.5 ? 'ok' : 'MISSED'}`);
    console.log(`nginx p99 − direct p99:          ${ms(viaNginx.latency.p99 - direct.latency.p99)}`);
  }
  const added = viaRouter.latency.p99 - direct.latency.p99;
  console.log(`router p99 − direct p99:         ${ms(added)} (goal ≤ 1 ms) ${added <= 1 ? 'ok' : 'MISSED'}`);
  console.log(`router/direct throughput:        ${(viaRouter.rps / direct.rps).toFixed(2)}`);
  const rss = measured.router.rss;
  if (rss !== undefined) {
    const growth = (rss.last - rss.first) / rss.first;
    console.log(
      `router resident memory:          ${rss.first.toFixed(1)} MB after warm-up → ${rss.last.toFixed(1)} MB after ${seconds} s (max ${rss.max.toFixed(1)}), ${(growth * 100).toFixed(1)} % (goal: flat within 10 % over 60 s) ${Math.abs(growth) <= 0.1 ? 'ok' : 'MISSED'}`,
    );
  }

  await Promise.all([...children].map((c) => stopChild(c)));
} finally {
  await Promise.all([...children].map((c) => stopChild(c, 'SIGKILL')));
  await rm(dir, { recursive: true, force: true });
}
