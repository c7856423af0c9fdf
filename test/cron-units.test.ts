import test from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { AuditLog } from '../daemon/audit/audit-log.js';
import { CronRunner } from '../daemon/cron/cron-runner.js';
import { LogHub } from '../daemon/logs/log-hub.js';
import type { InteractiveSpec } from '../daemon/runtime/docker-tasks.js';
import { Store } from '../daemon/store/store.js';
import { cronFromAppJson } from '../daemon/build/app-json.js';
import { checkCronJobs, cronJobId } from '../daemon/cron/cron-jobs.js';
import { nextFire, parseSchedule } from '../daemon/cron/cron-schedule.js';
import { CronScheduler, type CronClock, type SchedulerParts } from '../daemon/cron/scheduler.js';
import { RackError } from '../daemon/rack-error.js';
import type { CronJob } from '../daemon/store/records.js';

test('schedules: five fields or a nickname, in UTC', (t) => {
  t.is(parseSchedule('*/5 * * * *'), '*/5 * * * *');
  t.is(parseSchedule('  0   3 * * 1-5 '), '0 3 * * 1-5');
  t.is(parseSchedule('@daily'), '0 0 * * *');
  t.is(parseSchedule('@midnight'), '0 0 * * *');
  t.is(parseSchedule('@hourly'), '0 * * * *');
  t.is(parseSchedule('@weekly'), '0 0 * * 0');
  t.is(parseSchedule('@monthly'), '0 0 1 * *');
  t.is(parseSchedule('@yearly'), '0 0 1 1 *');
  t.is(parseSchedule('@annually'), '0 0 1 1 *');
  t.is(nextFire(parseSchedule('@daily'), new Date('2026-03-04T05:06:07Z')).toISOString(), '2026-03-05T00:00:00.000Z');
  t.is(nextFire('*/5 * * * *', new Date('2026-03-04T05:05:00Z')).toISOString(), '2026-03-04T05:10:00.000Z', 'strictly after');
  for (const bad of ['', 'every minute', '61 * * * *', '* * * *', '* * * * * *', '@reboot', '@often', '0 0 31 2 *', '* * * * MON-XYZ']) {
    const err = t.throws(() => parseSchedule(bad), { instanceOf: RackError }, bad);
    t.is(err?.code, 'bad_argument');
    t.notRegex(err?.message ?? '', /\n/, 'one line');
  }
});

test('app.json cron: checked whole, IDs stable per schedule and command', (t) => {
  const jobs = checkCronJobs([{ command: 'node jobs/tick.js', schedule: '*/5 * * * *' }, { command: 'echo hi', schedule: '@daily', concurrency_policy: 'replace', id: 'nightly' }]);
  t.deepEqual(jobs, [
    { id: cronJobId('*/5 * * * *', 'node jobs/tick.js'), schedule: '*/5 * * * *', command: 'node jobs/tick.js', concurrency: 'forbid' },
    { id: 'nightly', schedule: '0 0 * * *', command: 'echo hi', concurrency: 'replace' },
  ]);
  t.regex(jobs[0]!.id, /^[0-9a-f]{8}$/);
  t.is(cronJobId('*/5 * * * *', 'node jobs/tick.js'), jobs[0]!.id, 'the same job keeps its ID');
  t.not(cronJobId('*/5 * * * *', 'node jobs/other.js'), jobs[0]!.id);
  const refused = (value: unknown, pattern: RegExp) => {
    const err = t.throws(() => checkCronJobs(value), { instanceOf: RackError });
    t.is(err?.code, 'build_failed');
    t.regex(err?.message ?? '', pattern);
  };
  refused({ command: 'x' }, /must be a list/);
  refused([{ command: 'x', schedule: '61 * * * *' }], /^app\.json cron\[0\]: schedule "61 \* \* \* \*" is not a cron expression/);
  refused([{ command: 'x', schedule: '* * * * *' }, { command: 'y', schedule: 'soon' }], /^app\.json cron\[1\]: /);
  refused([{ schedule: '* * * * *' }], /"command" must be/);
  refused([{ command: 'x', schedule: 5 }], /"schedule" must be/);
  refused([{ command: 'x', schedule: '* * * * *', concurrency_policy: 'sometimes' }], /concurrency_policy/);
  refused([{ command: 'x', schedule: '* * * * *', id: '../x' }], /"id" must be/);
  refused([{ command: 'x', schedule: '* * * * *' }, { command: 'x', schedule: '* * * * *' }], /second job with id/);
  t.is(cronFromAppJson('{"name": "x"}'), undefined);
  t.is(cronFromAppJson('not json'), undefined);
  t.is(cronFromAppJson('{"cron": []}'), undefined);
  t.throws(() => cronFromAppJson('{"cron": [{"command": "x", "schedule": "bad"}]}'), { message: /cron\[0\]/ });
});

