import test from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RackError } from '../daemon/rack-error.js';
import { DELIVERIES_KEPT } from '../daemon/store/repo-store.js';
import { Store } from '../daemon/store/store.js';
import { checkRepoUrl, parseBranch, parseRepoUrl } from '../daemon/workflows/repo-url.js';
import { signDelivery, verifyDelivery } from '../daemon/workflows/webhook-delivery.js';
import { wellFormedPair } from '../daemon/workflows/repo-fetch.js';
import ssh2 from 'ssh2';

// The signature checks of each host, as each documents them, and the delivery IDs the store
// remembers: pure functions and a real LevelDB in a temp dir, no daemon.

const SECRET = 'c3f1a5e0b7d24e6f9a8c1b2d3e4f5a6b';
const SHA = 'bffeb74224043ba2feb48d137756c8a9331c449a';
const push = (ref = 'refs/heads/main', after = SHA) => Buffer.from(JSON.stringify({ ref, before: '28e1879d029cb852e4844d9c718537df08844e03', after, commits: [] }));

const code = (fn: () => unknown) => {
  try {
    fn();
  } catch (err) {
    return (err as RackError).code;
  }
  return 'none';
};

test('GitHub: X-Hub-Signature-256 is sha256= and the hex HMAC of the raw body', (t) => {
  const body = push();
  const headers = { ...lower(signDelivery('github', SECRET, body)), 'x-github-event': 'push', 'x-github-delivery': '72d3162e-cc78-11e3-81ab-4c9367dc0958' };
  t.deepEqual(verifyDelivery(headers, body, SECRET), { host: 'github', event: 'push', id: '72d3162e-cc78-11e3-81ab-4c9367dc0958', push: { branch: 'main', commit: SHA } });
  t.is(code(() => verifyDelivery(headers, body, 'another secret')), 'unauthorized');
  // One byte changed after signing: the body is what is signed, not its parsed value.
  t.is(code(() => verifyDelivery(headers, Buffer.from(`${body.toString()} `), SECRET)), 'unauthorized');
  // The legacy SHA-1 header alone is not enough.
  t.is(code(() => verifyDelivery({ 'x-hub-signature': 'sha1=00', 'x-github-event': 'push', 'x-github-delivery': 'a' }, body, SECRET)), 'unauthorized');
});

test('GitHub: a form-encoded delivery is read from its payload field, signed over the form', (t) => {
  const body = Buffer.from(`payload=${encodeURIComponent(push().toString())}`);
  const headers = { ...lower(signDelivery('github', SECRET, body)), 'content-type': 'application/x-www-form-urlencoded', 'x-github-event': 'push', 'x-github-delivery': 'd1' };
  t.deepEqual(verifyDelivery(headers, body, SECRET).push, { branch: 'main', commit: SHA });
});

test('GitLab: X-Gitlab-Token is the secret itself; the delivery is Idempotency-Key, else X-Gitlab-Event-UUID', (t) => {
  const body = Buffer.from(JSON.stringify({ object_kind: 'push', ref: 'refs/heads/main', before: '0'.repeat(40), after: SHA, checkout_sha: SHA }));
  const headers = { 'x-gitlab-token': SECRET, 'x-gitlab-event': 'Push Hook', 'x-gitlab-event-uuid': '13792a34-cac6-4fda-95a8-c58e00a3954e' };
  t.deepEqual(verifyDelivery(headers, body, SECRET), { host: 'gitlab', event: 'Push Hook', id: '13792a34-cac6-4fda-95a8-c58e00a3954e', push: { branch: 'main', commit: SHA } });
  t.is(verifyDelivery({ ...headers, 'idempotency-key': 'f5e5f430-f57b-4e6e-9fac-d9128cd7232f' }, body, SECRET).id, 'f5e5f430-f57b-4e6e-9fac-d9128cd7232f');
  t.is(code(() => verifyDelivery({ ...headers, 'x-gitlab-token': SECRET.slice(0, -1) }, body, SECRET)), 'unauthorized');
  t.is(verifyDelivery({ ...headers, 'x-gitlab-event': 'Tag Push Hook' }, body, SECRET).push, undefined);
});

