import test from 'ava';
import { readFile } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import { commitFile, RackDaemon } from './support/rack-daemon.js';

// What real apps met (issue 34), each as a fixture pushed with the real git client through the real
// Docker engine: workspaces, a single-page app, app.json formation and scripts, health checks that
// say what they saw, an early "nothing would start it", old engines.node, Dockerfile builds.
let rack: RackDaemon;
test.before(async () => {
  rack = await RackDaemon.create();
});
test.after.always(async () => {
  await rack?.destroy();
});

interface Proc {
  type: string;
  state: string;
}
const ps = async (app: string) => JSON.parse((await rack.ssh(['ps', '--json', '-a', app])).stdout) as Proc[];

function fetchWithHeaders(app: string, path: string): Promise<{ status: number; body: string; headers: Record<string, string | string[] | undefined> }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: rack.httpPort, path, headers: { host: `${app}.localhost` }, agent: false }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

test.serial('a workspace root with no dependencies of its own is installed, its packages with it', async (t) => {
  const dir = await rack.appRepo('node-workspace', 'ra-workspace');
  const push = await rack.push(dir);
  t.is(push.code, 0, push.stderr);
  t.regex(push.stderr, /Installing dependencies \(npm ci\)/);
  t.notRegex(push.stderr, /skipping the install/);
  t.is((await rack.get('ra-workspace')).body, 'workspace web: ms(1h) = 3600000\n');
});

test.serial('a single-page app: nodejs builds it, static serves dist/ with its routes and headers', async (t) => {
  const dir = await rack.appRepo('spa-static', 'ra-spa');
  const push = await rack.push(dir);
  t.is(push.code, 0, push.stderr);
  t.regex(push.stderr, /serves dist\/ on \$PORT/);
  const root = await fetchWithHeaders('ra-spa', '/');
  t.is(root.status, 200);
  t.regex(root.body, /spa shell/);
  // A client-side route has no file: the route sends the app's shell.
  const deep = await fetchWithHeaders('ra-spa', '/users/42/settings');
  t.is(deep.status, 200);
  t.is(deep.body, root.body);
  const asset = await fetchWithHeaders('ra-spa', '/assets/app.js');
  t.is(asset.status, 200);
  t.regex(String(asset.headers['content-type']), /javascript/);
  t.is(asset.headers['cache-control'], 'public, max-age=31536000, immutable');
  t.is(root.headers['cache-control'], undefined, 'the header is only for /assets/**');
  t.is((await fetchWithHeaders('ra-spa', '/../package.json')).status, 400, 'no way out of the root');
});

test.serial('a Vite app as its scaffolder made it (no start script) is built by nodejs and served by static', async (t) => {
  const dir = await rack.appRepo('vite-spa', 'ra-vite');
  const push = await rack.push(dir);
  t.is(push.code, 0, push.stderr);
  t.regex(push.stderr, /Single-page app \(vite, no start script\): nodejs builds it, static serves what it built/);
  t.regex(push.stderr, /serves dist\/ on \$PORT/);
  const root = await fetchWithHeaders('ra-vite', '/');
  t.is(root.status, 200);
  t.regex(root.body, /<script type="module" src="\/assets\/index-fixture\.js">/, 'the built page, not the source');
  t.is((await fetchWithHeaders('ra-vite', '/assets/index-fixture.js')).status, 200);
  t.is((await fetchWithHeaders('ra-vite', '/robots.txt')).status, 200);
  t.is((await fetchWithHeaders('ra-vite', '/package.json')).status, 404, 'the sources are not served');

  // A build that writes no site fails saying so, rather than serving the sources.
  const pkg = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  pkg.scripts['build'] = 'echo built nothing';
  await commitFile(dir, 'package.json', JSON.stringify(pkg, null, 2), 'a build that writes no site');
  const empty = await rack.push(dir);
  t.not(empty.code, 0);
  t.regex(empty.stderr, /the build wrote no dist\/index\.html or build\/index\.html, so there is no site to serve/);
  t.is((await fetchWithHeaders('ra-vite', '/')).status, 200, 'the last release still serves');
});

