import type { AppLock } from '../app-lock.js';
import type { Logger } from '../log.js';
import type { LogHub } from '../logs/log-hub.js';
import { resolveFormation } from '../release/formation.js';
import type { ProcessEvent, ProcessInfo, Runtime } from '../runtime/runtime.js';
import type { AppRecord, ReleaseRecord } from '../store/records.js';
import type { Store } from '../store/store.js';
import { nextReplacement, planReconcile, type ReplacementHistory } from './reconcile-plan.js';
import { webOf, type RouterPublisher } from './router-publisher.js';

/** How often every app's serving processes are compared with what runs (events can be missed). */
const SWEEP_MS = 5000;

/** A replacement waiting out its backoff, or under way (`at` passed). */
interface Waiting {
  at: number;
  streak: number;
  /** The serving processes found gone. */
  gone: string[];
  timer: NodeJS.Timeout | undefined;
}

/** What `ps` shows for a process the reconciler is replacing. */
export interface Replacing {
  id: string;
  name: string;
  dyno: string;
  type: string;
  release: number;
  state: string;
}

/**
 * Keeps each app's recorded serving processes running. Docker's restart policy brings a crashed
 * process back, but not one stopped outside rack (`docker kill`, `docker stop`), removed, or lost
 * with an engine restart: such a process is replaced by a new one of its type, health-checked and
 * switched to, through the app's deploy lock so it never races a rollout. Engine events (`die`,
 * `destroy`) bring it to notice at once; a sweep every few seconds catches what events missed.
 * A replacement needed again soon after the last backs off (reconcile-plan.ts), and says so in
 * the app's log and in `ps`.
 */
export class Reconciler {
  #timer: NodeJS.Timeout | undefined;
  #sweeping = false;
  readonly #waiting = new Map<string, Waiting>();
  readonly #history = new Map<string, ReplacementHistory>();
  /** Apps being checked now; true when another check was asked for meanwhile. */
  readonly #checking = new Map<string, boolean>();
  /** Processes last seen per ID, so one removed since can still be named. */
  readonly #seen = new Map<string, ProcessInfo>();
  /**
   * Gone processes replaced, until no listing shows them: a removal can lose to the engine
   * bringing the container back (an engine restart restores it while it is being replaced), so
   * each sweep removes again what is still listed.
   */
  readonly #replaced = new Set<string>();

  constructor(
    private readonly store: Store,
    private readonly runtime: Runtime,
    private readonly publisher: RouterPublisher,
    private readonly lock: Pick<AppLock, 'run'>,
    private readonly logs: LogHub,
    /** Starts these processes of the release, checks them, and resolves with them healthy; else removes them and throws. */
    private readonly launch: (release: ReleaseRecord, missing: Record<string, number>, app: AppRecord, live: ProcessInfo[]) => Promise<ProcessInfo[]>,
    private readonly log: Logger,
  ) {}

