import { Writable } from 'node:stream';
import { createdBy } from '../access/principal.js';
import type { JobView } from '../cron/scheduled-jobs.js';
import { RackError } from '../rack-error.js';
import { table, timestamp, type Command, type CommandContext } from './command.js';

const JOB_ID = /^[a-z0-9][a-z0-9_-]{0,39}$/;

function jobId(ctx: CommandContext): string {
  const id = ctx.args[0]!;
  if (!JOB_ID.test(id)) throw new RackError('bad_argument', `expected a job ID as cron:list shows it, got ${JSON.stringify(id.slice(0, 40))}`);
  return id;
}

function lastRun(job: JobView): string {
  const run = job.lastRun;
  if (!run) return '-';
  if (run.finishedAt === undefined) return `${timestamp(run.startedAt)} (running)`;
  const end = run.exitCode === undefined ? run.error ?? 'failed' : `exit ${run.exitCode}`;
  return `${timestamp(run.startedAt)} (${end})`;
}

/** Over HTTP there are no raw streams: the run's output becomes the answer's progress text. */
function textSink(write: (text: string) => void): Writable {
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      write(chunk.toString('utf8'));
      done();
    },
  });
  sink.on('error', () => undefined);
  return sink;
}

const suspendCommand = (suspend: boolean): Command => ({
  name: suspend ? 'cron:suspend' : 'cron:resume',
  access: 'deploy',
  usage: `${suspend ? 'cron:suspend' : 'cron:resume'} ID [-a APP]`,
  example: `${suspend ? 'cron:suspend' : 'cron:resume'} 3f9a1c2e -a myapp`,
  summary: suspend ? 'stop running a scheduled job at its times (kept across releases and restarts)' : 'run a suspended scheduled job at its times again',
  app: true,
  args: { min: 1, max: 1 },
  audit: (ctx) => ({ detail: ctx.args[0] ?? '' }),
  async run(ctx) {
    const id = jobId(ctx);
    await ctx.services.cron.setSuspended(ctx.app, id, suspend);
    ctx.result({ id, suspended: suspend });
    ctx.print(`-----> ${suspend ? 'Suspended' : 'Resumed'} job ${id} of ${ctx.app}`);
  },
});

export const cronCommands: Command[] = [
  {
    name: 'cron:list',
    access: 'deploy',
    usage: 'cron:list [-a APP] [--json]',
    example: 'cron:list -a myapp',
    summary: "list the app's scheduled jobs (app.json cron): schedule, next and last run",
    app: true,
    json: true,
    args: { min: 0, max: 0 },
    async run(ctx) {
      const jobs = await ctx.services.cron.list(ctx.app);
      if (ctx.flags['json']) return ctx.printJson(jobs);
      if (jobs.length === 0) return ctx.print(`${ctx.app} has no scheduled jobs (add "cron" to app.json)`);
      const rows = [['ID', 'SCHEDULE', 'NEXT RUN (UTC)', 'LAST RUN', 'STATE', 'COMMAND']];
      for (const j of jobs) {
        const state = j.suspended ? 'suspended' : j.runningSince ? 'running' : 'active';
        rows.push([j.id, j.schedule, j.nextRun ? timestamp(j.nextRun) : '-', lastRun(j), state, j.command]);
      }
      for (const line of table(rows)) ctx.print(line);
    },
  },
  {
    name: 'cron:run',
    access: 'member',
    usage: 'cron:run ID [-a APP]',
    example: 'cron:run 3f9a1c2e -a myapp',
    summary: 'run a scheduled job now, once, its output streamed (exit status: the job\'s)',
    app: true,
    args: { min: 1, max: 1 },
    audit: (ctx) => ({ detail: ctx.args[0] ?? '' }),
    async run(ctx) {
      const id = jobId(ctx);
      const abort = new AbortController();
      void ctx.closed.then(() => abort.abort());
      const echo = ctx.session
        ? { stdout: ctx.session.stdout, stderr: ctx.session.stderr }
        : { stdout: textSink((t) => ctx.write(t)), stderr: textSink((t) => ctx.write(t)) };
      const signal = ctx.session ? AbortSignal.any([abort.signal, ctx.session.abort]) : abort.signal;
      const ended = await ctx.services.cron.runNow(ctx.app, id, createdBy(ctx.principal), echo, signal);
      ctx.result(ended);
      if (ended.exitCode === 0) return;
      const how = ended.exitCode === undefined ? `did not run to its end (${ended.error ?? 'failed'})` : `exited with status ${ended.exitCode}`;
      throw new RackError('job_failed', `job ${id} ${how}`, { exitCode: ended.exitCode || 1 });
    },
  },
  suspendCommand(true),
  suspendCommand(false),
];
