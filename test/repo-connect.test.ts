import test from 'ava';
import { execFile } from 'node:child_process';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { api } from './support/api-client.js';
import { keypair, RackDaemon } from './support/rack-daemon.js';

const run = promisify(execFile);

// repo:connect, repo:info and repo:disconnect over ssh and the API, against a real rackd. Only
// 127.0.0.1 is in RACK_FETCH_ALLOW: every other loopback or private name stands for a host no
// operator allowed. Nothing here fetches: connecting checks the address, fetching is webhooks.test.ts.
const APP = 'web';
let rack: RackDaemon;
let deployOnly: string;

test.before(async () => {
  rack = await RackDaemon.create({ RACK_FETCH_ALLOW: '127.0.0.1' });
  for (const app of [APP, 'other']) {
    const r = await rack.ssh(['apps:create', app]);
    if (r.code !== 0) throw new Error(r.stderr);
  }
  const ci = await keypair(rack.work, 'ci');
  const added = await rack.ssh(['keys:add', 'ci', '--app', APP, '--deploy-only'], { input: await readFile(ci.pub, 'utf8') });
  if (added.code !== 0) throw new Error(added.stderr);
  deployOnly = ci.priv;
});

test.after.always(async () => {
  await rack?.destroy();
});

async function info(app = APP): Promise<{ code: number; stdout: string; stderr: string }> {
  return rack.ssh(['repo:info', '-a', app]);
}

test.serial('repo:connect refuses loopback and private hosts RACK_FETCH_ALLOW does not name, and stores nothing', async (t) => {
  for (const url of ['http://localhost:9/r.git', 'https://10.0.0.1/r.git', 'ssh://git@192.168.1.10/r.git', 'git@169.254.169.254:r.git', 'http://[::1]:9/r.git']) {
    const r = await rack.ssh(['repo:connect', url, '-a', APP]);
    t.is(r.code, 1, url);
    t.regex(r.stderr, /^ !\s+rack cannot fetch .*RACK_FETCH_ALLOW/m, url);
  }
  for (const url of ['file:///etc', 'ext::sh -c id', 'git@github.com:-oProxyCommand=x']) {
    const r = await rack.ssh(['repo:connect', url, '-a', APP]);
    t.is(r.code, 1, url);
  }
  const none = await info();
  t.is(none.code, 1);
  t.regex(none.stderr, /web has no connected repository; connect one with: repo:connect URL -a web/);
});

test.serial('a token goes on stdin, never in the URL', async (t) => {
  const r = await rack.ssh(['repo:connect', 'https://dev:ghp_secret@127.0.0.1:9/r.git', '-a', APP]);
  t.is(r.code, 1);
  t.regex(r.stderr, /give it on stdin with --token-stdin/);
  const empty = await rack.ssh(['repo:connect', 'http://127.0.0.1:9/r.git', '--token-stdin', '-a', APP], { input: '' });
  t.is(empty.code, 1);
  t.regex(empty.stderr, /--token-stdin read nothing/);
  t.is((await info()).code, 1);
});

test.serial('repo:connect prints the webhook URL and its secret once; repo:info shows neither secret nor token', async (t) => {
  const r = await rack.ssh(['repo:connect', 'http://127.0.0.1:9/dev/web.git', '--branch', 'release/1.x', '--token-stdin', '-a', APP], { input: 'glpat-Tok3n\n' });
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /^-----> Connected web to http:\/\/127\.0\.0\.1:9\/dev\/web\.git \(release\/1\.x\)$/m);
  t.true(r.stdout.includes(`URL:     http://rack.localhost:${rack.httpPort}/hooks/web`), r.stdout);
  const secret = /Secret:\s+([0-9a-f]{64})/.exec(r.stdout)?.[1];
  t.truthy(secret);
  const shown = await info();
  t.is(shown.code, 0, shown.stderr);
  t.regex(shown.stdout, /Branch:\s+release\/1\.x/);
  t.regex(shown.stdout, /Token:\s+set/);
  t.regex(shown.stdout, /Last delivery:\s+none yet/);
  t.false(shown.stdout.includes(secret!));
  t.false(shown.stdout.includes('glpat-Tok3n'));
  const json = JSON.parse((await rack.ssh(['repo:info', '--json', '-a', APP])).stdout) as Record<string, unknown>;
  t.like(json, { url: 'http://127.0.0.1:9/dev/web.git', transport: 'http', branch: 'release/1.x', secret: 'set', token: true, deployKey: null });
  // Connecting again makes a new secret: the old one stops working at the host's next delivery.
  const again = await rack.ssh(['repo:connect', 'http://127.0.0.1:9/dev/web.git', '-a', APP]);
  const newSecret = /Secret:\s+([0-9a-f]{64})/.exec(again.stdout)?.[1];
  t.truthy(newSecret);
  t.not(newSecret, secret);
  t.like(JSON.parse((await rack.ssh(['repo:info', '--json', '-a', APP])).stdout), { branch: 'main', token: false });
  // The audit log has the change, with the URL and branch and never the token.
  const audit = JSON.parse((await rack.ssh(['audit', '--json', '-a', APP])).stdout) as { action: string; detail: string; outcome: string }[];
  const connects = audit.filter((e) => e.action === 'repo:connect' && e.outcome === 'ok');
  t.true(connects.some((e) => e.detail === 'http://127.0.0.1:9/dev/web.git release/1.x'));
  t.false(JSON.stringify(audit).includes('glpat-Tok3n'));
  t.false(rack.output.includes('glpat-Tok3n'));
});

