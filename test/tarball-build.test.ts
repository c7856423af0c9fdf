import test from 'ava';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { pack, type Header } from 'tar-stream';
import { api, events } from './support/api-client.js';
import { exec, FIXTURES, RackDaemon } from './support/rack-daemon.js';

// Builds from CI without git: a .tar.gz POSTed to /api/v1/apps/APP/builds through the router, into
// a real rackd and Docker. RACK_MAX_PUSH is small here so that the limit is cheap to reach.
let rack: RackDaemon;
let admin: string;

test.before(async () => {
  rack = await RackDaemon.create({ RACK_MAX_PUSH: '1m' });
  admin = await rack.createToken('ci');
  for (const app of ['tb', 'tb-ok', 'other']) {
    const r = await rack.ssh(['apps:create', app]);
    if (r.code !== 0) throw new Error(r.stderr);
  }
});
test.after.always(async () => {
  await rack?.destroy();
});

/** A .tar.gz made by tar-stream, entry by entry: how a hostile client would make one. */
async function tarball(entries: { header: Partial<Header> & { name: string }; body?: Buffer | string }[]): Promise<Buffer> {
  const p = pack();
  const chunks: Buffer[] = [];
  p.on('data', (c: unknown) => void chunks.push(c as Buffer));
  const ended = new Promise<void>((resolve, reject) => {
    p.on('end', resolve);
    p.on('error', reject);
  });
  for (const e of entries) p.entry(e.header, e.body ?? '');
  p.finalize();
  await ended;
  return gzipSync(Buffer.concat(chunks));
}

/** The node-env fixture's files under one folder, as GitHub's archives lay them out. */
async function fixtureTarball(top: string): Promise<Buffer> {
  const dir = join(FIXTURES, 'node-env');
  return tarball([
    { header: { name: `${top}/`, type: 'directory', mode: 0o755 } },
    { header: { name: `${top}/package.json`, mode: 0o644 }, body: await readFile(join(dir, 'package.json')) },
    { header: { name: `${top}/server.js`, mode: 0o644 }, body: await readFile(join(dir, 'server.js')) },
    { header: { name: `${top}/lib`, type: 'symlink', linkname: '.' } },
  ]);
}

const upload = (app: string, body: Buffer, query = '', token = admin, type = 'application/gzip') =>
  api(rack, 'POST', `/api/v1/apps/${app}/builds${query}`, { token, rawBody: body, headers: { 'content-type': type } });

const builds = async (app: string) => JSON.parse((await rack.ssh(['builds', '-a', app, '--json'])).stdout) as { id: number; source?: { type: string; version?: string } }[];

test.serial('a tarball built through the API with deploy=true is released and answers', async (t) => {
  const r = await upload('tb-ok', await fixtureTarball('shop-1a2b3c'), '?deploy=true&version=ci-42&description=Fix%20the%20login');
  t.is(r.status, 200, r.text);
  const lines = events(r.text);
  const said = lines.filter((e) => 'line' in e).map((e) => String(e['line'])).join('\n');
  t.regex(said, /Building tb-ok b1 from a source tarball \(ci-42\)/);
  t.like(lines.at(-1), { result: { build: 1, status: 'succeeded', version: 'ci-42', release: 1, deployed: true } });
  t.is((await rack.get('tb-ok', '/')).body, 'build-one');
  t.like((await builds('tb-ok'))[0], { id: 1, source: { type: 'tarball', version: 'ci-42', description: 'Fix the login' } });
  const release = JSON.parse((await rack.ssh(['releases:info', 'v1', '-a', 'tb-ok', '--json'])).stdout) as { description: string };
  t.is(release.description, 'Deploy ci-42 (tarball): Fix the login');
  const audit = JSON.parse((await rack.ssh(['audit', '--json', '-a', 'tb-ok'])).stdout) as { action: string; detail: string; outcome: string }[];
  t.like(audit.find((e) => e.action === 'builds:upload'), { detail: 'tarball ci-42 deploy', outcome: 'ok' });
  const bad = await upload('tb-ok', await fixtureTarball('x'), '?version=%0Aforged');
  t.is(bad.status, 400, bad.text);
  t.regex(bad.text, /version must be 1-200 printable ASCII characters/);
});

