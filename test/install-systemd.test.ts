import test from 'ava';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exec, ROOT } from './support/rack-daemon.js';

// scripts/install-systemd.sh, run as an operator would, writing under a temp root instead of /.

test('install-systemd.sh writes a unit that runs bin/rackd and leaves the router serving on stop, and an env file it never overwrites', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'rack-systemd-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const first = await exec('bash', [join(ROOT, 'scripts', 'install-systemd.sh'), '--root', root]);
  t.is(first.code, 0, first.stderr);
  const unit = await readFile(join(root, 'etc', 'systemd', 'system', 'rack.service'), 'utf8');
  t.regex(unit, new RegExp(`^ExecStart=\\S+/node ${ROOT.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/bin/rackd$`, 'm'));
  for (const line of ['EnvironmentFile=/etc/rack/rack.env', 'KillMode=process', 'Restart=always', 'WantedBy=multi-user.target']) t.true(unit.split('\n').includes(line), line);
  const envFile = join(root, 'etc', 'rack', 'rack.env');
  t.is((await stat(envFile)).mode & 0o777, 0o600);
  t.regex(await readFile(envFile, 'utf8'), /^RACK_HOME=\/var\/lib\/rack$/m);
  await writeFile(envFile, 'RACK_DOMAIN=mine.example.com\n');
  const again = await exec('bash', [join(ROOT, 'scripts', 'install-systemd.sh'), '--root', root]);
  t.is(again.code, 0);
  t.regex(again.stdout, /left as it is/);
  t.is(await readFile(envFile, 'utf8'), 'RACK_DOMAIN=mine.example.com\n');
  const bad = await exec('bash', [join(ROOT, 'scripts', 'install-systemd.sh'), '--bogus']);
  t.is(bad.code, 2);
  t.is(bad.stderr.trim().split('\n').length, 1);
});
