import test from 'ava';
import { randomUUID } from 'node:crypto';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { signDelivery } from '../daemon/workflows/webhook-delivery.js';
import { api } from './support/api-client.js';
import { GitHost } from './support/git-host.js';
import { FIXTURES, headOf, RackDaemon } from './support/rack-daemon.js';

const run = promisify(execFile);

// A review app's whole life with what app.json asks of it: a fresh Postgres, a postdeploy run
// once, and its states posted back to the host as commit statuses. Real rackd, Docker, a git
// host on loopback, and a loopback server standing for the host's status API.
const APP = 'web';
const TOKEN = 'ghp_reviewT0ken';
const PARENT_DB = 'postgres://parent:secret@parent-db.example:5432/parent';
let rack: RackDaemon;
let host: GitHost;
let statusApi: Server;
const statuses: { path: string; authorization: string | undefined; body: { state: string; target_url: string; context: string } }[] = [];

test.before(async () => {
  statusApi = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('error', () => undefined);
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      statuses.push({ path: req.url ?? '', authorization: req.headers.authorization, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as (typeof statuses)[number]['body'] });
      res.writeHead(201, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => statusApi.listen(0, '127.0.0.1', resolve));
  host = await GitHost.start({ token: TOKEN });
  rack = await RackDaemon.create({ RACK_FETCH_ALLOW: '127.0.0.1' });
});

test.after.always(async () => {
  await rack?.destroy();
  await host?.stop();
  statusApi?.closeAllConnections();
  await new Promise<void>((resolve) => (statusApi ? statusApi.close(() => resolve()) : resolve()));
});

