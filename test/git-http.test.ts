import test from 'ava';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { createConnection } from 'node:net';
import { readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { commitFile, exec, headOf, RackDaemon } from './support/rack-daemon.js';

const run = promisify(execFile);

// git over HTTP with the real git client, through the router's rack.localhost, against a real
// rackd and Docker. One daemon and one app ("web") for the file; each step builds on the last.
let rack: RackDaemon;
let dir: string;
let ciToken: string;
let shortToken: string;
let shortExpires: number;

const APP = 'web';
const gitEnv = { ...process.env, GIT_TERMINAL_PROMPT: '0' };

interface AuditEntry {
  actor: { kind: string; name: string };
  via: string;
  app: string | null;
  action: string;
  detail: string;
  outcome: string;
}

test.before(async () => {
  rack = await RackDaemon.create();
  for (const app of [APP, 'blog']) {
    const r = await rack.ssh(['apps:create', app]);
    if (r.code !== 0) throw new Error(r.stderr);
  }
  ciToken = await rack.createToken('ci', ['--app', APP]);
  shortToken = await rack.createToken('short', ['--app', APP, '--expires', '1m']);
  shortExpires = Date.now() + 60_000;
  dir = await rack.appRepo('node-hello', APP);
});
test.after.always(async () => {
  await rack?.destroy();
});

/** A raw request to rack's host, as the router would get it. */
function raw(method: string, path: string, headers: Record<string, string>, body?: Buffer): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const port = rack.httpPort;
    const req = request({ host: '127.0.0.1', port, method, path, headers: { host: 'rack.localhost', ...headers }, agent: false }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString('latin1')));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function audit(): Promise<AuditEntry[]> {
  const r = await rack.ssh(['audit', '--json']);
  if (r.code !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout) as AuditEntry[];
}

const pushes = async () => (await audit()).filter((e) => e.action === 'git push' && e.app === APP);

async function remoteHead(app = APP): Promise<string> {
  const ls = await exec('git', ['ls-remote', rack.remote(app), 'refs/heads/main'], { env: rack.gitEnv() });
  return ls.stdout.split(/\s/)[0] ?? '';
}

async function buildCount(app = APP): Promise<number> {
  const r = await rack.ssh(['builds', '-a', app, '--json']);
  if (r.code !== 0) throw new Error(r.stderr);
  return (JSON.parse(r.stdout) as unknown[]).length;
}

const pushHttp = (token: string | undefined, app = APP, env: NodeJS.ProcessEnv = gitEnv) =>
  exec('git', ['push', rack.httpGitUrl(app, token), 'HEAD:main'], { cwd: dir, env });

const pkt = (line: string) => `${(line.length + 4).toString(16).padStart(4, '0')}${line}`;

/** The body git sends to push `newRev` over `oldRev` on main: the command, a flush, the pack. */
async function receivePackBody(oldRev: string, newRev: string): Promise<Buffer> {
  const command = pkt(`${oldRev} ${newRev} refs/heads/main\0 report-status side-band-64k agent=rack-test\n`) + '0000';
  const pack = await new Promise<Buffer>((resolve, reject) => {
    const child = execFile('git', ['pack-objects', '--stdout', '--revs', '--thin', '-q'], { cwd: dir, encoding: 'buffer', maxBuffer: 64 << 20 }, (err, stdout) =>
      err ? reject(err) : resolve(stdout),
    );
    child.stdin!.end(`${newRev}\n^${oldRev}\n`);
  });
  return Buffer.concat([Buffer.from(command, 'latin1'), pack]);
}

const postPack = (body: Buffer, auth?: string) =>
  raw('POST', `/${APP}.git/git-receive-pack`, { 'content-type': 'application/x-git-receive-pack-request', 'content-length': String(body.length), ...(auth ? { authorization: auth } : {}) }, body);

test.serial('a push over HTTP with an app token builds live, serves, moves the branch and is audited', async (t) => {
  // The one-minute token works while it lasts (the last test sees it expire).
  t.is((await raw('GET', `/${APP}.git/info/refs?service=git-receive-pack`, { authorization: `Bearer ${shortToken}` })).status, 200);
  const r = await pushHttp(ciToken);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stderr, /remote: -----> Building web b1/);
  t.regex(r.stderr, /remote: -----> Released v1/);
  t.is((await rack.get(APP)).status, 200);
  t.is(await remoteHead(), await headOf(dir));
  const entries = await pushes();
  t.is(entries.length, 1);
  t.like(entries[0], { actor: { kind: 'token', name: 'ci' }, via: 'http', outcome: 'ok', detail: `v1 ${(await headOf(dir)).slice(0, 7)}` });
});