test.serial("an ssh URL gets the app's own ed25519 deploy key, in OpenSSH's format, kept across reconnects", async (t) => {
  const r = await rack.ssh(['repo:connect', 'git@127.0.0.1:dev/other.git', '-a', 'other']);
  t.is(r.code, 0, r.stderr);
  const key = /^\s+(ssh-ed25519 [A-Za-z0-9+/=]+ rack-deploy-other)$/m.exec(r.stdout)?.[1];
  t.truthy(key, r.stdout);
  const file = join(rack.home, 'repo-keys', 'other', 'id_ed25519');
  t.is((await stat(file)).mode & 0o777, 0o600);
  // ssh's own tool reads the private half and derives the same public half.
  const derived = (await run('ssh-keygen', ['-y', '-f', file])).stdout.trim();
  t.is(derived.split(' ').slice(0, 2).join(' '), key!.split(' ').slice(0, 2).join(' '));
  const again = await rack.ssh(['repo:connect', 'ssh://git@127.0.0.1:22/dev/other.git', '-a', 'other']);
  t.true(again.stdout.includes(key!), 'the same key: the one added at the host keeps working');
  t.like(JSON.parse((await rack.ssh(['repo:info', '--json', '-a', 'other'])).stdout), { transport: 'ssh', deployKey: key });
  const https = await rack.ssh(['repo:connect', 'git@127.0.0.1:dev/other.git', '--token-stdin', '-a', 'other'], { input: 'tok\n' });
  t.is(https.code, 1);
  t.regex(https.stderr, /a token is for https URLs/);
});

test.serial('a deploy-only key may read repo:info, not connect or disconnect', async (t) => {
  const read = await rack.ssh(['repo:info', '-a', APP], { key: deployOnly });
  t.is(read.code, 0, read.stderr);
  const connect = await rack.ssh(['repo:connect', 'http://127.0.0.1:9/x.git', '-a', APP], { key: deployOnly });
  t.is(connect.code, 1);
  t.regex(connect.stderr, /may not run repo:connect on web/);
  const disconnect = await rack.ssh(['repo:disconnect', '-a', APP], { key: deployOnly });
  t.is(disconnect.code, 1);
  t.regex(disconnect.stderr, /may not run repo:disconnect on web/);
});

test.serial('the API: PUT, GET and DELETE /apps/APP/repo, the token in the body; once disconnected the webhook is 404', async (t) => {
  const token = await rack.createToken('api', ['--app', APP]);
  const put = await api(rack, 'PUT', `/api/v1/apps/${APP}/repo`, { token, body: { url: 'http://127.0.0.1:9/dev/web.git', branch: 'main', token: 'ghp_fromapi' } });
  t.is(put.status, 200, put.text);
  t.like(put.json, { app: APP, branch: 'main', token: true, webhookUrl: `http://rack.localhost:${rack.httpPort}/hooks/${APP}` });
  t.regex(String((put.json as { secret: string }).secret), /^[0-9a-f]{64}$/, 'shown once, in the answer');
  const refused = await api(rack, 'PUT', `/api/v1/apps/${APP}/repo`, { token, body: { url: 'http://localhost:9/x.git' } });
  t.is(refused.status, 400);
  const get = await api(rack, 'GET', `/api/v1/apps/${APP}/repo`, { token });
  t.is(get.status, 200);
  t.like(get.json, { secret: 'set', token: true });
  t.false(get.text.includes('ghp_fromapi'));
  const hook = await api(rack, 'POST', `/hooks/${APP}`, { rawBody: '{}', headers: { 'content-type': 'application/json', 'X-GitHub-Event': 'ping', 'X-GitHub-Delivery': 'p1' } });
  t.is(hook.status, 401, 'connected: the unsigned delivery is refused, not unknown');
  const del = await api(rack, 'DELETE', `/api/v1/apps/${APP}/repo`, { token });
  t.is(del.status, 200, del.text);
  const gone = await api(rack, 'POST', `/hooks/${APP}`, { rawBody: '{}', headers: { 'content-type': 'application/json' } });
  t.is(gone.status, 404);
  t.is((await api(rack, 'DELETE', `/api/v1/apps/${APP}/repo`, { token })).status, 404);
});

test.serial("apps:destroy takes the app's repository link with it", async (t) => {
  t.is((await rack.ssh(['repo:info', '-a', 'other'])).code, 0);
  t.is((await rack.ssh(['apps:destroy', 'other', '--confirm', 'other'])).code, 0);
  t.is((await rack.ssh(['apps:create', 'other'])).code, 0);
  const r = await rack.ssh(['repo:info', '-a', 'other']);
  t.is(r.code, 1);
  t.regex(r.stderr, /other has no connected repository/);
});
