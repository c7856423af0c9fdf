import type { RackConfig } from '../config.js';
import type { Logger } from '../log.js';
import { RackError } from '../rack-error.js';
import type { Router, Upstream } from '../router/router.js';
import type { DockerRuntime, ProcessInfo } from '../runtime/docker-runtime.js';
import type { ReleaseRecord } from '../store/records.js';
import type { Store } from '../store/store.js';
import type { UserOutput } from '../user-output.js';
import { waitHealthy } from './health-check.js';
import { transition, type RolloutState } from './rollout.js';

/** The port every web process listens on inside its container. */
const WEB_PORT = 5000;
const DRAIN_TIMEOUT_MS = 30_000;
const STOP_GRACE_SECONDS = 30;

/**
 * Runs releases as containers and keeps the router pointed at the healthy ones. For now each
 * release runs one `web` process; the formation and crash restarts are the next step on this seam.
 */
export class Supervisor {
  constructor(
    private readonly config: RackConfig,
    private readonly store: Store,
    private readonly runtime: DockerRuntime,
    private readonly router: Router,
    private readonly log: Logger,
  ) {}

  hosts(app: string): string[] {
    return [`${app}.${this.config.domain}`];
  }

  url(app: string): string {
    const port = this.config.httpPort === 80 ? '' : `:${this.config.httpPort}`;
    return `http://${app}.${this.config.domain}${port}/`;
  }

  /** Rolls a release out. Throws `deploy_failed` with the reason when the new processes never become healthy. */
  async deploy(release: ReleaseRecord, out: UserOutput): Promise<void> {
    const command = release.processTypes['web'];
    if (command === undefined) {
      throw new RackError('deploy_failed', 'no web process type: add "web: <command>" to the Procfile');
    }
    const old = (await this.runtime.listProcesses(release.app)).filter((p) => p.release !== release.version || !p.running);
    let state: RolloutState = 'starting';
    let started: ProcessInfo | undefined;
    try {
      out.header(`Starting web process of v${release.version}`);
      started = await this.runtime.startProcess({
        app: release.app,
        release: release.version,
        type: 'web',
        image: release.image,
        command,
        env: release.config,
        port: WEB_PORT,
      });
      state = transition(state, 'started');
      const upstream = started.upstream;
      if (!upstream) throw new RackError('deploy_failed', 'the web process has no published port');
      const id = started.id;
      const failure = await waitHealthy(upstream.host, upstream.port, async () => (await this.runtime.inspectProcess(id)).running);
      if (failure !== null) {
        const logs = await this.runtime.processLogs(id, 20);
        for (const line of logs.split('\n').filter((l) => l !== '')) out.detail(line);
        throw new RackError('deploy_failed', `v${release.version} failed its health check: ${failure}`);
      }
      state = transition(state, 'healthy');
      this.router.setApp(release.app, this.hosts(release.app), [upstream]);
      state = transition(state, 'switched');
      out.detail(`web is healthy; router switched to v${release.version}`);
    } catch (err) {
      state = transition(state, 'failure');
      if (started) await this.runtime.removeContainer(started.id);
      state = transition(state, 'cleaned_up');
      this.log.warn({ app: release.app, release: release.version, state }, 'rollout failed; old release keeps serving');
      throw err instanceof RackError ? err : new RackError('deploy_failed', `rollout failed: ${String(err)}`, { cause: err });
    }
    await this.drain(old);
    transition(state, 'drained');
  }

  /** In-flight requests finish first, then SIGTERM, then SIGKILL after the grace period. */
  private async drain(old: ProcessInfo[]): Promise<void> {
    const upstreams = old.map((p) => p.upstream).filter((u): u is Upstream => u !== null);
    await this.router.waitIdle(upstreams, DRAIN_TIMEOUT_MS);
    await Promise.all(
      old.map(async (p) => {
        try {
          await this.runtime.stopProcess(p.id, STOP_GRACE_SECONDS);
        } catch (err) {
          this.log.warn({ container: p.name, err: String(err) }, 'could not stop old process');
        }
      }),
    );
  }

  /**
   * At start: find what already runs by its labels. Processes of each app's current release are
   * routed again; leftovers of an interrupted rollout are removed; a current release with nothing
   * running (say, after a reboot) is started.
   */
  async adopt(): Promise<void> {
    const running = await this.runtime.listProcesses();
    const apps = await this.store.listApps();
    for (const p of running.filter((x) => !apps.some((a) => a.name === x.app))) {
      this.log.info({ container: p.name }, 'removing process of an app rack no longer has');
      await this.runtime.removeContainer(p.id);
    }
    for (const app of apps) {
      // A rollout cut short by a crash never finished: record it as failed, whole.
      for (const r of await this.store.listReleases(app.name)) {
        if (r.status === 'pending') await this.store.finishRelease(r, 'failed', 'interrupted: rackd stopped during the rollout');
      }
      // Known apps answer 503 rather than 404 until something of theirs is healthy.
      this.router.setApp(app.name, this.hosts(app.name), []);
      const mine = running.filter((p) => p.app === app.name);
      const current = mine.filter((p) => p.release === app.currentRelease && p.running && p.upstream);
      for (const p of mine.filter((x) => !current.includes(x))) {
        this.log.info({ app: app.name, container: p.name }, 'removing process not of the current release');
        await this.runtime.removeContainer(p.id);
      }
      if (app.currentRelease === 0) continue;
      if (current.length > 0) {
        this.router.setApp(app.name, this.hosts(app.name), current.map((p) => p.upstream!));
        this.log.info({ app: app.name, release: app.currentRelease }, 're-adopted running processes');
        continue;
      }
      const release = await this.store.getRelease(app.name, app.currentRelease);
      if (!release) continue;
      try {
        await this.deploy(release, { header: () => {}, detail: () => {}, error: () => {}, raw: () => {} });
        this.log.info({ app: app.name, release: release.version }, 'restarted current release');
      } catch (err) {
        this.router.setApp(app.name, this.hosts(app.name), []);
        this.log.error({ app: app.name, err: String(err) }, 'could not restart current release');
      }
    }
  }
}
