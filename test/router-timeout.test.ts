import test from 'ava';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseRouterTimeout } from '../daemon/commands/router.js';
import { RackError } from '../daemon/rack-error.js';
import { api } from './support/api-client.js';
import { RackDaemon } from './support/rack-daemon.js';

// router:timeout end to end: the command, the app record, apps:info and the route the router
// process saved (what it serves by).

let rack: RackDaemon;
test.before(async () => {
  rack = await RackDaemon.create();
});
test.after.always(async () => {
  await rack?.destroy();
});

/** The app's route as the router process saved it. */
async function savedRoute(app: string): Promise<{ timeoutMs?: number } | undefined> {
  const state = JSON.parse(await readFile(join(rack.home, 'router.json'), 'utf8')) as { apps: Record<string, { timeoutMs?: number }> };
  return state.apps[app];
}

test('router:timeout reads whole seconds 1-3600 or default', (t) => {
  t.is(parseRouterTimeout('1'), 1000);
  t.is(parseRouterTimeout('3600'), 3_600_000);
  t.is(parseRouterTimeout('default'), undefined);
  for (const word of ['0', '3601', '1.5', '-1', '30s', '', '00000010']) t.throws(() => parseRouterTimeout(word), { instanceOf: RackError });
});

test('router:timeout sets the app route the router serves by, apps:info shows it, default takes it back', async (t) => {
  t.is((await rack.ssh(['apps:create', 'slowpoke'])).code, 0);
  t.regex((await rack.ssh(['apps:info', '-a', 'slowpoke'])).stdout, /routerTimeout:\s+30 s \(default\)/);

  const set = await rack.ssh(['router:timeout', '90', '-a', 'slowpoke']);
  t.is(set.code, 0, set.stderr);
  t.regex(set.stdout, /-----> Router timeout for slowpoke: 90 s/);
  t.is((await savedRoute('slowpoke'))?.timeoutMs, 90_000);
  t.regex((await rack.ssh(['apps:info', '-a', 'slowpoke'])).stdout, /routerTimeout:\s+90 s\n/);
  t.regex((await rack.ssh(['router:timeout', '-a', 'slowpoke'])).stdout, /waits 90 s/);

  const bad = await rack.ssh(['router:timeout', '0', '-a', 'slowpoke']);
  t.not(bad.code, 0);
  t.regex(bad.stderr, /whole seconds from 1 to 3600/);
  t.is((await savedRoute('slowpoke'))?.timeoutMs, 90_000, 'a refused value changes nothing');

  t.is((await rack.ssh(['router:timeout', 'default', '-a', 'slowpoke'])).code, 0);
  t.is((await savedRoute('slowpoke'))?.timeoutMs, undefined);
  t.regex((await rack.ssh(['apps:info', '-a', 'slowpoke'])).stdout, /routerTimeout:\s+30 s \(default\)/);
});

test('the API sets the timeout as the command does', async (t) => {
  t.is((await rack.ssh(['apps:create', 'patient'])).code, 0);
  const token = await rack.createToken('timeouts');
  const set = await api(rack, 'PATCH', '/api/v1/apps/patient/router/timeout', { token, body: { seconds: 120 } });
  t.is(set.status, 200, set.text);
  t.deepEqual(set.json, { app: 'patient', timeoutSeconds: 120, default: false });
  t.is((await savedRoute('patient'))?.timeoutMs, 120_000);
  t.is((await api(rack, 'PATCH', '/api/v1/apps/patient/router/timeout', { token, body: { seconds: 0 } })).status, 400);
  const back = await api(rack, 'PATCH', '/api/v1/apps/patient/router/timeout', { token, body: { seconds: null } });
  t.deepEqual(back.json, { app: 'patient', timeoutSeconds: 30, default: true });
  t.is((await savedRoute('patient'))?.timeoutMs, undefined);
});
