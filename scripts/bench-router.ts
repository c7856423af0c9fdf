/**
 * `bench:router`: the router users run against nginx, in front of the same app container.
 *
 * A real rackd started as the README says (temp RACK_HOME, free ports, HTTP and HTTPS listeners)
 * gets a small Node app by `git push`, a domain and a certificate made for the run (`certs:add`).
 * nginx (one worker, keep-alive upstream, the same certificate, HTTP/2 on TLS) proxies to the
 * upstream the router itself uses (read from its state file). Native load generators that outpace
 * either proxy drive both: `wrk` for plain HTTP and TLS, `h2load` for HTTP/2. The machine is shared,
 * so router and nginx alternate within each round and only medians and same-run ratios are read.
 * Beside them, plain and TLS only, a Node process that pipes bytes to the same upstream and parses
 * nothing (`node-pipe`): Node's own floor, so the router's cost splits into Node's and its own work.
 *
 * Per run: req/s, p50, p99, and the CPU per request (utime + stime from /proc before and after) of
 * the router's processes and of rackd, or of nginx's master and worker. At the end: medians, the
 * ratios the issue sets targets for, and the router's resident memory over a long plain run.
 * A router TLS listener without h2 is reported as such and its HTTP/2 runs skipped.
 * Every child, rackd, its router and its containers are removed on exit, error or Ctrl-C.
 *
 *   npm run bench:router -- [--rounds 5] [--seconds 8] [--memory 60]   (--memory 0 skips that phase)
 *   (needs nginx, wrk and h2load: scripts/setup.sh installs them)
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { RackDaemon } from '../test/support/rack-daemon.js';
import { TestCa } from '../test/support/test-certs.js';
import { killChildrenOnExit, stopChildren } from './bench-children.js';
import { median, type LoadFigures } from './lib/load-tool-output.js';
import { LoadTools, missingTools, versions } from './lib/load-tools.js';
import { NGINX_SUMMARY, nginxBinary, startNginx, type NginxProxy } from './lib/nginx-proxy.js';
import { NODE_PIPE_SUMMARY, startNodePipe, type NodePipeProxy } from './lib/node-pipe-proxy.js';
import { cpuByPid, cpuSpentMs, dockerProxyPids, groupPids, routerPids, rssMb } from './lib/process-cpu.js';

const run = promisify(execFile);
const APP = 'bench-router';
const HOST = 'bench-router.test';
const WARMUP_S = 1;
const MODES = ['plain', 'TLS', 'HTTP/2'] as const;
type Mode = (typeof MODES)[number];
type Target = 'router' | 'nginx' | 'node-pipe';
/** The issue's targets: router req/s at least this share of nginx's, per mode. */
const RPS_TARGET: Record<Mode, number> = { plain: 0.8, TLS: 0.6, 'HTTP/2': 0.5 };
const P99_TARGET_MS = 1;
const CPU_TARGET = 1.5;
const RSS_TARGET = 0.1;

interface Options {
  rounds: number;
  seconds: number;
  /** Seconds of the final plain run that the router's memory is read over; 0 skips it. */
  memory: number;
}

function options(): Options {
  const { values } = parseArgs({ options: { rounds: { type: 'string', default: '5' }, seconds: { type: 'string', default: '8' }, memory: { type: 'string', default: '60' } } });
  const int = (name: string, text: string, min: number): number => {
    const n = Number(text);
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name} takes a whole number ≥ ${min}, not ${JSON.stringify(text)}`);
    return n;
  };
  return { rounds: int('rounds', values.rounds, 1), seconds: int('seconds', values.seconds, 1), memory: int('memory', values.memory, 0) };
}

/** The app: answers "ok" at once, keeping idle upstream connections longer than either proxy pools them. */
const SERVER_JS = `'use strict';
const server = require('http').createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '2' });
  res.end('ok');
});
server.keepAliveTimeout = 120000;
server.listen(Number(process.env.PORT || 5000));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
`;

async function ssh(rack: RackDaemon, args: string[], input?: string): Promise<void> {
  const r = await rack.ssh(args, input === undefined ? {} : { input });
  if (r.code !== 0) throw new Error(`ssh rack ${args.join(' ')}: ${r.stderr.trim()}`);
}

async function deploy(rack: RackDaemon): Promise<void> {
  const dir = join(rack.work, APP);
  await mkdir(dir);
  await writeFile(join(dir, 'package.json'), `${JSON.stringify({ name: APP, version: '1.0.0', private: true, scripts: { start: 'node server.js' } }, null, 2)}\n`);
  await writeFile(join(dir, 'server.js'), SERVER_JS);
  const git = (args: string[]) => run('git', args, { cwd: dir });
  await git(['init', '-q', '-b', 'main']);
  await git(['add', '-A']);
  await git(['-c', 'user.email=bench@example.com', '-c', 'user.name=bench', 'commit', '-qm', 'ok server']);
  await git(['remote', 'add', 'rack', rack.remote(APP)]);
  const push = await rack.push(dir);
  if (push.code !== 0) throw new Error(`git push failed:\n${push.stderr}`);
}

/** One GET over HTTPS to the router with SNI and Host `HOST`, trusting only `ca`: the body, or an error. */
function httpsGet(port: number, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/', servername: HOST, ca, headers: { host: HOST }, agent: false }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('error', reject);
      res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`status ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.end();
  });
}

