import test from 'ava';
import { readFile } from 'node:fs/promises';
import { api } from './support/api-client.js';
import { keypair, RackDaemon } from './support/rack-daemon.js';

// Every endpoint × every kind of token, through the router, against a real rackd: the API's
// rights are the ssh commands' rights, and a refusal changes nothing.
let rack: RackDaemon;
const tokens: Record<string, string> = {};
let publicKey: string;

type Role = 'admin' | 'app' | 'other' | 'deploy' | 'none' | 'wrong' | 'revoked';
const ROLES: Role[] = ['admin', 'app', 'other', 'deploy', 'none', 'wrong', 'revoked'];

test.before(async () => {
  rack = await RackDaemon.create();
  for (const app of ['shop', 'blog']) {
    const r = await rack.ssh(['apps:create', app]);
    if (r.code !== 0) throw new Error(r.stderr);
  }
  const push = await rack.push(await rack.appRepo('node-env', 'shop'));
  if (push.code !== 0) throw new Error(push.stderr);
  tokens['admin'] = await rack.createToken('root');
  tokens['app'] = await rack.createToken('shop-dev', ['--app', 'shop']);
  tokens['other'] = await rack.createToken('blog-dev', ['--app', 'blog']);
  tokens['deploy'] = await rack.createToken('shop-ci', ['--app', 'shop', '--deploy-only']);
  tokens['wrong'] = `rack_${'x'.repeat(43)}`;
  tokens['revoked'] = await rack.createToken('gone', ['--app', 'shop']);
  const r = await rack.ssh(['tokens:revoke', 'gone']);
  if (r.code !== 0) throw new Error(r.stderr);
  publicKey = await readFile((await keypair(rack.work, 'api-key')).pub, 'utf8');
  // Wrong and revoked tokens are failed logins: far more of them than the default throttle allows.
  await rack.stop();
  await rack.start({ RACK_LOGIN_THROTTLE: '1000/60' });
});
test.after.always(async () => {
  await rack?.destroy();
});

/** Expected status by role; `none`, `wrong` and `revoked` are always 401, and `-` skips a role. */
type Expect = Partial<Record<'admin' | 'app' | 'other' | 'deploy', number | '-'>>;
interface Row {
  method: string;
  path: string;
  body?: unknown | ((role: Role) => unknown);
  expect: Expect;
}

const member: Expect = { admin: 200, app: 200, other: 403, deploy: 403 };
const reader: Expect = { admin: 200, app: 200, other: 403, deploy: 200 };
const adminOnly: Expect = { admin: 200, app: 403, other: 403, deploy: 403 };

// Changes run for real where they are cheap (no rollout); rollouts are run only where refused.
const MATRIX: Row[] = [
  { method: 'GET', path: '/api/v1/apps', expect: { admin: 200, app: 200, other: 200, deploy: 200 } },
  { method: 'POST', path: '/api/v1/apps', body: { name: 'made-by-api' }, expect: { admin: 201, app: 403, other: 403, deploy: 403 } },
  { method: 'GET', path: '/api/v1/apps/shop', expect: member },
  { method: 'DELETE', path: '/api/v1/apps/made-by-api?confirm=made-by-api', expect: { admin: '-', app: 403, other: 403, deploy: 403 } },
  { method: 'GET', path: '/api/v1/apps/shop/builds', expect: reader },
  { method: 'POST', path: '/api/v1/apps/shop/builds', body: {}, expect: { admin: '-', app: '-', other: 403, deploy: 403 } },
  { method: 'GET', path: '/api/v1/apps/shop/builds/1', expect: reader },
  { method: 'GET', path: '/api/v1/apps/shop/builds/b1/logs', expect: reader },
  { method: 'DELETE', path: '/api/v1/apps/shop/build-cache', expect: { admin: 200, app: 200, other: 403, deploy: 403 } },
  { method: 'GET', path: '/api/v1/apps/shop/releases', expect: reader },
  { method: 'GET', path: '/api/v1/apps/shop/releases/v1', expect: reader },
  { method: 'POST', path: '/api/v1/apps/shop/releases/rollback', body: {}, expect: { admin: '-', app: '-', other: 403, deploy: 403 } },
  { method: 'POST', path: '/api/v1/apps/shop/releases/1/promote', expect: { admin: '-', app: '-', other: 403, deploy: 403 } },
  { method: 'GET', path: '/api/v1/apps/shop/config', expect: member },
  { method: 'PATCH', path: '/api/v1/apps/shop/config', body: (role: Role) => ({ set: { MATRIX: role }, deploy: false }), expect: member },
  { method: 'GET', path: '/api/v1/apps/shop/processes', expect: member },
  { method: 'PATCH', path: '/api/v1/apps/shop/formation', body: { web: 1 }, expect: { admin: '-', app: '-', other: 403, deploy: 403 } },
  { method: 'POST', path: '/api/v1/apps/shop/formation/restart', body: {}, expect: { admin: '-', app: '-', other: 403, deploy: 403 } },
  { method: 'POST', path: '/api/v1/apps/shop/formation/stop', body: { process: 'web.9' }, expect: { admin: 400, app: 400, other: 403, deploy: 403 } },
  { method: 'PATCH', path: '/api/v1/apps/shop/limits', body: { type: 'web', pids: '200' }, expect: { admin: '-', app: '-', other: 403, deploy: 403 } },
  { method: 'GET', path: '/api/v1/apps/shop/domains', expect: member },
  { method: 'POST', path: '/api/v1/apps/shop/domains', body: { host: 'matrix.example.com' }, expect: { admin: 201, app: 400, other: 403, deploy: 403 } },
  { method: 'DELETE', path: '/api/v1/apps/shop/domains/none.example.com', expect: { admin: 400, app: 400, other: 403, deploy: 403 } },
  { method: 'GET', path: '/api/v1/apps/shop/logs?lines=5', expect: reader },
  { method: 'GET', path: '/api/v1/keys', expect: adminOnly },
  { method: 'POST', path: '/api/v1/keys', body: { name: 'from-api', publicKey: '' }, expect: { admin: 201, app: 403, other: 403, deploy: 403 } },
  { method: 'DELETE', path: '/api/v1/keys/nobody', expect: { admin: 400, app: 403, other: 403, deploy: 403 } },
  { method: 'GET', path: '/api/v1/tokens', expect: adminOnly },
  { method: 'POST', path: '/api/v1/tokens', body: { name: 'from-api', apps: ['shop'] }, expect: { admin: 201, app: 403, other: 403, deploy: 403 } },
  { method: 'DELETE', path: '/api/v1/tokens/nothing', expect: { admin: 400, app: 403, other: 403, deploy: 403 } },
  { method: 'GET', path: '/api/v1/audit', expect: adminOnly },
  { method: 'GET', path: '/api/v1/audit?app=shop', expect: { admin: 200, app: 200, other: 403, deploy: 403 } },
  // Pipelines: created by admins; an app joins with a full key of it; promote and diff need deploy rights.
  { method: 'GET', path: '/api/v1/pipelines', expect: { admin: 200, app: 200, other: 200, deploy: 200 } },
  { method: 'POST', path: '/api/v1/pipelines', body: { name: 'matrix' }, expect: { admin: 201, app: 403, other: 403, deploy: 403 } },
  { method: 'PUT', path: '/api/v1/apps/shop/pipeline', body: { pipeline: 'matrix', stage: 'staging' }, expect: { admin: 200, app: 200, other: 403, deploy: 403 } },
  { method: 'GET', path: '/api/v1/pipelines/matrix', expect: { admin: 200, app: 200, other: 404, deploy: 200 } },
  { method: 'GET', path: '/api/v1/apps/shop/pipeline/diff', expect: { admin: 400, app: 400, other: 403, deploy: 400 } },
  { method: 'POST', path: '/api/v1/apps/shop/promotions', body: { to: ['blog'] }, expect: { admin: '-', app: 400, other: 403, deploy: 400 } },
  { method: 'DELETE', path: '/api/v1/apps/shop/pipeline', expect: { admin: 200, app: 400, other: 403, deploy: 403 } },
  { method: 'DELETE', path: '/api/v1/pipelines/matrix', expect: { admin: 200, app: 403, other: 403, deploy: 403 } },
];

