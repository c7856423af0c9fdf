/**
 * A closed-loop HTTP load generator for the benchmarks: N keep-alive clients, each its own undici
 * Client (one connection), send a GET, read the whole answer, record it, and send the next one,
 * for a duration or until stop() — whichever comes first, and never past a hard time and request
 * cap. Load only ever goes to a loopback address.
 *
 *   const load = startLoad({ url: 'http://127.0.0.1:8080/', host: 'app.localhost', connections: 16, durationMs: 5000 });
 *   const report = await load.done;          // or: await load.stop()
 *   console.log(formatReport(report));
 */
import { Client } from 'undici';

export interface LoadOptions {
  /** Absolute http or https URL on 127.0.0.1, ::1 or localhost; its path and query are requested. */
  url: string;
  /** For https: the CA to trust (PEM) and the name to send as SNI and check the certificate against. */
  tls?: { ca: string; servername: string };
  /** Host header to send (the router picks the app by it); defaults to the URL's host. */
  host?: string;
  /** Number of concurrent clients, each with its own keep-alive connection. */
  connections: number;
  /** Stops by itself after this long. Omitted: runs until stop(), but never past maxDurationMs. */
  durationMs?: number;
  /** Hard cap on the run's length even when nobody calls stop(). Default 10 minutes. */
  maxDurationMs?: number;
  /** Hard cap on the number of requests sent. Default 50 million. */
  maxRequests?: number;
  /** A request with no answer after this long fails (undici headers/body timeout). Default 10 s. */
  requestTimeoutMs?: number;
  /**
   * A client whose request failed at the network level (refused, reset) waits this long before
   * its next one, so a closed port does not become a busy loop counting millions of refusals.
   * Default 10 ms. Answers with a 5xx status are not delayed.
   */
  pauseAfterErrorMs?: number;
}

export interface FailureEvent {
  /** ms since the run started (performance.now() based), when the failure was seen. */
  at: number;
  reason: string;
}

export interface LoadReport {
  /** 2xx and 3xx answers. */
  served: number;
  /** 5xx answers and network errors. */
  failed: number;
  /** 4xx answers: neither served nor failed by the definition above, counted apart. */
  clientErrors: number;
  /** reason → count, for failed and 4xx requests ("HTTP 502: Bad gateway: ...", "ECONNREFUSED: ..."). */
  reasons: Record<string, number>;
  /** Every failed (and 4xx) request with its time, to attribute failures to what happened meanwhile. */
  failures: FailureEvent[];
  /** Wall time of the run, ms. */
  elapsedMs: number;
  /** Served requests per second over the run. */
  rps: number;
  /** Latency of served requests, ms: request sent → whole answer read. */
  latency: LatencySummary;
  /** Why the run ended. */
  endedBy: 'duration' | 'stop' | 'max-duration' | 'max-requests';
}

