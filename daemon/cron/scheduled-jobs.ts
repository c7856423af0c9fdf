import { appEvents } from '../app-events.js';
import type { Logger } from '../log.js';
import { RackError } from '../rack-error.js';
import type { CronJob, CronRunRecord } from '../store/records.js';
import type { Store } from '../store/store.js';
import { CronRunner, type CronRunnerParts, type RunEcho } from './cron-runner.js';
import { CronScheduler, systemClock, type CronClock } from './scheduler.js';

/** One job as cron:list, the API and the Console show it. */
export interface JobView {
  id: string;
  schedule: string;
  command: string;
  concurrency: CronJob['concurrency'];
  suspended: boolean;
  /** ISO time; absent while suspended or not planned. */
  nextRun?: string;
  /** ISO time a run of it started that still goes. */
  runningSince?: string;
  lastRun?: CronRunRecord;
}

/**
 * The scheduled jobs of every app (app.json `cron`, kept with each release): the scheduler firing
 * them, the runner running them, and what commands, the API and the Console ask of them. The
 * scheduler is re-planned for an app whenever a release of it succeeds (a deploy, config change,
 * rollback or promotion), told by the app-events bus.
 */
export class ScheduledJobs {
  readonly #runner: CronRunner;
  readonly #scheduler: CronScheduler;
  #unlisten: (() => void) | undefined;

  constructor(
    private readonly store: Store,
    parts: Omit<CronRunnerParts, 'store' | 'log'>,
    private readonly log: Logger,
    clock: CronClock = systemClock,
  ) {
    this.#runner = new CronRunner({ ...parts, store, log });
    this.#scheduler = new CronScheduler({
      clock,
      apps: async () => (await store.listApps()).filter((a) => a.currentRelease > 0).map((a) => a.name),
      jobsOf: (app) => this.jobsOf(app),
      suspended: async (app, id) => (await store.cron.get(app, id))?.suspended === true,
      lastStarted: async (app, id) => {
        const at = (await store.cron.get(app, id))?.lastRun?.startedAt;
        return at === undefined ? undefined : Date.parse(at);
      },
      run: (app, job, signal) => this.#runner.scheduled(app, job, signal),
      tell: (app, text) => this.#runner.tell(app, text),
      warn: (fields, message) => log.warn(fields, message),
    });
  }

  /** After adoption (which removed any run a stopped rackd left): resumes every app's schedule. */
  async start(): Promise<void> {
    await this.#runner.markInterrupted();
    this.#unlisten = appEvents.on((e) => {
      if ((e.kind === 'release' || e.kind === 'rollback') && e.action === 'succeeded') void this.#scheduler.plan(e.app);
    });
    await this.#scheduler.start();
    this.log.info('scheduled jobs planned');
  }

  async stop(): Promise<void> {
    this.#unlisten?.();
    await this.#scheduler.stop();
  }

  /** apps:rename: the old name's jobs are disarmed, the new name's armed (their states moved with the store). */
  async renamed(from: string, to: string): Promise<void> {
    await this.#scheduler.plan(from);
    await this.#scheduler.plan(to);
  }

  /** The jobs of the app's current release; none when it has none or the app is gone. */
  async jobsOf(app: string): Promise<CronJob[]> {
    const record = await this.store.getApp(app);
    if (!record?.currentRelease) return [];
    return (await this.store.getRelease(app, record.currentRelease))?.cron ?? [];
  }

  async list(app: string): Promise<JobView[]> {
    const states = new Map((await this.store.cron.list(app)).map((s) => [s.id, s]));
    return (await this.jobsOf(app)).map((job) => {
      const state = states.get(job.id);
      const suspended = state?.suspended === true;
      const next = this.#scheduler.nextAt(app, job.id);
      const running = this.#scheduler.runningSince(app, job.id);
      return {
        id: job.id,
        schedule: job.schedule,
        command: job.command,
        concurrency: job.concurrency,
        suspended,
        ...(next === undefined || suspended ? {} : { nextRun: new Date(next).toISOString() }),
        ...(running === undefined ? {} : { runningSince: new Date(running).toISOString() }),
        ...(state?.lastRun ? { lastRun: state.lastRun } : {}),
      };
    });
  }

  async #job(app: string, id: string): Promise<CronJob> {
    const job = (await this.jobsOf(app)).find((j) => j.id === id);
    if (!job) throw new RackError('no_such_job', `${app} has no scheduled job ${JSON.stringify(id.slice(0, 40))} in its current release (see: cron:list -a ${app})`);
    return job;
  }

  /**
   * `cron:run`: one run now, its output to `echo` as it comes. A job whose policy is `forbid` is
   * not started beside a run of it that goes. Resolves with how it ended.
   */
  async runNow(app: string, id: string, by: string, echo: RunEcho, signal: AbortSignal): Promise<CronRunRecord> {
    const job = await this.#job(app, id);
    const since = this.#scheduler.runningSince(app, id);
    if (since !== undefined && job.concurrency === 'forbid') {
      throw new RackError('bad_argument', `job ${id} is running now (since ${new Date(since).toISOString()}) and its concurrency_policy is forbid`);
    }
    return this.#scheduler.runNow(app, id, signal, (own) => this.#runner.run(app, job, { trigger: by, signal: own, echo }));
  }

  /** Suspends (or resumes) a job of the current release; kept by its ID across releases and restarts. */
  async setSuspended(app: string, id: string, suspended: boolean): Promise<void> {
    await this.#job(app, id);
    await this.store.cron.setSuspended(app, id, suspended);
  }
}
