import type { RackConfig } from '../config.js';
import type { Logger } from '../log.js';
import type { LogHub } from '../logs/log-hub.js';
import type { PhaseTimings } from '../phase-timings.js';
import { RackError } from '../rack-error.js';
import { resolveFormation } from '../release/formation.js';
import type { RouterClient } from '../router/router-client.js';
import { CONTROL_PLANE_APP, type Upstream } from '../router/upstream.js';
import type { DockerRuntime, ProcessInfo } from '../runtime/docker-runtime.js';
import { forProcess, limitsFor } from '../runtime/isolation.js';
import { containerCommand } from '../runtime/process-command.js';
import type { AppRecord, ReleaseRecord } from '../store/records.js';
import type { Store } from '../store/store.js';
import { lineSplitter } from '../line-splitter.js';
import { type UserOutput } from '../user-output.js';
import { Drainer } from './drainer.js';
import { EndpointWatch, sameUpstreams } from './endpoint-watch.js';
import { DEFAULT_HEALTH_CHECK, waitHealthy, type HealthCheckOptions } from './health-check.js';
import { LogFollower } from './log-follower.js';
import { ProcessEvents } from './process-events.js';
import { PHASE_OF, runRollout } from './rollout.js';

/** The port every web process listens on inside its container. */
const WEB_PORT = 5000;
const RELEASE_PHASE_TIMEOUT_MS = 10 * 60_000;
/** How long a non-web process must stay up to count as healthy. */
const SETTLE_MS = 2000;

export type Formation = Record<string, number>;

export interface RolloutRequest {
  release: ReleaseRecord;
  out: UserOutput;
  /** Instance counts; the app's scaled formation when absent. */
  formation?: Formation;
  /** Roll out these types only (ps:restart TYPE); the others keep running untouched. */
  only?: string[];
  /** Limits by type, instead of the app's recorded ones (ps:limit rolls out what it is about to record). */
  limits?: AppRecord['limits'];
  /** Run the Procfile's `release:` command first: once per new release, never on scale, restart or adoption. */
  releasePhase?: boolean;
  /**
   * Makes the switch durable: the containers now serving (checked and switched to) and, for a new
   * release, that it is current. Called after the router switch and before the drain; if it
   * fails, the rollout is undone and the old processes serve again.
   */
  record: (serving: string[]) => Promise<void>;
  timings?: PhaseTimings;
}

const SILENT: UserOutput = { header: () => {}, detail: () => {}, error: () => {}, raw: () => {} };

/**
 * Runs releases as containers (every process type of the formation) and keeps the router pointed
 * at the healthy web ones. Crash restarts are Docker's restart policy; this class decides what
 * runs, checks it, switches and drains.
 */
export class Supervisor {
  private readonly follower: LogFollower;
  private readonly drainer: Drainer;
  /** The web processes serving each app now: the supervisor is the one writer of the router's table. */
  private readonly serving = new Map<string, Upstream[]>();
  /** The web processes (IDs) behind `serving`, for a runtime whose endpoints move (endpoint-watch.ts). */
  private readonly servingIds = new Map<string, string[]>();
  /** One router change at a time per app, in the order asked. */
  private readonly publishing = new Map<string, Promise<void>>();

  constructor(
    private readonly config: RackConfig,
    private readonly store: Store,
    private readonly runtime: DockerRuntime,
    private readonly router: RouterClient,
    private readonly logs: LogHub,
    private readonly log: Logger,
  ) {
    this.follower = new LogFollower(runtime, logs, log);
    this.drainer = new Drainer(runtime, router, this.follower, log);
    this.events = new ProcessEvents(runtime, logs, log);
    this.endpointWatch = new EndpointWatch(
      () => this.servingIds,
      runtime.endpoints,
      (app, ids, upstreams) =>
        this.serialized(app, async () => {
          // A rollout switched meanwhile: its set wins.
          if (this.servingIds.get(app) !== ids || sameUpstreams(this.serving.get(app) ?? [], upstreams)) return;
          this.log.info({ app, upstreams }, 'web processes moved or were lost: router updated');
          await this.publishNow(app, upstreams);
        }),
      this.log,
    );
  }