async function ok(args: string[], input?: string): Promise<string> {
  const r = await rack.ssh(args, input === undefined ? {} : { input });
  if (r.code !== 0) throw new Error(`${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** Polls `check` until it holds; the bound is generous (a first build and a Postgres start). */
async function until<T>(what: string, check: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + 5 * 60_000;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what} never came\n${rack.output.slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

test.serial('a pull request makes APP-pr-N with a fresh Postgres, runs postdeploy once, posts pending then success, and closing removes app and add-on', async (t) => {
  await ok(['apps:create', APP]);
  await ok(['config:set', `DATABASE_URL=${PARENT_DB}`, '-a', APP]);
  const work = await host.createRepo('dev/web', join(FIXTURES, 'node-hello'));
  const connected = await ok(['repo:connect', host.url('dev/web'), '--token-stdin', '--status-api', `http://127.0.0.1:${(statusApi.address() as AddressInfo).port}`, '-a', APP], `${TOKEN}\n`);
  const secret = /Secret:\s+([0-9a-f]{64})/.exec(connected)![1]!;
  await ok(['reviewapps:enable', '-a', APP]);
  const deliver = async (action: string, sha: string): Promise<string> => {
    const id = randomUUID();
    const body = JSON.stringify({ action, number: 7, pull_request: { number: 7, head: { ref: 'pr7', sha } } });
    const answer = await api(rack, 'POST', `/hooks/${APP}`, {
      rawBody: body,
      headers: { 'content-type': 'application/json', 'X-GitHub-Event': 'pull_request', 'X-GitHub-Delivery': id, ...signDelivery('github', secret, body) },
    });
    t.is(answer.status, 202, answer.text);
    return until(`the outcome of ${action}`, async () => {
      const last = (JSON.parse(await ok(['repo:info', '--json', '-a', APP])) as { lastDelivery: { id: string; result: string } | null }).lastDelivery;
      return last?.id === id && last.result !== 'queued' ? last.result : undefined;
    });
  };
  const postdeployLines = async () => (await ok(['logs', '-n', '500', '-a', 'web-pr-7'])).split('\n').filter((l) => l.includes('postdeploy seeded web-pr-7-postgres')).length;

  await run('git', ['checkout', '-q', '-b', 'pr7'], { cwd: work });
  const appJson = {
    scripts: { postdeploy: 'echo "postdeploy seeded $DATABASE_HOST"' },
    environments: { review: { env: { GREETING: 'review' }, addons: ['heroku-postgresql:essential-0'] } },
  };
  await writeFile(join(work, 'app.json'), JSON.stringify(appJson));
  await run('git', ['add', 'app.json'], { cwd: work });
  await run('git', ['commit', '-qm', 'review app.json'], { cwd: work });
  const first = await headOf(work);
  await host.push(work, 'HEAD', 'refs/pull/7/head');

  t.is(await deliver('opened', first), 'deployed web-pr-7 v1');
  t.is((await rack.get('web-pr-7')).body, 'hello from rack review\n');
  // Its own database: the add-on made for it, not the parent's.
  const reviewDb = (await ok(['config:get', 'DATABASE_URL', '-a', 'web-pr-7'])).trim();
  t.regex(reviewDb, /^postgres:\/\/app:[0-9a-f]+@web-pr-7-postgres:5432\/app$/);
  t.not(reviewDb, PARENT_DB);
  t.is((await ok(['config:get', 'DATABASE_URL', '-a', APP])).trim(), PARENT_DB);
  const addons = JSON.parse(await ok(['addons', '--json'])) as { name: string; attached: { app: string }[] }[];
  t.like(addons.find((a) => a.name === 'web-pr-7-postgres'), { attached: [{ app: 'web-pr-7' }] });
  // postdeploy ran in the app's image with its config, its output in the app's log.
  t.is(await until('the postdeploy line', async () => ((await postdeployLines()) > 0 ? postdeployLines() : undefined)), 1);
  t.true((await ok(['logs', '-n', '500', '-a', 'web-pr-7'])).includes('postdeploy seeded web-pr-7-postgres'));
  // pending, then success, for the head's commit, linking to the review app.
  const url = (JSON.parse(await ok(['reviewapps', '--json', '-a', APP])) as { url: string }[])[0]!.url;
  await until('two statuses', async () => (statuses.length >= 2 ? true : undefined));
  t.deepEqual(
    statuses.map((s) => [s.path, s.authorization, s.body.state, s.body.target_url, s.body.context]),
    [
      [`/repos/dev/web/statuses/${first}`, `Bearer ${TOKEN}`, 'pending', url, 'rack/review-app'],
      [`/repos/dev/web/statuses/${first}`, `Bearer ${TOKEN}`, 'success', url, 'rack/review-app'],
    ],
  );

  // An update redeploys: the same add-on, no second postdeploy.
  await writeFile(join(work, 'app.json'), JSON.stringify({ ...appJson, environments: { review: { ...appJson.environments.review, env: { GREETING: 'review-b' } } } }));
  await run('git', ['commit', '-qam', 'second'], { cwd: work });
  const second = await headOf(work);
  await host.push(work, 'HEAD', 'refs/pull/7/head');
  t.is(await deliver('synchronize', second), 'deployed web-pr-7 v2');
  t.is((await ok(['config:get', 'DATABASE_URL', '-a', 'web-pr-7'])).trim(), reviewDb);
  t.is(await postdeployLines(), 1);
  await until('four statuses', async () => (statuses.length >= 4 ? true : undefined));
  t.deepEqual(statuses.slice(2).map((s) => [s.path, s.body.state]), [
    [`/repos/dev/web/statuses/${second}`, 'pending'],
    [`/repos/dev/web/statuses/${second}`, 'success'],
  ]);

  // Closed: the app and its add-on go, container and volume.
  t.is(await deliver('closed', second), 'destroyed web-pr-7 and web-pr-7-postgres');
  t.is((await rack.ssh(['apps:info', '-a', 'web-pr-7'])).code, 1);
  t.false((JSON.parse(await ok(['addons', '--json'])) as { name: string }[]).some((a) => a.name === 'web-pr-7-postgres'));
  const containers = await run('docker', ['ps', '-a', '--format', '{{.Names}}']);
  t.false(containers.stdout.includes('addon-web-pr-7-postgres'), containers.stdout);
  const volumes = await run('docker', ['volume', 'ls', '--format', '{{.Name}}']);
  t.false(volumes.stdout.includes('addon-web-pr-7-postgres'), volumes.stdout);
  t.false(rack.output.includes(TOKEN), 'the operator log never holds the token');
});

