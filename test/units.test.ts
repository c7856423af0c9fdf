import test from 'ava';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import { loadOrCreateHostKey } from '../daemon/ssh/host-key.js';
import { dropsNewConnection } from '../daemon/ssh/login-gate.js';
import { appFromRepoPath, isAppName } from '../daemon/app-name.js';
import { parseProcfile } from '../daemon/build/procfile.js';
import { tokenize } from '../daemon/commands/command-line.js';
import { MASKED, maskConfig, redactValues } from '../daemon/access/config-mask.js';
import { LoginThrottle } from '../daemon/access/login-throttle.js';
import { configValue, diffConfig, parseAssignments } from '../daemon/release/config-vars.js';
import { hasProcessType, resolveFormation, totalProcesses } from '../daemon/release/formation.js';
import { loadConfig } from '../daemon/config.js';
import { deployableRef } from '../daemon/git/push-hook.js';
import { transition, type RolloutEvent, type RolloutState } from '../daemon/supervisor/rollout.js';

const sha = 'a'.repeat(40);
const zero = '0'.repeat(40);

test('app names: DNS labels only', (t) => {
  for (const ok of ['a', 'myapp', 'shop-prod', 'x1-2']) t.true(isAppName(ok), ok);
  for (const bad of ['', 'A', '1app', 'app-', '-app', 'a--b', 'a_b', 'a.b', '../x', 'a/b', 'x'.repeat(31), 'é']) {
    t.false(isAppName(bad), bad);
  }
});

test('repo paths: only /APP or /APP.git', (t) => {
  t.is(appFromRepoPath('/myapp'), 'myapp');
  t.is(appFromRepoPath('myapp.git'), 'myapp');
  t.is(appFromRepoPath('/myapp.git'), 'myapp');
  for (const bad of ['/../x', '/etc/passwd', '//myapp', '/my%2eapp', '~/myapp', '/myapp/', '/.git', '']) {
    t.throws(() => appFromRepoPath(bad), { message: /invalid app name/ }, bad);
  }
});

test('Procfile parsing', (t) => {
  t.deepEqual(parseProcfile('# comment\nweb: node server.js --port $PORT\n\nworker:  node worker.js\n'), {
    web: 'node server.js --port $PORT',
    worker: 'node worker.js',
  });
  t.throws(() => parseProcfile('just a command'), { message: /Procfile line 1/ });
});

test('command lines are split like a shell but never run', (t) => {
  t.deepEqual(tokenize(`config:set 'A=b c' B="x y" C=$HOME`), ['config:set', 'A=b c', 'B=x y', 'C=$HOME']);
  t.deepEqual(tokenize('releases -a app'), ['releases', '-a', 'app']);
  t.deepEqual(tokenize('ls *'), ['ls', '*']);
  for (const bad of ['apps; rm -rf /', 'apps | cat', 'apps > /tmp/x', 'apps && id', 'apps $(id)', 'a\0b']) {
    t.throws(() => tokenize(bad), undefined, bad);
  }
});

test('only one update of main or master deploys', (t) => {
  t.is(deployableRef([{ oldRev: zero, newRev: sha, ref: 'refs/heads/main' }]).newRev, sha);
  t.is(deployableRef([{ oldRev: zero, newRev: sha, ref: 'refs/heads/master' }]).ref, 'refs/heads/master');
  t.throws(() => deployableRef([{ oldRev: zero, newRev: sha, ref: 'refs/heads/dev' }]), { message: /only the main or master/ });
  t.throws(() => deployableRef([{ oldRev: zero, newRev: sha, ref: 'refs/tags/v1' }]), { message: /only the main or master/ });
  t.throws(() => deployableRef([{ oldRev: sha, newRev: zero, ref: 'refs/heads/main' }]), { message: /deleting main/ });
  t.throws(() => deployableRef([]), { message: /nothing was pushed/ });
  t.throws(() => deployableRef('x'), { message: /nothing was pushed/ });
  t.throws(() => deployableRef([{ oldRev: zero, newRev: 'zz', ref: 'refs/heads/main' }]), { message: /malformed/ });
});