test('Gitea and Forgejo: the bare hex HMAC, read before the X-GitHub-Event Gitea also sends', (t) => {
  const body = push();
  const gitea: Record<string, string> = { ...lower(signDelivery('gitea', SECRET, body)), 'x-gitea-event': 'push', 'x-gitea-delivery': 'f6266f16-1bf3-46a5-9ea4-602e06ead473', 'x-github-event': 'push', 'x-github-delivery': 'f6266f16-1bf3-46a5-9ea4-602e06ead473' };
  t.deepEqual(verifyDelivery(gitea, body, SECRET), { host: 'gitea', event: 'push', id: 'f6266f16-1bf3-46a5-9ea4-602e06ead473', push: { branch: 'main', commit: SHA } });
  t.is(code(() => verifyDelivery({ ...gitea, 'x-gitea-signature': `sha256=${gitea['x-gitea-signature']!}` }, body, SECRET)), 'unauthorized');
  const forgejo = { 'x-forgejo-signature': gitea['x-gitea-signature']!, 'x-forgejo-event': 'push', 'x-forgejo-delivery': 'fd1' };
  t.is(verifyDelivery(forgejo, body, SECRET).id, 'fd1');
});

test('no signature at all, a tag, a deleted branch and a ping: refused or not a push', (t) => {
  const body = push();
  t.is(code(() => verifyDelivery({ 'x-github-event': 'push', 'x-github-delivery': 'x' }, body, SECRET)), 'unauthorized');
  const github = (b: Buffer, event = 'push') => ({ ...lower(signDelivery('github', SECRET, b)), 'x-github-event': event, 'x-github-delivery': 'x' });
  const tag = push('refs/tags/v1');
  t.is(verifyDelivery(github(tag), tag, SECRET).push, undefined);
  const deleted = push('refs/heads/main', '0'.repeat(40));
  t.is(verifyDelivery(github(deleted), deleted, SECRET).push, undefined);
  const ping = Buffer.from('{"zen":"Keep it logically awesome.","hook_id":1}');
  t.like(verifyDelivery(github(ping, 'ping'), ping, SECRET), { event: 'ping', push: undefined });
  // A delivery ID that could not be a key is refused, signature or not.
  t.is(code(() => verifyDelivery({ ...github(body), 'x-github-delivery': 'a!b' }, body, SECRET)), 'bad_argument');
});

test('repository URLs: https, ssh:// and scp-like; passwords, other schemes and option-like parts refused', (t) => {
  t.like(parseRepoUrl('https://github.com/o/r.git'), { transport: 'http', url: 'https://github.com/o/r.git' });
  t.like(parseRepoUrl('git@github.com:o/r.git'), { transport: 'ssh', ssh: { user: 'git', host: 'github.com', path: 'o/r.git', scp: true } });
  t.like(parseRepoUrl('ssh://git@gitlab.example.com:2222/o/r.git'), { transport: 'ssh', ssh: { host: 'gitlab.example.com', port: 2222, path: '/o/r.git', scp: false } });
  for (const bad of ['https://u:secret@github.com/o/r.git', 'file:///etc', 'ext::sh -c touch% /tmp/x', 'git@github.com:-oProxyCommand=x', 'ssh://-oProxyCommand=x/r', 'git://github.com/o/r', '']) {
    t.is(code(() => parseRepoUrl(bad)), 'bad_argument', bad);
  }
  t.is(parseBranch('release/2.x'), 'release/2.x');
  for (const bad of ['-f', 'a..b', 'x.lock', 'a b', 'main/']) t.is(code(() => parseBranch(bad)), 'bad_argument', bad);
});

test('repository URLs on loopback or private addresses are refused unless RACK_FETCH_ALLOW names the host', async (t) => {
  for (const url of ['http://127.0.0.1:9/r.git', 'https://10.1.2.3/r.git', 'ssh://git@169.254.169.254/r.git', 'git@localhost:r.git']) {
    const err = await t.throwsAsync(checkRepoUrl(parseRepoUrl(url), []));
    t.is((err as RackError).code, 'bad_argument', url);
    t.regex(err!.message, /RACK_FETCH_ALLOW/);
  }
  t.like(await checkRepoUrl(parseRepoUrl('http://127.0.0.1:9/r.git'), ['127.0.0.1']), { url: 'http://127.0.0.1:9/r.git' });
  t.like(await checkRepoUrl(parseRepoUrl('git@localhost:r.git'), ['localhost']), { hostKeyAlias: 'localhost' });
});