test.serial('a failing postdeploy is reported as a failure status and in the outcome; the review app stays and serves', async (t) => {
  const secret = /Secret:\s+([0-9a-f]{64})/.exec(await ok(['repo:connect', host.url('dev/web'), '--token-stdin', '--status-api', `http://127.0.0.1:${(statusApi.address() as AddressInfo).port}`, '-a', APP], `${TOKEN}\n`))![1]!;
  await ok(['reviewapps:enable', '-a', APP]);
  const work = join(host.root, 'work', 'dev/web');
  await run('git', ['checkout', '-q', '-b', 'pr8', 'main'], { cwd: work });
  await writeFile(join(work, 'app.json'), JSON.stringify({ scripts: { postdeploy: { command: 'echo seeding; exit 3' } } }));
  await run('git', ['add', 'app.json'], { cwd: work });
  await run('git', ['commit', '-qm', 'failing postdeploy'], { cwd: work });
  const sha = await headOf(work);
  await host.push(work, 'HEAD', 'refs/pull/8/head');
  const id = randomUUID();
  const body = JSON.stringify({ action: 'opened', number: 8, pull_request: { number: 8, head: { ref: 'pr8', sha } } });
  const answer = await api(rack, 'POST', `/hooks/${APP}`, {
    rawBody: body,
    headers: { 'content-type': 'application/json', 'X-GitHub-Event': 'pull_request', 'X-GitHub-Delivery': id, ...signDelivery('github', secret, body) },
  });
  t.is(answer.status, 202, answer.text);
  const result = await until('the outcome', async () => {
    const last = (JSON.parse(await ok(['repo:info', '--json', '-a', APP])) as { lastDelivery: { id: string; result: string } | null }).lastDelivery;
    return last?.id === id && last.result !== 'queued' ? last.result : undefined;
  });
  t.is(result, 'deployed web-pr-8 v1 (postdeploy failed: exit status 3)');
  t.is((await rack.get('web-pr-8')).body, 'hello from rack v1\n');
  t.regex(await ok(['logs', '-n', '100', '-a', 'web-pr-8']), /seeding[\s\S]*postdeploy failed \(exit status 3\)/);
  const mine = await until('two statuses', async () => {
    const found = statuses.filter((s) => s.path === `/repos/dev/web/statuses/${sha}`);
    return found.length >= 2 ? found : undefined;
  });
  t.deepEqual(mine.map((s) => s.body.state), ['pending', 'failure']);
});

test.serial('--status-api is checked as any address rack sends to, and needs the token', async (t) => {
  const private10 = await rack.ssh(['repo:connect', host.url('dev/web'), '--token-stdin', '--status-api', 'https://10.1.2.3/api/v3', '-a', APP], { input: `${TOKEN}\n` });
  t.is(private10.code, 1);
  t.regex(private10.stderr, /10\.1\.2\.3 is a loopback, private or reserved address/);
  const noToken = await rack.ssh(['repo:connect', host.url('dev/web'), '--status-api', 'https://api.example.com', '-a', APP]);
  t.is(noToken.code, 1);
  t.regex(noToken.stderr, /--status-api needs the token/);
  const ftp = await rack.ssh(['repo:connect', host.url('dev/web'), '--token-stdin', '--status-api', 'ftp://api.example.com', '-a', APP], { input: `${TOKEN}\n` });
  t.regex(ftp.stderr, /the scheme must be https:\/\/, http:\/\//);
  const withUser = await rack.ssh(['repo:connect', host.url('dev/web'), '--token-stdin', '--status-api', 'https://me:pw@api.example.com', '-a', APP], { input: `${TOKEN}\n` });
  t.regex(withUser.stderr, /--status-api is the API base only/);
});
