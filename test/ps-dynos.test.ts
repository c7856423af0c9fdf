import test from 'ava';
import { spawn } from 'node:child_process';
import { api } from './support/api-client.js';
import { exec, RackDaemon } from './support/rack-daemon.js';

// Dyno names (TYPE.N) and scaling, restarting and stopping that touch only what they name, with
// the real ssh client and Docker.
const app = 'dynos';
let rack: RackDaemon;

test.before(async () => {
  if ((await exec('docker', ['info'])).code !== 0) throw new Error('these tests need Docker');
  rack = await RackDaemon.create();
  const dir = await rack.appRepo('node-procs', app);
  const push = await rack.push(dir);
  if (push.code !== 0) throw new Error(push.stderr);
});
test.after.always(async () => {
  await rack?.destroy();
});

interface Proc {
  name: string;
  type: string;
  state: string;
}
const ps = async () => {
  await rack.drained(app);
  return JSON.parse((await rack.ssh(['ps', '--json', '-a', app])).stdout) as Proc[];
};
const names = async () => (await ps()).map((p) => `${p.name} ${p.state}`);
/** Container ID by dyno name, from Docker's own labels. */
const containers = async (): Promise<Record<string, string>> => {
  const r = await exec('docker', ['ps', '--no-trunc', '--filter', `label=rack.app=${app}`, '--filter', 'label=rack.role=process', '--format', '{{.ID}} {{.Label "rack.dyno"}}']);
  return Object.fromEntries(r.stdout.split('\n').filter(Boolean).map((l) => l.split(' ').reverse() as [string, string]));
};
const ok = async (args: string[]) => {
  const r = await rack.ssh([...args, '-a', app]);
  if (r.code !== 0) throw new Error(`${args.join(' ')}: ${r.stderr}${r.stdout}`);
  return r;
};
/** Polls the app's logs until a line matches (the follower is asynchronous), generously bounded. */
async function logsMatch(re: RegExp): Promise<string> {
  let text = '';
  for (const deadline = Date.now() + 60_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 250))) {
    text = (await rack.ssh(['logs', '-a', app])).stdout;
    if (re.test(text)) return text;
  }
  return text;
}

test.serial('ps, the logs and DYNO name a process TYPE.N; ps:scale worker=1 leaves the web process running', async (t) => {
  const webIds = async () => (await exec('docker', ['ps', '-q', '--no-trunc', '--filter', `label=rack.app=${app}`, '--filter', 'label=rack.type=web'])).stdout.split('\n').filter(Boolean);
  const [web] = await webIds();
  await ok(['ps:scale', 'worker=1']);
  await ps();
  t.deepEqual(await webIds(), [web!], 'the web container is the same one');
  t.is((await containers())['web.1'], web, 'the container is labelled with its dyno name');
  t.deepEqual(await names(), ['web.1 up', 'worker.1 up']);
  t.regex(await logsMatch(/app\[worker\.1\]: worker tick/), /app\[worker\.1\]: worker tick/);
  // The release record keeps what it was released with; releases:info says what runs now.
  const info = JSON.parse((await ok(['releases:info', 'v1', '--json'])).stdout) as { formation: unknown; releasedWithFormation: unknown };
  t.deepEqual(info.formation, { web: 1, worker: 1 });
  t.deepEqual(info.releasedWithFormation, { web: 1, worker: 0 });
  const text = await rack.ssh(['ps', '-a', app]);
  t.regex(text.stdout, /^web\.1\s+v\d+\s+up/m);
  t.regex(text.stdout, /^worker\.1\s+v\d+\s+up/m);
  const env = await exec('docker', ['inspect', '--format', '{{range .Config.Env}}{{println .}}{{end}}', web!]);
  t.regex(env.stdout, /^DYNO=web\.1$/m);
});

test.serial('scale up takes the lowest free numbers, scale down gives up the highest; the others keep running', async (t) => {
  await ok(['ps:scale', 'web=3', 'worker=0']);
  t.deepEqual(await names(), ['web.1 up', 'web.2 up', 'web.3 up']);
  const before = await containers();
  await ok(['ps:scale', 'web=2']);
  t.deepEqual(await names(), ['web.1 up', 'web.2 up']);
  const after = await containers();
  t.deepEqual(after, { 'web.1': before['web.1'], 'web.2': before['web.2'] });
});

test.serial('ps:restart web.1 replaces that process alone, keeping its number', async (t) => {
  const before = await containers();
  const r = await ok(['ps:restart', 'web.1']);
  t.regex(r.stdout, /Restarted web\.1 of dynos/);
  t.deepEqual(await names(), ['web.1 up', 'web.2 up']);
  const after = await containers();
  t.not(after['web.1'], before['web.1']);
  t.is(after['web.2'], before['web.2']);
  t.is((await rack.get(app)).status, 200);
  const missing = await rack.ssh(['ps:restart', 'web.7', '-a', app]);
  t.is(missing.code, 1);
  t.regex(missing.stderr, /web\.7 is not running/);
  const bad = await rack.ssh(['ps:restart', 'web.x', '-a', app]);
  t.is(bad.code, 1);
  t.regex(bad.stderr, /expected a process type \(web\) or a process \(web\.1\)/);
});

