import type { AppLock } from '../app-lock.js';
import type { RackConfig } from '../config.js';
import type { Logger } from '../log.js';
import type { LogHub } from '../logs/log-hub.js';
import type { PhaseTimings } from '../phase-timings.js';
import { RackError } from '../rack-error.js';
import { resolveFormation } from '../release/formation.js';
import { limitsFor } from '../runtime/isolation.js';
import type { ProcessInfo, ProcessSpec, Runtime } from '../runtime/runtime.js';
import type { AppRecord, ReleaseRecord } from '../store/records.js';
import type { Store } from '../store/store.js';
import { type UserOutput } from '../user-output.js';
import { Adoption } from './adoption.js';
import { Drainer } from './drainer.js';
import { EndpointWatch } from './endpoint-watch.js';
import { DEFAULT_HEALTH_CHECK, firstUnhealthy, type HealthCheckOptions } from './health-check.js';
import { LogFollower } from './log-follower.js';
import { ProcessEvents } from './process-events.js';
import { dynoName, parseDyno, planDynos } from './dyno-plan.js';
import { processSpec } from './process-spec.js';
import { Reconciler, type Replacing } from './reconciler.js';
import { runReleasePhase } from './release-phase.js';
import { RouterPublisher, webOf, type RouterTable, type WebProcess } from './router-publisher.js';
import { PHASE_OF, runRollout } from './rollout.js';

export type Formation = Record<string, number>;

export interface RolloutRequest {
  release: ReleaseRecord;
  out: UserOutput;
  /** Instance counts; the app's scaled formation when absent. */
  formation?: Formation;
  /** Roll out these types (ps:restart web) or dynos (ps:restart web.1) only; the others keep running untouched. */
  only?: string[];
  /** Start only the dynos missing from the formation and stop only those over it; the rest keep running (ps:scale, ps:stop). */
  changedOnly?: boolean;
  /** Dynos not to run (ps:stop); the app's recorded ones when absent. A release and a scale pass none. */
  stopped?: string[];
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
 * Runs releases as processes (every type of the formation) and keeps the router pointed at the
 * healthy web ones: it rolls releases out (rollout.ts's table) and composes the parts that keep
 * them running: adoption at start, the router publisher, the drainer, the reconciler that replaces
 * processes gone outside rack. Crash restarts in place are the runtime's (Docker's restart policy).
 */
/** How long a retired name's in-flight requests may take, as a drain allows (drainer.ts). */
const RETIRE_IDLE_MS = 30_000;

export class Supervisor {
  private readonly follower: LogFollower;
  private readonly drainer: Drainer;
  private readonly publisher: RouterPublisher;
  private readonly events: ProcessEvents;
  /** On a Swarm: the router follows web processes that Swarm moved, and drops those on lost nodes. */
  private readonly endpointWatch: EndpointWatch;
  private readonly adoption: Adoption;
  private readonly reconciler: Reconciler;

  constructor(
    private readonly config: Pick<RackConfig, 'domain' | 'httpPort'>,
    private readonly store: Store,
    private readonly runtime: Runtime,
    private readonly router: RouterTable,
    private readonly logs: LogHub,
    private readonly log: Logger,
    /** The apps' deploy lock: a replacement waits its turn behind rollouts. */
    lock: Pick<AppLock, 'run'>,
  ) {
    this.follower = new LogFollower(runtime.processes, logs, log);
    this.publisher = new RouterPublisher(config.domain, store, router, logs);
    this.drainer = new Drainer(runtime.processes, router, this.follower, log);
    this.reconciler = new Reconciler(store, runtime, this.publisher, lock, logs, (...args) => this.launch(...args), log);
    this.events = new ProcessEvents(runtime.processes, logs, log, (e) => this.reconciler.onEvent(e));
    const endpoints = runtime.processes.endpoints?.bind(runtime.processes);
    this.endpointWatch = new EndpointWatch(() => this.publisher.webIds(), endpoints, (app, ids, at) => this.publisher.placed(app, ids, at), log);
    this.adoption = new Adoption(
      store,
      runtime,
      router,
      this.publisher,
      this.follower,
      (release) => this.rollout({ release, out: SILENT, record: (serving) => this.store.setServing(release.app, serving) }),
      log,
    );
  }

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
    this.reconciler.stop();
  }

  /** Processes run as Swarm services: a type's processes start and stop together. */
  get swarm(): boolean {
    return this.runtime.swarm;
  }

  defaultHost(app: string): string {
    return this.publisher.defaultHost(app);
  }

