import type { RackConfig } from '../config.js';
import type { Logger } from '../log.js';
import type { LogHub } from '../logs/log-hub.js';
import { RackError } from '../rack-error.js';
import type { RouterClient } from '../router/router-client.js';
import type { Upstream } from '../router/upstream.js';
import type { DockerRuntime, ProcessInfo } from '../runtime/docker-runtime.js';
import { containerCommand } from '../runtime/process-command.js';
import type { ReleaseRecord } from '../store/records.js';
import type { Store } from '../store/store.js';
import { resolveFormation } from '../release/formation.js';
import { lineSplitter, type UserOutput } from '../user-output.js';
import { DEFAULT_HEALTH_CHECK, waitHealthy, type HealthCheckOptions } from './health-check.js';
import { LogFollower } from './log-follower.js';
import { transition, type RolloutState } from './rollout.js';

/** The port every web process listens on inside its container. */
const WEB_PORT = 5000;
const DRAIN_TIMEOUT_MS = 30_000;
const STOP_GRACE_SECONDS = 30;
const RELEASE_PHASE_TIMEOUT_MS = 10 * 60_000;
/** How long a non-web process must stay up to count as healthy. */
const SETTLE_MS = 2000;

export type Formation = Record<string, number>;

/**
 * Runs releases as containers (every process type of the formation) and keeps the router pointed
 * at the healthy web ones. Crash restarts are Docker's restart policy; this class decides what
 * runs, checks it, switches and drains.
 */
export class Supervisor {
  constructor(
    private readonly config: RackConfig,
    private readonly store: Store,
    private readonly runtime: DockerRuntime,
    private readonly router: RouterClient,
    private readonly logs: LogHub,
    private readonly log: Logger,
  ) {
    this.follower = new LogFollower(runtime, logs, log);
  }

  private readonly follower: LogFollower;

