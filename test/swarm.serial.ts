import test from 'ava';
import { readFile } from 'node:fs/promises';
import { startLoad, type LoadReport } from '../scripts/load-generator.js';
import { commitFile, exec, RackDaemon } from './support/rack-daemon.js';
import { TestSwarm } from './support/test-swarm.js';

// rack on a real Docker Swarm: the host's engine is the manager (rackd, the router, the registry),
// two workers are containers running their own dockerd, joined with the command rack prints.
// Processes run as services on the workers; rack keeps its rollout, so deploys, config changes,
// rollbacks and drains fail no request.
let rack: RackDaemon;
let swarm: TestSwarm;
let join = '';
const APP = 'spread';

interface Ps {
  name: string;
  release: number;
  state: string;
  restarts: number;
  node?: string;
}

async function ps(): Promise<Ps[]> {
  const r = await rack.ssh(['ps', '--json', '-a', APP]);
  if (r.code !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout) as Ps[];
}

async function ok(args: string[]): Promise<string> {
  const r = await rack.ssh([...args, '-a', APP]);
  if (r.code !== 0) throw new Error(`${args.join(' ')} failed:\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

function load() {
  return startLoad({ url: `http://127.0.0.1:${rack.httpPort}/`, host: `${APP}.localhost`, connections: 8, pauseAfterErrorMs: 20 });
}

function failures(r: LoadReport): string {
  return `${r.failed} failed of ${r.served + r.failed}: ${JSON.stringify(r.reasons)}`;
}

async function eventually(what: string, check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

test.before(async () => {
  swarm = await TestSwarm.init();
  rack = await RackDaemon.create({ RACK_RUNTIME: 'swarm' });
  const r = await rack.ssh(['nodes:join-command']);
  if (r.code !== 0) throw new Error(r.stderr);
  join = r.stdout.trim();
  await swarm.addWorker('rack-swarm-w1', join);
  await swarm.addWorker('rack-swarm-w2', join);
});

test.after.always(async () => {
  await rack?.destroy();
  await swarm?.down();
});

test.serial('a push runs on the workers; web=3 spreads over both, and the router reaches every one', async (t) => {
  const dir = await rack.appRepo('node-hello', APP);
  const push = await rack.push(dir);
  t.is(push.code, 0, push.stderr);
  t.regex(push.stderr, /Released v1/);
  t.deepEqual(await rack.get(APP), { status: 200, body: 'hello from rack v1\n' });
  await ok(['ps:scale', 'web=3']);
  const processes = await ps();
  t.is(processes.length, 3);
  t.true(processes.every((p) => p.state === 'up'));
  const nodes = new Set(processes.map((p) => p.node));
  t.deepEqual([...nodes].sort(), ['rack-swarm-w1', 'rack-swarm-w2'], 'spread over both workers, none on the manager');
  const text = await ok(['ps']);
  t.regex(text, /NODE/);
  // The images came from rack's registry, by digest.
  const services = await exec('docker', ['service', 'ls', '--format', '{{.Image}}', '--filter', `label=rack.app=${APP}`]);
  t.regex(services.stdout.trim(), /^10\.214\.0\.1:5000\/rack\/spread@sha256:[0-9a-f]{64}$/m);
  const nodesOut = JSON.parse((await rack.ssh(['nodes', '--json'])).stdout) as { name: string; processes: number }[];
  t.is(nodesOut.reduce((n, x) => n + x.processes, 0), 3);
});

test.serial('deploy, config:set and rollback under load: not one failed request', async (t) => {
  const run = load();
  const dir = `${rack.work}/${APP}`;
  await commitFile(dir, 'VERSION', 'two\n', 'a second deploy');
  const push = await rack.push(dir);
  t.is(push.code, 0, push.stderr);
  await ok(['config:set', 'GREETING=v3']);
  await eventually('v3 to answer', async () => (await rack.get(APP)).body === 'hello from rack v3\n');
  await ok(['releases:rollback', 'v2']);
  await eventually('v2 to answer', async () => (await rack.get(APP)).body === 'hello from rack v1\n');
  const report = await run.stop();
  t.log(`${report.served} served during a push, a config:set and a rollback; ${failures(report)}`);
  t.true(report.served > 100);
  t.is(report.failed, 0, failures(report));
});

test.serial('nodes:drain moves processes off a worker with no failed request; activate takes it back', async (t) => {
  const before = await ps();
  t.true(before.some((p) => p.node === 'rack-swarm-w1'));
  const run = load();
  const drain = await rack.ssh(['nodes:drain', 'rack-swarm-w1']);
  const report = await run.stop();
  t.is(drain.code, 0, drain.stderr);
  t.regex(drain.stdout, /Moving spread's processes off rack-swarm-w1/);
  t.log(`${report.served} served during the drain; ${failures(report)}`);
  t.is(report.failed, 0, failures(report));
  const after = await ps();
  t.is(after.length, 3);
  t.true(after.every((p) => p.node === 'rack-swarm-w2' && p.state === 'up'));
  t.is((await rack.get(APP)).status, 200);
  const activate = await rack.ssh(['nodes:activate', 'rack-swarm-w1']);
  t.is(activate.code, 0, activate.stderr);
});

test.serial('a release whose processes fail their health check never takes traffic; the old one serves throughout', async (t) => {
  const dir = `${rack.work}/${APP}`;
  const before = (await ps()).map((p) => p.name).sort();
  const run = load();
  await commitFile(dir, 'server.js', "console.error('no listening today'); process.exit(3);\n", 'a release that cannot start');
  const push = await rack.push(dir);
  const report = await run.stop();
  t.not(push.code, 0);
  t.regex(push.stderr, /failed its health check|Swarm could not run it/);
  t.is(report.failed, 0, failures(report));
  t.deepEqual((await ps()).map((p) => p.name).sort(), before, 'the failed release left no process behind');
  await exec('git', ['-C', dir, 'reset', '-q', '--hard', 'HEAD~1']);
});

test.serial('a rackd restart re-adopts the running services: the same processes, no failed request', async (t) => {
  const before = (await ps()).map((p) => p.name).sort();
  const run = load();
  await rack.stop();
  await rack.start({ RACK_RUNTIME: 'swarm' });
  await new Promise((r) => setTimeout(r, 1500));
  const report = await run.stop();
  t.is(report.failed, 0, failures(report));
  t.true(report.served > 100);
  t.deepEqual((await ps()).map((p) => p.name).sort(), before);
  t.regex(rack.output, /re-adopted running processes/);
});

test.serial("a process that dies is restarted by Swarm in its slot, and the app's logs say so", async (t) => {
  const [victim] = await ps();
  const node = victim!.node!;
  const containers = await exec('docker', ['exec', node, 'docker', 'ps', '-q', '--filter', `label=rack.app=${APP}`]);
  const id = containers.stdout.trim().split('\n')[0]!;
  t.truthy(id);
  await exec('docker', ['exec', node, 'docker', 'kill', id]);
  await eventually('the logs to tell the exit', async () => /rack\[web\.\d\]: Process exited with status 137/.test((await rack.ssh(['logs', '-n', '300', '-a', APP])).stdout));
  await eventually('every slot to run again', async () => {
    const now = await ps();
    return now.length === 3 && now.every((p) => p.state === 'up');
  });
  t.true((await ps()).some((p) => p.restarts >= 1));
  t.is((await rack.get(APP)).status, 200);
});

test.serial('a worker that dies under load: Swarm replaces its processes and the router follows them', async (t) => {
  // A restart spreads the processes over both workers again.
  await ok(['ps:restart']);
  const spread = await ps();
  t.deepEqual([...new Set(spread.map((p) => p.node))].sort(), ['rack-swarm-w1', 'rack-swarm-w2']);
  const victim = 'rack-swarm-w2';
  const run = load();
  await new Promise((r) => setTimeout(r, 1000));
  const killedAt = run.now();
  await swarm.kill(victim);
  await eventually(
    'Swarm to run every process on the other worker, and the router to answer from them',
    async () => {
      const now = await ps();
      return now.length === 3 && now.every((p) => p.state === 'up' && p.node !== victim);
    },
    90_000,
  );
  // ps shows what Swarm runs; the router follows once rackd has seen the tasks' endpoints: wait
  // for its table (router.json, written before each change applies) to hold none on the victim.
  const victimAddress = (JSON.parse((await rack.ssh(['nodes', '--json'])).stdout) as { name: string; address: string }[]).find((n) => n.name === victim)?.address;
  t.truthy(victimAddress);
  await eventually(
    'the router to send nothing to the dead worker',
    async () => {
      const table = JSON.parse(await readFile(`${rack.home}/router.json`, 'utf8')) as { apps: Record<string, { upstreams: { host: string }[] }> };
      const upstreams = table.apps[APP]?.upstreams ?? [];
      return upstreams.length === 3 && upstreams.every((u) => u.host !== victimAddress);
    },
    90_000,
  );
  await new Promise((r) => setTimeout(r, 2000));
  const servedBefore = run.progress();
  await new Promise((r) => setTimeout(r, 2000));
  const report = await run.stop();
  const failed = report.failures.filter((f) => f.at >= killedAt);
  const span = failed.length > 0 ? (failed.at(-1)!.at - failed[0]!.at) / 1000 : 0;
  t.log(`worker ${victim} killed: ${failed.length} of ${report.served + report.failed} requests failed, within ${span.toFixed(1)} s of each other; ${JSON.stringify(report.reasons)}`);
  t.true(report.served > servedBefore.served, 'answers keep coming after the move');
  // Nothing failed in the last 2 s: every request reached a live process.
  t.false(report.failures.some((f) => f.at > run.now() - 2000), 'no failure once the processes moved');
});

test.serial('an add-on stays on the machine that holds its volume, and apps on the workers use it', async (t) => {
  const dir = await rack.appRepo('addon-app', 'shop');
  const push = await rack.push(dir);
  t.is(push.code, 0, push.stderr);
  const created = await rack.ssh(['addons:create', 'postgres', '-a', 'shop']);
  t.is(created.code, 0, created.stderr);
  t.regex(created.stdout, /published on 10\.214\.0\.1:\d+ for the Swarm's workers, password required/);
  const shop = JSON.parse((await rack.ssh(['ps', '--json', '-a', 'shop'])).stdout) as Ps[];
  t.true(shop.length > 0 && shop.every((p) => p.node?.startsWith('rack-swarm-w')), 'the app runs on a worker');
  t.is((await rack.post('shop', '/rows?n=10')).body, 'added 10\n');
  t.is((await rack.get('shop', '/rows')).body, '10\n');
  const manager = (JSON.parse((await rack.ssh(['nodes', '--json'])).stdout) as { name: string; self: boolean }[]).find((n) => n.self)!;
  const info = JSON.parse((await rack.ssh(['addons:info', 'shop-postgres', '--json'])).stdout) as { node: string; plan: string };
  t.is(info.node, manager.name);
  t.regex(info.plan, /on the Swarm's manager/);
  // Its data is on the manager's volume, not in a worker: a redeploy keeps the rows.
  await commitFile(dir, 'VERSION', 'two\n', 'redeploy');
  t.is((await rack.push(dir)).code, 0);
  t.is((await rack.get('shop', '/rows')).body, '10\n');
});

test.serial("the registry answers rack's account only; apps:destroy takes the app's images out of it", async (t) => {
  const images = (await exec('docker', ['service', 'ls', '--format', '{{.Image}}', '--filter', 'label=rack.app=shop'])).stdout.trim().split('\n');
  t.true(images.length > 0 && images.every((i) => /@sha256:/.test(i)));
  const account = JSON.parse(await readFile(`${rack.home}/registry/account.json`, 'utf8')) as { username: string; password: string };
  const curl = (path: string, extra: string[] = []) =>
    exec('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '--cacert', `${rack.home}/registry/ca.crt`, ...extra, `https://10.214.0.1:5000/v2/${path}`]);
  const login = ['-u', `${account.username}:${account.password}`];
  const manifest = (image: string, auth = login, method = 'GET') => {
    const [name, digest] = image.replace(/^[^/]+\//, '').split('@') as [string, string];
    return curl(`${name}/manifests/${digest}`, [...auth, '-X', method, '-H', 'Accept: application/vnd.docker.distribution.manifest.v2+json']);
  };
  // Where the workers (and so tenants' processes) reach it, nobody without the password reads or deletes.
  t.is((await curl('_catalog')).stdout, '401');
  t.is((await manifest(images[0]!, [])).stdout, '401');
  t.is((await manifest(images[0]!, [], 'DELETE')).stdout, '401');
  t.is((await manifest(images[0]!, ['-u', 'rack:wrong'])).stdout, '401');
  t.is((await manifest(images[0]!)).stdout, '200');
  const destroyed = await rack.ssh(['apps:destroy', 'shop', '--confirm', 'shop']);
  t.is(destroyed.code, 0, destroyed.stderr);
  for (const image of images) t.is((await manifest(image)).stdout, '404', image);
});