  private readonly events: ProcessEvents;
  /** On a Swarm: the router follows web processes that Swarm moved, and drops those on lost nodes. */
  private readonly endpointWatch: EndpointWatch;

  /** Starts telling apps' logs about their processes' exits and memory kills. */
  start(): void {
    this.events.start();
    this.endpointWatch.start();
  }

  /** Stops following every process's output (daemon stop); the processes keep running. */
  stop(): void {
    this.follower.stop();
    this.events.stop();
    this.endpointWatch.stop();
  }


  defaultHost(app: string): string {
    return `${app}.${this.config.domain}`;
  }

  /**
   * Points the app's host names (default and added domains) at `upstreams`, or at the ones serving
   * now when omitted (after a domain change). Known apps with nothing healthy answer 503, not 404.
   * Resolves once the router has saved and applied the change; throws when it could not.
   */
  publish(app: string, upstreams?: Upstream[]): Promise<void> {
    return this.serialized(app, () => this.publishNow(app, upstreams));
  }

  private serialized(app: string, task: () => Promise<void>): Promise<void> {
    const next = (this.publishing.get(app) ?? Promise.resolve()).then(task);
    const settled = next.catch(() => undefined);
    this.publishing.set(app, settled);
    void settled.then(() => this.publishing.get(app) === settled && this.publishing.delete(app));
    return next;
  }

  private async publishNow(app: string, upstreams?: Upstream[]): Promise<void> {
    const record = await this.store.getApp(app);
    const next = upstreams ?? this.serving.get(app) ?? [];
    const https = { redirect: record?.https?.redirect === true, hsts: record?.https?.hsts === true };
    await this.router.setApp(app, [this.defaultHost(app), ...(record?.domains ?? [])], next, https);
    this.serving.set(app, next);
  }

  async unpublish(app: string): Promise<void> {
    this.serving.delete(app);
    this.servingIds.delete(app);
    await this.router.removeApp(app);
    this.logs.forget(app);
  }

  url(app: string): string {
    const port = this.config.httpPort === 80 ? '' : `:${this.config.httpPort}`;
    return `http://${app}.${this.config.domain}${port}/`;
  }