test.serial('every endpoint answers every kind of token as ssh would', async (t) => {
  const before = (await rack.ssh(['releases', '-a', 'shop', '--json'])).stdout;
  for (const row of MATRIX) {
    for (const role of ROLES) {
      const expected = role === 'none' || role === 'wrong' || role === 'revoked' ? 401 : row.expect[role];
      if (expected === undefined || expected === '-') continue;
      // The admin's key upload needs a real key; the others never get that far.
      const body = row.path === '/api/v1/keys' && row.method === 'POST' ? { name: 'from-api', publicKey } : typeof row.body === 'function' ? row.body(role) : row.body;
      const r = await api(rack, row.method, row.path, { token: role === 'none' ? undefined : tokens[role], body });
      t.is(r.status, expected, `${row.method} ${row.path} as ${role}: ${r.text.slice(0, 200)}`);
      if (r.status >= 400) {
        const error = (r.json as { error?: { code?: string; message?: string } }).error;
        t.truthy(error?.code, `${row.method} ${row.path} as ${role} answers {"error": {code, message}}`);
        if (r.status === 403) t.regex(error!.message!, /may not run|may read the audit log of its apps only/);
      }
    }
  }
  // The refusals changed nothing: shop's history has exactly the admin's and the app token's records.
  const releases = JSON.parse((await rack.ssh(['releases', '-a', 'shop', '--json'])).stdout) as { version: number; createdBy: string }[];
  const fresh = releases.filter((r) => !before.includes(`"version": ${r.version},`));
  t.deepEqual(fresh.map((r) => r.createdBy).sort(), ['token:root', 'token:shop-dev']);
  t.deepEqual(JSON.parse((await rack.ssh(['domains', '-a', 'shop', '--json'])).stdout).domains, ['matrix.example.com']);
});

test.serial('refused changes are in the audit log, with the token and the address', async (t) => {
  const r = await api(rack, 'GET', '/api/v1/audit?limit=1000', { token: tokens['admin'] });
  t.is(r.status, 200, r.text);
  const entries = r.json as { actor: { kind: string; name: string }; via: string; address: string; action: string; outcome: string; app: string | null }[];
  const refused = entries.filter((e) => e.outcome === 'forbidden' && e.via === 'http');
  t.true(refused.some((e) => e.actor.name === 'shop-ci' && e.action === 'config:set' && e.app === 'shop'));
  t.true(refused.some((e) => e.actor.name === 'blog-dev' && e.action === 'releases:rollback'));
  t.true(entries.some((e) => e.actor.kind === 'token' && e.actor.name === 'root' && e.action === 'apps:create' && e.outcome === 'ok' && e.address === '127.0.0.1'));
});
