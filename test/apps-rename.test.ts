import test from 'ava';
import { spawn } from 'node:child_process';
import { cp, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Store } from '../daemon/store/store.js';
import type { MetricPoint, ReleaseRecord } from '../daemon/store/records.js';
import { api } from './support/api-client.js';
import { commitFile, exec, FIXTURES, headOf, RackDaemon } from './support/rack-daemon.js';

// apps:rename (issue 33): the store moves in one batch; repository, images, processes, hosts,
// config, history, tokens and keys follow; the old name's remote gets one line.

const release = (app: string, version: number): Omit<ReleaseRecord, 'app' | 'version' | 'createdAt' | 'status' | 'error'> => ({
  build: version,
  image: `rack/${app}:b${version}-test`,
  processTypes: { web: 'node server.js' },
  config: { GREETING: app },
  description: 'Deploy',
  createdBy: 'admin',
});

test('the store moves every record of the app to the new name in one batch, and no other app\'s', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'rack-rename-'));
  const store = new Store(join(dir, 'db'), join(dir, 'builds'));
  await store.start();
  try {
    for (const app of ['web', 'web-2']) {
      await store.createApp(app);
      await store.createBuild(app, { commit: 'a'.repeat(40), createdBy: 'admin' });
      await store.finishRelease(await store.createRelease(app, release(app, 1)), 'succeeded', null, ['c1']);
      await store.addDomain(app, `${app}.example.test`);
    }
    await store.addKey({ name: 'dev', publicKey: 'ssh-ed25519 AAAA', fingerprint: 'SHA256:x', role: 'app', apps: ['web', 'web-2'], createdAt: '' });
    await store.tokens.add({ name: 'web', hash: 'h'.repeat(64), role: 'app', apps: ['web'], createdAt: '', createdBy: 'admin', expiresAt: null, lastUsedAt: null });
    await store.drains.add({ id: 'd1', app: 'web', url: 'syslog+tls://logs.example.test:6514', token: 'd.1', createdAt: '', createdBy: 'admin' }, () => undefined);
    await store.metrics.put('10s', [{ app: 'web', point: { at: 1000 } as MetricPoint }]);
    await store.pipelines.create('shop', 'admin');
    await store.pipelines.add('shop', 'web', 'production');
    await store.cron.setSuspended('web', 'tick', true);

    await store.renameApp('web', 'store', 'ssh://git@rack.test:22/store', () => undefined);

    t.is(await store.getApp('web'), undefined);
    const app = await store.requireApp('store');
    t.like(app, { name: 'store', currentRelease: 1, domains: ['web.example.test'], serving: [] });
    const [moved] = await store.listReleases('store');
    t.like(moved, { app: 'store', version: 1, image: 'rack/store:b1-test', config: { GREETING: 'web' } });
    t.like((await store.listBuilds('store'))[0], { app: 'store', id: 1 });
    t.is(await store.domainOwner('web.example.test'), 'store');
    t.deepEqual((await store.listKeys())[0]?.apps, ['store', 'web-2']);
    // The token named like the app keeps its name; its right on the app follows the app.
    t.like(await store.tokens.get('web'), { name: 'web', apps: ['store'] });
    t.deepEqual((await store.drains.list('store')).map((d) => d.app), ['store']);
    t.deepEqual(await store.metrics.range('store', '10s', 0), [{ at: 1000 } as MetricPoint]);
    t.like(await store.pipelines.memberOf('store'), { app: 'store', pipeline: 'shop' });
    t.is(await store.pipelines.memberOf('web'), undefined);
    t.deepEqual(await store.cron.list('store'), [{ app: 'store', id: 'tick', suspended: true }]);
    // `web-2` shares the prefix `web`: none of it moved.
    t.like(await store.getApp('web-2'), { name: 'web-2', serving: ['c1'] });
    t.like((await store.listReleases('web-2'))[0], { app: 'web-2', image: 'rack/web-2:b1-test' });
    t.is((await store.drains.list('web-2')).length, 0);

    const old = await t.throwsAsync(store.requireApp('web'));
    t.is(old?.message, 'web was renamed to store: git remote set-url rack ssh://git@rack.test:22/store');
    t.like(await store.unsettledRenames(), [{ from: 'web', to: 'store', settled: false }]);
    await store.settleRename('web');
    t.deepEqual(await store.unsettledRenames(), []);
    // A new app under the old name ends the pointer.
    await store.createApp('web');
    t.is(await store.renamedTo('web'), undefined);
    await t.throwsAsync(store.renameApp('web', 'web-2', '', () => undefined), { message: 'app "web-2" already exists' });
  } finally {
    await store.stop();
    await rm(dir, { recursive: true, force: true });
  }
});

