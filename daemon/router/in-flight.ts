import { upstreamKey, type Upstream } from './upstream.js';

interface IdleWaiter {
  keys: readonly string[];
  resolve: (idle: boolean) => void;
  timer: NodeJS.Timeout;
}

/**
 * Requests and websockets in flight per upstream. A deploy switches the route table first and
 * then waits here until the old upstreams are idle before stopping their processes.
 */
export class InFlight {
  readonly #counts = new Map<string, number>();
  #waiters: IdleWaiter[] = [];

  count(u: Upstream): number {
    return this.#counts.get(upstreamKey(u)) ?? 0;
  }

  increment(key: string): void {
    this.#counts.set(key, (this.#counts.get(key) ?? 0) + 1);
  }

  decrement(key: string): void {
    const n = (this.#counts.get(key) ?? 0) - 1;
    if (n > 0) {
      this.#counts.set(key, n);
      return;
    }
    // Deleting rather than keeping zeros keeps the map from growing with every upstream ever seen.
    this.#counts.delete(key);
    if (this.#waiters.length > 0) this.#wakeIdle();
  }

  waitIdle(upstreams: readonly Upstream[], timeoutMs: number): Promise<boolean> {
    const keys = upstreams.map(upstreamKey);
    if (this.#idle(keys)) return Promise.resolve(true);
    return new Promise<boolean>((resolve) => {
      const waiter: IdleWaiter = {
        keys,
        resolve,
        timer: setTimeout(() => {
          this.#waiters = this.#waiters.filter((w) => w !== waiter);
          resolve(this.#idle(keys));
        }, Math.max(0, timeoutMs)),
      };
      this.#waiters.push(waiter);
    });
  }

  #idle(keys: readonly string[]): boolean {
    return keys.every((k) => !this.#counts.has(k));
  }

  #wakeIdle(): void {
    const still: IdleWaiter[] = [];
    for (const w of this.#waiters) {
      if (this.#idle(w.keys)) {
        clearTimeout(w.timer);
        w.resolve(true);
      } else {
        still.push(w);
      }
    }
    this.#waiters = still;
  }
}
