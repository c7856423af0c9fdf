import type { Sublevel, Value } from './store.js';
import type { Writes } from './store-writer.js';
import type { MetricPoint } from './records.js';

/** The three resolutions kept: 10 s points for an hour, 1 min for a day, 10 min for a week. */
export type Resolution = '10s' | '1m' | '10m';

const pad = (n: number) => String(n).padStart(14, '0');
const key = (app: string, res: Resolution, at: number) => `${app}!${res}!${pad(at)}`;
// '"' sorts right after '!': the end of one app's range at one resolution.
const end = (app: string, res: Resolution) => `${app}!${res}"`;

/**
 * Metrics are told to nobody as saved, so their batches are not synced (StoreWriter.commit): the
 * next synced write of any change carries them to disk, and a power cut costs the last seconds of
 * points, not a sync every 10 s per app.
 */
const UNSYNCED = { sync: false };

/**
 * The metrics' key space: one point per app, resolution and span start, keys sorted by time so a
 * range read answers `metrics --since` and a range delete keeps each resolution within its age.
 * How points combine is the metrics folder's business: it is passed in.
 */
export class MetricStore {
  constructor(
    private readonly db: Sublevel,
    private readonly writes: Writes<Value>,
  ) {}

  /**
   * Adds each point to the one stored at its app, resolution and start (or stores it), with
   * `combine`, all in one batch: read and write happen in the store's one queue, so two additions
   * to one point never lose one another.
   */
  add(res: Resolution, points: { app: string; point: MetricPoint }[], combine: (stored: MetricPoint, added: MetricPoint) => MetricPoint): Promise<void> {
    if (points.length === 0) return Promise.resolve();
    return this.writes.run(async () => {
      const keys = points.map(({ app, point }) => key(app, res, point.at));
      // One read for all: a get per app would wait on LevelDB's thread pool fifty times a bucket.
      const stored = await this.db.getMany(keys);
      const merged = new Map<string, MetricPoint>();
      points.forEach(({ point }, i) => {
        const k = keys[i] ?? '';
        const had = merged.get(k) ?? (stored[i] as MetricPoint | undefined);
        merged.set(k, had === undefined ? point : combine(had, point));
      });
      await this.writes.batch([...merged].map(([k, value]) => ({ type: 'put' as const, key: k, value })), UNSYNCED);
    });
  }

  /** Stores points whole, replacing what was at their keys (a coarse point rolled up again). */
  put(res: Resolution, points: { app: string; point: MetricPoint }[]): Promise<void> {
    if (points.length === 0) return Promise.resolve();
    return this.writes.run(() => this.writes.batch(points.map(({ app, point }) => ({ type: 'put' as const, key: key(app, res, point.at), value: point })), UNSYNCED));
  }

  /** The app's points at `res` starting in [from, to), oldest first. */
  async range(app: string, res: Resolution, from: number, to = Number.MAX_SAFE_INTEGER): Promise<MetricPoint[]> {
    const out: MetricPoint[] = [];
    for await (const value of this.db.values({ gte: key(app, res, Math.max(0, from)), lt: key(app, res, to) })) out.push(value as MetricPoint);
    return out;
  }

  /** The start of the app's newest point at `res`. */
  async last(app: string, res: Resolution): Promise<number | undefined> {
    for await (const value of this.db.values({ gte: key(app, res, 0), lt: end(app, res), reverse: true, limit: 1 })) return (value as MetricPoint).at;
    return undefined;
  }

  /** Deletions of every point of the app, for the batch that destroys it (a new app of its name starts blank). */
  async forgetOps(app: string): Promise<{ type: 'del'; key: string; sublevel: Sublevel }[]> {
    const ops: { type: 'del'; key: string; sublevel: Sublevel }[] = [];
    for await (const k of this.db.keys({ gt: `${app}!`, lt: `${app}"` })) ops.push({ type: 'del', key: k, sublevel: this.db });
    return ops;
  }

  /** Deletes, in one batch, the apps' points older than the cutoff of their resolution; answers how many. */
  prune(apps: string[], cutoffs: { res: Resolution; before: number }[]): Promise<number> {
    return this.writes.run(async () => {
      const keys: string[] = [];
      for (const app of apps) {
        for (const { res, before } of cutoffs) for await (const k of this.db.keys({ gte: key(app, res, 0), lt: key(app, res, before) })) keys.push(k);
      }
      if (keys.length > 0) await this.writes.batch(keys.map((k) => ({ type: 'del' as const, key: k })), UNSYNCED);
      return keys.length;
    });
  }
}
