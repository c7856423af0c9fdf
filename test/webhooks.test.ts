import test from 'ava';
import { randomUUID } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { signDelivery, type RepoHost } from '../daemon/workflows/webhook-delivery.js';
import { api, type ApiAnswer } from './support/api-client.js';
import { GitHost } from './support/git-host.js';
import { FIXTURES, headOf, RackDaemon } from './support/rack-daemon.js';

const run = promisify(execFile);

// Deploys from a connected repository: a real git host on loopback (git http-backend behind a
// token check), a real rackd and Docker, and webhook deliveries shaped and signed as GitHub,
// GitLab and Gitea send them. One app ("web"); each step builds on the last.
const APP = 'web';
const TOKEN = 'ghp_looPbackT0ken';
let rack: RackDaemon;
let host: GitHost;
let work: string;
let secret: string;

interface Delivery {
  id: string;
  host: string;
  event: string;
  commit?: string;
  result: string;
}

test.before(async () => {
  host = await GitHost.start({ token: TOKEN });
  rack = await RackDaemon.create({ RACK_FETCH_ALLOW: '127.0.0.1' });
  const created = await rack.ssh(['apps:create', APP]);
  if (created.code !== 0) throw new Error(created.stderr);
  work = await host.createRepo(APP, join(FIXTURES, 'node-hello'));
  // The token goes on stdin: never on a command line `ps` shows.
  const r = await rack.ssh(['repo:connect', host.url(APP), '--token-stdin', '-a', APP], { input: `${TOKEN}\n` });
  if (r.code !== 0) throw new Error(r.stderr);
  secret = /Secret:\s+([0-9a-f]{64})/.exec(r.stdout)![1]!;
});

test.after.always(async () => {
  await rack?.destroy();
  await host?.stop();
});

