/**
 * What `wrk --latency` and `h2load` print, read into figures (pure functions, so they are tested
 * on captured outputs without running either tool).
 */

export interface LoadFigures {
  /** Requests answered in the measured time (wrk: all of them; h2load: succeeded streams). */
  requests: number;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  /** Socket errors, timeouts and non-2xx/3xx answers (wrk), failed streams (errored and timed out among them) and 4xx/5xx answers (h2load). */
  errors: number;
  /** h2load's negotiated application protocol (`h2`, `http/1.1`), absent when none was. */
  protocol?: string;
}

const UNIT_MS: Record<string, (n: number) => number> = { us: (n) => n / 1000, ms: (n) => n, s: (n) => n * 1000, m: (n) => n * 60_000, h: (n) => n * 3_600_000 };

/** `135.00us`, `1.11ms`, `2.01s` (wrk's and h2load's time format) in ms; NaN when it is not one. */
export function durationMs(text: string): number {
  const m = /^([\d.]+)(us|ms|s|m|h)$/.exec(text.trim());
  return m === null ? Number.NaN : UNIT_MS[m[2] as string]!(Number(m[1]));
}

/** The figures of a `wrk --latency` run; throws when the output is not one (wrk failed to start). */
export function parseWrk(text: string): LoadFigures {
  const requests = /^\s*(\d+) requests in /m.exec(text)?.[1];
  const rps = /^Requests\/sec:\s+([\d.]+)/m.exec(text)?.[1];
  const p50 = /^\s*50%\s+(\S+)/m.exec(text)?.[1];
  const p99 = /^\s*99%\s+(\S+)/m.exec(text)?.[1];
  if (requests === undefined || rps === undefined || p50 === undefined || p99 === undefined) {
    throw new Error(`not the output of wrk --latency:\n${text.slice(0, 2000)}`);
  }
  let errors = 0;
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  if (socket !== null) errors += socket.slice(1).reduce((sum, n) => sum + Number(n), 0);
  errors += Number(/Non-2xx or 3xx responses: (\d+)/.exec(text)?.[1] ?? 0);
  return { requests: Number(requests), rps: Number(rps), p50Ms: durationMs(p50), p99Ms: durationMs(p99), errors };
}

/**
 * The totals of an h2load run. h2load prints no percentiles: p50 and p99 come from its
 * `--log-file` (see `logPercentiles`) and are NaN here.
 */
export function parseH2load(text: string): LoadFigures {
  const finished = /^finished in [\d.]+\w*, ([\d.]+) req\/s/m.exec(text)?.[1];
  const req = /^requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/m.exec(text);
  if (finished === undefined || req === null) throw new Error(`not the output of h2load:\n${text.slice(0, 2000)}`);
  const codes = /^status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/m.exec(text);
  const protocol = /^Application protocol: (\S+)/m.exec(text)?.[1];
  // h2load's "failed" already holds the errored and timed-out streams.
  const failed = Number(req[5]) + Number(codes?.[3] ?? 0) + Number(codes?.[4] ?? 0);
  return {
    requests: Number(req[4]),
    rps: Number(finished),
    p50Ms: Number.NaN,
    p99Ms: Number.NaN,
    errors: failed,
    ...(protocol === undefined ? {} : { protocol }),
  };
}

/**
 * p50 and p99 (ms) of the answered requests in an h2load `--log-file`: tab-separated rows of start
 * time (µs since the epoch), status (-1 for a failed stream) and µs until the response's end.
 */
export function logPercentiles(log: string): { count: number; p50Ms: number; p99Ms: number } {
  const times: number[] = [];
  for (const row of log.split('\n')) {
    const [, status, elapsed] = row.split('\t');
    if (status === undefined || elapsed === undefined || Number(status) < 0) continue;
    times.push(Number(elapsed) / 1000);
  }
  times.sort((a, b) => a - b);
  return { count: times.length, p50Ms: percentile(times, 0.5), p99Ms: percentile(times, 0.99) };
}

/** The value at fraction `q` of sorted `xs` (nearest rank); NaN for none. */
export function percentile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] as number;
}

/** The middle value (the mean of the two middle ones for an even count); NaN for none. */
export function median(xs: readonly number[]): number {
  const sorted = xs.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}
