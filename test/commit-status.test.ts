import test from 'ava';
import { repoPath, STATUS_CONTEXT, statusApiBase, statusRequest } from '../daemon/workflows/commit-status.js';
import { reviewAddons } from '../daemon/workflows/review-apps.js';

const SHA = 'a'.repeat(40);
const status = { state: 'failure' as const, targetUrl: 'http://web-pr-7.rack.example', description: 'web-pr-7: failed' };

test('the status API comes from the repository URL: api.github.com, GitHub Enterprise, GitLab and Gitea paths', (t) => {
  t.is(statusApiBase('https://github.com/dev/web.git', 'github'), 'https://api.github.com');
  t.is(statusApiBase('https://git.example.com/dev/web.git', 'github'), 'https://git.example.com/api/v3');
  t.is(statusApiBase('https://gitlab.example.com:8443/group/sub/web.git', 'gitlab'), 'https://gitlab.example.com:8443/api/v4');
  t.is(statusApiBase('https://codeberg.org/dev/web.git', 'gitea'), 'https://codeberg.org/api/v1');
  t.is(repoPath('https://gitlab.example.com/group/sub/web.git'), 'group/sub/web');
  t.throws(() => repoPath('https://example.com/web.git'), { message: /cannot tell the owner and repository/ });
});

test('each host gets its own path, auth header and body', (t) => {
  const gh = statusRequest('github', 'https://api.github.com', 'dev/web', SHA, 'tok', status);
  t.is(gh.url, `https://api.github.com/repos/dev/web/statuses/${SHA}`);
  t.like(gh.headers, { Authorization: 'Bearer tok', Accept: 'application/vnd.github+json' });
  t.deepEqual(JSON.parse(gh.body), { state: 'failure', target_url: status.targetUrl, description: status.description, context: STATUS_CONTEXT });

  const gl = statusRequest('gitlab', 'https://gl.example/api/v4/', 'group/sub/web', SHA, 'tok', status);
  t.is(gl.url, `https://gl.example/api/v4/projects/group%2Fsub%2Fweb/statuses/${SHA}`);
  t.deepEqual(gl.headers, { 'PRIVATE-TOKEN': 'tok' });
  t.deepEqual(JSON.parse(gl.body), { state: 'failed', target_url: status.targetUrl, name: STATUS_CONTEXT, description: status.description });

  const gitea = statusRequest('gitea', 'https://codeberg.org/api/v1', 'dev/web', SHA, 'tok', { ...status, state: 'pending' });
  t.is(gitea.url, `https://codeberg.org/api/v1/repos/dev/web/statuses/${SHA}`);
  t.deepEqual(gitea.headers, { Authorization: 'token tok' });
  t.like(JSON.parse(gitea.body), { state: 'pending', context: STATUS_CONTEXT });
});

test('app.json review add-ons: names, Heroku plans and {plan, as}; anything else is one clear refusal', (t) => {
  t.deepEqual(reviewAddons(['postgres', 'heroku-redis:mini', { plan: 'heroku-postgresql:essential-0', as: 'analytics' }]).map((a) => [a.kind.kind, a.alias]), [
    ['postgres', 'DATABASE'],
    ['redis', 'REDIS'],
    ['postgres', 'ANALYTICS'],
  ]);
  t.deepEqual(reviewAddons([]), []);
  t.throws(() => reviewAddons('postgres'), { message: /must be a list/ });
  t.throws(() => reviewAddons(['mysql']), { message: /unknown add-on type "mysql"/ });
  t.throws(() => reviewAddons(['postgres', { plan: 'postgresql' }]), { message: /two add-ons as DATABASE/ });
  t.throws(() => reviewAddons([{ as: 'X' }]), { message: /a name or \{"plan": NAME\}/ });
});
