import type { RackConfig } from '../config.js';
import type { Logger } from '../log.js';
import type { LogHub } from '../logs/log-hub.js';
import { RackError } from '../rack-error.js';
import type { Router, Upstream } from '../router/router.js';
import type { DockerRuntime, ProcessInfo } from '../runtime/docker-runtime.js';
import { containerCommand } from '../runtime/process-command.js';
import type { ReleaseRecord } from '../store/records.js';
import type { Store } from '../store/store.js';
import { lineSplitter, type UserOutput } from '../user-output.js';
import { waitHealthy } from './health-check.js';
import { transition, type RolloutState } from './rollout.js';

/** The port every web process listens on inside its container. */
const WEB_PORT = 5000;
const DRAIN_TIMEOUT_MS = 30_000;
const STOP_GRACE_SECONDS = 30;
const RELEASE_PHASE_TIMEOUT_MS = 10 * 60_000;

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
    private readonly logs: LogHub,
    private readonly log: Logger,
  ) {}

  /** One log follower per process container, stopped when the process is. */
  private readonly watchers = new Map<string, AbortController>();

  private watch(p: ProcessInfo, tail: number): void {
    if (this.watchers.has(p.id)) return;
    const abort = new AbortController();
    this.watchers.set(p.id, abort);
    const source = `app[${p.type}.${p.name.split('.').pop()}]`;
    this.runtime
      .followLogs(
        p.id,
        tail,
        (time, text) => this.logs.push({ time: `${time.slice(0, 23)}Z`, app: p.app, source, type: p.type, text }),
        abort.signal,
      )
      .catch((err: unknown) => this.log.debug({ container: p.name, err: String(err) }, 'log follow ended'))
      .finally(() => this.watchers.delete(p.id));
  }

  private unwatch(id: string): void {
    this.watchers.get(id)?.abort();
    this.watchers.delete(id);
  }

  /** Stops following every process's output (daemon stop); the processes keep running. */
  stop(): void {
    for (const abort of this.watchers.values()) abort.abort();
    this.watchers.clear();
  }

  /** The web processes serving each app now: the supervisor is the one writer of the router's table. */
  private readonly serving = new Map<string, Upstream[]>();

  defaultHost(app: string): string {
    return `${app}.${this.config.domain}`;
  }

  /**
   * Points the app's host names (default and added domains) at `upstreams`, or at the ones serving
   * now when omitted (after a domain change). Known apps with nothing healthy answer 503, not 404.
   */
  async publish(app: string, upstreams?: Upstream[]): Promise<void> {
    if (upstreams) this.serving.set(app, upstreams);
    const record = await this.store.getApp(app);
    this.router.setApp(app, [this.defaultHost(app), ...(record?.domains ?? [])], this.serving.get(app) ?? []);
  }

  unpublish(app: string): void {
    this.serving.delete(app);
    this.router.removeApp(app);
    this.logs.forget(app);
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
      const releaseCommand = release.processTypes['release'];
      if (releaseCommand !== undefined) await this.releasePhase(release, releaseCommand, out);
      out.header(`Starting web process of v${release.version}`);
      started = await this.runtime.startProcess({
        app: release.app,
        release: release.version,
        type: 'web',
        image: release.image,
        builder: release.builder,
        command,
        env: release.config,
        port: WEB_PORT,
      });
      state = transition(state, 'started');
      this.watch(started, 1000);
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
      await this.publish(release.app, [upstream]);
      state = transition(state, 'switched');
      out.detail(`web is healthy; router switched to v${release.version}`);
    } catch (err) {
      state = transition(state, 'failure');
      if (started) {
        this.unwatch(started.id);
        await this.runtime.removeContainer(started.id);
      }
      state = transition(state, 'cleaned_up');
      this.log.warn({ app: release.app, release: release.version, state }, 'rollout failed; old release keeps serving');
      throw err instanceof RackError ? err : new RackError('deploy_failed', `rollout failed: ${String(err)}`, { cause: err });
    }
    await this.drain(old);
    transition(state, 'drained');
  }

  /** The Procfile's `release:` command (migrations) runs once before anything switches; failing it fails the release. */
  private async releasePhase(release: ReleaseRecord, command: string, out: UserOutput): Promise<void> {
    out.header(`Running release command: ${command}`);
    const lines = lineSplitter((line) => {
      out.detail(line);
      this.logs.push({ time: new Date().toISOString(), app: release.app, source: 'rack[release]', type: 'release', text: line });
    });
    const run = await this.runtime.runTask({
      app: release.app,
      role: 'release',
      id: release.version,
      image: release.image,
      cmd: containerCommand(release.builder, command),
      env: release.config,
      onOutput: (chunk) => lines.push(chunk),
      timeoutMs: RELEASE_PHASE_TIMEOUT_MS,
    });
    lines.end();
    await this.runtime.removeContainer(run.container);
    if (run.exitCode !== 0) {
      throw new RackError('deploy_failed', `the release command failed (exit status ${run.exitCode})`);
    }
  }

  /** In-flight requests finish first, then SIGTERM, then SIGKILL after the grace period. */
  private async drain(old: ProcessInfo[]): Promise<void> {
    const upstreams = old.map((p) => p.upstream).filter((u): u is Upstream => u !== null);
    await this.router.waitIdle(upstreams, DRAIN_TIMEOUT_MS);
    await Promise.all(
      old.map(async (p) => {
        try {
          await this.runtime.stopProcess(p.id, STOP_GRACE_SECONDS);
          this.unwatch(p.id);
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
      await this.publish(app.name, []);
      const mine = running.filter((p) => p.app === app.name);
      const current = mine.filter((p) => p.release === app.currentRelease && p.running && p.upstream);
      for (const p of mine.filter((x) => !current.includes(x))) {
        this.log.info({ app: app.name, container: p.name }, 'removing process not of the current release');
        await this.runtime.removeContainer(p.id);
      }
      if (app.currentRelease === 0) continue;
      if (current.length > 0) {
        await this.publish(app.name, current.map((p) => p.upstream!));
        for (const p of current) this.watch(p, 100);
        this.log.info({ app: app.name, release: app.currentRelease }, 're-adopted running processes');
        continue;
      }
      const release = await this.store.getRelease(app.name, app.currentRelease);
      if (!release) continue;
      try {
        await this.deploy(release, { header: () => {}, detail: () => {}, error: () => {}, raw: () => {} });
        this.log.info({ app: app.name, release: release.version }, 'restarted current release');
      } catch (err) {
        await this.publish(app.name, []);
        this.log.error({ app: app.name, err: String(err) }, 'could not restart current release');
      }
    }
  }
}