async function untilServed(what: string, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 120_000;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`${what} never answered "ok"`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The upstream the router sends APP's requests to, from its own state file. */
async function routerUpstream(rack: RackDaemon): Promise<{ host: string; port: number }> {
  const state = JSON.parse(await readFile(join(rack.home, 'router.json'), 'utf8')) as { apps: Record<string, { upstreams: { host: string; port: number }[] }> };
  const upstreams = state.apps[APP]?.upstreams ?? [];
  if (upstreams.length !== 1) throw new Error(`expected one web upstream for ${APP} in router.json, found ${upstreams.length}`);
  return upstreams[0]!;
}

interface Sample {
  figures: LoadFigures;
  /** CPU per answered request, µs: the router's processes, or nginx's. */
  proxyUs: number;
  /** rackd's, for router runs. */
  rackdUs: number;
  /** Docker's userland proxy in front of the container, when the upstream is a published port. */
  dockerProxyUs: number;
}

const fmt = (n: number, digits = 0) => (Number.isNaN(n) ? '–' : n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits }));
const msText = (n: number) => `${fmt(n, 2)} ms`;
const verdict = (ok: boolean) => (ok ? 'ok' : 'MISSED');

/** What a run drives, once it is all up. */
interface Bench {
  daemon: RackDaemon;
  rackd: number;
  /** The router's control socket: its processes are found by it. */
  socket: string;
  upstream: { host: string; port: number };
  dockerProxy: number[];
  nginx: NginxProxy;
  /** Node's floor: bytes piped, nothing parsed (plain and TLS only). */
  pipe: NodePipeProxy;
  tools: LoadTools;
  h2: Record<'router' | 'nginx', boolean>;
  idleRss: number;
  readyS: number;
}