  /** Stops following every process's output (daemon stop); the processes keep running. */
  stop(): void {
    this.follower.stop();
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

  /**
   * Rolls a release out: start every process of the formation → wait until all are healthy →
   * switch the router to the new web set in one step → drain the old ones. Throws `deploy_failed`
   * with the reason when a new process never becomes healthy or dies before the switch; the old
   * processes then keep serving. `only` limits the rollout to some types (ps:restart TYPE).
   */
  async deploy(
    release: ReleaseRecord,
    out: UserOutput,
    opts: { formation?: Formation; only?: string[]; onSwitched?: () => Promise<void> } = {},
  ): Promise<void> {
    const formation = opts.formation ?? (await this.formationOf(release));
    const types = Object.keys(formation).filter((t) => (formation[t] ?? 0) > 0 && (!opts.only || opts.only.includes(t)));
    for (const type of types) {
      if (!Object.hasOwn(release.processTypes, type)) throw new RackError('deploy_failed', `v${release.version} has no process type "${type}"`);
    }
    const inScope = (p: ProcessInfo) => !opts.only || opts.only.includes(p.type);
    const old = (await this.runtime.listProcesses(release.app)).filter(inScope);
    const health = { ...DEFAULT_HEALTH_CHECK, ...release.healthcheck };
    let state: RolloutState = 'starting';
    const started: ProcessInfo[] = [];
    try {
      const releaseCommand = release.processTypes['release'];
      if (releaseCommand !== undefined && !opts.only) await this.releasePhase(release, releaseCommand, out);
      out.header(`Starting ${types.map((t) => `${t}=${formation[t]}`).join(' ') || 'no processes'} of v${release.version}`);
      for (const type of types) {
        for (let i = 0; i < (formation[type] ?? 0); i++) {
          const p = await this.runtime.startProcess({
            app: release.app,
            release: release.version,
            type,
            image: release.image,
            builder: release.builder,
            command: release.processTypes[type]!,
            env: release.config,
            port: type === 'web' ? WEB_PORT : undefined,
          });
          started.push(p);
          this.follower.watch(p, 1000);
        }
      }
      state = transition(state, 'started');
      const failures = await Promise.all(started.map((p) => this.checkHealthy(p, health)));
      const failed = failures.findIndex((f) => f !== null);
      // Healthy once is not enough: every new process must still be up, never restarted, at the switch.
      const settled = failed === -1 ? await this.stillUp(started) : null;
      if (failed !== -1 || settled !== null) {
        const culprit = failed !== -1 ? started[failed]! : settled!.process;
        const logs = await this.runtime.processLogs(culprit.id, 20);
        for (const line of logs.split('\n').filter((l) => l !== '')) out.detail(line);
        const reason = failed !== -1 ? failures[failed]! : settled!.reason;
        throw new RackError('deploy_failed', `v${release.version} failed its health check: ${culprit.type}: ${reason}`);
      }
      state = transition(state, 'healthy');
      const web = started.filter((p) => p.type === 'web' && p.upstream).map((p) => p.upstream!);
      if (!opts.only || opts.only.includes('web')) {
        await this.publish(release.app, web);
        await this.router.flush();
      }
      state = transition(state, 'switched');
      out.detail(`all processes healthy; router switched to v${release.version}`);
    } catch (err) {
      state = transition(state, 'failure');
      for (const p of started) {
        this.follower.unwatch(p.id);
        await this.runtime.removeContainer(p.id);
      }
      state = transition(state, 'cleaned_up');
      this.log.warn({ app: release.app, release: release.version, state }, 'rollout failed; old release keeps serving');
      throw err instanceof RackError ? err : new RackError('deploy_failed', `rollout failed: ${String(err)}`, { cause: err });
    }
    // Recorded before the drain: a crash from here on leaves the new release current and serving.
    await opts.onSwitched?.();
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

  /** The app's scaled formation, for the types this release has; new types get the defaults. */
  async formationOf(release: ReleaseRecord): Promise<Formation> {
    const app = await this.store.requireApp(release.app);
    return resolveFormation(release.processTypes, app.formation);
  }

  /** web: answers HTTP on PORT; other types: stay up through the settle period. */
  private async checkHealthy(p: ProcessInfo, health: HealthCheckOptions): Promise<string | null> {
    const alive = async () => {
      const now = await this.runtime.inspectProcess(p.id);
      return now.running && now.restarts === 0;
    };
    if (p.type === 'web' && p.upstream) return waitHealthy(p.upstream.host, p.upstream.port, alive, health);
    await new Promise((r) => setTimeout(r, SETTLE_MS));
    return (await alive()) ? null : 'the process exited within the settle period';
  }

  private async stillUp(processes: ProcessInfo[]): Promise<{ process: ProcessInfo; reason: string } | null> {
    for (const p of processes) {
      const now = await this.runtime.inspectProcess(p.id);
      if (!now.running || now.restarts > 0) return { process: p, reason: 'the process died after passing its check' };
    }
    return null;
  }

  /** In-flight requests finish first, then SIGTERM, then SIGKILL after the grace period. */
  private async drain(old: ProcessInfo[]): Promise<void> {
    const upstreams = old.map((p) => p.upstream).filter((u): u is Upstream => u !== null);
    await this.router.waitIdle(upstreams, DRAIN_TIMEOUT_MS);
    await Promise.all(
      old.map(async (p) => {
        try {
          await this.runtime.stopProcess(p.id, STOP_GRACE_SECONDS);
          this.follower.unwatch(p.id);
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
    const known = new Set(apps.map((a) => a.name));
    for (const route of await this.router.routes()) if (!known.has(route.app)) this.router.removeApp(route.app);
    for (const p of running.filter((x) => !known.has(x.app))) {
      this.log.info({ container: p.name }, 'removing process of an app rack no longer has');
      await this.runtime.removeContainer(p.id);
    }
    for (const app of apps) {
      // A rollout cut short by a crash never finished: record it as failed, whole.
      for (const r of await this.store.listReleases(app.name)) {
        if (r.status === 'pending') await this.store.finishRelease(r, 'failed', 'interrupted: rackd stopped during the rollout');
      }
      const mine = running.filter((p) => p.app === app.name);
      // Restarting counts as ours too: Docker brings it back, and its port stays the same.
      const current = mine.filter((p) => p.release === app.currentRelease && (p.running || p.restarting));
      const leftovers = mine.filter((p) => !current.includes(p));
      if (current.length > 0) {
        // Route to what is current first (the router may still point at an interrupted rollout), then clean up.
        await this.publish(app.name, current.filter((p) => p.type === 'web' && p.upstream).map((p) => p.upstream!));
        await this.router.flush();
        await this.removeAll(app.name, leftovers);
        for (const p of current) this.follower.watch(p, 100);
        this.log.info({ app: app.name, release: app.currentRelease }, 're-adopted running processes');
        continue;
      }
      await this.removeAll(app.name, leftovers);
      const release = app.currentRelease ? await this.store.getRelease(app.name, app.currentRelease) : undefined;
      if (!release) {
        // Known apps answer 503 rather than 404 until something of theirs is healthy.
        await this.publish(app.name, []);
        continue;
      }
      try {
        await this.deploy(release, { header: () => {}, detail: () => {}, error: () => {}, raw: () => {} });
        this.log.info({ app: app.name, release: release.version }, 'restarted current release');
      } catch (err) {
        await this.publish(app.name, []);
        this.log.error({ app: app.name, err: String(err) }, 'could not restart current release');
      }
    }
  }

  private async removeAll(app: string, processes: ProcessInfo[]): Promise<void> {
    for (const p of processes) {
      this.log.info({ app, container: p.name }, 'removing process not of the current release');
      await this.runtime.removeContainer(p.id);
    }
  }
}