test('rollout state machine', (t) => {
  const run = (events: RolloutEvent[]) => events.reduce<RolloutState>((s, e) => transition(s, e), 'starting');
  t.is(run(['started', 'healthy', 'switched', 'drained']), 'done');
  t.is(run(['started', 'failure', 'cleaned_up']), 'failed');
  t.is(run(['failure', 'cleaned_up']), 'failed');
  t.throws(() => run(['healthy']));
  t.throws(() => run(['started', 'healthy', 'switched', 'failure']), { message: /not valid in state "draining"/ });
});

test('config fails fast on bad values', (t) => {
  const c = loadConfig({ RACK_HOME: '/tmp/r', RACK_SSH_PORT: '0' }, '/opt/rack');
  t.is(c.sshPort, 0);
  t.is(c.httpPort, 8080);
  t.is(c.domain, 'localhost');
  t.throws(() => loadConfig({ RACK_SSH_PORT: '99999' }, '/'), { message: /RACK_SSH_PORT must be a TCP port/ });
  t.throws(() => loadConfig({ RACK_HTTP_PORT: 'http' }, '/'), { message: /RACK_HTTP_PORT/ });
  t.throws(() => loadConfig({ RACK_DOMAIN: 'bad domain' }, '/'), { message: /RACK_DOMAIN/ });
  t.throws(() => loadConfig({ RACK_BUILD_TIMEOUT: '-1' }, '/'), { message: /RACK_BUILD_TIMEOUT/ });
});

test('config: ssh login limits and the process cap', (t) => {
  const c = loadConfig({}, '/');
  t.is(c.sshLoginGraceMs, 20_000);
  t.deepEqual(c.sshMaxStartups, { start: 16, rate: 30, full: 64 });
  t.is(c.sshPerSourceMaxStartups, 8);
  t.is(c.sshKeepaliveMs, 15_000);
  t.deepEqual(c.loginThrottle, { failures: 10, windowMs: 60_000 });
  t.is(c.maxProcesses, 30);
  const set = loadConfig({ RACK_SSH_LOGIN_GRACE: '2', RACK_SSH_MAX_STARTUPS: '5', RACK_LOGIN_THROTTLE: '3/7', RACK_MAX_PROCESSES: '4' }, '/');
  t.deepEqual([set.sshLoginGraceMs, set.sshMaxStartups, set.loginThrottle, set.maxProcesses], [2000, { start: 5, rate: 100, full: 5 }, { failures: 3, windowMs: 7000 }, 4]);
  t.deepEqual(loadConfig({ RACK_SSH_MAX_STARTUPS: '10:30:100' }, '/').sshMaxStartups, { start: 10, rate: 30, full: 100 });
  t.throws(() => loadConfig({ RACK_SSH_MAX_STARTUPS: '100:30:10' }, '/'), { message: /RACK_SSH_MAX_STARTUPS must be N or START:RATE:FULL/ });
  t.throws(() => loadConfig({ RACK_SSH_MAX_STARTUPS: '10:130:100' }, '/'), { message: /RACK_SSH_MAX_STARTUPS/ });
  t.throws(() => loadConfig({ RACK_SSH_LOGIN_GRACE: '0' }, '/'), { message: /RACK_SSH_LOGIN_GRACE/ });
  t.throws(() => loadConfig({ RACK_LOGIN_THROTTLE: '10' }, '/'), { message: /RACK_LOGIN_THROTTLE must be FAILURES\/SECONDS/ });
  t.throws(() => loadConfig({ RACK_LOGIN_THROTTLE: '0/60' }, '/'), { message: /RACK_LOGIN_THROTTLE/ });
});

test("ssh MaxStartups: random early drop from start, rising to every connection at full (OpenSSH's 10:30:100)", (t) => {
  const limit = { start: 10, rate: 30, full: 100 };
  t.false(dropsNewConnection(9, limit, 0), 'under start nothing is dropped');
  t.true(dropsNewConnection(10, limit, 0.29), 'at start, 30 in 100');
  t.false(dropsNewConnection(10, limit, 0.3));
  t.true(dropsNewConnection(55, limit, 0.64), 'half way, 65 in 100');
  t.false(dropsNewConnection(55, limit, 0.66));
  t.true(dropsNewConnection(100, limit, 0.999), 'at full, all');
  const hard = { start: 4, rate: 100, full: 4 };
  t.false(dropsNewConnection(3, hard, 0.999));
  t.true(dropsNewConnection(4, hard, 0));
});

