import test from 'ava';
import { readFile } from 'node:fs/promises';
import { api } from './support/api-client.js';
import { commitFile, exec, headOf, keypair, RackDaemon } from './support/rack-daemon.js';
import type { JobView } from '../daemon/cron/scheduled-jobs.js';
import type { AuditEntry } from '../daemon/store/records.js';

// Scheduled jobs from app.json `cron`, end to end: real git push, real ssh, real Docker. One daemon
// and one app, in order: each step builds on the last. Needs Docker (fails, not skips, without it).
let rack: RackDaemon;
test.before(async () => {
  rack = await RackDaemon.create();
});
test.after.always(async () => {
  await rack?.destroy();
});

const app = 'cron-story';
let dir: string;

const appJson = (cron: unknown) => `${JSON.stringify({ name: app, cron }, null, 2)}\n`;
const jobs = [
  { command: 'echo "cron-tick as $DYNO"', schedule: '* * * * *' },
  { id: 'fail', command: 'echo failing on purpose; echo to stderr >&2; exit 3', schedule: '@yearly' },
  { id: 'long', command: 'echo long started; sleep 600', schedule: '0 0 1 1 *', concurrency_policy: 'allow' },
];

/** The IDs of the app's running scheduled-job containers, as Docker lists them by rack's labels. */
async function runContainers(): Promise<string[]> {
  const r = await exec('docker', ['ps', '-q', '--filter', `label=rack.app=${app}`, '--filter', 'label=rack.role=run']);
  return r.stdout.split('\n').filter(Boolean);
}

/** Polls `logs` until `pattern` shows, for at most `boundMs` from `since`. */
async function logLine(pattern: RegExp, since: number, boundMs: number): Promise<string> {
  let last = '';
  while (Date.now() - since < boundMs) {
    const r = await exec('ssh', [...rack.sshArgs(), 'logs', '-a', app, '-n', '500']);
    last = r.stdout;
    const line = last.split('\n').find((l) => pattern.test(l));
    if (line) return line;
    await new Promise((r) => setImmediate(r));
  }
  throw new Error(`no log line ${pattern} within ${boundMs / 1000} s; logs were:\n${last}`);
}

async function list(): Promise<JobView[]> {
  const r = await rack.ssh(['cron:list', '-a', app, '--json']);
  if (r.code !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout) as JobView[];
}

test.serial('a push with cron * * * * * sees its job run within 70 s, its output and exit in logs', async (t) => {
  dir = await rack.appRepo('node-hello', app);
  await commitFile(dir, 'app.json', appJson(jobs), 'scheduled jobs');
  const push = await rack.push(dir);
  t.is(push.code, 0, push.stderr);
  const pushed = Date.now();
  const output = await logLine(/app\[scheduler\.\d+\]: cron-tick as scheduler\.\d+$/, pushed, 70_000);
  t.regex(output, /app\[scheduler\.(\d+)\]: cron-tick as scheduler\.\1$/, 'DYNO is the name the logs use');
  const ended = await logLine(/rack\[cron\]: job [0-9a-f]{8} exited with 0 after \d+\.\ds$/, pushed, 70_000);
  t.truthy(ended);

  const listed = await list();
  t.is(listed.length, 3);
  const tick = listed.find((j) => j.command.includes('cron-tick'))!;
  t.regex(tick.id, /^[0-9a-f]{8}$/);
  t.is(tick.schedule, '* * * * *');
  t.false(tick.suspended);
  t.truthy(tick.nextRun);
  t.true(Date.parse(tick.nextRun!) > pushed);
  t.is(tick.lastRun?.exitCode, 0);
  t.is(tick.lastRun?.trigger, 'schedule');
  const fail = listed.find((j) => j.id === 'fail')!;
  t.is(fail.schedule, '0 0 1 1 *', '@yearly spelled out');
  t.is(fail.concurrency, 'forbid');
  const text = await rack.ssh(['cron:list', '-a', app]);
  t.regex(text.stdout, /^ID\s+SCHEDULE\s+NEXT RUN \(UTC\)\s+LAST RUN\s+STATE\s+COMMAND$/m);
  t.regex(text.stdout, new RegExp(`^${tick.id}\\s+\\* \\* \\* \\* \\*\\s+\\S+ \\S+\\s+\\S+ \\S+ \\(exit 0\\)\\s+active\\s+echo "cron-tick as \\$DYNO"$`, 'm'));
});

