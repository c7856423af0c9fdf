import test from 'ava';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './support/rack-daemon.js';

// The real launcher (bin/rackd) with two installs whose rackd is a stand-in speaking the launcher's
// IPC protocol: it needs no Docker, and the test decides when each one is ready.

/** A stand-in rackd: says where it runs, is ready at once (A) or on SIGUSR2 (B), and A asks to switch to B. */
function standIn(name: 'a' | 'b', marks: string, other: string): string {
  return `import { writeFileSync } from 'node:fs';
const mark = (what) => writeFileSync(${JSON.stringify(marks)} + '/${name}.' + what, String(process.pid));
mark('pid');
const ready = () => process.send({ type: 'ready', pid: process.pid, startMs: 1 });
process.on('SIGTERM', () => { mark('sigterm'); if (${JSON.stringify(name)} === 'b') process.exit(0); });
if (${JSON.stringify(name)} === 'a') {
  ready();
  // As rackd's switch: it has let go of everything, asks, and exits once it has the answer.
  process.on('message', (msg) => { if (msg.type === 'switched') process.exit(0); });
  process.send({ type: 'switch', dir: ${JSON.stringify(other)} });
} else {
  process.on('SIGUSR2', ready);
}
setInterval(() => {}, 1000);
`;
}

async function until<T>(what: () => Promise<T | undefined>): Promise<T> {
  for (;;) {
    const value = await what();
    if (value !== undefined) return value;
    await new Promise((r) => setTimeout(r, 20));
  }
}

const read = (file: string) => readFile(file, 'utf8').catch(() => undefined);

test('a stop that comes while the launcher switches rackd stops the new rackd too, and the launcher exits', async (t) => {
  const base = await mkdtemp(join(tmpdir(), 'rack-launcher-'));
  t.teardown(() => rm(base, { recursive: true, force: true }));
  const home = join(base, 'home');
  const marks = join(base, 'marks');
  const installs = { a: join(base, 'a'), b: join(base, 'b') };
  await mkdir(marks);
  for (const [name, dir] of Object.entries(installs) as ['a' | 'b', string][]) {
    await mkdir(join(dir, 'dist', 'daemon'), { recursive: true });
    await writeFile(join(dir, 'dist', 'daemon', 'main.js'), standIn(name, marks, name === 'a' ? installs.b : installs.a));
  }
  await mkdir(home, { mode: 0o700 });
  // rack:update's `current`, made after this checkout's build, so the launcher starts A.
  await symlink(installs.a, join(home, 'current'));

  const launcher = spawn(process.execPath, [join(ROOT, 'bin', 'rackd')], {
    env: { ...process.env, RACK_HOME: home, RACK_SSH_PORT: '0', RACK_HTTP_PORT: '0', RACK_HTTPS_PORT: 'off', RACK_BIND: '127.0.0.1' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  launcher.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = once(launcher, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  t.teardown(async () => {
    for (const name of ['a', 'b']) {
      const pid = Number(await read(join(marks, `${name}.pid`)));
      try {
        if (pid > 0) process.kill(pid, 'SIGKILL');
      } catch {
        // gone, as it should be
      }
    }
    if (launcher.exitCode === null) launcher.kill('SIGKILL');
  });

  // A asked for the switch and B runs, not ready yet: the stop comes now.
  const b = Number(await until(() => read(join(marks, 'b.pid'))));
  launcher.kill('SIGTERM');
  const log = join(home, 'logs', 'launcher.log');
  await until(async () => ((await read(log))?.includes('launcher: stopping rackd') ? true : undefined));
  process.kill(b, 'SIGUSR2');

  const [code] = await exited;
  t.is(code, 0, stderr);
  t.truthy(await read(join(marks, 'b.sigterm')), 'the rackd switched to was told to stop');
  t.throws(() => process.kill(b, 0), { code: 'ESRCH' });
});
