import { mergeHistogram, recordLatency, type LatencyHistogram } from '../latency-histogram.js';

/** What the router saw of one app's requests to one upstream in one bucket. */
export interface RouteSummary {
  app: string;
  /** upstreamKey() of the process that served; '' for answers the router gave itself (503: no process). */
  upstream: string;
  /** Requests by status class: [1xx, 2xx, 3xx, 4xx, 5xx]. */
  requests: [number, number, number, number, number];
  bytesIn: number;
  bytesOut: number;
  latency: LatencyHistogram;
}

/** One bucket's summaries: `at` is its start (ms since the epoch), `span` its length in seconds. */
export interface SummaryBucket {
  at: number;
  span: number;
  routes: RouteSummary[];
}

export const SUMMARY_SPAN_S = 10;
/** Buckets kept while nobody reads them (rackd restarting): an hour's, then the oldest go. */
const MAX_HELD = 360;

/**
 * The router's per-request bookkeeping: a few additions into the current 10 s bucket, keyed by app
 * and upstream. Buckets follow the wall clock (a bucket starts at a multiple of 10 s), so rackd can
 * merge what a router and its successor both counted in one bucket by adding. A closed bucket is
 * held until taken, so nothing counted is lost while rackd is away.
 */
export class RouteSummaries {
  #at = 0;
  #current = new Map<string, RouteSummary>();
  readonly #held: SummaryBucket[] = [];
  #lost = 0;

  constructor(private readonly now: () => number = Date.now) {}

  record(app: string, upstream: string, status: number, ms: number, bytesIn: number, bytesOut: number): void {
    this.#roll();
    const key = `${app}\n${upstream}`;
    let s = this.#current.get(key);
    if (s === undefined) {
      s = { app, upstream, requests: [0, 0, 0, 0, 0], bytesIn: 0, bytesOut: 0, latency: {} };
      this.#current.set(key, s);
    }
    const cls = Math.min(Math.max(Math.floor(status / 100), 1), 5) - 1;
    s.requests[cls as 0 | 1 | 2 | 3 | 4] += 1;
    s.bytesIn += bytesIn;
    s.bytesOut += bytesOut;
    recordLatency(s.latency, ms);
  }

  /**
   * Adds a bucket another router process counted (a worker of this one): into the bucket of the
   * same time here, current or held, so rackd gets one summary per bucket whatever the processes.
   */
  add(bucket: SummaryBucket): void {
    this.#roll();
    if (bucket.at === this.#at) {
      for (const r of bucket.routes) addRoute(this.#current, r);
      return;
    }
    let held = this.#held.find((b) => b.at === bucket.at);
    if (held === undefined) {
      held = { at: bucket.at, span: bucket.span, routes: [] };
      this.#held.push(held);
      this.#held.sort((a, b) => a.at - b.at);
      if (this.#held.length > MAX_HELD) {
        this.#held.shift();
        this.#lost++;
      }
    }
    const routes = new Map(held.routes.map((r) => [`${r.app}\n${r.upstream}`, r]));
    for (const r of bucket.routes) addRoute(routes, r);
    held.routes = [...routes.values()];
  }

  /** Closes the current bucket if its time is over, and hands over every closed bucket. */
  take(): SummaryBucket[] {
    this.#roll();
    return this.#held.splice(0);
  }

  /** Closes the current bucket whatever the time (a router stopping or handing off). */
  closeAll(): SummaryBucket[] {
    this.#close();
    return this.#held.splice(0);
  }

  /** Buckets dropped because nobody took them for an hour. */
  get lost(): number {
    return this.#lost;
  }

  #roll(): void {
    const at = Math.floor(this.now() / (SUMMARY_SPAN_S * 1000)) * SUMMARY_SPAN_S * 1000;
    if (at === this.#at) return;
    this.#close();
    this.#at = at;
  }

  #close(): void {
    if (this.#current.size > 0) {
      this.#held.push({ at: this.#at, span: SUMMARY_SPAN_S, routes: [...this.#current.values()] });
      this.#current = new Map();
      if (this.#held.length > MAX_HELD) {
        this.#held.shift();
        this.#lost++;
      }
    }
  }
}

function addRoute(into: Map<string, RouteSummary>, r: RouteSummary): void {
  const key = `${r.app}\n${r.upstream}`;
  const s = into.get(key);
  if (s === undefined) {
    into.set(key, { ...r, requests: [...r.requests], latency: { ...r.latency } });
    return;
  }
  for (let i = 0; i < 5; i++) s.requests[i as 0 | 1 | 2 | 3 | 4] += r.requests[i as 0 | 1 | 2 | 3 | 4];
  s.bytesIn += r.bytesIn;
  s.bytesOut += r.bytesOut;
  mergeHistogram(s.latency, r.latency);
}