let rack: RackDaemon;
let dir: string;
let token: string;

test.before(async () => {
  rack = await RackDaemon.create();
  dir = await rack.appRepo('node-hello', 'shop');
  const push = await rack.push(dir);
  if (push.code !== 0) throw new Error(push.stderr);
  for (const args of [['config:set', 'GREETING=renamed', '-a', 'shop'], ['domains:add', 'shop.example.test', '-a', 'shop']]) {
    const r = await rack.ssh(args);
    if (r.code !== 0) throw new Error(r.stderr);
  }
  token = await rack.createToken('shop-ci', ['--app', 'shop']);
});
test.after.always(async () => {
  await rack?.destroy();
});

/** This rack's containers of the app (other racks on the engine may have an app of the same name). */
const containers = async (app: string) => {
  const instance = (await readFile(join(rack.home, 'instance-id'), 'utf8')).trim();
  const filters = [`label=rack.app=${app}`, 'label=rack.role=process', `label=rack.instance=${instance}`].flatMap((f) => ['--filter', f]);
  return (await exec('docker', ['ps', '-aq', ...filters])).stdout.split('\n').filter(Boolean);
};

test.serial('apps:rename: NEW answers on its host and the custom domain with the same config, history, token and a working remote; OLD gets one line', async (t) => {
  await rack.drained('shop');
  t.is((await rack.get('shop')).body, 'hello from rack renamed\n');

  // Requests to the custom domain all through the rename: the host moves to the new processes at once.
  let renaming = true;
  const statuses: number[] = [];
  const load = (async () => {
    while (renaming) statuses.push(await rack.getHost('shop.example.test').then((a) => a.status, () => 0));
  })();
  const renamed = await rack.ssh(['apps:rename', 'shop', 'store']);
  renaming = false;
  await load;
  t.is(renamed.code, 0, renamed.stderr);
  t.true(statuses.length > 0);
  t.deepEqual(statuses.filter((s) => s !== 200), []);
  t.regex(renamed.stdout, /-----> shop is now store/);
  const remote = `ssh://git@localhost:${rack.sshPort}/store`;
  t.true(renamed.stdout.includes(`git remote set-url rack ${remote}\n`), renamed.stdout);

  t.deepEqual(await rack.get('store'), { status: 200, body: 'hello from rack renamed\n' });
  t.deepEqual(await rack.getHost('shop.example.test'), { status: 200, body: 'hello from rack renamed\n' });
  t.is((await rack.get('shop')).status, 404);
  t.is((await rack.ssh(['config:get', 'GREETING', '-a', 'store'])).stdout.trim(), 'renamed');
  const releases = JSON.parse((await rack.ssh(['releases', '-a', 'store', '--json'])).stdout) as { version: number }[];
  t.deepEqual(releases.map((r) => r.version), [2, 1]);
  // The log store moved too: the lines of the processes that ran under the old name are there.
  const logs = await rack.ssh(['logs', '-a', 'store', '-n', '500']);
  // v1 and v2 started under the old name (and v2 again under the new one, whose line may still be on its way).
  t.true((logs.stdout.match(/node-hello listening/g)?.length ?? 0) >= 2, logs.stdout);
  // Nothing of the old name runs; the repository moved.
  t.deepEqual(await containers('shop'), []);
  t.is((await containers('store')).length, 1);
  await t.throwsAsync(stat(join(rack.home, 'repos', 'shop.git')));
  t.true((await stat(join(rack.home, 'repos', 'store.git'))).isDirectory());
  // The token scoped to the app acts on it under its new name.
  const info = await api(rack, 'GET', '/api/v1/apps/store', { token });
  t.is(info.status, 200, info.text);

  // The old name: one line, exit 1, for a command and for a push.
  const line = ` !     shop was renamed to store: git remote set-url rack ${remote}\n`;
  const old = await rack.ssh(['config', '-a', 'shop']);
  t.deepEqual([old.code, old.stderr], [1, line]);
  await commitFile(dir, 'NOTE', 'after the rename', 'note');
  const stale = await rack.push(dir);
  // rack ends the session with status 1; git reports any refusal by its remote as 128.
  t.is(stale.code, 128);
  t.true(stale.stderr.includes(line.trimEnd()), stale.stderr);
  t.is((await rack.ssh(['apps'])).stdout.includes('shop '), false, 'the push to the old name created nothing');

  await exec('git', ['remote', 'set-url', 'rack', rack.remote('store')], { cwd: dir });
  const push = await rack.push(dir);
  t.is(push.code, 0, push.stderr);
  t.is(await rack.servingCommit('store'), await headOf(dir));

  const audit = JSON.parse((await rack.ssh(['audit', '--json'])).stdout) as { action: string; app: string | null; outcome: string }[];
  t.truthy(audit.find((e) => e.action === 'apps:rename' && e.app === 'shop' && e.outcome === 'ok'));
});

