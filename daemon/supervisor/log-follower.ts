import type { Logger } from '../log.js';
import type { LogHub } from '../logs/log-hub.js';
import type { ProcessDriver, ProcessInfo } from '../runtime/runtime.js';

const REATTACH_MS = 1000;

/**
 * Feeds every process's output into the log hub: one follower per container, kept across crash
 * restarts (Docker ends a log stream when the process dies), stopped when the process is.
 */
export class LogFollower {
  private readonly followers = new Map<string, AbortController>();

  constructor(
    private readonly processes: Pick<ProcessDriver, 'followLogs' | 'inspect'>,
    private readonly hub: LogHub,
    private readonly log: Logger,
  ) {}

  watch(p: ProcessInfo, tail: number): void {
    if (this.followers.has(p.id)) return;
    const abort = new AbortController();
    this.followers.set(p.id, abort);
    const source = `app[${p.dyno}]`;
    const push = (time: string, text: string) =>
      this.hub.push({ time: `${time.slice(0, 23)}Z`, app: p.app, source, type: p.type, text });
    this.processes
      .followLogs(p.id, tail, push, abort.signal)
      .catch((err: unknown) => this.log.debug({ container: p.name, err: String(err) }, 'log follow failed'))
      .finally(() => {
        if (this.followers.get(p.id) !== abort) return;
        this.followers.delete(p.id);
        if (abort.signal.aborted) return;
        // The stream ended without us asking: the process died. Follow it again once Docker restarts it.
        setTimeout(() => {
          void this.processes
            .inspect(p.id)
            .then(() => this.watch(p, 0))
            .catch(() => undefined); // removed meanwhile
        }, REATTACH_MS).unref();
      });
  }

  unwatch(id: string): void {
    this.followers.get(id)?.abort();
    this.followers.delete(id);
  }

  stop(): void {
    for (const abort of this.followers.values()) abort.abort();
    this.followers.clear();
  }
}
