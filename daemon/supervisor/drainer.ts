import type { Logger } from '../log.js';
import type { ProcessDriver, ProcessInfo } from '../runtime/runtime.js';
import type { RouterTable } from './router-publisher.js';
import type { LogFollower } from './log-follower.js';

const DRAIN_TIMEOUT_MS = 30_000;
const STOP_GRACE_SECONDS = 30;

/**
 * Old processes leave in the background once the router has moved off them: their in-flight
 * requests finish (the router's count), then SIGTERM, then SIGKILL after the grace period. The
 * command that switched returns at the switch, as a user waits for the new release, not for the
 * old one's slowest request; `ps` shows these processes as draining until they are gone.
 *
 * A rackd stopped mid-drain leaves them running, unrecorded as serving: adoption at the next start
 * removes them with every other leftover.
 */
export class Drainer {
  /** Container IDs being drained now. */
  readonly #draining = new Set<string>();

  constructor(
    private readonly processes: Pick<ProcessDriver, 'stop'>,
    private readonly router: Pick<RouterTable, 'waitIdle'>,
    private readonly follower: LogFollower,
    private readonly log: Logger,
  ) {}

  /** Starts draining each process not already draining; returns at once. */
  drain(processes: readonly ProcessInfo[]): void {
    for (const p of processes) {
      if (this.#draining.has(p.id)) continue;
      this.#draining.add(p.id);
      void this.#drainOne(p).finally(() => this.#draining.delete(p.id));
    }
  }

  isDraining(id: string): boolean {
    return this.#draining.has(id);
  }

  async #drainOne(p: ProcessInfo): Promise<void> {
    try {
      if (p.upstream !== null) await this.router.waitIdle([p.upstream], DRAIN_TIMEOUT_MS);
      await this.processes.stop(p.id, STOP_GRACE_SECONDS);
      this.follower.unwatch(p.id);
    } catch (err) {
      this.log.warn({ container: p.name, err: String(err) }, 'could not drain an old process');
    }
  }
}