/** rackd as the README starts it, the app pushed, its domain and certificate served; nginx beside it. */
async function setUp(dir: string, nginxBin: string, started: (daemon: RackDaemon) => void): Promise<Bench> {
  const t0 = performance.now();
  const daemon = await RackDaemon.create();
  started(daemon);
  const rackd = daemon.child?.pid;
  if (rackd === undefined) throw new Error('rackd has no pid');
  await deploy(daemon);
  await ssh(daemon, ['domains:add', HOST, '-a', APP]);
  const ca = await TestCa.create('bench:router CA');
  const leaf = await ca.leaf({ names: [HOST] });
  await ssh(daemon, ['certs:add', HOST], leaf.cert + ca.ca.cert + leaf.key);
  await untilServed(`https://${HOST} through the router`, async () => (await httpsGet(daemon.httpsPort, ca.ca.cert)) === 'ok');
  await untilServed(`http://${HOST} through the router`, async () => (await daemon.getHost(HOST)).body === 'ok');
  const readyS = (performance.now() - t0) / 1000;
  const upstream = await routerUpstream(daemon);
  const socket = join(daemon.home, 'router.sock');

  await writeFile(join(dir, 'cert.pem'), leaf.cert + ca.ca.cert);
  await writeFile(join(dir, 'key.pem'), leaf.key, { mode: 0o600 });
  const nginx = await startNginx(nginxBin, dir, upstream, { cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem') }, HOST);
  const pipe = await startNodePipe(upstream, { cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem') });
  const tools = await LoadTools.create(dir, HOST);
  // Asked once, by one request: h2load negotiates h2 only, with no fallback.
  const offersH2 = async (port: number) => (await tools.h2load(port, 0, { requests: 1 }).catch(() => undefined))?.protocol === 'h2';
  return {
    daemon,
    rackd,
    socket,
    upstream,
    dockerProxy: await dockerProxyPids(upstream.port),
    nginx,
    pipe,
    tools,
    h2: { router: await offersH2(daemon.httpsPort), nginx: await offersH2(nginx.httpsPort) },
    idleRss: await rssMb(await routerPids(socket, rackd)),
    readyS,
  };
}

async function printHeader(b: Bench, opts: Options): Promise<void> {
  const v = versions();
  const cmd = b.tools.describe(opts.seconds);
  const viaProxy = b.dockerProxy.length > 0 ? `; a published port: docker-proxy pid ${b.dockerProxy.join(', ')} in both paths` : '';
  console.log(`bench:router: the deployed router against nginx in front of the same app container (${cpus().length} CPUs, shared with the load generators, the app and other work: compare within a run)`);
  console.log(`  rack:   rackd (pid ${b.rackd}) started as the README says, its router process(es) (pids ${(await routerPids(b.socket, b.rackd)).join(', ')}), http 127.0.0.1:${b.daemon.httpPort}, https 127.0.0.1:${b.daemon.httpsPort}; serving ${b.readyS.toFixed(0)} s after start (push included)`);
  console.log(`  app:    ${APP} by git push (node http server answering "ok"), container upstream ${b.upstream.host}:${b.upstream.port} (the router's own, from router.json${viaProxy}), domain ${HOST} with a certificate of a CA made for the run (certs:add)`);
  console.log(`  nginx:  ${b.nginx.version.replace('nginx version: ', '')} (pid ${b.nginx.child.pid}), http 127.0.0.1:${b.nginx.port}, https 127.0.0.1:${b.nginx.httpsPort} to the same upstream: ${NGINX_SUMMARY}`);
  console.log(`  floor:  node-pipe (pid ${b.pipe.child.pid}), http 127.0.0.1:${b.pipe.port}, https 127.0.0.1:${b.pipe.httpsPort} to the same upstream, plain and TLS only: ${NODE_PIPE_SUMMARY}: what any Node router costs before its own work`);
  console.log(`  load:   ${v.wrk}: ${cmd.wrk}`);
  console.log(`          ${v.h2load}: ${cmd.h2load}`);
  console.log(`  rounds: ${opts.rounds} × ${opts.seconds} s per mode (${MODES.join(', ')}) and proxy, the order of router, nginx and node-pipe reversed every other round, after ${WARMUP_S} s of warm-up each`);
  console.log(`  CPU:    utime+stime from /proc/PID/stat before and after each run, ÷ requests answered; router = every process with its socket in its environment and their process groups; nginx = master + worker`);
  if (!b.h2.router) console.log('router HTTP/2: not offered (h2load fell back / failed)');
  if (!b.h2.nginx) console.log('nginx HTTP/2: not offered (h2load failed): is http_v2 in `nginx -V`?');
}

function load(b: Bench, target: Target, mode: Mode, seconds: number): Promise<LoadFigures> {
  const ports = { router: [b.daemon.httpPort, b.daemon.httpsPort], nginx: [b.nginx.port, b.nginx.httpsPort], 'node-pipe': [b.pipe.port, b.pipe.httpsPort] }[target];
  const port = (mode === 'plain' ? ports[0] : ports[1]) as number;
  return mode === 'HTTP/2' ? b.tools.h2load(port, seconds) : b.tools.wrk(port, mode === 'TLS', seconds);
}

/** One measured run: the load's figures and the CPU each process set spent on it. */
async function measure(b: Bench, target: Target, mode: Mode, seconds: number): Promise<Sample> {
  const proxy = target === 'router' ? await routerPids(b.socket, b.rackd) : await groupPids((target === 'nginx' ? b.nginx : b.pipe).child.pid as number);
  const before = [await cpuByPid(proxy), await cpuByPid([b.rackd]), await cpuByPid(b.dockerProxy)] as const;
  const figures = await load(b, target, mode, seconds);
  // A router process started during the run (one per core, a respawn) counts from zero.
  const after = target === 'router' ? await routerPids(b.socket, b.rackd) : proxy;
  const perReq = (ms: number) => (ms * 1000) / Math.max(1, figures.requests);
  return {
    figures,
    proxyUs: perReq(cpuSpentMs(before[0], await cpuByPid([...new Set([...proxy, ...after])]))),
    rackdUs: perReq(cpuSpentMs(before[1], await cpuByPid([b.rackd]))),
    dockerProxyUs: perReq(cpuSpentMs(before[2], await cpuByPid(b.dockerProxy))),
  };
}

function line(b: Bench, label: string, target: Target, f: { rps: number; p50: number; p99: number; proxy: number; rackd: number; dockerProxy: number }): string {
  const cpu = target === 'router' ? `router ${fmt(f.proxy, 1)} + rackd ${fmt(f.rackd, 1)} = ${fmt(f.proxy + f.rackd, 1)} µs/req` : `${target} ${fmt(f.proxy, 1)} µs/req`;
  const path = b.dockerProxy.length > 0 ? `  (docker-proxy ${fmt(f.dockerProxy, 1)})` : '';
  return `${label} ${target.padEnd(9)} ${fmt(f.rps).padStart(7)} req/s  p50 ${msText(f.p50).padStart(9)}  p99 ${msText(f.p99).padStart(9)}  ${cpu}${path}`;
}

const flat = (s: Sample) => ({ rps: s.figures.rps, p50: s.figures.p50Ms, p99: s.figures.p99Ms, proxy: s.proxyUs, rackd: s.rackdUs, dockerProxy: s.dockerProxyUs });

/** The rounds, the order of router, nginx and node-pipe reversed every other round; every run's line as it ends. */
async function rounds(b: Bench, opts: Options): Promise<Map<string, Sample[]>> {
  const runs = (mode: Mode): Target[] => (mode === 'HTTP/2' ? (['router', 'nginx'] as const).filter((t) => b.h2[t]) : ['router', 'nginx', 'node-pipe']);
  for (const mode of MODES) for (const target of runs(mode)) await load(b, target, mode, WARMUP_S);
  const samples = new Map<string, Sample[]>();
  for (let round = 1; round <= opts.rounds; round++) {
    for (const mode of MODES) {
      const order = runs(mode);
      if (round % 2 === 0) order.reverse();
      for (const target of order) {
        const sample = await measure(b, target, mode, opts.seconds);
        samples.set(`${mode} ${target}`, [...(samples.get(`${mode} ${target}`) ?? []), sample]);
        const errors = sample.figures.errors > 0 ? `  ${fmt(sample.figures.errors)} errors` : '';
        console.log(`${line(b, `round ${round}  ${mode.padEnd(6)}`, target, flat(sample))}${errors}`);
      }
    }
  }
  return samples;
}

function printMedians(b: Bench, samples: Map<string, Sample[]>, opts: Options): void {
  console.log(`\nmedians of ${opts.rounds} round(s) of ${opts.seconds} s:`);
  const med = (mode: Mode, target: Target) => {
    const rows = (samples.get(`${mode} ${target}`) ?? []).map(flat);
    if (rows.length === 0) return undefined;
    const m = (k: keyof (typeof rows)[number]) => median(rows.map((r) => r[k]));
    return { rps: m('rps'), p50: m('p50'), p99: m('p99'), proxy: m('proxy'), rackd: m('rackd'), dockerProxy: m('dockerProxy') };
  };
  for (const mode of MODES) {
    const n = med(mode, 'nginx');
    const r = med(mode, 'router');
    if (n !== undefined) console.log(line(b, `  ${mode.padEnd(6)}`, 'nginx', n));
    if (r === undefined) console.log(`  ${mode.padEnd(6)} router HTTP/2: not offered (h2load fell back / failed)`);
    else console.log(line(b, `  ${mode.padEnd(6)}`, 'router', r));
    if (n === undefined || r === undefined) continue;
    const ratio = r.rps / n.rps;
    const p99 = r.p99 - n.p99;
    const cpu = (r.proxy + r.rackd) / n.proxy;
    const floor = med(mode, 'node-pipe');
    if (floor !== undefined) {
      console.log(line(b, `  ${mode.padEnd(6)}`, 'node-pipe', floor));
      console.log(
        `         node-pipe/nginx CPU per request ${(floor.proxy / n.proxy).toFixed(2)} (Node's floor);  the router's own work above it ${fmt(r.proxy + r.rackd - floor.proxy, 1)} µs/req`,
      );
    }
    console.log(
      `         router/nginx req/s ${ratio.toFixed(2)} (target ≥ ${RPS_TARGET[mode]}) ${verdict(ratio >= RPS_TARGET[mode])};  p99 router − nginx ${p99 >= 0 ? '+' : ''}${msText(p99)} (target ≤ +${P99_TARGET_MS} ms) ${verdict(p99 <= P99_TARGET_MS)};  (router+rackd)/nginx CPU per request ${cpu.toFixed(2)} (target ≤ ${CPU_TARGET}) ${verdict(cpu <= CPU_TARGET)}`,
    );
  }
}

/**
 * The router's resident memory over one long plain run, read each second. A leak grows under steady
 * load, so the run's own start is the baseline: the median of its seconds 5–15 (the heap has settled
 * to this load, after the HTTP/2 rounds before it) against the median of its last 10 s.
 */
async function memoryPhase(b: Bench, seconds: number): Promise<void> {
  const rss = async () => rssMb(await routerPids(b.socket, b.rackd));
  const before = await rss();
  const seen: { at: number; mb: number }[] = [];
  const started = Date.now();
  const sampler = setInterval(() => void rss().then((mb) => seen.push({ at: (Date.now() - started) / 1000, mb }), () => undefined), 1_000);
  let figures: LoadFigures;
  try {
    figures = await load(b, 'router', 'plain', seconds);
  } finally {
    clearInterval(sampler);
  }
  const within = (from: number, to: number) => seen.filter((s) => s.at >= from && s.at < to).map((s) => s.mb);
  const early = within(5, 15);
  const late = within(seconds - 10, seconds + 1);
  if (early.length === 0 || late.length === 0) {
    console.log(`\nrouter resident memory: a run of ${seconds} s is too short to read (it takes 5–15 s against the last 10 s)`);
    return;
  }
  const start = median(early);
  const end = median(late);
  const growth = (end - start) / start;
  const all = seen.map((s) => s.mb);
  console.log(
    `\nrouter resident memory under ${seconds} s of plain load (${fmt(figures.rps)} req/s): ${fmt(b.idleRss, 1)} MB idle after the deploy, ${fmt(before, 1)} MB as the run began;` +
      ` median ${fmt(start, 1)} MB over its seconds 5–15 → ${fmt(end, 1)} MB over its last 10 s (min ${fmt(Math.min(...all), 1)}, max ${fmt(Math.max(...all), 1)}),` +
      ` ${growth >= 0 ? '+' : ''}${(growth * 100).toFixed(1)} % (target: flat within ${RSS_TARGET * 100} %) ${verdict(Math.abs(growth) <= RSS_TARGET)}`,
  );
}

async function main(): Promise<void> {
  const opts = options();
  const nginxBin = nginxBinary();
  const missing = [...missingTools(), ...(nginxBin === undefined ? ['nginx'] : [])];
  if (nginxBin === undefined || missing.length > 0) throw new Error(`missing ${missing.join(', ')}: apt-get install -y ${missing.join(' ')} (scripts/setup.sh installs them)`);

  let rack: RackDaemon | undefined;
  let dir: string | undefined;
  let teardown: Promise<void> | undefined;
  // Once, whichever of Ctrl-C and the end of main gets here first.
  const cleanup = (): Promise<void> =>
    (teardown ??= (async () => {
      await stopChildren();
      await rack?.destroy();
      if (dir !== undefined) await rm(dir, { recursive: true, force: true });
    })());
  killChildrenOnExit(cleanup);
  try {
    dir = await mkdtemp(join(tmpdir(), 'rack-bench-router-'));
    const bench = await setUp(dir, nginxBin, (daemon) => (rack = daemon));
    await printHeader(bench, opts);
    printMedians(bench, await rounds(bench, opts), opts);
    if (opts.memory > 0) await memoryPhase(bench, opts.memory);
  } finally {
    await cleanup();
  }
}

main().catch((err: unknown) => {
  console.error(` !     ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
});
