import { appEvents } from './app-events.js';
import type { DeployLock } from './deploy-lock.js';
import { RackError } from './rack-error.js';
import { totalProcesses } from './release/formation.js';
import { PhaseTimings } from './phase-timings.js';
import { limitsFor, type ProcessLimits } from './runtime/isolation.js';
import type { ReleaseRecord } from './store/records.js';
import type { Store } from './store/store.js';
import { dynoName, parseDyno } from './supervisor/dyno-plan.js';
import type { Supervisor } from './supervisor/supervisor.js';
import type { UserOutput } from './user-output.js';

/**
 * The `ps:` commands: the current release's processes scaled, restarted, stopped or limited. No
 * new release: each rolls the current one out again (only what changed), under the app's deploy
 * lock like the pipeline's stages.
 */
export class ProcessControl {
  constructor(
    private readonly store: Store,
    private readonly supervisor: Supervisor,
    private readonly lock: DeployLock,
  ) {}

  /**
   * `ps:scale`: the current release rolled out again with new instance counts; no new release.
   * Refused before anything changes when the app would run more than `maxProcesses` in all, its
   * `oneOffs` (`run` processes now) counted.
   */
  scale(req: { app: string; changes: Record<string, number>; maxProcesses: number; oneOffs?: number; keyName?: string }, out: UserOutput): Promise<Record<string, number>> {
    return this.lock.run(req.app, async () => {
      const release = await this.currentRelease(req.app);
      for (const type of Object.keys(req.changes)) this.requireType(release, type);
      const formation = { ...(await this.supervisor.formationOf(release)), ...req.changes };
      const oneOffs = req.oneOffs ?? 0;
      if (totalProcesses(formation) + oneOffs > req.maxProcesses) {
        const wanted = Object.entries(formation).map(([t, n]) => `${t}=${n}`).join(' ');
        const besides = oneOffs > 0 ? ` besides ${oneOffs} one-off ones running` : '';
        throw new RackError('bad_argument', `${wanted} is ${totalProcesses(formation)} processes${besides}; an app may run at most ${req.maxProcesses} in all`);
      }
      const app = await this.store.requireApp(req.app);
      const timings = new PhaseTimings();
      // Only what changed starts or stops, as on Heroku: the other types keep their processes. A
      // scale also starts again what ps:stop stopped.
      await this.supervisor.rollout({
        release,
        out,
        formation,
        timings,
        changedOnly: true,
        stopped: [],
        record: (serving) => this.store.setFormation(req.app, { formation: { ...app.formation, ...req.changes }, serving, stopped: undefined }),
      });
      out.header(`Timings: ${timings.line()}`);
      appEvents.emit({ kind: 'scale', app: req.app, action: 'update', ...(req.keyName === undefined ? {} : { actor: req.keyName }), data: { formation, release: release.version } });
      return formation;
    });
  }

  /**
   * `ps:restart [TYPE|TYPE.N]`: fresh processes of the current release in place of all, a type's,
   * or one (keeping its number), rolled out without downtime.
   */
  restart(req: { app: string; type: string | undefined }, out: UserOutput): Promise<void> {
    return this.lock.run(req.app, async () => {
      const release = await this.currentRelease(req.app);
      if (req.type !== undefined) await this.requireTarget(release, req.type, 'restart');
      const timings = new PhaseTimings();
      await this.supervisor.rollout({
        release,
        out,
        timings,
        ...(req.type === undefined ? {} : { only: [req.type] }),
        record: (serving) => this.store.setServing(req.app, serving),
      });
      out.header(`Timings: ${timings.line()}`);
    });
  }

  /**
   * `ps:stop TYPE|TYPE.N`: the processes named are drained and stay stopped (recorded on the app,
   * so neither the reconciler nor a restarted rackd starts them) until the next scale or release.
   * Resolves with the processes now stopped by it.
   */
  stop(req: { app: string; what: string }, out: UserOutput): Promise<string[]> {
    return this.lock.run(req.app, async () => {
      const release = await this.currentRelease(req.app);
      const named = await this.requireTarget(release, req.what, 'stop');
      const app = await this.store.requireApp(req.app);
      const stopped = [...new Set([...(app.stopped ?? []), ...named])];
      await this.supervisor.rollout({
        release,
        out,
        changedOnly: true,
        stopped,
        only: [req.what],
        record: (serving) => this.store.setFormation(req.app, { serving, stopped }),
      });
      return named;
    });
  }

  /**
   * A type of the release, or one of its processes that the formation runs now (web.1): the dyno
   * names it stands for. On a Swarm a type's processes are one service, so only a whole type.
   */
  private async requireTarget(release: ReleaseRecord, what: string, verb: string): Promise<string[]> {
    const dyno = parseDyno(what);
    const type = dyno?.type ?? what;
    this.requireType(release, type);
    const app = await this.store.requireApp(release.app);
    const count = (await this.supervisor.formationOf(release))[type] ?? 0;
    const running = Array.from({ length: count }, (_, i) => dynoName(type, i + 1)).filter((d) => !(app.stopped ?? []).includes(d));
    if (dyno === undefined) return running;
    if (this.supervisor.swarm) throw new RackError('bad_argument', `on a Swarm a type's processes go together: ${verb} ${type}, not ${what}`);
    if (!running.includes(what)) {
      const why = (app.stopped ?? []).includes(what) ? 'is stopped (ps:scale starts it again)' : `is not running (${type}=${count})`;
      throw new RackError('bad_argument', `${what} ${why}`);
    }
    return [what];
  }

  /**
   * `ps:limit TYPE memory=.. cpu=.. pids=..`: kept with the formation; the type's processes are
   * replaced with ones under the new limits (without downtime) when the app runs.
   */
  limit(req: { app: string; type: string; limits: Partial<ProcessLimits> }, out: UserOutput): Promise<ProcessLimits> {
    return this.lock.run(req.app, async () => {
      const app = await this.store.requireApp(req.app);
      const merged = { ...app.limits, [req.type]: { ...(app.limits && Object.hasOwn(app.limits, req.type) ? app.limits[req.type] : {}), ...req.limits } };
      const release = app.currentRelease ? await this.store.getRelease(req.app, app.currentRelease) : undefined;
      if (release) this.requireType(release, req.type);
      const running = release ? ((await this.supervisor.formationOf(release))[req.type] ?? 0) > 0 : false;
      if (!release || !running) {
        await this.store.setFormation(req.app, { limits: merged });
      } else {
        await this.supervisor.rollout({
          release,
          out,
          only: [req.type],
          limits: merged,
          record: (serving) => this.store.setFormation(req.app, { limits: merged, serving }),
        });
      }
      return limitsFor(req.type, merged);
    });
  }

  private requireType(release: ReleaseRecord, type: string): void {
    if (type === 'release' || !Object.hasOwn(release.processTypes, type)) {
      const known = Object.keys(release.processTypes).filter((t) => t !== 'release');
      throw new RackError('bad_argument', `v${release.version} has no process type "${type}" (it has: ${known.join(', ')})`);
    }
  }

  private async currentRelease(name: string): Promise<ReleaseRecord> {
    const app = await this.store.requireApp(name);
    const release = app.currentRelease ? await this.store.getRelease(name, app.currentRelease) : undefined;
    if (!release) throw new RackError('no_such_release', `${name} has no running release yet: push it first`);
    return release;
  }
}
