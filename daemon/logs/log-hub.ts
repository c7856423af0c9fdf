import { EventEmitter } from 'node:events';
import { matches, type LogQuery } from './log-query.js';
import type { LogStore } from './log-store.js';

export interface LogLine {
  /** ISO time the line was written. */
  time: string;
  app: string;
  /** `app[web.1a2b3c]` for a process, `rack[router]` for the router's access lines. */
  source: string;
  /** The process type (`web`, `worker`), or `router`. */
  type: string;
  text: string;
}

const KEEP_PER_APP = 2000;

/**
 * The output of every app, merged: its processes' lines and the router's access lines. Every line
 * goes to the log store on disk (when there is one) for `logs`, and to subscribers for `logs -f`;
 * a bounded buffer per app keeps the recent ones in memory.
 */
export class LogHub {
  private readonly buffers = new Map<string, LogLine[]>();
  private readonly events = new EventEmitter();
  /** How many want each app's router access lines now: followers and drains. */
  private readonly wanters = new Map<string, number>();
  /** Apps that keep their router lines whether or not anyone follows: the release of their want. */
  private readonly kept = new Map<string, () => void>();
  /** Fires `wanted` with no argument whenever the set of apps in `wantedApps()` changes. */
  readonly changes = new EventEmitter();

  constructor(private readonly store?: LogStore) {
    // One listener per `logs -f` client; many may watch one app.
    this.events.setMaxListeners(0);
  }

  push(line: LogLine): void {
    let buffer = this.buffers.get(line.app);
    if (!buffer) {
      buffer = [];
      this.buffers.set(line.app, buffer);
    }
    buffer.push(line);
    if (buffer.length > KEEP_PER_APP) buffer.splice(0, buffer.length - KEEP_PER_APP);
    this.store?.append(line);
    this.events.emit(line.app, line);
  }

  recent(app: string, count: number, type?: string): LogLine[] {
    const lines = (this.buffers.get(app) ?? []).filter((l) => type === undefined || l.type === type);
    return [...lines].sort((a, b) => a.time.localeCompare(b.time)).slice(-count);
  }

  /**
   * Calls `onLine` for every new line of the app until the returned function is called. A follower
   * wants the app's router access lines meanwhile.
   */
  follow(app: string, onLine: (line: LogLine) => void): () => void {
    this.events.on(app, onLine);
    const unwant = this.want(app);
    return () => {
      this.events.off(app, onLine);
      unwant();
    };
  }

  /**
   * Registers one more wanter of the app's per-request router lines (a follower, a drain) until the
   * returned function is called (once; later calls do nothing). The router sends those lines only
   * for apps someone wants: each costs the router and rackd CPU.
   */
  want(app: string): () => void {
    const before = this.wanters.get(app) ?? 0;
    this.wanters.set(app, before + 1);
    if (before === 0) this.changes.emit('wanted');
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const left = (this.wanters.get(app) ?? 1) - 1;
      if (left > 0) {
        this.wanters.set(app, left);
        return;
      }
      this.wanters.delete(app);
      this.changes.emit('wanted');
    };
  }

  /**
   * The app's own wish for its router lines (`logs:router on`), held as one more wanter until it is
   * turned off or the app goes.
   */
  keepRouterLines(app: string, on: boolean): void {
    const held = this.kept.get(app);
    if (on && !held) this.kept.set(app, this.want(app));
    if (!on && held) {
      this.kept.delete(app);
      held();
    }
  }

  /** The apps whose router access lines someone wants now. */
  wantedApps(): string[] {
    return [...this.wanters.keys()];
  }

  /** The last `q.limit` lines that pass the query: from the store, or without one the memory buffer. */
  async history(app: string, q: LogQuery): Promise<LogLine[]> {
    if (this.store) return this.store.query(app, q);
    return q.limit === 0 ? [] : this.recent(app, KEEP_PER_APP).filter((l) => matches(l, q)).slice(-q.limit);
  }

  forget(app: string): void {
    this.buffers.delete(app);
  }

  /** apps:rename: the lines kept on disk and in memory go with the app to its new name. */
  async rename(from: string, to: string): Promise<void> {
    const recent = this.buffers.get(from);
    this.forget(from);
    if (recent && !this.buffers.has(to)) this.buffers.set(to, recent);
    await this.store?.rename(from, to);
  }

  /** apps:destroy: the app's lines leave memory and disk. */
  async remove(app: string): Promise<void> {
    this.keepRouterLines(app, false);
    this.forget(app);
    await this.store?.remove(app);
  }
}

export function formatLogLine(l: LogLine): string {
  return `${l.time} ${l.source}: ${l.text}`;
}
