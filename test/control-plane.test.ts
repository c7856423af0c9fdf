import test from 'ava';
import { request } from 'undici';
import pino from 'pino';
import { RouteTable } from '../daemon/router/route-table.js';
import { CONTROL_PLANE_APP } from '../daemon/router/upstream.js';
import { RackDaemon } from './support/rack-daemon.js';

// The router forwards rack's own host name (rack.localhost) to rackd's listener, on the port the
// apps answer on; while rackd is down it answers that host with a 503 and the apps keep serving.
let rack: RackDaemon;

test.before(async () => {
  rack = await RackDaemon.create();
});
test.after.always(async () => {
  await rack?.destroy();
});

async function rackHost(path: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  const res = await request(`http://127.0.0.1:${rack.httpPort}${path}`, { headers: { host: 'rack.localhost', ...headers } });
  return { status: res.statusCode, headers: res.headers, body: await res.body.text() };
}

test.serial('rack.localhost reaches rackd through the router; apps keep their own hosts', async (t) => {
  const index = await rackHost('/');
  t.is(index.status, 200);
  t.like(JSON.parse(index.body), { name: 'rack', api: '/api/v1/' });
  const refused = await rackHost('/api/v1/apps', { authorization: 'Bearer rack_wrong' });
  t.is(refused.status, 401);
  t.is((JSON.parse(refused.body) as { error: { code: string } }).error.code, 'unauthorized');
  // No app may be given rack's host name.
  const created = await rack.ssh(['apps:create', 'shop']);
  t.is(created.code, 0);
  // The remote names a host a user can reach (RACK_DOMAIN unless RACK_SSH_HOST) and the real port.
  t.regex(created.stdout, new RegExp(`git remote add rack ssh://git@localhost:${rack.sshPort}/shop\\n`));
  const info = JSON.parse((await rack.ssh(['apps:info', '--json', '-a', 'shop'])).stdout) as { gitRemote: string };
  t.is(info.gitRemote, `ssh://git@localhost:${rack.sshPort}/shop`);
  const steal = await rack.ssh(['domains:add', 'rack.localhost', '-a', 'shop']);
  t.not(steal.code, 0);
  t.regex(steal.stderr, /rack\.localhost is rack's own host name/);
  t.is((await rackHost('/')).status, 200);
});

test.serial('while rackd is down its host answers 503 in JSON and a deployed app keeps serving', async (t) => {
  const dir = await rack.appRepo('node-hello', 'hello');
  const push = await rack.push(dir);
  t.is(push.code, 0, push.stderr);
  t.is((await rack.get('hello')).status, 200);

  await rack.stop();
  const down = await rackHost('/api/v1/apps', { authorization: 'Bearer rack_x' });
  t.is(down.status, 503);
  t.regex(String(down.headers['content-type']), /application\/json/);
  t.is(down.headers['retry-after'], '5');
  t.deepEqual(JSON.parse(down.body), {
    error: { code: 'rack_unavailable', message: 'rack is not running right now (apps keep serving); try again shortly' },
  });
  t.is((await rack.get('hello')).status, 200, 'the app answers while rackd is down');

  await rack.start();
  t.is((await rackHost('/')).status, 200, 'back without telling the router anything new');
  t.is((await rack.get('hello')).status, 200);
});

test('in the table, the control plane keeps its host against any app', (t) => {
  const table = new RouteTable(pino({ level: 'silent' }));
  table.set(CONTROL_PLANE_APP, ['rack.localhost'], [{ socketPath: '/run/rack/api.sock' }]);
  table.set('shop', ['shop.localhost', 'rack.localhost'], [{ host: '10.0.0.2', port: 5000 }]);
  t.is(table.lookup('rack.localhost')?.app, CONTROL_PLANE_APP);
  t.deepEqual(table.route('shop')?.hosts, ['shop.localhost']);
  t.is(table.lookup('shop.localhost')?.app, 'shop');
});