test.serial('a start script run by a devDependency (Nest\'s "nest start") is named at build time, with the start:prod to use', async (t) => {
  const dir = await rack.appRepo('node-devstart', 'ra-devstart');
  const push = await rack.push(dir);
  t.not(push.code, 0);
  t.regex(push.stderr, /Warning: the start script runs serve-it, which comes from a devDependency: pruned/);
  t.regex(push.stderr, /\(your start:prod script: "start": "node main\.js"\)/);
  t.regex(push.stderr, /serve-it: (command )?not found/);
  // The way out it names works.
  t.is((await rack.ssh(['config:set', 'NPM_CONFIG_PRODUCTION=false', '-a', 'ra-devstart'])).code, 0);
  await commitFile(dir, 'README', 'again\n', 'again');
  const kept = await rack.push(dir);
  t.is(kept.code, 0, kept.stderr);
  t.notRegex(kept.stderr, /Warning: the start script/);
  t.is((await rack.get('ra-devstart')).body, 'devstart ok\n');
});

test.serial('app.json formation starts a worker-only app; without it the push says nothing runs', async (t) => {
  const dir = await rack.appRepo('worker-formation', 'ra-worker');
  const push = await rack.push(dir);
  t.is(push.code, 0, push.stderr);
  t.regex(push.stderr, /app\.json formation -> worker=1/);
  t.deepEqual((await ps('ra-worker')).map((p) => [p.type, p.state]), [['worker', 'up']]);
  // ps:scale still wins over app.json.
  const scaled = await rack.ssh(['ps:scale', 'worker=0', '-a', 'ra-worker']);
  t.is(scaled.code, 0, scaled.stderr);
  await rack.drained('ra-worker');
  t.deepEqual(await ps('ra-worker'), []);

  const bare = await rack.appRepo('worker-formation', 'ra-idle');
  await commitFile(bare, 'app.json', '{}\n', 'no formation');
  const idle = await rack.push(bare);
  t.is(idle.code, 0, idle.stderr);
  t.regex(idle.stderr, / !     no processes run: worker=0; start some with ps:scale TYPE=N, or set app\.json formation/);
  t.notRegex(idle.stderr, /all processes healthy/);
});

test.serial('a failed health check says the port the app listens on, the status it answered, or the content it lacked', async (t) => {
  const dir = await rack.appRepo('node-port3000', 'ra-port');
  const wrongPort = await rack.push(dir);
  t.not(wrongPort.code, 0);
  t.regex(wrongPort.stderr, /the process listens on port 3000, not on PORT \(\d+\): listen on process\.env\.PORT/);
  // app.json's Dokku predeploy ran as the release phase; postdeploy is named as not run.
  t.regex(wrongPort.stderr, /predeploy ran/);
  t.regex(wrongPort.stderr, /app\.json scripts\.dokku\.postdeploy is not run by rack/);

  // No release yet: config changes wait for the next push.
  t.is((await rack.ssh(['config:set', 'USE_PORT=1', 'ANSWER=500', '-a', 'ra-port'])).code, 0);
  await commitFile(dir, 'README', 'again\n', 'again');
  const answered500 = await rack.push(dir);
  t.not(answered500.code, 0);
  t.regex(answered500.stderr, /GET \/ answered 500 \(a web process must answer below 500\)/);

  t.is((await rack.ssh(['config:set', 'ANSWER=200', '-a', 'ra-port'])).code, 0);
  const appJson = JSON.parse(await readFile(join(dir, 'app.json'), 'utf8')) as { healthchecks: { web: { content: string }[] } };
  appJson.healthchecks.web[0]!.content = 'goodbye';
  await commitFile(dir, 'app.json', JSON.stringify(appJson), 'content the app never says');
  const noContent = await rack.push(dir);
  t.not(noContent.code, 0);
  t.regex(noContent.stderr, /GET \/ answered 200 without "goodbye" in its body/);

  appJson.healthchecks.web[0]!.content = 'hello';
  await commitFile(dir, 'app.json', JSON.stringify(appJson), 'content it says');
  const ok = await rack.push(dir);
  t.is(ok.code, 0, ok.stderr);
  t.is((await rack.get('ra-port')).body, 'hello from port3000\n');
});