  /**
   * Points the app's host names (default and added domains) at these web processes, or at the
   * ones serving now when omitted (after a domain change). Known apps with nothing healthy answer
   * 503, not 404. Resolves once the router has saved and applied the change; throws when it could not.
   */
  publish(app: string, web?: WebProcess[]): Promise<void> {
    return web === undefined ? this.publisher.refresh(app) : this.publisher.switchTo(app, web);
  }

  unpublish(app: string): Promise<void> {
    return this.publisher.unpublish(app);
  }

  /**
   * An app's old name leaving (apps:rename, once its processes under the new name serve): its route
   * goes, then the requests its web processes are still answering finish (bounded as a drain), so
   * the caller's removal of them cuts none.
   */
  async retire(app: string): Promise<void> {
    const processes = await this.runtime.processes.list(app);
    await this.publisher.unpublish(app);
    const upstreams = processes.flatMap((p) => (p.upstream === null ? [] : [p.upstream]));
    if (upstreams.length > 0) await this.router.waitIdle(upstreams, RETIRE_IDLE_MS);
    for (const p of processes) {
      this.follower.unwatch(p.id);
    }
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
    for (const [type, count] of Object.entries(formation)) {
      if (count > 0 && !Object.hasOwn(release.processTypes, type)) throw new RackError('deploy_failed', `v${release.version} has no process type "${type}"`);
    }
    const record = await this.store.requireApp(app);
    // Processes already draining from an earlier rollout are on their way out: neither old nor kept.
    const all = (await this.runtime.processes.list(app)).filter((p) => !this.drainer.isDraining(p.id));
    const plan = planDynos({
      formation,
      stopped: req.stopped ?? record.stopped,
      live: all,
      ...(req.only ? { only: req.only } : {}),
      ...(req.changedOnly ? { changedOnly: true } : {}),
      // A Swarm service holds every slot of a type: a type is started and stopped whole there.
      wholeTypes: this.runtime.swarm,
    });
    const old = plan.stop;
    const untouched = plan.keep;
    const before = this.publisher.web(app);
    const health = { ...DEFAULT_HEALTH_CHECK, ...release.healthcheck };
    const started: ProcessInfo[] = [];
    let switchTried = false;
    const webMoves = [...plan.start.map((s) => s.type), ...old.map((p) => p.type)].includes('web');

    await runRollout(
      {
        release_phase: async () => {
          const command = Object.hasOwn(release.processTypes, 'release') ? release.processTypes['release'] : undefined;
          if (req.releasePhase && command !== undefined) await runReleasePhase(this.runtime, this.logs, release, command, record, out);
          return 'released';
        },
        starting: async () => {
          if (plan.start.length === 0) return 'started';
          const counts = new Map<string, number>();
          for (const s of plan.start) counts.set(s.type, (counts.get(s.type) ?? 0) + 1);
          const dynos = plan.start.map((s) => dynoName(s.type, s.index)).join(' ');
          out.header(`Starting ${[...counts].map(([t, n]) => `${t}=${n}`).join(' ')} of v${release.version} (${dynos})`);
          const network = await this.runtime.processNetwork(app);
          const limits = req.limits ?? record.limits;
          const specs = plan.start.map((s) => processSpec(release, s.type, s.index, network, limitsFor(s.type, limits)));
          started.push(...(await this.startAll(specs, 1000)));
          return 'started';
        },
        waiting_healthy: async () => {
          await this.allHealthy(release, started, health, out);
          return 'healthy';
        },
        switching: async () => {
          if (webMoves) {
            switchTried = true;
            await this.publisher.switchTo(app, webOf([...untouched, ...started]));
          }
          // Recorded before the drain: a crash from here on leaves the new processes current and serving.
          await req.record([...untouched, ...started].map((p) => p.id));
          if (started.length > 0) out.detail(`all processes healthy; router switched to v${release.version}`);
          else if (untouched.length === 0) {
            // A worker-only app needs a count from somewhere: "healthy" over nothing would hide that.
            const idle = Object.keys(release.processTypes).filter((t) => t !== 'release');
            out.error(`no processes run: ${idle.map((t) => `${t}=0`).join(' ') || 'no process types'}; start some with ps:scale TYPE=N, or set app.json formation`);
          }
          if (req.changedOnly && old.length > 0) out.detail(`stopping ${old.map((p) => p.dyno).join(' ')}`);
          return 'switched';
        },
        draining: async () => {
          this.drainer.drain(old);
          return 'drained';
        },
        rolling_back: async () => {
          // The router first: removing processes it still sends requests to would answer them with 502s.
          if (switchTried) await this.publisher.switchTo(app, before);
          await this.removeEach(app, started);
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

  /** All at once (a Swarm takes seconds to place them); the driver removes them all if one fails. */
  private async startAll(specs: ProcessSpec[], tail: number): Promise<ProcessInfo[]> {
    const started = await this.runtime.processes.startAll(specs);
    for (const p of started) this.follower.watch(p, tail);
    return started;
  }

  /**
   * Each in its own try, so one that will not go leaves the others going; what is left is removed
   * by the clean-up at the next start (it was never recorded as serving).
   */
  private async removeEach(app: string, processes: readonly ProcessInfo[]): Promise<void> {
    for (const p of processes) {
      this.follower.unwatch(p.id);
      try {
        await this.runtime.processes.remove(p.id);
      } catch (err) {
        this.log.warn({ app, container: p.name, err: String(err) }, 'could not remove a process of a failed rollout; the next start removes it');
      }
    }
  }

  /**
   * For the reconciler: new processes of the release in place of gone ones (each type's lowest
   * free numbers), checked as a rollout checks them; removed again if any fails.
   */
  private async launch(release: ReleaseRecord, missing: Record<string, number>, app: AppRecord, live: ProcessInfo[]): Promise<ProcessInfo[]> {
    const network = await this.runtime.processNetwork(release.app);
    const specs: ProcessSpec[] = [];
    for (const [type, count] of Object.entries(missing)) {
      // Stopped numbers (ps:stop) stay free until the next scale or release.
      const taken = new Set([...live.map((p) => p.dyno), ...(app.stopped ?? [])].flatMap((d) => {
        const parsed = parseDyno(d);
        return parsed?.type === type ? [parsed.index] : [];
      }));
      for (let index = 1, n = 0; n < count; index++) {
        if (taken.has(index)) continue;
        specs.push(processSpec(release, type, index, network, limitsFor(type, app.limits)));
        n++;
      }
    }
    if (specs.length === 0) return [];
    const started = await this.startAll(specs, 1000);
    const unhealthy = await firstUnhealthy(this.runtime.processes, started, { ...DEFAULT_HEALTH_CHECK, ...release.healthcheck }).catch((err: unknown) => ({
      process: started[0]!,
      reason: String(err),
    }));
    if (unhealthy === null) return started;
    await this.removeEach(release.app, started);
    throw new RackError('deploy_failed', `${unhealthy.process.type} failed its health check: ${unhealthy.reason}`);
  }

  /** The app's scaled formation, for the types this release has; new types get the defaults. */
  async formationOf(release: ReleaseRecord): Promise<Formation> {
    const app = await this.store.requireApp(release.app);
    return resolveFormation(release, app.formation);
  }

  /** Every new process healthy, and still up and never restarted at the end; else throws with the culprit's last lines. */
  private async allHealthy(release: ReleaseRecord, started: ProcessInfo[], health: HealthCheckOptions, out: UserOutput): Promise<void> {
    const unhealthy = await firstUnhealthy(this.runtime.processes, started, health);
    if (unhealthy === null) return;
    const logs = await this.runtime.processes.logs(unhealthy.process.id, 20);
    for (const line of logs.split('\n').filter((l) => l !== '')) out.detail(line);
    throw new RackError('deploy_failed', `v${release.version} failed its health check: ${unhealthy.process.type}: ${unhealthy.reason}`);
  }

  /** An old process still finishing its requests before it stops (`ps` says so). */
  isDraining(id: string): boolean {
    return this.drainer.isDraining(id);
  }

  /** Processes of the app gone outside rack and being replaced, with their state for `ps`. */
  replacing(app: string): Replacing[] {
    return this.reconciler.replacing(app);
  }

  /**
   * At start: keeps what was switched to, removes every leftover (adoption.ts), then starts
   * replacing serving processes that are gone.
   */
  async adopt(): Promise<void> {
    await this.adoption.adopt();
    // On a Swarm, Swarm itself starts a new task in the slot of one that died or was killed (its
    // restart policy is `any`), and endpoint-watch.ts moves the router: a replacement here would
    // race it and start a second process for the slot.
    if (this.runtime.swarm) return;
    this.reconciler.start();
    await this.reconciler.sweep();
  }

  /** Compares every app's serving processes with what runs now, as the periodic sweep does. */
  sweep(): Promise<void> {
    return this.reconciler.sweep();
  }

  /** At start, before anything reads what an app has: interrupted rollouts' releases are failed. */
  failInterruptedReleases(): Promise<void> {
    return this.adoption.failInterruptedReleases();
  }
}