test.serial('cron:run streams the output and ends with the job\'s exit status; audited', async (t) => {
  const failed = await rack.ssh(['cron:run', 'fail', '-a', app]);
  t.is(failed.code, 3, failed.stderr);
  t.is(failed.stdout, 'failing on purpose\n');
  t.regex(failed.stderr, /^to stderr\n !     job fail exited with status 3\n$/);
  await logLine(/rack\[cron\]: job fail exited with 3 after/, Date.now(), 30_000);
  const ok = await rack.ssh(['cron:run', (await list()).find((j) => j.id !== 'fail')!.id, '-a', app]);
  t.is(ok.code, 0, ok.stderr);
  t.regex(ok.stdout, /^cron-tick as scheduler\.\d+\n$/);
  const missing = await rack.ssh(['cron:run', 'nosuch', '-a', app]);
  t.is(missing.code, 1);
  t.regex(missing.stderr, /^ !     cron-story has no scheduled job "nosuch" in its current release/);
  const audit = JSON.parse((await rack.ssh(['audit', '--json', '-a', app])).stdout) as AuditEntry[];
  const runs = audit.filter((e) => e.action === 'cron:run');
  t.true(runs.some((e) => e.detail === 'fail' && e.outcome === 'job_failed' && e.actor.kind === 'key'), JSON.stringify(runs));
  t.true(runs.some((e) => e.outcome === 'ok'));
  t.is((await list()).find((j) => j.id === 'fail')!.lastRun?.exitCode, 3);
});

test.serial('a bad schedule rejects the push with one line; the previous release keeps serving', async (t) => {
  const before = await headOf(dir);
  await commitFile(dir, 'app.json', appJson([{ command: 'echo x', schedule: '61 * * * *' }]), 'a bad schedule');
  const push = await rack.push(dir);
  t.not(push.code, 0);
  const errors = push.stderr.split('\n').filter((l) => l.startsWith('remote:  !     '));
  t.is(errors.length, 1, push.stderr);
  t.regex(errors[0]!, /app\.json cron\[0\]: schedule "61 \* \* \* \*" is not a cron expression/);
  t.notRegex(push.stderr, /-----> (Building|Released)/, 'refused before anything was built');
  const remote = await exec('git', ['ls-remote', 'rack', 'refs/heads/main'], { cwd: dir, env: rack.gitEnv() });
  t.true(remote.stdout.startsWith(before), 'the branch did not move');
  t.is((await rack.get(app)).status, 200);
  const releases = await rack.ssh(['releases', '-a', app, '--json']);
  t.is((JSON.parse(releases.stdout) as unknown[]).length, 1, 'no release was made');
  await exec('git', ['reset', '-q', '--hard', before], { cwd: dir });
});

test.serial('cron:suspend is kept across a new release and a crash of rackd, whose run under way is removed; cron:resume undoes it', async (t) => {
  const tick = (await list()).find((j) => j.id !== 'fail')!;
  const suspend = await rack.ssh(['cron:suspend', tick.id, '-a', app]);
  t.is(suspend.code, 0, suspend.stderr);
  t.regex(suspend.stdout, new RegExp(`Suspended job ${tick.id} of ${app}`));
  let now = (await list()).find((j) => j.id === tick.id)!;
  t.true(now.suspended);
  t.is(now.nextRun, undefined);
  t.regex((await rack.ssh(['cron:list', '-a', app])).stdout, new RegExp(`^${tick.id}\\s.*\\ssuspended\\s`, 'm'));

  // A new release with the same job: the same ID, still suspended.
  const set = await rack.ssh(['config:set', 'GREETING=hi', '-a', app]);
  t.is(set.code, 0, set.stderr);
  t.true((await list()).find((j) => j.id === tick.id)!.suspended);

  // A run under way when rackd is killed: its container is found by its labels at the next start
  // and removed (not adopted: no one is left to stream its output to), the run recorded as interrupted.
  const longRun = rack.ssh(['cron:run', 'long', '-a', app]);
  await logLine(/app\[scheduler\.\d+\]: long started$/, Date.now(), 60_000);
  t.is((await runContainers()).length, 1);
  await rack.stop('SIGKILL');
  await longRun;
  await rack.start();
  t.deepEqual(await runContainers(), [], 'the run left by the killed rackd was removed at start');
  const long = (await list()).find((j) => j.id === 'long')!;
  t.regex(long.lastRun?.error ?? '', /^interrupted/);
  t.is(long.runningSince, undefined);
  await logLine(/rack\[cron\]: job long: its run started at \S+ was interrupted when rackd stopped/, Date.now(), 30_000);
  now = (await list()).find((j) => j.id === tick.id)!;
  t.true(now.suspended, 'kept in the store across the restart');
  t.is(now.lastRun?.exitCode, 0);
  t.regex(rack.output, /"msg":"scheduled jobs planned"/);

  const resume = await rack.ssh(['cron:resume', tick.id, '-a', app]);
  t.is(resume.code, 0, resume.stderr);
  now = (await list()).find((j) => j.id === tick.id)!;
  t.false(now.suspended);
  t.truthy(now.nextRun, 'planned again after the restart');
  const audit = JSON.parse((await rack.ssh(['audit', '--json', '-a', app])).stdout) as AuditEntry[];
  t.true(audit.some((e) => e.action === 'cron:suspend' && e.detail === tick.id && e.outcome === 'ok'));
  t.true(audit.some((e) => e.action === 'cron:resume' && e.detail === tick.id && e.outcome === 'ok'));
});