/** A commit on the host's main whose app answers with `marker`. */
async function commitMarker(marker: string): Promise<string> {
  const file = join(work, 'server.js');
  const source = (await readFile(file, 'utf8')).replace(/hello from rack [^`$]*\$\{greeting\}/, `hello from rack ${marker} \${greeting}`);
  await writeFile(file, source);
  await run('git', ['commit', '-qam', marker], { cwd: work });
  return headOf(work);
}

function pushBody(hostKind: RepoHost, ref: string, after: string, before = '0'.repeat(40)): string {
  const common = { ref, before, after, commits: [{ id: after, message: 'change' }] };
  return JSON.stringify(hostKind === 'gitlab' ? { object_kind: 'push', event_name: 'push', checkout_sha: after, ...common } : { ...common, repository: { full_name: `dev/${APP}` } });
}

function deliver(hostKind: RepoHost, body: string, opts: { id?: string; event?: string; key?: string } = {}): Promise<ApiAnswer> {
  const id = opts.id ?? randomUUID();
  const event = opts.event ?? (hostKind === 'gitlab' ? 'Push Hook' : 'push');
  const named: Record<RepoHost, Record<string, string>> = {
    github: { 'X-GitHub-Event': event, 'X-GitHub-Delivery': id },
    gitlab: { 'X-Gitlab-Event': event, 'X-Gitlab-Event-UUID': id },
    gitea: { 'X-Gitea-Event': event, 'X-Gitea-Delivery': id, 'X-GitHub-Event': event, 'X-GitHub-Delivery': id },
  };
  return api(rack, 'POST', `/hooks/${APP}`, {
    rawBody: body,
    headers: { 'content-type': 'application/json', ...named[hostKind], ...signDelivery(hostKind, opts.key ?? secret, body) },
  });
}

async function lastDelivery(app = APP): Promise<Delivery | null> {
  const r = await rack.ssh(['repo:info', '--json', '-a', app]);
  if (r.code !== 0) throw new Error(r.stderr);
  return (JSON.parse(r.stdout) as { lastDelivery: Delivery | null }).lastDelivery;
}

/** Polls until the delivery `id` has an outcome other than queued; generous bound (a first build). */
async function outcomeOf(id: string, app = APP): Promise<Delivery> {
  const deadline = Date.now() + 5 * 60_000;
  for (;;) {
    const last = await lastDelivery(app);
    if (last && last.id === id && last.result !== 'queued') return last;
    if (Date.now() > deadline) throw new Error(`delivery ${id} has no outcome: ${JSON.stringify(last)}\n${rack.output.slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function builds(): Promise<{ id: number; commit: string; createdBy: string }[]> {
  return JSON.parse((await rack.ssh(['builds', '--json', '-a', APP])).stdout) as { id: number; commit: string; createdBy: string }[];
}

test.serial('a GitHub push of the branch deploys its commit: answered 202, fetched with the token, built and serving', async (t) => {
  const commit = await commitMarker('gh-one');
  await host.push(work);
  const id = randomUUID();
  const answer = await deliver('github', pushBody('github', 'refs/heads/main', commit), { id });
  t.is(answer.status, 202, answer.text);
  t.like(answer.json, { delivery: id, commit });
  const outcome = await outcomeOf(id);
  t.is(outcome.result, 'deployed v1', JSON.stringify(outcome));
  t.regex((await rack.get(APP)).body, /hello from rack gh-one/);
  t.is(await rack.servingCommit(APP), commit);
  // The source is on the build and the release, and in the audit log.
  t.is((await builds())[0]!.createdBy, `webhook github delivery ${id}`);
  const releases = JSON.parse((await rack.ssh(['releases', '--json', '-a', APP])).stdout) as { description: string; createdBy: string }[];
  t.like(releases[0], { description: `Deploy ${commit.slice(0, 7)}`, createdBy: `webhook github delivery ${id}` });
  const audit = JSON.parse((await rack.ssh(['audit', '--json', '-a', APP])).stdout) as { actor: { kind: string; name: string }; action: string; detail: string; outcome: string }[];
  t.like(audit.find((e) => e.action === 'repo:deploy'), { actor: { kind: 'webhook', name: `github delivery ${id}` }, detail: `v1 ${commit.slice(0, 7)}`, outcome: 'ok' });
  // The host was asked with the token as Basic credentials, never without them past its challenge.
  t.true(host.requests.some((r) => r.authorization === `Basic ${Buffer.from(`x-access-token:${TOKEN}`).toString('base64')}`));
  // The app's own repo's branch follows: a clone from rack has the commit.
  t.is((await rack.ssh(['repo:info', '-a', APP])).stdout.includes(TOKEN), false, 'repo:info never shows the token');
  t.false(rack.output.includes(TOKEN), 'the operator log never holds the token');
  t.false(rack.output.includes(secret), 'nor the secret');
});

test.serial('a bad signature is 401 and builds nothing; a repeated delivery ID is ignored', async (t) => {
  const before = (await builds()).length;
  const last = await lastDelivery();
  const commit = await commitMarker('forged');
  await host.push(work);
  const forged = await deliver('github', pushBody('github', 'refs/heads/main', commit), { key: 'not-the-secret' });
  t.is(forged.status, 401, forged.text);
  const unsigned = await api(rack, 'POST', `/hooks/${APP}`, { rawBody: '{}', headers: { 'content-type': 'application/json', 'X-GitHub-Event': 'push', 'X-GitHub-Delivery': 'u1' } });
  t.is(unsigned.status, 401);
  // The same delivery again (GitHub's "Redeliver"): answered, not built.
  const again = await deliver('github', pushBody('github', 'refs/heads/main', commit), { id: last!.id });
  t.is(again.status, 200);
  t.like(again.json, { status: 'duplicate delivery, ignored' });
  t.deepEqual(await lastDelivery(), last);
  t.is((await builds()).length, before);
});

test.serial('a delivery whose deploy failed is taken again when the host redelivers it', async (t) => {
  // A Dockerfile rack refuses before Docker builds anything: a quick, certain failure.
  await writeFile(join(work, 'Dockerfile'), 'FROM rack/stack\nADD http://127.0.0.1:1/x /p\n');
  await run('git', ['add', 'Dockerfile'], { cwd: work });
  await run('git', ['commit', '-qm', 'refused Dockerfile'], { cwd: work });
  await host.push(work);
  const commit = await headOf(work);
  const id = randomUUID();
  t.is((await deliver('github', pushBody('github', 'refs/heads/main', commit), { id })).status, 202);
  t.regex((await outcomeOf(id)).result, /^failed: .*Dockerfile line 2: ADD of a remote source/);
  const again = await deliver('github', pushBody('github', 'refs/heads/main', commit), { id });
  t.is(again.status, 202, 'not a duplicate: it never deployed');
  t.regex((await outcomeOf(id)).result, /^failed: /);
  t.regex((await rack.get(APP)).body, /gh-one/, 'the release before keeps serving');
  await run('git', ['rm', '-q', 'Dockerfile'], { cwd: work });
  await run('git', ['commit', '-qm', 'no Dockerfile'], { cwd: work });
  await host.push(work);
});

test.serial('pings, tags and pushes of other branches are answered and ignored; Gitea signs its own way', async (t) => {
  const before = (await builds()).length;
  const head = await headOf(work);
  const ping = await deliver('github', JSON.stringify({ zen: 'Design for failure.', hook_id: 1 }), { event: 'ping' });
  t.is(ping.status, 200, ping.text);
  t.regex(String((ping.json as { status: string }).status), /^ignored: ping is not a push/);
  const other = await deliver('gitea', pushBody('gitea', 'refs/heads/feature', head));
  t.is(other.status, 200, other.text);
  t.regex(String((other.json as { status: string }).status), /^ignored: a push to feature, not main/);
  t.like(await lastDelivery(), { host: 'gitea', result: 'ignored: a push to feature, not main' });
  const tag = await deliver('gitlab', pushBody('gitlab', 'refs/tags/v1', head), { event: 'Tag Push Hook' });
  t.is(tag.status, 200, tag.text);
  const badGitea = await deliver('gitea', pushBody('gitea', 'refs/heads/main', head), { key: 'wrong' });
  t.is(badGitea.status, 401);
  t.is((await builds()).length, before);
});

test.serial('a push whose commit is no longer the head of its branch when its turn comes is skipped', async (t) => {
  const before = (await builds()).length;
  const stale = await commitMarker('stale');
  await host.push(work);
  const newer = await commitMarker('newer');
  await host.push(work);
  const id = randomUUID();
  t.is((await deliver('github', pushBody('github', 'refs/heads/main', stale), { id })).status, 202);
  const outcome = await outcomeOf(id);
  t.is(outcome.result, `skipped: main is now at ${newer.slice(0, 7)}, not ${stale.slice(0, 7)}`);
  t.is((await builds()).length, before);
});

test.serial('a GitLab push deploys too (X-Gitlab-Token), and the app serves its commit', async (t) => {
  const commit = await commitMarker('gl-two');
  await host.push(work);
  const id = randomUUID();
  const answer = await deliver('gitlab', pushBody('gitlab', 'refs/heads/main', commit), { id });
  t.is(answer.status, 202, answer.text);
  const outcome = await outcomeOf(id);
  t.is(outcome.result, 'deployed v2', JSON.stringify(outcome));
  t.regex((await rack.get(APP)).body, /hello from rack gl-two/);
  t.is(await rack.servingCommit(APP), commit);
});

test.serial('review apps: a pull request opened makes APP-pr-N from its head with app.json review env, updated redeploys it, merged destroys it', async (t) => {
  const prBody = (hostKind: RepoHost, action: string, sha: string) =>
    JSON.stringify(
      hostKind === 'gitlab'
        ? { object_kind: 'merge_request', object_attributes: { iid: 7, action, source_branch: 'pr7', last_commit: { id: sha } } }
        : { action, number: 7, pull_request: { number: 7, head: { ref: 'pr7', sha } } },
    );
  await run('git', ['checkout', '-q', '-b', 'pr7'], { cwd: work });
  await writeFile(join(work, 'app.json'), JSON.stringify({ environments: { review: { env: { GREETING: 'review' } } } }));
  await run('git', ['add', 'app.json'], { cwd: work });
  const first = await commitMarker('pr-seven');
  await host.push(work, 'HEAD', 'refs/pull/7/head');
  // Off until enabled: the delivery is answered and nothing is made.
  const off = await deliver('github', prBody('github', 'opened', first), { event: 'pull_request' });
  t.is(off.status, 200, off.text);
  t.regex(String((off.json as { status: string }).status), /review apps are off/);
  t.is((await rack.ssh(['reviewapps:enable', '-a', APP])).code, 0);

  const opened = randomUUID();
  t.is((await deliver('github', prBody('github', 'opened', first), { id: opened, event: 'pull_request' })).status, 202);
  t.is((await outcomeOf(opened)).result, 'deployed web-pr-7 v1');
  t.is((await rack.get('web-pr-7')).body, 'hello from rack pr-seven review\n');
  t.regex((await rack.get(APP)).body, /gl-two/, 'the parent is untouched');
  const listed = JSON.parse((await rack.ssh(['reviewapps', '--json', '-a', APP])).stdout) as { name: string; release: string }[];
  t.like(listed, [{ name: 'web-pr-7', pullRequest: 7, release: 'v1' }]);

  // Gitea's "synchronized": the new head is deployed to the same app.
  const second = await commitMarker('pr-seven-b');
  await host.push(work, 'HEAD', 'refs/pull/7/head');
  const updated = randomUUID();
  t.is((await deliver('gitea', prBody('gitea', 'synchronized', second), { id: updated, event: 'pull_request' })).status, 202);
  t.is((await outcomeOf(updated)).result, 'deployed web-pr-7 v2');
  t.is((await rack.get('web-pr-7')).body, 'hello from rack pr-seven-b review\n');

  // GitLab's merge: the review app goes, processes, records and all.
  const merged = randomUUID();
  t.is((await deliver('gitlab', prBody('gitlab', 'merge', second), { id: merged, event: 'Merge Request Hook' })).status, 202);
  t.is((await outcomeOf(merged)).result, 'destroyed web-pr-7');
  t.is((await rack.ssh(['apps:info', '-a', 'web-pr-7'])).code, 1);
  t.deepEqual(JSON.parse((await rack.ssh(['reviewapps', '--json', '-a', APP])).stdout), []);
  const audit = JSON.parse((await rack.ssh(['audit', '--json'])).stdout) as { actor: { kind: string }; action: string; app: string }[];
  t.true(audit.some((e) => e.action === 'apps:destroy' && e.app === 'web-pr-7' && e.actor.kind === 'webhook'));
  await run('git', ['checkout', '-q', 'main'], { cwd: work });
});

test.serial('an ssh repository is fetched with the app\'s deploy key, through the fixed GIT_SSH wrapper', async (t) => {
  // rack's own ssh server is the git host here: the deploy key is added there as a deploy-only key of "web".
  const created = await rack.ssh(['apps:create', 'mirror']);
  t.is(created.code, 0, created.stderr);
  const connected = await rack.ssh(['repo:connect', `ssh://git@127.0.0.1:${rack.sshPort}/${APP}`, '-a', 'mirror']);
  t.is(connected.code, 0, connected.stderr);
  const key = /(ssh-ed25519 [A-Za-z0-9+/=]+ rack-deploy-mirror)/.exec(connected.stdout)?.[1];
  t.truthy(key, connected.stdout);
  const mirrorSecret = /Secret:\s+([0-9a-f]{64})/.exec(connected.stdout)![1]!;
  const added = await rack.ssh(['keys:add', 'mirror-deploy', '--app', APP, '--deploy-only'], { input: `${key!}\n` });
  t.is(added.code, 0, added.stderr);
  // A commit that is not the branch head: the fetch must succeed for rack to know and say so.
  const body = pushBody('github', 'refs/heads/main', 'f'.repeat(40));
  const id = randomUUID();
  const answer = await api(rack, 'POST', '/hooks/mirror', {
    rawBody: body,
    headers: { 'content-type': 'application/json', 'X-GitHub-Event': 'push', 'X-GitHub-Delivery': id, ...signDelivery('github', mirrorSecret, body) },
  });
  t.is(answer.status, 202, answer.text);
  const outcome = await outcomeOf(id, 'mirror');
  const served = await rack.servingCommit(APP);
  t.is(outcome.result, `skipped: main is now at ${served.slice(0, 7)}, not fffffff`);
  // The host key was recorded under the host's name, in the app's own known_hosts.
  t.regex(await readFile(join(rack.home, 'repo-keys', 'mirror', 'known_hosts'), 'utf8'), /127\.0\.0\.1/);
});
