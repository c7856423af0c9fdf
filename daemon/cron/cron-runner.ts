import { Readable, Writable } from 'node:stream';
import type { AuditLog } from '../audit/audit-log.js';
import { lineSplitter } from '../line-splitter.js';
import type { Logger } from '../log.js';
import type { LogHub } from '../logs/log-hub.js';
import { RackError } from '../rack-error.js';
import { resolveFormation, totalProcesses } from '../release/formation.js';
import type { InteractiveSpec } from '../runtime/docker-tasks.js';
import { limitsFor } from '../runtime/isolation.js';
import type { CronJob, CronRunRecord } from '../store/records.js';
import type { Store } from '../store/store.js';

export interface CronRunnerParts {
  store: Store;
  /** What `run` uses of the runtime (DockerRuntime; a stand-in in the unit test). */
  runtime: {
    runInteractive(spec: InteractiveSpec): Promise<number>;
    tasks: { oneOffCount(app: string): number };
    networks: { ensure(app: string): Promise<string> };
  };
  logs: LogHub;
  audit: AuditLog;
  maxProcesses: number;
  /** RACK_CRON_TIMEOUT: a run going longer is killed. */
  timeoutMs: number;
  log: Logger;
}

/** Where cron:run's user sees the run's output as it comes. */
export interface RunEcho {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

/**
 * One run of a scheduled job: a one-off process of the app's current release, as `run` starts
 * (its image, config, network and web limits, counted toward RACK_MAX_PROCESSES), named
 * `scheduler.N` in `DYNO` and in the logs, its command line given to the container's shell. Its
 * output goes to the app's log as `app[scheduler.N]`, its end as a `rack[cron]` line; its start and
 * end are kept in the store for `cron:list`. Killed after RACK_CRON_TIMEOUT, or when `signal` fires.
 */
export class CronRunner {
  /** Per app, the N of the last `scheduler.N`: it only grows while rackd runs, so two runs never share a name. */
  readonly #numbers = new Map<string, number>();

  constructor(private readonly parts: CronRunnerParts) {}

  tell(app: string, text: string): void {
    this.parts.logs.push({ time: new Date().toISOString(), app, source: 'rack[cron]', type: 'cron', text });
  }

  /**
   * Runs the job and resolves with how it ended. Throws (nothing started) when the app has no
   * release or is at its process limit.
   */
  async run(app: string, job: CronJob, opts: { trigger: string; signal: AbortSignal; echo?: RunEcho }): Promise<CronRunRecord> {
    const { store, runtime } = this.parts;
    const record = await store.requireApp(app);
    const release = record.currentRelease ? await store.getRelease(app, record.currentRelease) : undefined;
    if (!release) throw new RackError('no_such_release', `${app} has no running release yet`);
    const network = await runtime.networks.ensure(app);
    const started: CronRunRecord = { startedAt: new Date().toISOString(), trigger: opts.trigger };
    // Kept before it starts: a rackd that dies mid-run finds it unfinished at start.
    await store.cron.setLastRun(app, job.id, started);
    // As for `run`: nothing is awaited between this count and runInteractive's own.
    const formation = totalProcesses(resolveFormation(release, record.formation));
    const oneOffs = runtime.tasks.oneOffCount(app);
    if (formation + oneOffs >= this.parts.maxProcesses) {
      const error = `${app} runs ${formation} processes and ${oneOffs} one-off ones, at its limit of ${this.parts.maxProcesses} (RACK_MAX_PROCESSES)`;
      await store.cron.setLastRun(app, job.id, { ...started, finishedAt: new Date().toISOString(), error });
      throw new RackError('forbidden', error);
    }
    const n = (this.#numbers.get(app) ?? 0) + 1;
    this.#numbers.set(app, n);
    const dyno = `scheduler.${n}`;
    const source = `app[${dyno}]`;
    this.tell(app, `job ${job.id} starting as ${dyno}: ${job.command.slice(0, 200)}`);
    const out = this.#output(app, source, dyno, opts.echo?.stdout);
    const err = this.#output(app, source, dyno, opts.echo?.stderr);
    const abort = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      abort.abort();
    }, this.parts.timeoutMs);
    const stop = () => abort.abort();
    opts.signal.addEventListener('abort', stop, { once: true });
    if (opts.signal.aborted) abort.abort();
    const began = Date.now();
    let exitCode: number | undefined;
    let error: string | undefined;
    try {
      exitCode = await runtime.runInteractive({
        app,
        release: release.version,
        image: release.image,
        builder: release.builder,
        command: job.command,
        env: { ...release.config, DYNO: dyno },
        network,
        limits: limitsFor('web', record.limits),
        tty: null,
        // No one types into a scheduled run: its stdin is closed from the start.
        stdin: Readable.from([]),
        stdout: out.stream,
        stderr: err.stream,
        abort: abort.signal,
      });
    } catch (e) {
      error = RackError.from(e).message;
    } finally {
      clearTimeout(timer);
      opts.signal.removeEventListener('abort', stop);
      out.end();
      err.end();
    }
    if (timedOut) error = `killed after ${Math.round(this.parts.timeoutMs / 1000)} s (RACK_CRON_TIMEOUT)`;
    else if (opts.signal.aborted && error === undefined) error = 'stopped';
    const seconds = ((Date.now() - began) / 1000).toFixed(1);
    const ended: CronRunRecord = { ...started, finishedAt: new Date().toISOString(), ...(exitCode === undefined ? {} : { exitCode }), ...(error ? { error } : {}) };
    await store.cron.setLastRun(app, job.id, ended).catch((e: unknown) => this.parts.log.warn({ app, job: job.id, err: String(e) }, 'could not record a scheduled run'));
    const how = exitCode === undefined ? 'did not run to its end' : `exited with ${exitCode}`;
    this.tell(app, `job ${job.id} ${how} after ${seconds}s${error ? ` (${error})` : ''}`);
    return ended;
  }