  /**
   * Rolls a release out, walking the rollout table (rollout.ts): release phase → start every
   * process of the formation → wait until all are healthy → switch the router to the new web set
   * in one step and record it → hand the old ones to the drainer. Resolves at the switch; the
   * drain goes on in the background. Throws `deploy_failed` with the reason when anything before
   * the drain fails; the new processes are then removed and the old ones serve.
   */
  async rollout(req: RolloutRequest): Promise<void> {
    const { release, out } = req;
    const app = release.app;
    const formation = req.formation ?? (await this.formationOf(release));
    const inScope = (type: string) => !req.only || req.only.includes(type);
    const types = Object.keys(formation).filter((t) => (formation[t] ?? 0) > 0 && inScope(t));
    for (const type of types) {
      if (!Object.hasOwn(release.processTypes, type)) throw new RackError('deploy_failed', `v${release.version} has no process type "${type}"`);
    }
    const record = await this.store.requireApp(app);
    // Processes already draining from an earlier rollout are on their way out: neither old nor kept.
    const all = (await this.runtime.listProcesses(app)).filter((p) => !this.drainer.isDraining(p.id));
    const old = all.filter((p) => inScope(p.type));
    const untouched = all.filter((p) => !inScope(p.type));
    const before = this.serving.get(app) ?? [];
    const beforeIds = this.servingIds.get(app) ?? [];
    const health = { ...DEFAULT_HEALTH_CHECK, ...release.healthcheck };
    const started: ProcessInfo[] = [];
    let switchTried = false;

    await runRollout(
      {
        release_phase: async () => {
          const command = Object.hasOwn(release.processTypes, 'release') ? release.processTypes['release'] : undefined;
          if (req.releasePhase && command !== undefined) await this.releasePhase(release, command, record, out);
          return 'released';
        },
        starting: async () => {
          out.header(`Starting ${types.map((t) => `${t}=${formation[t]}`).join(' ') || 'no processes'} of v${release.version}`);
          const network = await this.runtime.processNetwork(app);
          const specs = types.flatMap((type) =>
            Array.from({ length: formation[type] ?? 0 }, (_, i) => ({
              app,
              release: release.version,
              type,
              image: release.image,
              builder: release.builder,
              command: release.processTypes[type]!,
              // As on Heroku: the process's type and number (web.1), set by the platform.
              env: { ...release.config, DYNO: `${type}.${i + 1}` },
              port: type === 'web' ? WEB_PORT : undefined,
              network,
              limits: limitsFor(type, req.limits ?? record.limits),
            })),
          );
          // All at once (a Swarm takes seconds to place them); the driver removes them all if one fails.
          for (const p of await this.runtime.startProcesses(specs)) {
            started.push(p);
            this.follower.watch(p, 1000);
          }
          return 'started';
        },
        waiting_healthy: async () => {
          await this.allHealthy(release, started, health, out);
          return 'healthy';
        },
        switching: async () => {
          if (inScope('web')) {
            switchTried = true;
            const web = started.filter((p) => p.type === 'web' && p.upstream);
            this.servingIds.set(app, web.map((p) => p.id));
            await this.publish(app, web.map((p) => p.upstream!));
          }
          // Recorded before the drain: a crash from here on leaves the new processes current and serving.
          await req.record([...untouched, ...started].map((p) => p.id));
          out.detail(`all processes healthy; router switched to v${release.version}`);
          return 'switched';
        },
        draining: async () => {
          this.drainer.drain(old);
          return 'drained';
        },
        rolling_back: async () => {
          for (const p of started) {
            this.follower.unwatch(p.id);
            await this.runtime.removeProcess(p.id);
          }
          // The router may already point at the processes just removed: point it back.
          if (switchTried) {
            this.servingIds.set(app, beforeIds);
            await this.publish(app, before);
          }
          return 'cleaned_up';
        },
      },
      {
        onState: (state, ms) => {
          const phase = PHASE_OF[state];
          if (phase && req.timings) req.timings.add(phase as Parameters<PhaseTimings['add']>[0], ms);
        },
        onLateError: (state, err) => this.log.error({ app, release: release.version, state, err: String(err) }, 'rollout: clean-up step failed'),
      },
    ).catch((err: unknown) => {
      this.log.warn({ app, release: release.version, err: String(err) }, 'rollout failed; old processes keep serving');
      throw err instanceof RackError && err.code === 'deploy_failed'
        ? err
        : new RackError('deploy_failed', `rollout failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    });
  }

  /** The Procfile's `release:` command (migrations) runs once before anything starts; failing it fails the release. */
  private async releasePhase(release: ReleaseRecord, command: string, app: AppRecord, out: UserOutput): Promise<void> {
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
      network: await this.runtime.networks.ensure(release.app),
      confine: forProcess(limitsFor('web', app.limits)),
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

  /** Every new process healthy, and still up and never restarted at the end; else throws with the culprit's last lines. */
  private async allHealthy(release: ReleaseRecord, started: ProcessInfo[], health: HealthCheckOptions, out: UserOutput): Promise<void> {
    const failures = await Promise.all(started.map((p) => this.checkHealthy(p, health)));
    let index = failures.findIndex((f) => f !== null);
    let reason = index === -1 ? null : failures[index]!;
    if (index === -1) {
      // Healthy once is not enough: every new process must still be up, never restarted, at the switch.
      for (const [i, p] of started.entries()) {
        const now = await this.runtime.inspectProcess(p.id);
        if (!now.running || now.restarts > 0) {
          index = i;
          reason = now.oomKilled ? 'it went over its memory limit' : 'the process died after passing its check';
          break;
        }
      }
    }
    if (index === -1) return;
    const culprit = started[index]!;
    const logs = await this.runtime.processLogs(culprit.id, 20);
    for (const line of logs.split('\n').filter((l) => l !== '')) out.detail(line);
    throw new RackError('deploy_failed', `v${release.version} failed its health check: ${culprit.type}: ${reason}`);
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

  /** An old process still finishing its requests before it stops (`ps` says so). */
  isDraining(id: string): boolean {
    return this.drainer.isDraining(id);
  }

  /**
   * At start: find what already runs by its labels and keep exactly the processes that were
   * checked and switched to (recorded by instance, not by release number); route to them first,
   * then remove everything else rack made that nothing uses now: processes of interrupted
   * rollouts, build, release-phase and `run` containers, what is left of destroyed apps. A current
   * release with nothing running (after a reboot, say) is started again, without its release phase.
   */
  async adopt(): Promise<void> {
    await this.failInterruptedReleases();
    const apps = await this.store.listApps();
    const known = new Set(apps.map((a) => a.name));
    for (const route of await this.router.routes()) {
      if (!known.has(route.app) && route.app !== CONTROL_PLANE_APP) await this.router.removeApp(route.app);
    }
    for (const c of await this.runtime.ownedContainers()) {
      // On a Swarm, app processes are services: a process container here is from one machine's days.
      if (c.role === 'process' && known.has(c.app) && !this.runtime.swarm) continue;
      // The swarm runtime's registry runs as long as rackd's engine manages the Swarm.
      if (c.role === 'registry') continue;
      // Add-ons outlive apps and restarts: only addons:destroy removes one.
      if (c.role === 'addon') continue;
      this.log.info({ container: c.name, role: c.role }, 'removing a container left from before the restart');
      await this.runtime.removeContainer(c.id);
    }
    for (const gone of (await this.runtime.networks.apps()).filter((a) => !known.has(a))) {
      await this.runtime.networks.remove(gone).catch((err: unknown) => this.log.warn({ app: gone, err: String(err) }, 'could not remove the network of a destroyed app'));
    }
    const running = await this.runtime.listProcesses();
    for (const app of apps) {
      try {
        await this.adoptApp(app, running.filter((p) => p.app === app.name));
      } catch (err) {
        this.log.error({ app: app.name, err: String(err) }, 'could not re-adopt the app');
      }
    }
  }

  /**
   * At start, before anything reads what an app has: a rollout cut short by a crash never
   * finished, so its release is recorded as failed, whole (config and add-ons as they were).
   */
  async failInterruptedReleases(): Promise<void> {
    for (const app of await this.store.listApps()) {
      for (const r of await this.store.listReleases(app.name)) {
        if (r.status === 'pending') await this.store.finishRelease(r, 'failed', 'interrupted: rackd stopped during the rollout');
      }
    }
  }

  private async adoptApp(app: AppRecord, mine: ProcessInfo[]): Promise<void> {
    const wanted = app.serving !== undefined ? new Set(app.serving) : undefined;
    // Restarting counts as ours too: Docker brings it back, and its port stays the same.
    const current = mine.filter(
      (p) => (wanted ? wanted.has(p.id) : p.release === app.currentRelease) && (p.running || p.restarting),
    );
    const leftovers = mine.filter((p) => !current.includes(p));
    if (current.length > 0) {
      // Route to what is current first (the router may still point at an interrupted rollout), then clean up.
      const web = current.filter((p) => p.type === 'web' && p.upstream);
      this.servingIds.set(app.name, web.map((p) => p.id));
      await this.publish(app.name, web.map((p) => p.upstream!));
      await this.removeAll(app.name, leftovers);
      for (const p of current) this.follower.watch(p, 100);
      this.log.info({ app: app.name, release: app.currentRelease, processes: current.length }, 're-adopted running processes');
      return;
    }
    const release = app.currentRelease ? await this.store.getRelease(app.name, app.currentRelease) : undefined;
    if (!release) {
      await this.removeAll(app.name, leftovers);
      // Known apps answer 503 rather than 404 until something of theirs is healthy.
      await this.publish(app.name, []);
      return;
    }
    try {
      await this.rollout({ release, out: SILENT, record: (serving) => this.store.setServing(app.name, serving) });
      this.log.info({ app: app.name, release: release.version }, 'restarted current release');
    } catch (err) {
      await this.publish(app.name, []);
      this.log.error({ app: app.name, err: String(err) }, 'could not restart current release');
    }
  }

  private async removeAll(app: string, processes: ProcessInfo[]): Promise<void> {
    for (const p of processes) {
      this.log.info({ app, container: p.name }, 'removing process that was never switched to');
      await this.runtime.removeProcess(p.id);
    }
  }
}
