import { latencyBucket, mergeHistogram, type LatencyHistogram } from '../latency-histogram.js';

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

/** One app and upstream's counts in the current bucket: latencies as an array until the bucket closes. */
interface Counting {
  app: string;
  upstream: string;
  requests: [number, number, number, number, number];
  bytesIn: number;
  bytesOut: number;
  /** Requests per latencyBucket(), indexed by the bucket: no string key made per request. */
  latency: number[];
}

/**
 * The router's per-request bookkeeping: a few additions into the current 10 s bucket, keyed by app
 * and upstream. Buckets follow the wall clock (a bucket starts at a multiple of 10 s), so rackd can
 * merge what a router and its successor both counted in one bucket by adding. A closed bucket is
 * held until taken, so nothing counted is lost while rackd is away.
 */
export class RouteSummaries {
  #at = 0;
  /** When the current bucket ends: the per-request check is one comparison. */
  #end = 0;
  /** app → upstream → counts: two lookups, no key string made per request. */
  #current = new Map<string, Map<string, Counting>>();
  readonly #held: SummaryBucket[] = [];
  #lost = 0;

  constructor(private readonly now: () => number = Date.now) {}

  record(app: string, upstream: string, status: number, ms: number, bytesIn: number, bytesOut: number): void {
    this.#roll();
    const s = this.#counting(app, upstream);
    const cls = Math.min(Math.max(Math.floor(status / 100), 1), 5) - 1;
    s.requests[cls as 0 | 1 | 2 | 3 | 4] += 1;
    s.bytesIn += bytesIn;
    s.bytesOut += bytesOut;
    const b = latencyBucket(ms);
    s.latency[b] = (s.latency[b] ?? 0) + 1;
  }

  /**
   * Adds a bucket another router process counted (a worker of this one): into the bucket of the
   * same time here, current or held, so rackd gets one summary per bucket whatever the processes.
   */
  add(bucket: SummaryBucket): void {
    this.#roll();
    if (bucket.at === this.#at) {
      for (const r of bucket.routes) {
        const s = this.#counting(r.app, r.upstream);
        for (let i = 0; i < 5; i++) s.requests[i as 0 | 1 | 2 | 3 | 4] += r.requests[i as 0 | 1 | 2 | 3 | 4];
        s.bytesIn += r.bytesIn;
        s.bytesOut += r.bytesOut;
        for (const [key, n] of Object.entries(r.latency)) s.latency[Number(key)] = (s.latency[Number(key)] ?? 0) + n;
      }
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

  /**
   * Closes the current bucket if its time is over, and hands over every closed bucket that ended
   * at least `graceMs` ago: a router with workers waits for their counts of it to come in, so rackd
   * gets the bucket once. (A late one is still added, and sent on its own: rackd adds them up.)
   */
  take(graceMs = 0): SummaryBucket[] {
    this.#roll();
    if (graceMs === 0) return this.#held.splice(0);
    const now = this.now();
    let n = 0;
    while (n < this.#held.length && (this.#held[n] as SummaryBucket).at + SUMMARY_SPAN_S * 1000 + graceMs <= now) n++;
    return this.#held.splice(0, n);
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

  #counting(app: string, upstream: string): Counting {
    let byUpstream = this.#current.get(app);
    if (byUpstream === undefined) {
      byUpstream = new Map();
      this.#current.set(app, byUpstream);
    }
    let s = byUpstream.get(upstream);
    if (s === undefined) {
      s = { app, upstream, requests: [0, 0, 0, 0, 0], bytesIn: 0, bytesOut: 0, latency: [] };
      byUpstream.set(upstream, s);
    }
    return s;
  }

  #roll(): void {
    const now = this.now();
    if (now < this.#end && now >= this.#at) return;
    const at = Math.floor(now / (SUMMARY_SPAN_S * 1000)) * SUMMARY_SPAN_S * 1000;
    if (at === this.#at) return;
    this.#close();
    this.#at = at;
    this.#end = at + SUMMARY_SPAN_S * 1000;
  }

  #close(): void {
    if (this.#current.size === 0) return;
    const routes: RouteSummary[] = [];
    for (const byUpstream of this.#current.values()) {
      for (const c of byUpstream.values()) {
        const latency: LatencyHistogram = {};
        c.latency.forEach((n, i) => {
          if (n > 0) latency[String(i)] = n;
        });
        routes.push({ app: c.app, upstream: c.upstream, requests: c.requests, bytesIn: c.bytesIn, bytesOut: c.bytesOut, latency });
      }
    }
    this.#held.push({ at: this.#at, span: SUMMARY_SPAN_S, routes });
    this.#current = new Map();
    if (this.#held.length > MAX_HELD) {
      this.#held.shift();
      this.#lost++;
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
