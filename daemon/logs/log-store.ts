import { moveFolder } from '../folder-move.js';
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { isAppName } from '../app-name.js';
import type { Logger } from '../log.js';
import { AppLog } from './app-log.js';
import type { LogLine } from './log-hub.js';
import type { LogKeep } from './log-keep.js';
import type { LogQuery } from './log-query.js';

export interface LogStoreOptions {
  /** RACK_HOME/logs/apps: a folder per app. */
  dir: string;
  keep: LogKeep;
  log: Logger;
  /** The clock the age bound is read against (a test's own). */
  now?: () => number;
  /** Size at which a segment is closed; by default a 16th of the size bound (16 KiB to 8 MiB). */
  segmentBytes?: number;
}

/** How often the age bound is applied to apps that write nothing (a busy app's segments close by size). */
const PRUNE_EVERY_MS = 10 * 60_000;

/**
 * Every app's log on disk, bounded per app by RACK_LOG_KEEP, kept across redeploys and restarts
 * (each app's folder is opened as it is, when first written or read), removed with the app.
 */
export class LogStore {
  readonly #apps = new Map<string, AppLog>();
  #timer: NodeJS.Timeout | undefined;
  #pruning: Promise<void> = Promise.resolve();

  constructor(private readonly opts: LogStoreOptions) {}

  start(): void {
    this.#timer = setInterval(() => void this.prune(), PRUNE_EVERY_MS).unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.#pruning;
    for (const app of this.#apps.values()) await app.close();
    this.#apps.clear();
  }

  append(line: LogLine): void {
    this.#of(line.app).append(line);
  }

  query(app: string, q: LogQuery): Promise<LogLine[]> {
    return this.#of(app).query(q);
  }

  /** Lines of the app dropped since rackd started because the disk was too slow. */
  dropped(app: string): number {
    return this.#apps.get(app)?.dropped ?? 0;
  }

  /** apps:destroy: the app's log goes with it. */
  async remove(app: string): Promise<void> {
    const log = this.#apps.get(app);
    this.#apps.delete(app);
    await log?.close();
    await rm(join(this.opts.dir, app), { recursive: true, force: true });
  }

  /** apps:rename: the app's folder moves with it; idempotent, so a start after a crash finishes it. */
  async rename(from: string, to: string): Promise<void> {
    const log = this.#apps.get(from);
    this.#apps.delete(from);
    await log?.close();
    await moveFolder(join(this.opts.dir, from), join(this.opts.dir, to));
  }

  /** Applies the age bound to every app's log, those not opened since rackd started included. */
  prune(): Promise<void> {
    this.#pruning = this.#pruning
      .then(async () => {
        const names = await readdir(this.opts.dir).catch(() => [] as string[]);
        for (const name of names) if (isAppName(name)) await this.#of(name).prune();
      })
      .catch((err: unknown) => this.opts.log.warn({ err: String(err) }, 'log store prune failed'));
    return this.#pruning;
  }

  #of(app: string): AppLog {
    let log = this.#apps.get(app);
    if (!log) {
      const { keep } = this.opts;
      log = new AppLog(app, join(this.opts.dir, app), {
        keep,
        segmentBytes: this.opts.segmentBytes ?? Math.min(8 * 1024 ** 2, Math.max(16 * 1024, Math.floor(keep.maxBytes / 16))),
        flushBytes: 64 * 1024,
        bufferBytes: 2 * 1024 ** 2,
        now: this.opts.now ?? Date.now,
        log: this.opts.log,
      });
      this.#apps.set(app, log);
    }
    return log;
  }
}
