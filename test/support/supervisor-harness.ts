import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { AppLock } from '../../daemon/app-lock.js';
import { LogHub } from '../../daemon/logs/log-hub.js';
import type { ReleaseRecord } from '../../daemon/store/records.js';
import { Store } from '../../daemon/store/store.js';
import type { HealthCheckOptions } from '../../daemon/supervisor/health-check.js';
import { Supervisor } from '../../daemon/supervisor/supervisor.js';
import type { UserOutput } from '../../daemon/user-output.js';
import { FakeRouter } from './fake-router.js';
import { FakeRuntime } from './fake-runtime.js';

export const SILENT: UserOutput = { header: () => {}, detail: () => {}, error: () => {}, raw: () => {} };

/** Quick checks: a web process that will not answer fails in about a second, not a minute. */
export const QUICK_CHECK: Partial<HealthCheckOptions> = { intervalMs: 20, attempts: 3, deadlineMs: 5000 };

/**
 * A real Supervisor over the fake runtime and router, with a real store (LevelDB in a temp dir)
 * and the real deploy lock: its decisions run as in rackd, in milliseconds.
 */
export class SupervisorHarness {
  readonly journal: string[] = [];
  readonly runtime = new FakeRuntime(this.journal);
  readonly router = new FakeRouter(this.journal);
  readonly logs = new LogHub();
  readonly lock = new AppLock();
  readonly supervisor: Supervisor;

  private constructor(
    readonly dir: string,
    readonly store: Store,
  ) {
    this.supervisor = new Supervisor({ domain: 'localhost', httpPort: 8080 }, store, this.runtime, this.router, this.logs, pino({ level: 'silent' }), this.lock);
  }

  static async create(): Promise<SupervisorHarness> {
    const dir = await mkdtemp(join(tmpdir(), 'rack-supervisor-'));
    const store = new Store(join(dir, 'db'), join(dir, 'builds'));
    await store.start();
    const h = new SupervisorHarness(dir, store);
    h.supervisor.start();
    // As rackd does at start: adoption, then the reconciler runs.
    await h.supervisor.adopt();
    return h;
  }

  async close(): Promise<void> {
    this.supervisor.stop();
    await this.runtime.processes.close();
    await this.store.stop();
    await rm(this.dir, { recursive: true, force: true });
  }

  /** A new release of `app` (made on first use), not yet rolled out. */
  async release(app: string, config: Record<string, string> = {}): Promise<ReleaseRecord> {
    if (!(await this.store.getApp(app))) await this.store.createApp(app);
    return this.store.createRelease(app, {
      build: 1,
      image: `rack/${app}:b1`,
      processTypes: { web: 'node server.js' },
      config,
      healthcheck: QUICK_CHECK,
      description: 'test',
      createdBy: 'test',
    });
  }

  /** A release rolled out as a deploy does (the pipeline's deploy stage), under the app's lock. */
  async deploy(app: string, config: Record<string, string> = {}, formation?: Record<string, number>): Promise<ReleaseRecord> {
    const release = await this.release(app, config);
    await this.lock.run(app, async () => {
      try {
        await this.supervisor.rollout({
          release,
          out: SILENT,
          releasePhase: true,
          ...(formation ? { formation } : {}),
          record: async (serving) => {
            await this.store.finishRelease(release, 'succeeded', null, serving);
            if (formation) await this.store.setFormation(app, { formation });
          },
        });
      } catch (err) {
        await this.store.finishRelease(release, 'failed', String(err));
        throw err;
      }
    });
    return release;
  }

  /** The app's processes that run now. */
  async running(app: string): Promise<string[]> {
    return (await this.runtime.processes.list(app)).filter((p) => p.running).map((p) => p.id);
  }

  /** The app's lines in its log, as `logs` shows them. */
  logLines(app: string): string[] {
    return this.logs.recent(app, 1000).map((l) => `${l.source}: ${l.text}`);
  }
}

/** Polls `condition` until it holds, within a generous overall bound (no timing is asserted). */
export async function until(condition: () => boolean | Promise<boolean>, what: string, boundMs = 30_000): Promise<void> {
  const deadline = Date.now() + boundMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`never happened: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