test.serial("a tarball made by tar from a folder ('./' paths) builds without releasing", async (t) => {
  // tar's own output, read back as base64 (exec collects text).
  const made = await exec('sh', ['-c', `tar -C ${JSON.stringify(join(FIXTURES, 'node-env'))} -czf - . | base64 -w0`]);
  const gz = Buffer.from(made.stdout, 'base64');
  const answer = await upload('tb', gz);
  t.is(answer.status, 200, answer.text);
  t.like(events(answer.text).at(-1), { result: { build: 1, status: 'succeeded', release: null, deployed: false } });
  t.deepEqual(JSON.parse((await rack.ssh(['releases', '-a', 'tb', '--json'])).stdout), []);
});

test.serial('over ssh, builds:upload reads the tarball from stdin and releases it with --deploy', async (t) => {
  // tar's bytes go straight into the real ssh client's stdin; the arguments reach sh as "$@", never as text.
  const r = await exec('sh', ['-c', 'd="$1"; shift; tar -C "$d" -czf - . | ssh "$@"', 'sh', join(FIXTURES, 'node-env'), ...rack.sshArgs(), '--', 'builds:upload', '-a', 'tb', '--deploy']);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /Received the source tarball: 2 files/);
  t.regex(r.stdout, /Released v1/);
  t.is((await rack.get('tb', '/')).body, 'build-one');
});

const hostile: [string, { header: Partial<Header> & { name: string }; body?: string }[], RegExp][] = [
  ['a path with ../', [{ header: { name: 'app/../../etc/cron.d/x' }, body: 'x' }], /climbs out with "\.\."/],
  ['an absolute path', [{ header: { name: '/etc/passwd' }, body: 'x' }], /is an absolute path/],
  ['a symlink out of the source', [{ header: { name: 'server.js' }, body: 'x' }, { header: { name: 'a/escape', type: 'symlink', linkname: '../../etc' } }], /points out of the source/],
  ['an absolute symlink', [{ header: { name: 'key', type: 'symlink', linkname: '/root/.ssh/id_rsa' } }], /points at an absolute path/],
  ['a device', [{ header: { name: 'null', type: 'character-device', devmajor: 1, devminor: 3 } }], /is a device/],
  ['a hard link', [{ header: { name: 'a' }, body: 'x' }, { header: { name: 'b', type: 'link', linkname: 'a' } }], /is a hard link/],
];

for (const [what, entries, message] of hostile) {
  test.serial(`a tarball with ${what} is refused and builds nothing`, async (t) => {
    const before = (await builds('tb')).length;
    const r = await upload('tb', await tarball(entries), '?deploy=true');
    t.is(r.status, 400, r.text);
    t.like(r.json, { error: { code: 'bad_argument' } });
    t.regex((r.json as { error: { message: string } }).error.message, message);
    t.is((await builds('tb')).length, before);
  });
}

test.serial('a tarball over RACK_MAX_PUSH is refused with 413; what is not gzip with 400', async (t) => {
  const big = await tarball([{ header: { name: 'noise.bin' }, body: randomBytes(2 * 1024 * 1024).toString('latin1') }]);
  const r = await upload('tb', big);
  t.is(r.status, 413, r.text);
  t.regex(r.text, /over rack's limit of 1 MB \(RACK_MAX_PUSH\)/);
  const junk = await upload('tb', Buffer.from('not a tarball at all'));
  t.is(junk.status, 400, junk.text);
  t.regex(junk.text, /not a readable \.tar\.gz/);
});

test.serial("a deploy-only token of one app cannot upload a build to another", async (t) => {
  const ci = await rack.createToken('tb-ci', ['--app', 'tb', '--deploy-only']);
  const r = await upload('other', await fixtureTarball('x'), '?deploy=true', ci);
  t.is(r.status, 403, r.text);
  t.deepEqual(await builds('other'), []);
});