  /** Starts sweeping; events are acted on from now (adoption has settled what runs). */
  start(): void {
    if (this.#timer !== undefined) return;
    this.#timer = setInterval(() => void this.sweep(), SWEEP_MS);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    for (const w of this.#waiting.values()) clearTimeout(w.timer);
    this.#waiting.clear();
  }

  /** An engine event: a web process leaves the router the moment it dies, and one gone for good is replaced. */
  onEvent(e: ProcessEvent): void {
    if (e.kind === 'oom') return;
    const down = e.kind !== 'start';
    this.publisher.setDown(e.app, e.id, down).catch((err: unknown) => this.log.warn({ app: e.app, err: String(err) }, 'could not update the router after a process event'));
    if (down && this.#timer !== undefined) void this.check(e.app);
  }

  /** Processes of the app being replaced, with what `ps` says of them. */
  replacing(app: string, now = Date.now()): Replacing[] {
    const waiting = this.#waiting.get(app);
    if (!waiting) return [];
    const state = waiting.at > now ? `crashed (restarting in ${Math.ceil((waiting.at - now) / 1000)} s)` : 'crashed (restarting)';
    return waiting.gone.map((id) => {
      const p = this.#seen.get(id);
      return { id, name: p?.name ?? id.slice(0, 12), dyno: p?.dyno ?? '?', type: p?.type ?? '?', release: p?.release ?? 0, state };
    });
  }

  /** Every app compared with what runs, with one listing of the runtime's processes. */
  async sweep(): Promise<void> {
    if (this.#sweeping) return;
    this.#sweeping = true;
    try {
      const apps = await this.store.listApps();
      const epochs = new Map(apps.map((a) => [a.name, this.publisher.epoch(a.name)]));
      const found = await this.runtime.processes.list();
      // Forget what is gone and no longer waited on, so this stays the size of what runs.
      const waited = new Set([...this.#waiting.values()].flatMap((w) => w.gone));
      for (const id of this.#seen.keys()) if (!waited.has(id)) this.#seen.delete(id);
      await this.#removeReplaced(found, apps);
      for (const app of apps) {
        await this.#compare(app, found.filter((p) => p.app === app.name), epochs.get(app.name) ?? 0);
      }
    } catch (err) {
      this.log.warn({ err: String(err) }, 'reconcile: sweep failed');
    } finally {
      this.#sweeping = false;
    }
  }

  /**
   * One app compared with what runs now. A drain or rollback sends an event per process stopped:
   * checks asked for while one runs make one more after it, not one each.
   */
  async check(app: string): Promise<void> {
    if (this.#checking.has(app)) {
      this.#checking.set(app, true);
      return;
    }
    this.#checking.set(app, false);
    try {
      do {
        this.#checking.set(app, false);
        const record = await this.store.getApp(app);
        const epoch = this.publisher.epoch(app);
        if (record) await this.#compare(record, await this.runtime.processes.list(app), epoch);
      } while (this.#checking.get(app) === true);
    } catch (err) {
      this.log.warn({ app, err: String(err) }, 'reconcile: check failed');
    } finally {
      this.#checking.delete(app);
    }
  }

  async #compare(app: AppRecord, found: ProcessInfo[], epoch: number): Promise<void> {
    for (const p of found) this.#seen.set(p.id, p);
    await this.publisher.observe(app.name, found, epoch).catch((err: unknown) => this.log.warn({ app: app.name, err: String(err) }, 'reconcile: router update failed'));
    // Behind a rollout under way, the replacement looks again under the lock: what that rollout
    // stopped was no longer serving by then, and nothing is done.
    if (app.serving === undefined || this.#waiting.has(app.name)) return;
    const plan = planReconcile(app.serving, {}, found);
    if (plan.gone.length === 0) return;
    this.#schedule(app.name, nextReplacement(this.#history.get(app.name), Date.now()), plan.gone);
  }

  /** Replaced processes that are listed again (or still) are removed; unlisted ones are forgotten. */
  async #removeReplaced(found: readonly ProcessInfo[], apps: readonly AppRecord[]): Promise<void> {
    if (this.#replaced.size === 0) return;
    const serving = new Set(apps.flatMap((a) => a.serving ?? []));
    const listed = new Set(found.map((p) => p.id));
    for (const id of [...this.#replaced]) {
      if (!listed.has(id) || serving.has(id)) {
        this.#replaced.delete(id);
        continue;
      }
      await this.runtime.processes.remove(id).catch((err: unknown) => this.log.warn({ id, err: String(err) }, 'reconcile: could not remove a replaced process'));
    }
  }

  #schedule(app: string, next: { at: number; streak: number }, gone: string[]): void {
    const waiting: Waiting = { ...next, gone, timer: undefined };
    this.#waiting.set(app, waiting);
    const delay = next.at - Date.now();
    if (delay > 0) this.#note(app, `Restarting gone processes in ${Math.ceil(delay / 1000)} s (replaced ${next.streak} times in a row within a minute)`);
    waiting.timer = setTimeout(() => void this.#replace(app, waiting), Math.max(0, delay));
    waiting.timer.unref();
  }

  /** Under the app's deploy lock: looks again, starts what is missing, checks it, records it, switches, removes the dead. */
  async #replace(app: string, waiting: Waiting): Promise<void> {
    let failed = false;
    let acted = false;
    try {
      await this.lock.run(app, async () => {
        const record = await this.store.getApp(app);
        // Destroyed meanwhile: nothing of it is kept.
        if (!record) this.#history.delete(app);
        if (!record?.serving || !record.currentRelease) return;
        const release = await this.store.getRelease(app, record.currentRelease);
        if (!release) return;
        const found = await this.runtime.processes.list(app);
        for (const p of found) this.#seen.set(p.id, p);
        const plan = planReconcile(record.serving, resolveFormation(release, record.formation), found);
        if (plan.gone.length === 0) return;
        acted = true;
        for (const id of plan.gone) {
          const p = this.#seen.get(id);
          this.#note(app, `Process ${p ? shortName(p) : id.slice(0, 12)} is gone (stopped or removed outside rack, or lost with the engine): starting a new one`);
        }
        try {
          const started = await this.launch(release, plan.missing, record, plan.live);
          const serving = [...plan.live, ...started];
          try {
            await this.store.setServing(app, serving.map((p) => p.id));
          } catch (err) {
            // Unrecorded, they would never be adopted nor replaced: gone with the attempt.
            for (const p of started) await this.runtime.processes.remove(p.id).catch(() => undefined);
            throw err;
          }
          // Recorded first: a router that fails now is told again by the next sweep.
          await this.publisher.switchTo(app, webOf(serving)).catch((err: unknown) => this.log.warn({ app, err: String(err) }, 'reconcile: the router did not take the replacement yet'));
          this.#note(app, `Started ${started.map(shortName).join(', ') || 'nothing'} of v${release.version} in place of what was gone`);
        } catch (err) {
          failed = true;
          this.#note(app, `Could not replace the gone processes: ${err instanceof Error ? err.message : String(err)}`);
          return;
        }
        for (const id of plan.gone) {
          this.#seen.delete(id);
          this.#replaced.add(id);
          // Each in its own try; one listed still is removed again by the next sweep.
          await this.runtime.processes.remove(id).catch((err: unknown) => this.log.warn({ app, id, err: String(err) }, 'reconcile: could not remove a gone process'));
        }
      });
    } catch (err) {
      failed = true;
      this.log.error({ app, err: String(err) }, 'reconcile: replacement failed');
    } finally {
      const endedAt = Date.now();
      if (acted) this.#history.set(app, { endedAt, streak: waiting.streak });
      if (this.#waiting.get(app) === waiting) this.#waiting.delete(app);
      // Still short: the next try backs off from this one's end.
      if (failed && this.#timer !== undefined) this.#schedule(app, nextReplacement({ endedAt, streak: waiting.streak }, endedAt), waiting.gone);
    }
  }

  #note(app: string, text: string): void {
    this.logs.push({ time: new Date().toISOString(), app, source: 'rack[supervisor]', type: 'supervisor', text });
    this.log.info({ app }, text);
  }
}

function shortName(p: ProcessInfo): string {
  return p.dyno;
}