export interface LatencySummary {
  count: number;
  min: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

/**
 * Nearest-rank percentile of an ascending array: the smallest value with at least p % of the
 * values at or below it. p in [0, 100]; NaN for an empty array.
 */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile ${p} is not in [0, 100]`);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1]!;
}

/** min/p50/p90/p99/max/mean of unsorted latencies (ms). */
export function summarize(latencies: ArrayLike<number>): LatencySummary {
  const sorted = Float64Array.from(latencies).sort();
  const arr = Array.from(sorted);
  let sum = 0;
  for (const x of arr) sum += x;
  return {
    count: arr.length,
    min: arr.length ? arr[0]! : Number.NaN,
    p50: percentile(arr, 50),
    p90: percentile(arr, 90),
    p99: percentile(arr, 99),
    max: arr.length ? arr[arr.length - 1]! : Number.NaN,
    mean: arr.length ? sum / arr.length : Number.NaN,
  };
}

export interface LoadRun {
  /** Resolves with the report once every client has finished its last request. */
  readonly done: Promise<LoadReport>;
  /** Ends the run now (requests in flight complete and count) and returns the report. */
  stop(): Promise<LoadReport>;
  /** Milliseconds since the run started, on the clock FailureEvent.at uses. */
  now(): number;
  /** Counts so far, without stopping. */
  progress(): { served: number; failed: number; clientErrors: number };
}

const LOOPBACK = new Set(['127.0.0.1', '[::1]', 'localhost']);

function errorReason(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    const head = typeof code === 'string' ? code : err.name;
    return `${head}: ${err.message}`;
  }
  return String(err);
}

function clip(s: string, n = 80): string {
  const one = s.replace(/\s+/g, ' ').trim();
  return one.length > n ? `${one.slice(0, n)}…` : one;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export function startLoad(opts: LoadOptions): LoadRun {
  const target = new URL(opts.url);
  if (target.protocol !== 'http:' && target.protocol !== 'https:') throw new Error(`load generator: only http and https URLs (${opts.url})`);
  if (!LOOPBACK.has(target.hostname)) throw new Error(`load generator: refusing a non-loopback target (${target.hostname})`);
  if (!Number.isInteger(opts.connections) || opts.connections < 1 || opts.connections > 1024) {
    throw new Error(`load generator: connections must be 1..1024 (${opts.connections})`);
  }
  const maxDurationMs = Math.min(opts.maxDurationMs ?? 600_000, 3_600_000);
  const durationMs = Math.min(opts.durationMs ?? maxDurationMs, maxDurationMs);
  const maxRequests = opts.maxRequests ?? 50_000_000;
  const timeout = opts.requestTimeoutMs ?? 10_000;
  const pauseAfterError = opts.pauseAfterErrorMs ?? 10;
  const path = `${target.pathname}${target.search}`;
  const headers: Record<string, string> = { host: opts.host ?? target.host };

  const latencies: number[] = [];
  const failures: FailureEvent[] = [];
  const reasons: Record<string, number> = {};
  let served = 0;
  let failed = 0;
  let clientErrors = 0;
  let sent = 0;
  let running = true;
  let endedBy: LoadReport['endedBy'] = 'duration';
  const t0 = performance.now();
  let tEnd = t0;
  const now = () => performance.now() - t0;

  const end = (why: LoadReport['endedBy']) => {
    if (!running) return;
    running = false;
    endedBy = why;
  };
  const byDuration = opts.durationMs !== undefined && opts.durationMs <= maxDurationMs;
  const timer = setTimeout(() => end(byDuration ? 'duration' : 'max-duration'), durationMs);

  const record = (reason: string) => {
    reasons[reason] = (reasons[reason] ?? 0) + 1;
    failures.push({ at: now(), reason });
  };

  async function worker(): Promise<void> {
    const client = new Client(target.origin, {
      pipelining: 1,
      headersTimeout: timeout,
      bodyTimeout: timeout,
      connect: opts.tls === undefined ? { timeout } : { timeout, ca: opts.tls.ca, servername: opts.tls.servername },
      keepAliveTimeout: 60_000,
    });
    // A refused connect is reported per request below; the event would only duplicate it.
    client.on('connectionError', () => {});
    try {
      while (running) {
        if (sent >= maxRequests) {
          end('max-requests');
          break;
        }
        sent += 1;
        const start = performance.now();
        try {
          const res = await client.request({ method: 'GET', path, headers });
          const status = res.statusCode;
          if (status >= 200 && status < 400) {
            await res.body.arrayBuffer();
            latencies.push(performance.now() - start);
            served += 1;
          } else {
            const body = await res.body.text().catch((e: unknown) => `(body: ${errorReason(e)})`);
            if (status >= 500) failed += 1;
            else clientErrors += 1;
            record(`HTTP ${status}: ${clip(body)}`);
          }
        } catch (err) {
          failed += 1;
          record(errorReason(err));
          if (running && pauseAfterError > 0) await sleep(pauseAfterError);
        }
      }
    } finally {
      await client.destroy().catch(() => {});
    }
  }

  const workers = Array.from({ length: opts.connections }, () => worker());
  const done = Promise.all(workers).then((): LoadReport => {
    clearTimeout(timer);
    tEnd = performance.now();
    const elapsedMs = tEnd - t0;
    return {
      served,
      failed,
      clientErrors,
      reasons,
      failures,
      elapsedMs,
      rps: served / (elapsedMs / 1000),
      latency: summarize(latencies),
      endedBy,
    };
  });

  return {
    done,
    stop() {
      end('stop');
      return done;
    },
    now,
    progress: () => ({ served, failed, clientErrors }),
  };
}

/** Runs load for a fixed time and returns its report. */
export function runLoad(opts: LoadOptions & { durationMs: number }): Promise<LoadReport> {
  return startLoad(opts).done;
}

export const ms = (x: number): string => (Number.isNaN(x) ? '—' : `${x.toFixed(2)} ms`);

/** Reason lines, most frequent first. */
export function formatReasons(reasons: Record<string, number>, indent = '  '): string[] {
  return Object.entries(reasons)
    .sort((a, b) => b[1] - a[1])
    .map(([reason, n]) => `${indent}${String(n).padStart(7)} × ${reason}`);
}

/** A few lines describing a run. */
export function formatReport(r: LoadReport, label = 'load'): string {
  const l = r.latency;
  const lines = [
    `${label}: ${(r.elapsedMs / 1000).toFixed(2)} s, served ${r.served}, failed ${r.failed}` +
      (r.clientErrors ? `, 4xx ${r.clientErrors}` : '') +
      `, ${r.rps.toFixed(0)} req/s`,
    `  latency p50 ${ms(l.p50)}, p90 ${ms(l.p90)}, p99 ${ms(l.p99)}, max ${ms(l.max)}`,
  ];
  const why = formatReasons(r.reasons, '    ');
  if (why.length) lines.push('  failure reasons:', ...why);
  return lines.join('\n');
}