test.serial('a failing build pushed over HTTP is rejected: the branch does not move and v1 serves', async (t) => {
  const good = await headOf(dir);
  const before = await rack.get(APP);
  await rm(join(dir, 'package.json'));
  await commitFile(dir, 'README', 'no app here', 'break the build');
  const r = await pushHttp(ciToken);
  t.not(r.code, 0);
  t.regex(r.stderr, /remote:  !     /);
  t.regex(r.stderr, /pre-receive hook declined/);
  t.is(await remoteHead(), good);
  t.deepEqual(await rack.get(APP), before);
  await run('git', ['reset', '-q', '--hard', good], { cwd: dir });
});

test.serial('a push over http.postBuffer (1 MiB): git probes first, then pushes; one push in the audit log', async (t) => {
  const before = (await pushes()).length;
  await writeFile(join(dir, 'blob.bin'), randomBytes(2 << 20));
  await commitFile(dir, 'server.js', "require('http').createServer((q, s) => s.end('big\\n')).listen(process.env.PORT);\n", 'a big push');
  const r = await pushHttp(ciToken, APP, { ...gitEnv, GIT_TRACE_CURL: '1', GIT_TRACE_CURL_NO_DATA: '1' });
  t.is(r.code, 0, r.stderr);
  const posts = r.stderr.match(/Send header: POST \/web\.git\/git-receive-pack/g) ?? [];
  t.is(posts.length, 2, 'the probe, then the push');
  t.regex(r.stderr, /Send header: Transfer-Encoding: chunked/);
  t.deepEqual(await rack.get(APP), { status: 200, body: 'big\n' });
  t.is(await remoteHead(), await headOf(dir));
  t.is((await pushes()).length, before + 1);
});

test.serial('a raw POST of a valid pack without a token or with a wrong one is refused 401 and changes nothing', async (t) => {
  const old = await remoteHead();
  await commitFile(dir, 'server.js', "require('http').createServer((q, s) => s.end('raw\\n')).listen(process.env.PORT);\n", 'raw push');
  const body = await receivePackBody(old, await headOf(dir));
  const builds = await buildCount();

  const none = await postPack(body);
  t.is(none.status, 401);
  t.regex(String(none.headers['www-authenticate']), /Basic realm="rack"/);
  const wrong = await postPack(body, `Basic ${Buffer.from(`x:rack_${'A'.repeat(43)}`).toString('base64')}`);
  t.is(wrong.status, 401);
  t.is(await remoteHead(), old);
  t.is(await buildCount(), builds);

  // The same body with the token is a real push: what was refused would have deployed.
  const ok = await postPack(body, `Bearer ${ciToken}`);
  t.is(ok.status, 200);
  t.regex(ok.body, /Released v\d+/);
  t.is(await remoteHead(), await headOf(dir));
  t.deepEqual(await rack.get(APP), { status: 200, body: 'raw\n' });
});

test.serial('a push from a stale advertisement (the branch moved since) is refused before anything is built', async (t) => {
  const stale = await headOf(dir, 'HEAD~1');
  const current = await remoteHead();
  t.not(stale, current);
  await commitFile(dir, 'server.js', "require('http').createServer((q, s) => s.end('stale\\n')).listen(process.env.PORT);\n", 'from a stale view');
  const builds = await buildCount();
  const r = await postPack(await receivePackBody(stale, await headOf(dir)), `Bearer ${ciToken}`);
  t.is(r.status, 200); // git answers the refusal inside its report
  t.regex(r.body, /the branch moved since you fetched; pull and push again/);
  t.is(await remoteHead(), current);
  t.is(await buildCount(), builds);
  t.deepEqual(await rack.get(APP), { status: 200, body: 'raw\n' });
  await run('git', ['reset', '-q', '--hard', current], { cwd: dir });
});