test.serial('apps:rename to a taken or invalid name, or of an app that is not there, is refused in one line', async (t) => {
  t.is((await rack.ssh(['apps:create', 'other'])).code, 0);
  for (const [args, message] of [
    [['apps:rename', 'store', 'other'], 'app "other" already exists'],
    [['apps:rename', 'store', 'Bad_Name'], 'invalid app name'],
    [['apps:rename', 'nothing', 'else'], 'no app named "nothing"'],
    [['apps:rename', 'store'], 'which app?'],
  ] as const) {
    const r = await rack.ssh([...args]);
    t.is(r.code, 1, args.join(' '));
    t.is(r.stderr.split('\n').length, 2, r.stderr);
    t.true(r.stderr.startsWith(' !     ') && r.stderr.includes(message), r.stderr);
  }
  t.deepEqual(await rack.get('store'), { status: 200, body: 'hello from rack renamed\n' });
});

test.serial('the API renames too, and a rackd restart after a rename keeps serving the new name', async (t) => {
  const renamed = await api(rack, 'POST', '/api/v1/apps/store/rename', { token: await rack.createToken('ops'), body: { name: 'market' } });
  t.is(renamed.status, 200, renamed.text);
  t.like(JSON.parse(renamed.text.trim().split('\n').pop()!) as object, { result: { name: 'market', renamedFrom: 'store' } });
  await rack.stop();
  await rack.start();
  t.deepEqual(await rack.get('market'), { status: 200, body: 'hello from rack renamed\n' });
  t.deepEqual(await rack.getHost('shop.example.test'), { status: 200, body: 'hello from rack renamed\n' });
  // A chain of renames: the first old name points at the newest.
  t.regex((await rack.ssh(['ps', '-a', 'shop'])).stderr, /shop was renamed to market:/);
});

