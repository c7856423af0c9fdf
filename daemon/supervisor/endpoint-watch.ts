import type { Logger } from '../log.js';

/** How often the web processes' addresses are read again: about the time Swarm takes to notice a lost node. */
const INTERVAL_MS = 1000;

export type Endpoints = Map<string, { host: string; port: number } | null>;

/**
 * On a Swarm, a web process's address is its task's node and the port Swarm picked, and both
 * change when Swarm replaces the task (a crash, a lost or drained node). Every second this reads
 * where the serving processes answer now, with one call for all apps, and hands each app's to
 * `apply` (the router publisher acts only on a change): a process on a node that is not ready
 * (no endpoint) leaves the router, and its replacement joins it once running. A runtime whose addresses never move has no endpoints.
 */
export class EndpointWatch {
  #timer: NodeJS.Timeout | undefined;
  #busy = false;

  constructor(
    private readonly serving: () => ReadonlyMap<string, string[]>,
    /** Absent when the runtime's addresses never move: then there is nothing to watch. */
    private readonly read: ((ids: string[]) => Promise<Endpoints>) | undefined,
    private readonly apply: (app: string, ids: string[], endpoints: Endpoints) => Promise<void>,
    private readonly log: Logger,
  ) {}

  start(): void {
    if (this.#timer !== undefined || this.read === undefined) return;
    this.#timer = setInterval(() => void this.#tick(), INTERVAL_MS);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  async #tick(): Promise<void> {
    if (this.#busy) return;
    this.#busy = true;
    try {
      const apps = [...this.serving()];
      const all = apps.flatMap(([, ids]) => ids);
      if (all.length === 0) return;
      const endpoints = await this.read!(all);
      for (const [app, ids] of apps) await this.apply(app, ids, endpoints);
    } catch (err) {
      this.log.warn({ err: String(err) }, 'could not read where web processes answer');
    } finally {
      this.#busy = false;
    }
  }
}
