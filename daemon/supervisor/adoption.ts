import type { Logger } from '../log.js';
import { CONTROL_PLANE_APP } from '../router/upstream.js';
import type { ProcessInfo, Runtime } from '../runtime/runtime.js';
import type { AppRecord, ReleaseRecord } from '../store/records.js';
import type { Store } from '../store/store.js';
import type { LogFollower } from './log-follower.js';
import { webOf, type RouterPublisher, type RouterTable } from './router-publisher.js';

/**
 * What a starting rackd does with what already runs: find it by its labels and keep exactly the
 * processes that were checked and switched to (recorded by instance, not by release number); route
 * to them first, then remove everything else rack made that nothing uses now: processes of
 * interrupted rollouts, build, release-phase and `run` containers, what is left of destroyed apps.
 * A current release with nothing running (after a reboot, say) is started again, without its
 * release phase.
 */
export class Adoption {
  constructor(
    private readonly store: Store,
    private readonly runtime: Runtime,
    private readonly router: RouterTable,
    private readonly publisher: RouterPublisher,
    private readonly follower: LogFollower,
    /** Rolls the app's current release out again, recording what it switched to. */
    private readonly restart: (release: ReleaseRecord) => Promise<void>,
    private readonly log: Logger,
  ) {}

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
    const running = await this.runtime.processes.list();
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
    // Restarting counts as ours too: Docker brings it back, and its port stays the same. One
    // stopped for good is a leftover: the reconciler replaces it once adoption is done.
    const current = mine.filter(
      (p) => (wanted ? wanted.has(p.id) : p.release === app.currentRelease) && (p.running || p.restarting),
    );
    const leftovers = mine.filter((p) => !current.includes(p));
    if (current.length > 0) {
      // Route to what is current first (the router may still point at an interrupted rollout), then clean up.
      await this.publisher.switchTo(app.name, webOf(current));
      await this.removeAll(app.name, leftovers);
      for (const p of current) this.follower.watch(p, 100);
      this.log.info({ app: app.name, release: app.currentRelease, processes: current.length }, 're-adopted running processes');
      return;
    }
    const release = app.currentRelease ? await this.store.getRelease(app.name, app.currentRelease) : undefined;
    if (!release) {
      await this.removeAll(app.name, leftovers);
      // Known apps answer 503 rather than 404 until something of theirs is healthy.
      await this.publisher.switchTo(app.name, []);
      return;
    }
    try {
      await this.restart(release);
      this.log.info({ app: app.name, release: release.version }, 'restarted current release');
    } catch (err) {
      await this.publisher.switchTo(app.name, []);
      this.log.error({ app: app.name, err: String(err) }, 'could not restart current release');
    }
  }

  private async removeAll(app: string, processes: ProcessInfo[]): Promise<void> {
    for (const p of processes) {
      this.log.info({ app, container: p.name }, 'removing process that was never switched to');
      await this.runtime.processes.remove(p.id);
    }
  }
}
