import test from 'ava';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { exec, RackDaemon } from './support/rack-daemon.js';

// Names users choose (config keys, process types) that are also names every JavaScript object
// inherits, and the total process cap. A real rackd and real ssh; the app has a process type
// named `constructor` in its Procfile.
const app = 'names';
const MAX_PROCESSES = 4;
let rack: RackDaemon;

test.before(async () => {
  rack = await RackDaemon.create();
  await rack.stop();
  await rack.start({ RACK_MAX_PROCESSES: String(MAX_PROCESSES) });
  const dir = await rack.appRepo('node-procs', app);
  await writeFile(join(dir, 'Procfile'), 'web: node server.js\nworker: node worker.js\nclock: node worker.js\nconstructor: node worker.js\n');
  await exec('git', ['commit', '-qam', 'more types'], { cwd: dir });
  const push = await rack.push(dir);
  if (push.code !== 0) throw new Error(push.stderr);
});
test.after.always(async () => {
  await rack?.destroy();
});

const ssh = (...args: string[]) => rack.ssh([...args, '-a', app]);
const ps = async () => JSON.parse((await ssh('ps', '--json')).stdout) as { type: string }[];

test.serial('config keys named like Object members are plain keys', async (t) => {
  for (const key of ['constructor', '__proto__', 'toString', 'hasOwnProperty']) {
    const get = await ssh('config:get', key);
    t.is(get.code, 1, key);
    t.is(get.stderr, ` !     ${app} has no config var ${key}\n`);
    const unset = await ssh('config:unset', key);
    t.is(unset.code, 1, key);
    t.is(unset.stderr, ` !     ${app} has no config var ${key}\n`);
  }
  const set = await ssh('config:set', '__proto__=x', 'constructor=y', '--no-deploy');
  t.is(set.code, 0, set.stderr);
  t.regex(set.stdout, /Set __proto__, constructor: recorded v2/);
  t.is((await ssh('config:get', '__proto__')).stdout, 'x');
  t.is((await ssh('config:get', 'constructor')).stdout, 'y');
  const json = JSON.parse((await ssh('config', '--json')).stdout) as Record<string, string>;
  t.deepEqual(Object.entries(json).sort(), [['__proto__', 'x'], ['constructor', 'y']]);
  const unset = await ssh('config:unset', '__proto__', '--no-deploy');
  t.is(unset.code, 0, unset.stderr);
  t.is((await ssh('config:get', '__proto__')).code, 1);
  t.is((await ssh('config:get', 'constructor')).stdout, 'y');
});

test.serial('process types named like Object members are looked up as the release has them', async (t) => {
  for (const type of ['toString', '__proto__', 'hasOwnProperty']) {
    const scale = await ssh('ps:scale', `${type}=1`);
    t.is(scale.code, 1, type);
    t.regex(scale.stderr, new RegExp(`^ !     v1 has no process type "${type}" \\(it has: web, worker, clock, constructor\\)\\n$`));
    const restart = await ssh('ps:restart', type);
    t.is(restart.code, 1, type);
    t.is(restart.stderr, ` !     v1 has no process type "${type}" (it has: web, worker, clock, constructor)\n`);
    const limit = await ssh('ps:limit', type, 'memory=256m');
    t.is(limit.code, 1, type);
    t.is(limit.stderr, ` !     v1 has no process type "${type}" (it has: web, worker, clock, constructor)\n`);
  }
  await rack.drained(app);
  t.deepEqual((await ps()).map((p) => p.type), ['web']);
  const scale = await ssh('ps:scale', 'constructor=1');
  t.is(scale.code, 0, scale.stderr);
  t.regex(scale.stdout, /Scaled names to web=1 worker=0 clock=0 constructor=1/);
  await rack.drained(app);
  t.deepEqual((await ps()).map((p) => p.type).sort(), ['constructor', 'web']);
  const restart = await ssh('ps:restart', 'constructor');
  t.is(restart.code, 0, restart.stderr);
  const limit = await ssh('ps:limit', 'constructor', 'memory=256m');
  t.is(limit.code, 0, limit.stderr);
  t.regex(limit.stdout, /constructor processes of names run with memory=256m/);
});

test.serial('an app may not run more than RACK_MAX_PROCESSES in all', async (t) => {
  await rack.drained(app);
  const before = await ps();
  t.is(before.length, 2);
  // 20 per type is allowed, but web=1 constructor=1 worker=2 clock=1 is 5 in all.
  const refused = await ssh('ps:scale', 'worker=2', 'clock=1');
  t.is(refused.code, 1);
  t.is(refused.stderr, ` !     web=1 worker=2 clock=1 constructor=1 is 5 processes; an app may run at most ${MAX_PROCESSES} in all\n`);
  t.is(refused.stdout, '', 'refused before anything was rolled out');
  t.deepEqual((await ps()).map((p) => p.type).sort(), before.map((p) => p.type).sort());
  // What runs (the refused scale changed nothing), and what v1 was released with.
  const info = JSON.parse((await ssh('releases:info', 'v1', '--json')).stdout) as { formation: Record<string, number>; releasedWithFormation: Record<string, number> };
  t.deepEqual(info.formation, { web: 1, worker: 0, clock: 0, constructor: 1 });
  t.deepEqual(info.releasedWithFormation, { web: 1, worker: 0, clock: 0, constructor: 0 });
});