  /**
   * A scheduled run, as the scheduler fires it: whatever goes wrong is told in the app's log and
   * kept as its last run, never thrown. Runs that fail (or could not start) are audited as rack's;
   * the ones that succeed are only logged, or a job every minute would push everything else out of
   * the audit log's 10,000 entries in a week.
   */
  async scheduled(app: string, job: CronJob, signal: AbortSignal): Promise<void> {
    let outcome: string;
    let detail: string;
    try {
      const ended = await this.run(app, job, { trigger: 'schedule', signal });
      if (ended.exitCode === 0) return;
      outcome = ended.error === 'stopped' ? 'stopped' : 'job_failed';
      detail = `${job.id}: ${ended.exitCode === undefined ? ended.error ?? 'failed' : `exit ${ended.exitCode}`}`;
    } catch (e) {
      const failure = RackError.from(e);
      // The app went away between the fire and the run: nothing of it to tell.
      if (failure.code === 'no_such_app') return;
      this.tell(app, `job ${job.id} not run: ${failure.message}`);
      outcome = failure.code;
      detail = `${job.id}: ${failure.message}`;
    }
    if (outcome === 'stopped') return;
    await this.parts.audit.recordByRack('scheduler', { app, action: 'cron:run', detail, outcome });
  }

  /**
   * At start, before the schedule resumes: a run a stopped or crashed rackd left unfinished was
   * removed with its container by adoption (role `run`, found by its labels), so it is recorded
   * and told as interrupted.
   */
  async markInterrupted(): Promise<void> {
    for (const state of await this.parts.store.cron.list()) {
      const last = state.lastRun;
      if (!last || last.finishedAt !== undefined) continue;
      await this.parts.store.cron.setLastRun(state.app, state.id, { ...last, finishedAt: new Date().toISOString(), error: 'interrupted: rackd stopped during the run' });
      this.tell(state.app, `job ${state.id}: its run started at ${last.startedAt} was interrupted when rackd stopped (its container was removed)`);
    }
  }

  #output(app: string, source: string, dyno: string, echo: NodeJS.WritableStream | undefined): { stream: Writable; end: () => void } {
    const lines = lineSplitter((text) => this.parts.logs.push({ time: new Date().toISOString(), app, source, type: 'scheduler', text }));
    const stream = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(chunk);
        // The user's side of cron:run is read no faster than it takes it.
        if (echo && !echo.write(chunk)) echo.once('drain', () => done());
        else done();
      },
    });
    stream.on('error', (e) => this.parts.log.warn({ app, dyno, err: String(e) }, 'scheduled run output failed'));
    return { stream, end: () => lines.end() };
  }
}
