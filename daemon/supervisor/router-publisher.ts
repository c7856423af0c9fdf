import type { LogHub } from '../logs/log-hub.js';
import type { RouterClient } from '../router/router-client.js';
import { upstreamKey, type Upstream } from '../router/upstream.js';
import type { ProcessInfo } from '../runtime/runtime.js';
import type { Store } from '../store/store.js';
import type { Endpoints } from './endpoint-watch.js';

/** The router calls the supervisor makes: the real RouterClient, or a fake in tests. */
export type RouterTable = Pick<RouterClient, 'setApp' | 'removeApp' | 'routes' | 'waitIdle'>;

/** A web process the router may send requests to, by the process ID it belongs to. */
export interface WebProcess {
  id: string;
  upstream: Upstream;
}

export function sameUpstreams(a: readonly Upstream[], b: readonly Upstream[]): boolean {
  return a.length === b.length && a.every((u, i) => upstreamKey(u) === upstreamKey(b[i]!));
}

/** The web processes among these, as the router reaches them. */
export function webOf(processes: readonly ProcessInfo[]): WebProcess[] {
  return processes.flatMap((p) => (p.type === 'web' && p.upstream ? [{ id: p.id, upstream: p.upstream }] : []));
}

/**
 * The one writer of the router's table for apps: each app's host names point at the web processes
 * it was switched to (by a rollout, adoption or a replacement) less those found dead. A process
 * that dies leaves the router at once and comes back when it runs again, so the router never sends
 * requests to a process known to be down. Changes of one app are applied one at a time, in order.
 */
export class RouterPublisher {
  /** The web processes switched to, per app. */
  readonly #web = new Map<string, WebProcess[]>();
  /** Switched-to web processes found not running: out of the router until they run again. */
  readonly #down = new Set<string>();
  /** What the router was last told, per app. */
  readonly #published = new Map<string, Upstream[]>();
  readonly #queue = new Map<string, Promise<void>>();
  /** Bumped at each switch: a listing made before it knows nothing of the processes switched to. */
  readonly #epochs = new Map<string, number>();

  constructor(
    private readonly domain: string,
    private readonly store: Store,
    private readonly router: RouterTable,
    private readonly logs: LogHub,
  ) {}

  defaultHost(app: string): string {
    return `${app}.${this.domain}`;
  }

  /** The web processes the app was switched to (the set a rollback points back at). */
  web(app: string): WebProcess[] {
    return [...(this.#web.get(app) ?? [])];
  }

  /** Every app's switched-to web process IDs, for the Swarm's endpoint watch. */
  webIds(): Map<string, string[]> {
    return new Map([...this.#web].map(([app, web]) => [app, web.map((w) => w.id)]));
  }

  /**
   * Points the app's host names at these web processes in one step (those known dead excepted);
   * known apps with nothing healthy answer 503, not 404. Resolves once the router has saved and
   * applied the change; throws when it could not.
   */
  switchTo(app: string, web: WebProcess[]): Promise<void> {
    return this.serialized(app, async () => {
      for (const old of this.#web.get(app) ?? []) this.#down.delete(old.id);
      this.#web.set(app, [...web]);
      this.#epochs.set(app, this.epoch(app) + 1);
      await this.#apply(app, true);
    });
  }

  /** After a domain or HTTPS change: the same processes under the app's host names as they are now. */
  refresh(app: string): Promise<void> {
    return this.serialized(app, () => this.#apply(app, true));
  }

  /**
   * A process of the app stopped or runs again (an engine event): a switched-to web process leaves
   * the router at once, or comes back. Others are no concern of the router's.
   */
  setDown(app: string, id: string, down: boolean): Promise<void> {
    return this.serialized(app, async () => {
      if (!(this.#web.get(app) ?? []).some((w) => w.id === id)) return;
      if (down) this.#down.add(id);
      else this.#down.delete(id);
      await this.#apply(app, false);
    });
  }

  /** The app's switch count, read before listing what runs: see observe(). */
  epoch(app: string): number {
    return this.#epochs.get(app) ?? 0;
  }

  /**
   * What the runtime listed (the sweep): each switched-to web process is in the router exactly
   * when it runs, at the address it has now. A router change that failed earlier is tried again.
   * A listing begun before a switch (`epoch` read before it) is stale and ignored: it would find
   * the processes just switched to missing.
   */
  observe(app: string, found: readonly ProcessInfo[], epoch: number): Promise<void> {
    return this.serialized(app, async () => {
      const web = this.#web.get(app);
      if (!web || epoch !== this.epoch(app)) return;
      const byId = new Map(found.map((p) => [p.id, p]));
      this.#web.set(
        app,
        web.map((w) => {
          const p = byId.get(w.id);
          if (p?.running) this.#down.delete(w.id);
          else this.#down.add(w.id);
          return p?.upstream ? { id: w.id, upstream: p.upstream } : w;
        }),
      );
      await this.#apply(app, false);
    });
  }

  /** On a Swarm: where the app's web processes answer now; one with no endpoint (a lost node) is down. */
  placed(app: string, ids: string[], endpoints: Endpoints): Promise<void> {
    return this.serialized(app, async () => {
      const web = this.#web.get(app);
      // A rollout switched meanwhile: its set wins.
      if (!web || web.length !== ids.length || web.some((w, i) => w.id !== ids[i])) return;
      this.#web.set(
        app,
        web.map((w) => {
          const at = endpoints.get(w.id);
          if (at) this.#down.delete(w.id);
          else this.#down.add(w.id);
          return at ? { id: w.id, upstream: at } : w;
        }),
      );
      await this.#apply(app, false);
    });
  }

  async unpublish(app: string): Promise<void> {
    await this.serialized(app, async () => {
      for (const w of this.#web.get(app) ?? []) this.#down.delete(w.id);
      this.#web.delete(app);
      this.#published.delete(app);
      await this.router.removeApp(app);
    });
    this.logs.forget(app);
  }

  /** Runs `task` after the app's earlier router changes, whatever their outcome. */
  serialized(app: string, task: () => Promise<void>): Promise<void> {
    const next = (this.#queue.get(app) ?? Promise.resolve()).then(task);
    const settled = next.catch(() => undefined);
    this.#queue.set(app, settled);
    void settled.then(() => this.#queue.get(app) === settled && this.#queue.delete(app));
    return next;
  }

  /** Tells the router the live set, unless it has it already (`always`: the host names may have changed). */
  async #apply(app: string, always: boolean): Promise<void> {
    const next = (this.#web.get(app) ?? []).filter((w) => !this.#down.has(w.id)).map((w) => w.upstream);
    const last = this.#published.get(app);
    if (!always && last !== undefined && sameUpstreams(last, next)) return;
    const record = await this.store.getApp(app);
    const https = { redirect: record?.https?.redirect === true, hsts: record?.https?.hsts === true };
    // Forgotten first: if the router fails, the next observe() tries again.
    this.#published.delete(app);
    const maintenance = record?.maintenance === undefined ? undefined : record.maintenance.page === undefined ? {} : { page: record.maintenance.page };
    await this.router.setApp(app, [this.defaultHost(app), ...(record?.domains ?? [])], next, https, record?.routerTimeoutMs, maintenance);
    this.#published.set(app, next);
  }
}
