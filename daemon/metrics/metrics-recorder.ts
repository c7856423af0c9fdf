import type { Logger } from '../log.js';
import type { SummaryBucket } from '../router/route-summaries.js';
import type { MetricStore, Resolution } from '../store/metric-store.js';
import type { MetricPoint } from '../store/records.js';
import { addPoint, combinePoints, downsample, RESOLUTIONS, spanStart } from './metric-points.js';

/** A span is rolled up this long after it ends: summaries and samples of it arrive within a second or two. */
const ROLLUP_GRACE_MS = 15_000;
const TICK_MS = 10_000;
/** Old points are deleted this often (a range delete per app and resolution). */
const PRUNE_EVERY_MS = 60_000;

/**
 * rackd's metrics: the router's 10 s summaries and the process sampler's samples go into the 10 s
 * points of the store; each minute, once closed, is rolled up from its 10 s points into a 1 min
 * point, each 10 minutes from those into a 10 min point; each resolution is kept for its own age
 * (an hour, a day, a week). Nothing is held in memory but which spans await their rollup, so memory
 * does not grow with apps' history; a rollup is recomputed whole from the store, so a summary that
 * arrives late (a router that was cut off from rackd) only makes its span roll up again.
 */
export class MetricsRecorder {
  /** `app\nstart` of spans at 1m and 10m whose finer points changed since they were rolled up. */
  readonly #dirty: Record<'1m' | '10m', Set<string>> = { '1m': new Set(), '10m': new Set() };
  #timer: NodeJS.Timeout | undefined;
  #lastPrune = 0;
  #ticking: Promise<void> | undefined;

  constructor(
    private readonly store: MetricStore,
    private readonly apps: () => Promise<string[]>,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  /** Finds the spans a stopped rackd left without their rollup, then rolls up and prunes every 10 s. */
  async start(): Promise<void> {
    for (const app of await this.apps()) {
      for (const [fine, coarse] of [['10s', '1m'], ['1m', '10m']] as const) {
        const rolled = await this.store.last(app, coarse);
        for (const p of await this.store.range(app, fine, rolled ?? 0)) this.#markDirty(app, coarse, p.at);
      }
    }
    this.#timer = setInterval(() => void this.tick(), TICK_MS);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#ticking;
  }

  /** One router bucket: every upstream's counts of an app summed into the app's 10 s point. */
  addSummary(bucket: SummaryBucket): Promise<void> {
    const byApp = new Map<string, MetricPoint>();
    const at = spanStart(bucket.at, 10);
    for (const route of bucket.routes) {
      const had = byApp.get(route.app);
      const point: MetricPoint = { at, span: 10, requests: [...route.requests], bytesIn: route.bytesIn, bytesOut: route.bytesOut, latency: { ...route.latency } };
      byApp.set(route.app, had === undefined ? point : addPoint(had, point));
    }
    return this.#add([...byApp].map(([app, point]) => ({ app, point })));
  }

  /** The process sampler's points (already 10 s points, one per app). */
  addSamples(points: { app: string; point: MetricPoint }[]): Promise<void> {
    return this.#add(points);
  }

  async #add(points: { app: string; point: MetricPoint }[]): Promise<void> {
    await this.store.add('10s', points, addPoint);
    for (const { app, point } of points) this.#markDirty(app, '1m', point.at);
  }

  #markDirty(app: string, res: '1m' | '10m', at: number): void {
    this.#dirty[res].add(`${app}\n${spanStart(at, res === '1m' ? 60 : 600)}`);
  }

  /** Rolls up the closed spans, then prunes what is past its age. Exposed for tests and benchmarks. */
  tick(): Promise<void> {
    this.#ticking ??= this.#tick().finally(() => (this.#ticking = undefined));
    return this.#ticking;
  }

  async #tick(): Promise<void> {
    try {
      await this.#rollup('1m', '10s', 60);
      await this.#rollup('10m', '1m', 600);
      if (this.now() - this.#lastPrune >= PRUNE_EVERY_MS) {
        this.#lastPrune = this.now();
        await this.#prune();
      }
    } catch (err) {
      this.log.error({ err }, 'metrics: rollup or pruning failed; retried at the next tick');
    }
  }

  /** Every closed span awaiting its rollup, recomputed from the finer points and written in one batch. */
  async #rollup(res: '1m' | '10m', finer: Resolution, spanS: number): Promise<void> {
    const closedBefore = this.now() - ROLLUP_GRACE_MS;
    const rolled: { app: string; point: MetricPoint }[] = [];
    for (const entry of [...this.#dirty[res]]) {
      const [app = '', start = '0'] = entry.split('\n');
      const at = Number(start);
      if (at + spanS * 1000 > closedBefore) continue;
      this.#dirty[res].delete(entry);
      const [point] = downsample(await this.store.range(app, finer, at, at + spanS * 1000), spanS);
      if (point !== undefined) rolled.push({ app, point });
    }
    try {
      await this.store.put(res, rolled);
    } catch (err) {
      // Not lost: tried again at the next tick.
      for (const { app, point } of rolled) this.#markDirty(app, res, point.at);
      throw err;
    }
    if (res === '1m') for (const { app, point } of rolled) this.#markDirty(app, '10m', point.at);
  }

  async #prune(): Promise<void> {
    const now = this.now();
    // A span more than the age: `--since 1h` at 10 s always finds its whole first bucket.
    const cutoffs = RESOLUTIONS.map(({ res, keepMs, spanS }) => ({ res, before: now - keepMs - spanS * 1000 }));
    const deleted = await this.store.prune(await this.apps(), cutoffs);
    if (deleted > 0) this.log.debug({ deleted }, 'metrics: old points deleted');
  }

  /**
   * The app's points since `sinceMs` ago, at the finest resolution still kept that far back: 10 s
   * within the hour, 1 min within the day, else 10 min. The time after the last point of that
   * resolution (a minute not yet rolled up) is filled from the finer ones, so no request is missed.
   */
  async points(app: string, sinceMs: number): Promise<{ resolution: Resolution; points: MetricPoint[] }> {
    const from = this.now() - sinceMs;
    const index = RESOLUTIONS.findIndex((r) => sinceMs <= r.keepMs);
    const chosen = RESOLUTIONS[index === -1 ? RESOLUTIONS.length - 1 : index];
    if (chosen === undefined) throw new Error('no resolution');
    const points: MetricPoint[] = [];
    let next = from;
    // Coarsest first: each finer resolution covers only what the coarser has not yet rolled up.
    for (const r of RESOLUTIONS.slice(0, RESOLUTIONS.indexOf(chosen) + 1).reverse()) {
      const found = await this.store.range(app, r.res, r === chosen ? spanStart(next, r.spanS) : next);
      points.push(...found);
      const last = found.at(-1);
      if (last !== undefined) next = last.at + last.span * 1000;
    }
    return { resolution: chosen.res, points };
  }

  /** All the points as one (a period's totals). */
  static total(points: MetricPoint[], from: number, spanS: number): MetricPoint {
    return combinePoints(from, spanS, points);
  }
}