/** Time moved by hand: timers fire in order as `advance` passes them. */
class FakeClock implements CronClock {
  #now: number;
  #timers: { at: number; fn: () => void; live: boolean }[] = [];
  constructor(start: string) {
    this.#now = Date.parse(start);
  }
  now() {
    return this.#now;
  }
  after(ms: number, fn: () => void) {
    const timer = { at: this.#now + ms, fn, live: true };
    this.#timers.push(timer);
    return () => void (timer.live = false);
  }
  /** The machine slept: time passes with no timer firing until the next advance. */
  jump(ms: number) {
    this.#now += ms;
  }
  async advance(ms: number) {
    const end = this.#now + ms;
    for (;;) {
      const due = this.#timers.filter((x) => x.live && x.at <= end).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      due.live = false;
      this.#now = Math.max(this.#now, due.at);
      due.fn();
      await settle();
    }
    this.#now = end;
    await settle();
  }
}

/** Lets the scheduler's awaits (store reads, stubbed here) run to their end. */
async function settle() {
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
}

interface StubRun {
  job: string;
  at: number;
  signal: AbortSignal;
  end: () => void;
}

function harness(jobs: CronJob[], opts: { start?: string; lastStarted?: number } = {}) {
  const clock = new FakeClock(opts.start ?? '2026-01-01T00:00:30Z');
  const runs: StubRun[] = [];
  const told: string[] = [];
  const suspended = new Set<string>();
  const state = { jobs };
  const parts: SchedulerParts = {
    clock,
    apps: async () => ['shop'],
    jobsOf: async () => state.jobs,
    suspended: async (_app, id) => suspended.has(id),
    lastStarted: async () => opts.lastStarted,
    run: (_app, job, signal) =>
      new Promise<void>((resolve) => {
        const run: StubRun = { job: job.id, at: clock.now(), signal, end: resolve };
        runs.push(run);
        signal.addEventListener('abort', () => resolve());
      }),
    tell: (_app, text) => told.push(text),
    warn: (fields, message) => told.push(`WARN ${message} ${JSON.stringify(fields)}`),
  };
  return { clock, runs, told, suspended, state, scheduler: new CronScheduler(parts) };
}

const everyMinute: CronJob = { id: 'tick', schedule: '* * * * *', command: 'node tick.js', concurrency: 'forbid' };
const minute = 60_000;

test('scheduler: fires at each time, and a suspended job passes its fire with no run', async (t) => {
  const h = harness([everyMinute]);
  await h.scheduler.start();
  t.is(h.scheduler.nextAt('shop', 'tick'), Date.parse('2026-01-01T00:01:00Z'));
  await h.clock.advance(29_000);
  t.is(h.runs.length, 0, 'not before its time');
  await h.clock.advance(1_000);
  t.is(h.runs.length, 1);
  t.is(h.runs[0]!.at, Date.parse('2026-01-01T00:01:00Z'));
  h.runs[0]!.end();
  h.suspended.add('tick');
  await h.clock.advance(minute);
  t.is(h.runs.length, 1, 'suspended: the 00:02 fire passed with no run');
  h.suspended.delete('tick');
  await h.clock.advance(minute);
  t.is(h.runs.length, 2, 'resumed: 00:03 ran');
  h.runs[1]!.end();
  await h.scheduler.stop();
  await h.clock.advance(10 * minute);
  t.is(h.runs.length, 2, 'nothing after stop');
  t.deepEqual(h.told, []);
});

test('scheduler: no overlap by default; replace stops the old run; allow runs beside it', async (t) => {
  const forbid = harness([everyMinute]);
  await forbid.scheduler.start();
  await forbid.clock.advance(30_000 + 2 * minute);
  t.is(forbid.runs.length, 1, 'the 00:02 and 00:03 fires were skipped while the 00:01 run went on');
  t.is(forbid.told.length, 2);
  t.regex(forbid.told[0]!, /^job tick: skipped, its run started at 00:01 UTC is still going \(concurrency_policy forbid\)$/);
  t.is(forbid.scheduler.runningSince('shop', 'tick'), Date.parse('2026-01-01T00:01:00Z'));
  forbid.runs[0]!.end();
  await forbid.clock.advance(minute);
  t.is(forbid.runs.length, 2, 'once it ended, the next fire runs');
  await forbid.scheduler.stop();
  t.true(forbid.runs[1]!.signal.aborted, 'stop() stops the runs under way');

  const replace = harness([{ ...everyMinute, concurrency: 'replace' }]);
  await replace.scheduler.start();
  await replace.clock.advance(30_000 + minute);
  t.is(replace.runs.length, 2);
  t.true(replace.runs[0]!.signal.aborted, 'the old run was stopped for the new one');
  t.false(replace.runs[1]!.signal.aborted);
  t.regex(replace.told[0]!, /concurrency_policy replace/);
  await replace.scheduler.stop();

  const allow = harness([{ ...everyMinute, concurrency: 'allow' }]);
  await allow.scheduler.start();
  await allow.clock.advance(30_000 + minute);
  t.is(allow.runs.length, 2);
  t.false(allow.runs[0]!.signal.aborted);
  t.deepEqual(allow.told, []);
  await allow.scheduler.stop();
});

test('scheduler: after a restart, missed fires are skipped with one line, not caught up', async (t) => {
  // rackd was down from 00:00:30 (its last run at 00:00:00) to 00:05:30: five fires fell meanwhile.
  const h = harness([everyMinute], { start: '2026-01-01T00:05:30Z', lastStarted: Date.parse('2026-01-01T00:00:00Z') });
  await h.scheduler.start();
  t.deepEqual(h.told, ['job tick: 5 runs missed while rackd was stopped, not caught up; next at 2026-01-01T00:06:00.000Z']);
  await h.clock.advance(1_000);
  t.is(h.runs.length, 0, 'no catch-up storm');
  await h.clock.advance(29_000);
  t.is(h.runs.length, 1, 'the schedule goes on from now');
  h.runs[0]!.end();
  await h.scheduler.stop();
});

test('scheduler: a new release re-plans; a fire whose job is gone does not run', async (t) => {
  const h = harness([everyMinute]);
  await h.scheduler.start();
  const hourly: CronJob = { id: 'hourly', schedule: '@hourly', command: 'x', concurrency: 'forbid' };
  h.state.jobs = [{ ...hourly, schedule: '0 * * * *' }];
  // The fire comes before the release's event is heard: it finds its job gone and re-plans.
  await h.clock.advance(30_000);
  t.is(h.runs.length, 0);
  t.is(h.scheduler.nextAt('shop', 'tick'), undefined);
  t.is(h.scheduler.nextAt('shop', 'hourly'), Date.parse('2026-01-01T01:00:00Z'));
  h.state.jobs = [];
  await h.scheduler.plan('shop');
  t.is(h.scheduler.nextAt('shop', 'hourly'), undefined);
  await h.clock.advance(2 * 60 * minute);
  t.is(h.runs.length, 0);
  await h.scheduler.stop();
});

test('scheduler: a fire noticed late (a machine asleep) is skipped, a yearly job waits in bounded steps', async (t) => {
  const h = harness([{ id: 'year', schedule: '0 0 1 1 *', command: 'x', concurrency: 'forbid' }], { start: '2026-06-01T00:00:00Z' });
  await h.scheduler.start();
  t.is(h.scheduler.nextAt('shop', 'year'), Date.parse('2027-01-01T00:00:00Z'));
  await h.clock.advance(Date.parse('2027-01-01T00:00:00Z') - Date.parse('2026-06-01T00:00:00Z'));
  t.is(h.runs.length, 1, 'fired on time after many hourly wake-ups');
  h.runs[0]!.end();
  await h.scheduler.stop();

  const late = harness([everyMinute]);
  await late.scheduler.start();
  late.clock.jump(30_000 + 5 * minute);
  await late.clock.advance(0);
  t.is(late.runs.length, 0, 'the 00:01 fire, noticed at 00:06, was skipped');
  t.regex(late.told[0]!, /^job tick: the run due at 2026-01-01T00:01:00.000Z was noticed 300 s late and skipped$/);
  await late.clock.advance(minute);
  t.is(late.runs.length, 1, 'the schedule goes on');
  late.runs[0]!.end();
  await late.scheduler.stop();
});

/** A Store in a temp dir with an app whose current release runs `jobs`. */
async function storeWithApp(jobs: CronJob[]): Promise<{ store: Store; dir: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'rack-cron-'));
  const store = new Store(join(dir, 'db'), join(dir, 'builds'));
  await store.start();
  await store.createApp('shop');
  const release = await store.createRelease('shop', { build: 1, image: 'rack/shop:b1', builder: 'buildpacks', processTypes: { web: 'node server.js' }, formation: { web: 1 }, config: { GREETING: 'hi' }, cron: jobs, description: 'Deploy', createdBy: 'admin' });
  await store.finishRelease(release, 'succeeded', null, []);
  return { store, dir };
}