test('delivery IDs: a repeat is known, after a reopen too, and only the newest are kept', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'rack-deliveries-'));
  try {
    let store = new Store(join(dir, 'db'), join(dir, 'builds'));
    await store.start();
    t.true(await store.repos.noteDelivery('web', 'first'));
    t.false(await store.repos.noteDelivery('web', 'first'));
    t.true(await store.repos.noteDelivery('blog', 'first'), 'per app');
    // Two copies arriving together: exactly one passes.
    t.deepEqual((await Promise.all([store.repos.noteDelivery('web', 'twin'), store.repos.noteDelivery('web', 'twin')])).sort(), [false, true]);
    await store.stop();
    store = new Store(join(dir, 'db'), join(dir, 'builds'));
    await store.start();
    t.false(await store.repos.noteDelivery('web', 'first'), 'remembered across a restart');
    for (let i = 0; i < DELIVERIES_KEPT; i++) await store.repos.noteDelivery('web', `d${i}`);
    t.true(await store.repos.noteDelivery('web', 'first'), 'forgotten once DELIVERIES_KEPT newer came');
    t.false(await store.repos.noteDelivery('web', `d${DELIVERIES_KEPT - 1}`));
    let keys = 0;
    for await (const key of store.repos.db.keys({ gte: 'delivery!web!', lt: 'delivery!web!\xff' })) keys += key.length > 0 ? 1 : 0;
    t.is(keys, DELIVERIES_KEPT);
    await store.stop();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

function lower(headers: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
}

test('pull requests: each host\'s actions read as open, update or close, with the head and the ref the host keeps it under', (t) => {
  const sign = (host: 'github' | 'gitea', body: Buffer) => ({ ...lower(signDelivery(host, SECRET, body)), [`x-${host}-event`]: 'pull_request', [`x-${host}-delivery`]: 'p' });
  const github = (action: string) => Buffer.from(JSON.stringify({ action, number: 12, pull_request: { head: { sha: SHA, ref: 'feature' } } }));
  t.deepEqual(verifyDelivery(sign('github', github('synchronize')), github('synchronize'), SECRET).pullRequest, { number: 12, action: 'update', commit: SHA, ref: 'refs/pull/12/head' });
  t.is(verifyDelivery(sign('github', github('reopened')), github('reopened'), SECRET).pullRequest?.action, 'open');
  t.is(verifyDelivery(sign('github', github('labeled')), github('labeled'), SECRET).pullRequest, undefined);
  t.is(verifyDelivery(sign('gitea', github('synchronized')), github('synchronized'), SECRET).pullRequest?.action, 'update');
  const gitlab = (action: string) => Buffer.from(JSON.stringify({ object_kind: 'merge_request', object_attributes: { iid: 3, action, last_commit: { id: SHA } } }));
  const headers = { 'x-gitlab-token': SECRET, 'x-gitlab-event': 'Merge Request Hook', 'x-gitlab-event-uuid': 'm' };
  t.deepEqual(verifyDelivery(headers, gitlab('merge'), SECRET).pullRequest, { number: 3, action: 'close', commit: SHA, ref: 'refs/merge-requests/3/head' });
  t.is(verifyDelivery(headers, gitlab('update'), SECRET).pullRequest?.action, 'update');
});

test('a delivery forgotten after it failed is taken again, and kept its full turn', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'rack-deliveries-'));
  try {
    const store = new Store(join(dir, 'db'), join(dir, 'builds'));
    await store.start();
    t.true(await store.repos.noteDelivery('web', 'failed-once'));
    await store.repos.forgetDelivery('web', 'failed-once');
    t.true(await store.repos.noteDelivery('web', 'failed-once'), 'redelivered: taken again');
    // The first note's turn to be forgotten comes and goes: the second note is kept.
    for (let i = 0; i < DELIVERIES_KEPT - 1; i++) await store.repos.noteDelivery('web', `d${i}`);
    t.false(await store.repos.noteDelivery('web', 'failed-once'));
    await store.stop();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('deploy keys are always well formed: ssh2 alone drops a leading zero byte of about 1 key in 250', (t) => {
  for (let i = 0; i < 1500; i++) {
    const pair = wellFormedPair('rack-deploy-web');
    const parsed = ssh2.utils.parseKey(pair.public);
    t.false(parsed instanceof Error, pair.public);
    t.regex(pair.public, /^ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI[A-Za-z0-9+/]{43} rack-deploy-web$/);
  }
});
