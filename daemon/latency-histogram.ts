/**
 * A latency histogram with fixed, log-spaced buckets: each bucket's upper bound is 2^(1/4) (about
 * 19 %) above the one before, from 0.1 ms to about 2 minutes. Fixed bounds make two histograms
 * merge by adding counts, so the percentiles of an hour are computed from the hour's 10 s buckets
 * exactly as if one histogram had seen every request; a percentile is the upper bound of the bucket
 * holding it, at most 19 % above the true latency. Kept sparse (index → count): most requests of an
 * app fall in a handful of buckets. Shared by the router (which fills it) and rackd's metrics.
 */
export type LatencyHistogram = Record<string, number>;

const FIRST_BOUND_MS = 0.1;
const STEPS_PER_DOUBLING = 4;
/** 0.1 ms · 2^(104/4) ≈ 112 minutes: past any answer timeout, so the last bucket is never a catch-all in practice. */
export const LAST_BUCKET = 104;

/** The bucket a latency falls in: the first whose upper bound is at or above it. */
export function latencyBucket(ms: number): number {
  if (!(ms > FIRST_BOUND_MS)) return 0;
  const i = Math.ceil(Math.log2(ms / FIRST_BOUND_MS) * STEPS_PER_DOUBLING - 1e-9);
  return Math.min(i, LAST_BUCKET);
}

/** The upper bound of bucket `i`, in ms. */
export function bucketBoundMs(i: number): number {
  return FIRST_BOUND_MS * 2 ** (i / STEPS_PER_DOUBLING);
}

export function recordLatency(h: LatencyHistogram, ms: number): void {
  const key = String(latencyBucket(ms));
  h[key] = (h[key] ?? 0) + 1;
}

/** Adds `from`'s counts into `into`. */
export function mergeHistogram(into: LatencyHistogram, from: LatencyHistogram): void {
  for (const [key, count] of Object.entries(from)) into[key] = (into[key] ?? 0) + count;
}

/**
 * The latency below which a fraction `q` (0-1) of requests fell, as the upper bound of the bucket
 * the q-th request is in (nearest-rank); undefined for an empty histogram.
 */
export function percentile(h: LatencyHistogram, q: number): number | undefined {
  const buckets = Object.entries(h)
    .map(([k, n]) => [Number(k), n] as const)
    .filter(([, n]) => n > 0)
    .sort((a, b) => a[0] - b[0]);
  const total = buckets.reduce((sum, [, n]) => sum + n, 0);
  if (total === 0) return undefined;
  const rank = Math.max(1, Math.ceil(q * total));
  let seen = 0;
  for (const [i, n] of buckets) {
    seen += n;
    if (seen >= rank) return bucketBoundMs(i);
  }
  return bucketBoundMs(buckets.at(-1)?.[0] ?? 0);
}