test.serial('an app nothing would start is told so before any install', async (t) => {
  const dir = await rack.appRepo('node-nostart', 'ra-nostart');
  const push = await rack.push(dir);
  t.not(push.code, 0);
  t.regex(push.stderr, /nothing would start this app: package\.json has no "start" script and there is no server\.js or Procfile; add "start": "node app\.js"/);
  t.notRegex(push.stderr, /Installing|Node\.js app detected/, 'nothing was installed first');
});

test.serial('engines.node older than rack can run is named, with the versions it can', async (t) => {
  const dir = await rack.appRepo('node-engines', 'ra-old-node');
  const pkg = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8')) as { engines: { node: string } };
  pkg.engines.node = '4.x';
  await commitFile(dir, 'package.json', JSON.stringify(pkg, null, 2), 'node 4');
  const push = await rack.push(dir);
  t.not(push.code, 0);
  t.regex(push.stderr, /engines\.node "4\.x" asks for node v4\.\d+\.\d+; rack runs Node\.js 12\.13\.0 and newer/);
  t.notRegex(push.stderr, /has no bin\/node/);
});

test.serial('a node that engines.node downloads runs on the run stack too (create-vue asks for one that links libatomic)', async (t) => {
  const dir = await rack.appRepo('node-engines', 'ra-new-node');
  const pkg = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8')) as { engines: { node: string } };
  pkg.engines.node = '^22.18.0 || >=24.12.0'; // create-vue's, which the stack's node 20 does not satisfy
  await commitFile(dir, 'package.json', JSON.stringify(pkg, null, 2), 'a newer node');
  const push = await rack.push(dir);
  t.is(push.code, 0, push.stderr);
  t.notRegex(push.stderr, /libatomic/);
  const version = /downloading node (v\d+\.\d+\.\d+)/.exec(push.stderr)?.[1];
  t.truthy(version, push.stderr);
  t.is((await rack.get('ra-new-node')).body, `run ${version} build ${version}\n`);
});

test.serial('a Dockerfile build reaches the registry as buildpack builds do, and its output has no colour codes', async (t) => {
  const dir = await rack.appRepo('dockerfile-npm', 'ra-docker');
  const push = await rack.push(dir);
  t.is(push.code, 0, push.stderr);
  t.regex(push.stderr, /a line on stderr/);
  t.regex(push.stderr, /\n(remote: )?\s*2\.\d+\.\d+\s*\n/, 'npm view answered through the CA');
  t.notRegex(push.stderr, /\[(91|0)m/, 'no stray colour codes');
  t.is((await rack.get('ra-docker')).status, 200);
});

test.serial('framework build caches (.next/cache, node_modules/.cache) are kept between builds and left out of the app', async (t) => {
  const dir = await rack.appRepo('node-next-like', 'ra-next');
  const first = await rack.push(dir);
  t.is(first.code, 0, first.stderr);
  t.regex(first.stderr, /build cache cold/);
  t.regex(first.stderr, /Saving build caches \(\.next\/cache node_modules\/\.cache\)/);
  t.is((await rack.get('ra-next')).body, 'built ok; caches in the app: none\n');
  const again = await rack.ssh(['builds:create', '--deploy', '-a', 'ra-next']);
  t.is(again.code, 0, again.stderr);
  t.regex(again.stdout, /Restoring build caches \(\.next\/cache node_modules\/\.cache\)/);
  t.regex(again.stdout, /build cache hit from build at/);
  const cold = await rack.ssh(['builds:create', '--no-cache', '-a', 'ra-next']);
  t.is(cold.code, 0, cold.stderr);
  t.regex(cold.stdout, /build cache cold/);
});
