import { request } from 'node:http';

export interface HealthCheckOptions {
  path: string;
  /** One attempt's timeout. */
  timeoutMs: number;
  intervalMs: number;
  /** Give up after this long in all (the deploy timeout). */
  deadlineMs: number;
  /** Give up after this many failed probes (app.json `attempts`); unlimited when absent. */
  attempts?: number;
  /** Wait before the first probe (app.json `initialDelay`). */
  initialDelayMs?: number;
}

export const DEFAULT_HEALTH_CHECK: HealthCheckOptions = { path: '/', timeoutMs: 2000, intervalMs: 200, deadlineMs: 60_000 };

/** One HTTP GET; true when the app answered with a status below 500. */
export function probe(host: string, port: number, path: string, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ host, port, path, method: 'GET', timeout: timeoutMs, agent: false }, (res) => {
      res.resume();
      resolve((res.statusCode ?? 500) < 500);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
    req.end();
  });
}

/**
 * Polls until the process answers, it is found dead (`isAlive` false), or the deadline passes.
 * Returns null on success, else the reason.
 */
export async function waitHealthy(
  host: string,
  port: number,
  isAlive: () => Promise<boolean>,
  opts: HealthCheckOptions = DEFAULT_HEALTH_CHECK,
): Promise<string | null> {
  const deadline = Date.now() + opts.deadlineMs;
  if (opts.initialDelayMs) await new Promise((r) => setTimeout(r, opts.initialDelayMs));
  for (let attempt = 1; Date.now() < deadline; attempt++) {
    if (await probe(host, port, opts.path, opts.timeoutMs)) return null;
    if (!(await isAlive())) return 'the process exited before answering HTTP';
    if (opts.attempts !== undefined && attempt >= opts.attempts) {
      return `no answer below 500 on ${opts.path} after ${attempt} attempts`;
    }
    await new Promise((r) => setTimeout(r, opts.intervalMs));
  }
  return `no HTTP answer on PORT within ${Math.round(opts.deadlineMs / 1000)} s`;
}