test('login throttle: N failures in the window block an address until they age out', (t) => {
  let now = 0;
  const throttle = new LoginThrottle({ failures: 3, windowMs: 1000 }, () => now);
  t.false(throttle.fail('a'));
  now = 100;
  t.false(throttle.fail('a'));
  t.false(throttle.blocked('a'));
  now = 200;
  t.true(throttle.fail('a'), 'the failure that blocks says so, once');
  t.true(throttle.blocked('a'));
  t.false(throttle.blocked('b'), 'other addresses are not touched');
  t.is(throttle.retryAfterMs('a'), 800);
  now = 1001; // the first failure has aged out
  t.false(throttle.blocked('a'));
  t.is(throttle.retryAfterMs('a'), 0);
  throttle.fail('a');
  t.true(throttle.blocked('a'));
});

test('config vars and formations keep Object-member names as plain keys', (t) => {
  const pairs = parseAssignments(['__proto__=x', 'constructor=y', 'A=1', 'A=2']);
  t.deepEqual(Object.entries(pairs), [['__proto__', 'x'], ['constructor', 'y'], ['A', '2']]);
  t.is(Object.getPrototypeOf(pairs), Object.prototype, 'the prototype was not set');
  t.is(configValue({}, 'constructor'), undefined);
  t.is(configValue({}, 'toString'), undefined);
  t.deepEqual(diffConfig({}, { constructor: '1' }), { added: ['constructor'], changed: [], removed: [] });
  t.deepEqual(diffConfig({ toString: '1' }, {}), { added: [], changed: [], removed: ['toString'] });
  const types = { web: 'a', constructor: 'b', release: 'c' };
  t.deepEqual(resolveFormation({ processTypes: types }, {}), { web: 1, constructor: 0 });
  t.deepEqual(resolveFormation({ processTypes: types }, JSON.parse('{"constructor":3,"__proto__":2}') as Record<string, number>), { web: 1, constructor: 3 });
  // app.json's formation replaces the defaults; ps:scale wins over both.
  t.deepEqual(resolveFormation({ processTypes: types, appFormation: { web: 0, constructor: 2 } }, {}), { web: 0, constructor: 2 });
  t.deepEqual(resolveFormation({ processTypes: types, appFormation: { web: 0, constructor: 2 } }, { web: 1 }), { web: 1, constructor: 2 });
  t.false(hasProcessType(types, 'toString'));
  t.true(hasProcessType(types, 'constructor'));
  t.is(totalProcesses({ web: 2, worker: 3 }), 5);
});

test('config masking: key names stay, values go', (t) => {
  t.deepEqual(maskConfig({ A: 'secret', B: '' }), { A: MASKED, B: MASKED });
  const text = 'cloning https://u:tok3n-long@host/x.git with tok3n-long; mode=on';
  t.is(redactValues(text, ['https://u:tok3n-long@host/x.git', 'tok3n-long', 'on']), `cloning ${MASKED} with ${MASKED}; mode=on`);
});

test('every host key rack makes can be read back by the ssh server (ssh2 makes a bad one about 1 in 256)', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'rack-hostkey-'));
  try {
    for (let i = 0; i < 600; i++) {
      const key = await loadOrCreateHostKey(join(dir, `key-${i}`));
      t.false(ssh2.utils.parseKey(key) instanceof Error, `key ${i}`);
    }
    // A kept key that does not parse is set aside and replaced.
    await writeFile(join(dir, 'broken'), '-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n');
    const fresh = await loadOrCreateHostKey(join(dir, 'broken'));
    t.false(ssh2.utils.parseKey(fresh) instanceof Error);
    t.true((await readFile(join(dir, 'broken.unusable'), 'utf8')).includes('AAAA'));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
