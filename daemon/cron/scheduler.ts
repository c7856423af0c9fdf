import type { CronJob } from '../store/records.js';
import { nextFire } from './cron-schedule.js';

/** Time as the scheduler sees it: the real clock in rackd, a hand-moved one in its unit test. */
export interface CronClock {
  now(): number;
  /** Calls `fn` after `ms`; the returned function cancels it. */
  after(ms: number, fn: () => void): () => void;
}

export const systemClock: CronClock = {
  now: () => Date.now(),
  after: (ms, fn) => {
    const timer = setTimeout(fn, ms);
    // A pending fire never keeps a stopping rackd (or a test) alive.
    timer.unref();
    return () => clearTimeout(timer);
  },
};

/**
 * A timer is never armed for longer than this: Node's timers overflow past 24.8 days (`@yearly`),
 * and waking now and then also notices a wall clock that jumped.
 */
const LONGEST_WAIT_MS = 60 * 60_000;
/** A fire noticed later than this (a suspended machine, a blocked event loop) is skipped, not run late. */
const LATE_MS = 60_000;

/** What the scheduler asks of rackd; everything it decides is in here, so it is tested without Docker. */
export interface SchedulerParts {
  clock: CronClock;
  /** Every app that has a current release, at start. */
  apps(): Promise<string[]>;
  /** The jobs of the app's current release (none when it has none, or the app is gone). */
  jobsOf(app: string): Promise<CronJob[]>;
  suspended(app: string, id: string): Promise<boolean>;
  /** When the job last started, for the line about fires missed while rackd was stopped. */
  lastStarted(app: string, id: string): Promise<number | undefined>;
  /** One scheduled run; resolves once it has ended, recorded and told whatever its outcome. */
  run(app: string, job: CronJob, signal: AbortSignal): Promise<void>;
  /** A `rack[cron]` line in the app's log. */
  tell(app: string, text: string): void;
  /** Something went wrong that is rack's, not the job's: for the operator. */
  warn(fields: Record<string, unknown>, message: string): void;
}

interface Armed {
  job: CronJob;
  at: number;
  cancel: () => void;
}

interface Running {
  abort: AbortController;
  since: number;
}

const sameJob = (a: CronJob, b: CronJob) => a.id === b.id && a.schedule === b.schedule && a.command === b.command && a.concurrency === b.concurrency;
const hhmm = (ms: number) => new Date(ms).toISOString().slice(11, 16);

/**
 * Fires each app's scheduled jobs (those of its current release) at their times. Planned at start
 * from the current time: fires missed while rackd was stopped are not caught up (one line says how
 * many). Re-planned when a release changes (`plan(app)`). At each fire it asks again whether the job
 * is still the current release's and not suspended, so neither needs a re-plan. A run of a job still
 * going when the job fires again is the job's `concurrency` to settle: `forbid` (the default) skips
 * the fire with a line, `replace` stops the old run, `allow` starts another.
 */
export class CronScheduler {
  readonly #plans = new Map<string, Map<string, Armed>>();
  readonly #running = new Map<string, Set<Running>>();
  readonly #runs = new Set<Promise<void>>();
  /** Plans of one app one after another, so two release events never arm a job twice. */
  readonly #planning = new Map<string, Promise<void>>();
  #stopped = false;

  constructor(private readonly parts: SchedulerParts) {}

  async start(): Promise<void> {
    this.#stopped = false;
    for (const app of await this.parts.apps()) await this.plan(app, { resumed: true });
  }

