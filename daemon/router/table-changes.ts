import { pino } from 'pino';
import { RouteTable } from './route-table.js';
import { writeFileAtomic } from '../atomic-file.js';
import { serializeRoutes } from './route-state-file.js';
import { appRoute, type AppRoute, type Router } from './router.js';

/** One change to the router's table, as a control request asks for it. */
export type TableChange = { method: 'setApp'; route: AppRoute } | { method: 'removeApp'; app: string };

/** The table could not be saved, so the change was not applied: the router routes as before. */
export class SaveError extends Error {
  readonly code = 'save_failed';
}

interface Waiting {
  change: TableChange;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/** Replays the changes on a copy of `routes`: the table the router will have once they are applied. */
export function tableAfter(routes: readonly AppRoute[], changes: readonly TableChange[]): AppRoute[] {
  const table = new RouteTable(quiet);
  // Replaying the current entries rebuilds the live table exactly (see RouteTable.entries()).
  for (const r of routes) table.set(r.app, r.hosts, r.upstreams, r.https, r.timeoutMs, r.maintenance);
  for (const c of changes) {
    if (c.method === 'setApp') table.set(c.route.app, c.route.hosts, c.route.upstreams, c.route.https, c.route.timeoutMs, c.route.maintenance);
    else table.remove(c.app);
  }
  return table.entries().map(appRoute);
}

/** The copy's host moves were logged, if at all, by the live table. */
const quiet = pino({ level: 'silent' });

/**
 * The router process's table changes, each saved to the state file before it is applied: the
 * router never routes to a table that a crash or a full disk would lose, and a change whose save
 * fails is answered with an error and leaves the table as it was. (Applying first and rolling back
 * on failure would route requests to the new upstreams while the save is still uncertain, and an
 * exact undo of a host moved between apps and of closed connection pools is harder than this.)
 *
 * Changes are kept in arrival order. A change that arrives while a save is under way joins the
 * next batch: under a burst the file is written a few times, not once per change. A batch is the
 * table after all its changes, written once; if that write fails, every change in it fails and
 * none is applied, and the next batch starts again from the table as it is. A batch that changes
 * nothing on disk is not written again: rackd re-sends every route after it restarts.
 */
export class TableChanges {
  readonly #path: string;
  readonly #router: Router;
  #queue: Waiting[] = [];
  #running: Promise<void> | undefined;
  /** What the file holds now; undefined after a failed write, so the next one always writes. */
  #saved: string | undefined;
  /** Held during a handoff: changes queue unanswered, for the successor to be sent them again. */
  #held = false;

  /** `router` already holds the table read from `path` at start. */
  constructor(path: string, router: Router) {
    this.#path = path;
    this.#router = router;
    this.#saved = serializeRoutes(router.routes());
  }

  /** Resolves once the change is saved and applied; rejects with a SaveError, table unchanged, if the save fails. */
  apply(change: TableChange): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ change, resolve, reject });
      if (!this.#held) this.#running ??= this.#drain();
    });
  }

  /**
   * Stops saving and applying, and resolves once the state file holds every change answered so far:
   * the successor of a handoff reads it. Changes that arrive meanwhile wait, unanswered; clients
   * send them again to the successor (every request is idempotent).
   */
  async hold(): Promise<void> {
    this.#held = true;
    await this.idle();
  }

  /** The handoff failed: the changes that waited are saved and applied, in order, here. */
  resume(): void {
    this.#held = false;
    if (this.#queue.length > 0) this.#running ??= this.#drain();
  }

  /** Resolves once nothing is left to save (shutdown waits for this). */
  async idle(): Promise<void> {
    while (this.#running !== undefined) await this.#running;
  }

  async #drain(): Promise<void> {
    // Yield first: a batch that needs no write would otherwise finish (and clear #running) before
    // apply() stores this promise in #running, leaving it set for good and every later change queued.
    await Promise.resolve();
    try {
      while (this.#queue.length > 0 && !this.#held) {
        const batch = this.#queue;
        this.#queue = [];
        const changes = batch.map((w) => w.change);
        try {
          const data = serializeRoutes(tableAfter(this.#router.routes(), changes));
          if (data !== this.#saved) {
            this.#saved = undefined;
            await writeFileAtomic(this.#path, data);
            this.#saved = data;
          }
        } catch (err) {
          const reason = err instanceof Error ? err.message : String(err);
          const failure = new SaveError(`cannot save the route table to ${this.#path}: ${reason}`, { cause: err });
          for (const w of batch) w.reject(failure);
          continue;
        }
        for (const c of changes) {
          if (c.method === 'setApp') this.#router.setApp(c.route.app, c.route.hosts, c.route.upstreams, c.route.https, c.route.timeoutMs, c.route.maintenance);
          else this.#router.removeApp(c.app);
        }
        for (const w of batch) w.resolve();
      }
    } finally {
      this.#running = undefined;
    }
  }
}