test.serial('a rackd stopped right after the store switched finishes the rename at its next start', async (t) => {
  await rack.drained('market');
  await rack.stop();
  // What apps:rename does before it is cut short: the images tagged, then the one batch.
  const instance = (await readFile(join(rack.home, 'instance-id'), 'utf8')).trim();
  const listed = await exec('docker', ['images', '--format', '{{.Repository}}:{{.Tag}}', '--filter', `label=rack.instance=${instance}`, 'rack/market']);
  const tags = listed.stdout.split('\n').filter(Boolean);
  for (const tag of tags) await exec('docker', ['tag', tag, tag.replace('rack/market:', 'rack/bazaar:')]);
  const store = new Store(join(rack.home, 'db'), join(rack.home, 'logs', 'builds'));
  await store.start();
  try {
    await store.renameApp('market', 'bazaar', rack.remote('bazaar'), () => undefined);
  } finally {
    await store.stop();
  }
  await rack.start();
  // On a failure, what rackd said of the rename as it started (its repair runs before it is ready).
  const said = () => rack.output.split('\n').filter((l) => /rename|bazaar|market|rollout|health/i.test(l)).slice(-30).join('\n');
  t.deepEqual(await rack.get('bazaar'), { status: 200, body: 'hello from rack renamed\n' }, said());
  t.deepEqual(await rack.getHost('shop.example.test'), { status: 200, body: 'hello from rack renamed\n' }, said());
  t.true((await stat(join(rack.home, 'repos', 'bazaar.git'))).isDirectory());
  t.deepEqual(await containers('market'), [], said());
  t.is((await exec('docker', ['images', '-q', '--filter', `label=rack.instance=${instance}`, 'rack/market'])).stdout.trim(), '', said());
});

test.serial("an add-on attached to the app serves it under the new name, and leaves the old name's network", async (t) => {
  const cart = await rack.appRepo('addon-app', 'cart');
  const push = await rack.push(cart);
  t.is(push.code, 0, push.stderr);
  const created = await rack.ssh(['addons:create', 'redis', '-a', 'cart']);
  t.is(created.code, 0, created.stderr);
  t.is((await rack.post('cart', '/key?k=greeting&v=kept')).body.trim(), 'ok');
  const renamed = await rack.ssh(['apps:rename', 'cart', 'till']);
  t.is(renamed.code, 0, renamed.stderr);
  t.is((await rack.get('till', '/key?k=greeting')).body.trim(), 'kept');
  const instance = (await readFile(join(rack.home, 'instance-id'), 'utf8')).trim();
  const networks = await exec('docker', ['inspect', '--format', '{{range $name, $_ := .NetworkSettings.Networks}}{{$name}} {{end}}', `rack-${instance}-addon-cart-redis`]);
  t.is(networks.code, 0, networks.stderr);
  t.regex(networks.stdout, /till/);
  t.notRegex(networks.stdout, /cart\b(?!-redis)/);
});

test.serial('apps:rename while a push of the app builds is refused with one line', async (t) => {
  // A build that sleeps until the build timeout ends it: the push then ends by itself.
  await rack.stop();
  await rack.start({ RACK_BUILD_TIMEOUT: '30' });
  const slow = join(rack.home, 'buildpacks', 'slow');
  await cp(join(FIXTURES, 'slow-buildpack'), slow, { recursive: true });
  const busy = await rack.appRepo('node-hello', 'busy');
  await writeFile(join(busy, '.buildpacks'), `${slow}\n`);
  await commitFile(busy, '.buildpacks', `${slow}\n`, 'slow');
  const push = spawn('git', ['push', 'rack', 'main'], { cwd: busy, env: rack.gitEnv(), stdio: 'ignore' });
  const exited = new Promise((resolve, reject) => {
    push.once('exit', resolve);
    push.once('error', reject);
  });
  try {
    // Building: its build container exists.
    const deadline = Date.now() + 120_000;
    const instance = (await readFile(join(rack.home, 'instance-id'), 'utf8')).trim();
    const building = ['label=rack.app=busy', 'label=rack.role=build', `label=rack.instance=${instance}`].flatMap((f) => ['--filter', f]);
    while ((await exec('docker', ['ps', '-q', ...building])).stdout.trim() === '') {
      if (Date.now() > deadline) throw new Error('the build never started');
      await new Promise((r) => setTimeout(r, 200));
    }
    const r = await rack.ssh(['apps:rename', 'busy', 'idle']);
    t.is(r.code, 1);
    t.is(r.stderr, ' !     a push, build or deploy of busy is under way; rename it once that is done\n');
  } finally {
    // Not killed: the client gone, the build would go on holding its cache until the timeout anyway.
    await exited;
  }
});