test.serial('a client gone mid-POST before the hook: git is stopped, nothing is built, the next push works', async (t) => {
  const head = await remoteHead();
  const builds = await buildCount();
  await writeFile(join(dir, 'half.bin'), randomBytes(4 << 20));
  await commitFile(dir, 'server.js', "require('http').createServer((q, s) => s.end('never\\n')).listen(process.env.PORT);\n", 'sent halfway');
  const body = await receivePackBody(head, await headOf(dir));
  const socket = createConnection(rack.httpPort, '127.0.0.1');
  socket.on('error', () => undefined);
  socket.write(
    `POST /${APP}.git/git-receive-pack HTTP/1.1\r\nHost: rack.localhost\r\nAuthorization: Bearer ${ciToken}\r\n` +
      `Content-Type: application/x-git-receive-pack-request\r\nContent-Length: ${body.length}\r\n\r\n`,
  );
  socket.write(body.subarray(0, body.length >> 1));
  // receive-pack is reading the pack once its quarantine exists.
  const objects = join(rack.home, 'repos', `${APP}.git`, 'objects');
  const deadline = Date.now() + 60_000;
  while (!(await readdir(objects)).some((f) => f.includes('incoming'))) {
    if (Date.now() > deadline) throw new Error('receive-pack never started');
    await new Promise((r) => setTimeout(r, 50));
  }
  socket.destroy();
  let last: AuditEntry | undefined;
  while (Date.now() < deadline + 60_000) {
    last = (await pushes())[0];
    if (last?.outcome === 'interrupted') break;
    await new Promise((r) => setTimeout(r, 200));
  }
  t.like(last, { outcome: 'interrupted', via: 'http' });
  t.is(await remoteHead(), head);
  t.is(await buildCount(), builds);
  await run('git', ['reset', '-q', '--hard', head], { cwd: dir });
  await commitFile(dir, 'server.js', "require('http').createServer((q, s) => s.end('after\\n')).listen(process.env.PORT);\n", 'after the hang-up');
  const next = await pushHttp(ciToken);
  t.is(next.code, 0, next.stderr);
  t.deepEqual(await rack.get(APP), { status: 200, body: 'after\n' });
});

test.serial('tokens: one for web may not push blog; a deploy-only token pushes its app; a revoked one is refused at once', async (t) => {
  const refused = await pushHttp(ciToken, 'blog');
  t.not(refused.code, 0);
  t.regex(refused.stderr, /remote: token "ci" may not run git push on blog: it has no right on blog/);
  t.regex(refused.stderr, /returned error: 403/);
  t.is(await remoteHead('blog'), '');
  t.is(await buildCount('blog'), 0);

  const deploy = await rack.createToken('deployer', ['--app', APP, '--deploy-only']);
  await commitFile(dir, 'server.js', "require('http').createServer((q, s) => s.end('deployer\\n')).listen(process.env.PORT);\n", 'by the deploy token');
  const ok = await pushHttp(deploy);
  t.is(ok.code, 0, ok.stderr);
  t.deepEqual(await rack.get(APP), { status: 200, body: 'deployer\n' });
  t.like((await pushes())[0], { actor: { kind: 'token', name: 'deployer' }, via: 'http', outcome: 'ok' });

  t.is((await rack.ssh(['tokens:revoke', 'deployer'])).code, 0);
  await commitFile(dir, 'server.js', "require('http').createServer((q, s) => s.end('revoked\\n')).listen(process.env.PORT);\n", 'after revoking');
  const head = await remoteHead();
  const revoked = await pushHttp(deploy);
  t.not(revoked.code, 0);
  t.regex(revoked.stderr, /Authentication failed|returned error: 401/);
  t.is(await remoteHead(), head);
});

test.serial('git clone over HTTP works with a token and is refused without one', async (t) => {
  const target = join(rack.work, 'cloned');
  const ok = await exec('git', ['clone', '-q', rack.httpGitUrl(APP, ciToken), target], { env: gitEnv });
  t.is(ok.code, 0, ok.stderr);
  t.is(await headOf(target), await remoteHead());
  const none = await exec('git', ['clone', '-q', rack.httpGitUrl(APP), join(rack.work, 'refused')], { env: gitEnv });
  t.not(none.code, 0);
  t.regex(none.stderr, /could not read Username|Authentication failed/);
  const other = await exec('git', ['clone', '-q', rack.httpGitUrl('blog', ciToken), join(rack.work, 'other')], { env: gitEnv });
  t.not(other.code, 0);
  t.regex(other.stderr, /remote: token "ci" may not run git fetch on blog/);
});

test.serial('an expired token is refused at once', async (t) => {
  // The token was made for one minute at the start of the file; wait out what is left of it.
  const left = shortExpires + 2_000 - Date.now();
  if (left > 0) await new Promise((r) => setTimeout(r, left));
  const head = await remoteHead();
  const r = await pushHttp(shortToken);
  t.not(r.code, 0);
  t.regex(r.stderr, /Authentication failed|returned error: 401/);
  t.is(await remoteHead(), head);
});