test.serial('a process killed outside rack is replaced under the same name', async (t) => {
  const before = await containers();
  t.is((await exec('docker', ['kill', before['web.2']!])).code, 0);
  let after = before;
  for (const deadline = Date.now() + 60_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 250))) {
    after = await containers();
    if (after['web.2'] !== undefined && after['web.2'] !== before['web.2']) break;
  }
  t.not(after['web.2'], before['web.2'], 'a new web.2');
  t.truthy(after['web.2']);
  t.is(after['web.1'], before['web.1']);
  t.regex(await logsMatch(/Started web\.2 of v\d+ in place of what was gone/), /Process web\.2 is gone/);
  // The gone one leaves ps once it is removed, just after the switch.
  let now = await names();
  for (const deadline = Date.now() + 30_000; now.length > 2 && Date.now() < deadline; await new Promise((r) => setTimeout(r, 250))) now = await names();
  t.deepEqual(now, ['web.1 up', 'web.2 up']);
});

test.serial('ps:stop keeps a process stopped across a rackd restart until the next ps:scale; audited', async (t) => {
  const before = await containers();
  const r = await ok(['ps:stop', 'web.2']);
  t.regex(r.stdout, /Stopped web\.2 of dynos \(until the next ps:scale or release\)/);
  t.deepEqual(await names(), ['web.1 up']);
  t.deepEqual(await containers(), { 'web.1': before['web.1'] });
  await rack.stop();
  await rack.start();
  t.deepEqual(await names(), ['web.1 up'], 'the reconciler and adoption leave it stopped');
  t.is((await rack.get(app)).status, 200);
  const again = await rack.ssh(['ps:restart', 'web.2', '-a', app]);
  t.regex(again.stderr, /web\.2 is stopped \(ps:scale starts it again\)/);
  await ok(['ps:scale', 'web=2']);
  t.deepEqual(await names(), ['web.1 up', 'web.2 up']);
  t.is((await containers())['web.1'], before['web.1']);
  // The API's routes run the same commands.
  const token = await rack.createToken('ps-api');
  const restart = await api(rack, 'POST', `/api/v1/apps/${app}/formation/restart`, { token, body: { process: 'web.2' } });
  t.is(restart.status, 200, restart.text);
  t.regex(restart.text, /"restarted":"web\.2"/);
  t.is((await containers())['web.1'], before['web.1']);
  const badBody = await api(rack, 'POST', `/api/v1/apps/${app}/formation/stop`, { token, body: { process: 'web' } });
  t.is(badBody.status, 400);
  const viaApi = await api(rack, 'POST', `/api/v1/apps/${app}/formation/stop`, { token, body: { type: 'web' } });
  t.is(viaApi.status, 200, viaApi.text);
  t.regex(viaApi.text, /"stopped":\["web\.1","web\.2"\]/);
  t.deepEqual(await names(), []);
  t.is((await rack.get(app)).status, 503);
  const audit = await rack.ssh(['audit', '--json']);
  t.regex(audit.stdout, /"action": "ps:stop",\s+"detail": "web",/);
  await ok(['ps:scale', 'web=1']);
  t.deepEqual(await names(), ['web.1 up']);
});

test.serial('a release starts what ps:stop stopped', async (t) => {
  await ok(['ps:scale', 'web=2']);
  await ok(['ps:stop', 'web.2']);
  t.deepEqual(await names(), ['web.1 up']);
  await ok(['config:set', 'AFTER_STOP=1']);
  t.deepEqual(await names(), ['web.1 up', 'web.2 up']);
  await ok(['ps:scale', 'web=1']);
});

test.serial('run gets DYNO=run.N and PORT, and its whole command line goes to a shell in the container', async (t) => {
  const first = await rack.ssh(['run', '-a', app, 'echo "$DYNO $PORT"']);
  t.is(first.code, 0, first.stderr);
  const second = await rack.ssh(['run', '-a', app, 'echo "$DYNO $PORT"']);
  const [a, b] = [first.stdout.trim(), second.stdout.trim()];
  t.regex(a, /^run\.\d+ 5000$/);
  t.regex(b, /^run\.\d+ 5000$/);
  t.true(Number(b.split(/[. ]/)[1]) > Number(a.split(/[. ]/)[1]), 'numbers grow');
  // ssh joins its arguments with spaces: the quotes the remote side sees are the ones sent.
  const sh = await rack.ssh(['run', '-a', app, "bash -c 'echo A; echo B'"]);
  t.is(sh.stdout, 'A\nB\n', sh.stderr);
  const quoted = await rack.ssh(['run', '-a', app, 'echo "two  spaces" | tr a-z A-Z; exit 5']);
  t.is(quoted.code, 5);
  t.is(quoted.stdout, 'TWO  SPACES\n');
});

test.serial('ssh -t run prints what the process prints, with no NUL byte first', async (t) => {
  const out = await new Promise<Buffer>((resolve, reject) => {
    const child = spawn('ssh', ['-tt', ...rack.sshArgs(), '--', 'run', '-a', app, 'echo tty-out'], { stdio: ['pipe', 'pipe', 'ignore'] });
    const chunks: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => chunks.push(c));
    child.on('error', reject);
    child.on('close', () => resolve(Buffer.concat(chunks)));
    child.stdin.on('error', () => undefined);
  });
  t.false(out.includes(0), JSON.stringify(out.toString('latin1')));
  t.regex(out.toString(), /^tty-out\r?\n/);
});