/** Stands in for the Docker runtime's one-off part: records what it was asked, ends when told (or killed). */
function fakeOneOffs() {
  const asked: InteractiveSpec[] = [];
  let count = 0;
  const ends: ((code: number) => void)[] = [];
  const runtime = {
    tasks: { oneOffCount: () => count },
    networks: { ensure: async (app: string) => `rack-${app}` },
    runInteractive: (spec: InteractiveSpec) =>
      new Promise<number>((resolve) => {
        count++;
        asked.push(spec);
        spec.stdout.write('out line\n');
        spec.stderr.write('err line\n');
        const end = (code: number) => {
          count--;
          resolve(code);
        };
        ends.push(end);
        // A killed container exits 137, as Docker reports a SIGKILL.
        spec.abort.addEventListener('abort', () => end(137), { once: true });
      }),
  };
  return { runtime, asked, ends };
}

async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 10_000 && !check(); i++) await new Promise((r) => setImmediate(r));
}

test('runner: a run is scheduler.N with the release config, its output in logs, its end in one rack[cron] line', async (t) => {
  const { store, dir } = await storeWithApp([everyMinute]);
  try {
    const logs = new LogHub();
    const fake = fakeOneOffs();
    const log = pino({ level: 'silent' });
    const runner = new CronRunner({ store, runtime: fake.runtime, logs, audit: new AuditLog(store, log), maxProcesses: 2, timeoutMs: 3_600_000, log });
    const run = runner.scheduled('shop', everyMinute, new AbortController().signal);
    await until(() => fake.ends.length === 1);
    t.is(fake.asked[0]!.env['DYNO'], 'scheduler.1');
    t.is(fake.asked[0]!.env['GREETING'], 'hi');
    t.is(fake.asked[0]!.command, 'node tick.js');
    t.is(fake.asked[0]!.tty, null);
    t.is((await store.cron.get('shop', 'tick'))?.lastRun?.finishedAt, undefined, 'kept as running while it runs');
    // A second run at once would pass the app's limit of 2 (web 1 + this one): refused, told, audited.
    await runner.scheduled('shop', everyMinute, new AbortController().signal);
    fake.ends[0]!(0);
    await run;
    const lines = logs.recent('shop', 100).map((l) => `${l.source} ${l.text}`);
    t.true(lines.includes('app[scheduler.1] out line'));
    t.true(lines.includes('app[scheduler.1] err line'));
    t.true(lines.some((l) => /^rack\[cron\] job tick not run: shop runs 1 processes and 1 one-off ones, at its limit of 2 \(RACK_MAX_PROCESSES\)$/.test(l)), lines.join('\n'));
    t.true(lines.some((l) => /^rack\[cron\] job tick exited with 0 after \d+\.\ds$/.test(l)), lines.join('\n'));
    const last = (await store.cron.get('shop', 'tick'))?.lastRun;
    t.is(last?.exitCode, 0);
    t.is(last?.trigger, 'schedule');
    const audit = await store.audit.list({ app: 'shop', limit: 10 });
    t.is(audit.length, 1, 'the refused run only: a run that succeeds is not audited');
    t.like(audit[0], { actor: { kind: 'rack', name: 'scheduler' }, via: 'rack', action: 'cron:run', outcome: 'forbidden' });
  } finally {
    await store.stop();
    await rm(dir, { recursive: true, force: true });
  }
});