test.serial('a deploy-only key may suspend and resume, not run; a malformed ID is one clear line', async (t) => {
  const ci = await keypair(rack.work, 'ci');
  const add = await rack.ssh(['keys:add', 'ci', '--app', app, '--deploy-only'], { input: await readFile(ci.pub, 'utf8') });
  t.is(add.code, 0, add.stderr);
  t.is((await rack.ssh(['cron:suspend', 'fail', '-a', app], { key: ci.priv })).code, 0);
  t.is((await rack.ssh(['cron:resume', 'fail', '-a', app], { key: ci.priv })).code, 0);
  t.is((await rack.ssh(['cron:list', '-a', app], { key: ci.priv })).code, 0);
  const run = await rack.ssh(['cron:run', 'fail', '-a', app], { key: ci.priv });
  t.is(run.code, 1);
  t.regex(run.stderr, /^ !     key "ci" may not run cron:run on cron-story: it is a deploy-only key\n$/);
  const bad = await rack.ssh(['cron:suspend', 'NOT_AN_ID', '-a', app]);
  t.is(bad.code, 1);
  t.regex(bad.stderr, /^ !     expected a job ID as cron:list shows it, got "NOT_AN_ID"\n$/);
});

test.serial('the API lists, suspends, resumes and runs jobs; the Console shows them', async (t) => {
  const token = await rack.createToken('cron-api', ['--app', app]);
  const listed = await api(rack, 'GET', `/api/v1/apps/${app}/cron`, { token });
  t.is(listed.status, 200, listed.text);
  const jobs = listed.json as JobView[];
  t.deepEqual(jobs.map((j) => j.id).sort(), (await list()).map((j) => j.id).sort());
  const suspend = await api(rack, 'POST', `/api/v1/apps/${app}/cron/fail/suspend`, { token });
  t.is(suspend.status, 200, suspend.text);
  t.deepEqual(suspend.json, { id: 'fail', suspended: true });
  t.true((await list()).find((j) => j.id === 'fail')!.suspended);
  const resume = await api(rack, 'POST', `/api/v1/apps/${app}/cron/fail/resume`, { token });
  t.deepEqual(resume.json, { id: 'fail', suspended: false });
  t.is((await api(rack, 'POST', `/api/v1/apps/${app}/cron/nosuch/suspend`, { token })).status, 404);

  // A run streams NDJSON: the job's output as lines, then how it ended. (One that exits non-zero
  // ends with {"error"} and a cut connection, as every failed stream of the API does.)
  const tick = jobs.find((j) => j.command.includes('cron-tick'))!;
  const run = await api(rack, 'POST', `/api/v1/apps/${app}/cron/${tick.id}/runs`, { token });
  t.is(run.status, 200, run.text);
  const events = run.text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
  t.true(events.some((e) => typeof e['line'] === 'string' && /cron-tick as scheduler\.\d+/.test(e['line'] as string)), run.text);
  const result = events.at(-1)!['result'] as { exitCode: number; trigger: string };
  t.is(result.exitCode, 0);
  t.is(result.trigger, 'token:cron-api');

  const signIn = await api(rack, 'POST', '/console/sign-in', {
    rawBody: `token=${encodeURIComponent(token)}`,
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'http://rack.localhost' },
  });
  const cookie = String(signIn.headers['set-cookie'] ?? '').split(';')[0]!;
  t.regex(cookie, /rack_session=/, signIn.text);
  const page = await api(rack, 'GET', `/console/apps/${app}/cron`, { headers: { cookie } });
  t.is(page.status, 200, page.text);
  t.regex(page.text, /aria-current="page">Scheduled jobs</);
  for (const j of jobs) t.true(page.text.includes(`<code>${j.id}</code>`), j.id);
  t.regex(page.text, /exit 3/);
});