  /** Cancels every timer and stops the runs under way (their containers are removed), waiting for them to end. */
  async stop(): Promise<void> {
    this.#stopped = true;
    for (const plan of this.#plans.values()) for (const armed of plan.values()) armed.cancel();
    this.#plans.clear();
    for (const set of this.#running.values()) for (const r of set) r.abort.abort();
    await Promise.allSettled([...this.#runs]);
  }

  /** (Re-)arms the app's jobs from its current release; jobs gone are disarmed (a run under way ends on its own). */
  plan(app: string, opts: { resumed?: boolean } = {}): Promise<void> {
    const before = this.#planning.get(app) ?? Promise.resolve();
    const next = before.then(() => this.#plan(app, opts.resumed === true));
    const settled = next.catch((err: unknown) => this.parts.warn({ app, err: String(err) }, 'could not plan scheduled jobs'));
    this.#planning.set(app, settled);
    void settled.finally(() => {
      if (this.#planning.get(app) === settled) this.#planning.delete(app);
    });
    return settled;
  }

  async #plan(app: string, resumed: boolean): Promise<void> {
    if (this.#stopped) return;
    const jobs = await this.parts.jobsOf(app);
    const plan = this.#plans.get(app) ?? new Map<string, Armed>();
    for (const [id, armed] of plan) {
      if (!jobs.some((j) => sameJob(j, armed.job))) {
        armed.cancel();
        plan.delete(id);
      }
    }
    const now = this.parts.clock.now();
    for (const job of jobs) {
      if (plan.has(job.id)) continue;
      if (resumed) await this.#tellMissed(app, job, now);
      this.#arm(app, plan, job, nextFire(job.schedule, new Date(now)).getTime());
    }
    if (plan.size > 0) this.#plans.set(app, plan);
    else this.#plans.delete(app);
  }

  /** At start: fires that fell while rackd was stopped are skipped, said in one line. */
  async #tellMissed(app: string, job: CronJob, now: number): Promise<void> {
    const last = await this.parts.lastStarted(app, job.id);
    if (last === undefined || (await this.parts.suspended(app, job.id))) return;
    let missed = 0;
    for (let t = nextFire(job.schedule, new Date(last)).getTime(); t <= now && missed < 1000; t = nextFire(job.schedule, new Date(t)).getTime()) missed++;
    if (missed > 0) this.parts.tell(app, `job ${job.id}: ${missed === 1000 ? '1000 or more' : missed} run${missed === 1 ? '' : 's'} missed while rackd was stopped, not caught up; next at ${new Date(nextFire(job.schedule, new Date(now)).getTime()).toISOString()}`);
  }

  #arm(app: string, plan: Map<string, Armed>, job: CronJob, at: number): void {
    const wait = Math.min(Math.max(0, at - this.parts.clock.now()), LONGEST_WAIT_MS);
    const cancel = this.parts.clock.after(wait, () => this.#wake(app, job.id, at));
    plan.set(job.id, { job, at, cancel });
  }

  #wake(app: string, id: string, at: number): void {
    const plan = this.#plans.get(app);
    const armed = plan?.get(id);
    if (this.#stopped || !plan || !armed || armed.at !== at) return;
    const now = this.parts.clock.now();
    if (now < at) return this.#arm(app, plan, armed.job, at);
    this.#arm(app, plan, armed.job, nextFire(armed.job.schedule, new Date(Math.max(now, at))).getTime());
    if (now - at > LATE_MS) {
      this.parts.tell(app, `job ${id}: the run due at ${new Date(at).toISOString()} was noticed ${Math.round((now - at) / 1000)} s late and skipped`);
      return;
    }
    this.#track(this.#fire(app, armed.job));
  }

  #track(run: Promise<void>): void {
    this.#runs.add(run);
    void run.finally(() => this.#runs.delete(run));
  }

  async #fire(app: string, job: CronJob): Promise<void> {
    try {
      // The release may have changed since the plan (its event is on its way), or the app be gone.
      const current = (await this.parts.jobsOf(app)).find((j) => j.id === job.id);
      if (!current || !sameJob(current, job)) return void this.plan(app);
      if (await this.parts.suspended(app, job.id)) return;
      const key = `${app}!${job.id}`;
      const running = this.#running.get(key);
      if (running && running.size > 0 && job.concurrency !== 'allow') {
        const since = Math.min(...[...running].map((r) => r.since));
        if (job.concurrency === 'forbid') {
          this.parts.tell(app, `job ${job.id}: skipped, its run started at ${hhmm(since)} UTC is still going (concurrency_policy forbid)`);
          return;
        }
        this.parts.tell(app, `job ${job.id}: stopping its run started at ${hhmm(since)} UTC for the new one (concurrency_policy replace)`);
        for (const r of running) r.abort.abort();
      }
      await this.#during(app, job.id, (signal) => this.parts.run(app, job, signal));
    } catch (err) {
      this.parts.warn({ app, job: job.id, err: String(err) }, 'scheduled job fire failed');
    }
  }

  /**
   * Runs `task` as a run of the job, seen by the job's next fires (`cron:run` comes through here
   * too), and stopped with the others by `stop()`.
   */
  async #during<T>(app: string, id: string, task: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const key = `${app}!${id}`;
    const run: Running = { abort: new AbortController(), since: this.parts.clock.now() };
    let set = this.#running.get(key);
    if (!set) this.#running.set(key, (set = new Set()));
    set.add(run);
    try {
      return await task(run.abort.signal);
    } finally {
      set.delete(run);
      if (set.size === 0 && this.#running.get(key) === set) this.#running.delete(key);
    }
  }

  /** When a run of the job goes now (the oldest, if several), for `cron:list` and cron:run's refusal. */
  runningSince(app: string, id: string): number | undefined {
    const set = this.#running.get(`${app}!${id}`);
    return set && set.size > 0 ? Math.min(...[...set].map((r) => r.since)) : undefined;
  }

  /** When the job fires next, as armed now. */
  nextAt(app: string, id: string): number | undefined {
    return this.#plans.get(app)?.get(id)?.at;
  }

  /**
   * `cron:run`: one run now, outside the schedule, counted as a run of the job (a fire while it
   * goes follows the job's policy). Stopped by `signal` (the user went away) or rackd's stop.
   */
  runNow<T>(app: string, id: string, signal: AbortSignal, task: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const run = this.#during(app, id, (own) => task(AbortSignal.any([own, signal])));
    this.#track(run.then(() => undefined, () => undefined));
    return run;
  }
}