test('runner: a run past RACK_CRON_TIMEOUT is killed, recorded and audited; one left by a stopped rackd is marked interrupted', async (t) => {
  const { store, dir } = await storeWithApp([everyMinute]);
  try {
    const logs = new LogHub();
    const fake = fakeOneOffs();
    const log = pino({ level: 'silent' });
    const runner = new CronRunner({ store, runtime: fake.runtime, logs, audit: new AuditLog(store, log), maxProcesses: 30, timeoutMs: 1, log });
    await runner.scheduled('shop', everyMinute, new AbortController().signal);
    const last = (await store.cron.get('shop', 'tick'))?.lastRun;
    t.is(last?.exitCode, 137);
    t.is(last?.error, 'killed after 0 s (RACK_CRON_TIMEOUT)');
    t.true(logs.recent('shop', 100).some((l) => /^job tick exited with 137 after \d+\.\ds \(killed after 0 s \(RACK_CRON_TIMEOUT\)\)$/.test(l.text)));
    t.like((await store.audit.list({ app: 'shop', limit: 10 }))[0], { action: 'cron:run', outcome: 'job_failed', detail: 'tick: exit 137' });

    await store.cron.setLastRun('shop', 'tick', { startedAt: '2026-01-01T00:00:00.000Z', trigger: 'schedule' });
    await runner.markInterrupted();
    t.regex((await store.cron.get('shop', 'tick'))?.lastRun?.error ?? '', /^interrupted/);
    t.true(logs.recent('shop', 100).some((l) => l.text === 'job tick: its run started at 2026-01-01T00:00:00.000Z was interrupted when rackd stopped (its container was removed)'));
  } finally {
    await store.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
