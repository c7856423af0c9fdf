import { request } from 'node:http';
import type { ProcessDriver, ProcessInfo } from '../runtime/runtime.js';
import type { HealthCheckOptions } from '../store/records.js';

export type { HealthCheckOptions };

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
 * Most apps start answering within the first second, so probes come every FAST_INTERVAL_MS there:
 * the switch then follows the app's readiness by a few milliseconds instead of up to a whole
 * interval. Those early probes do not count as attempts, and the process is asked whether it is
 * still alive (a Docker call) no more often than at the normal interval.
 */
const FAST_WINDOW_MS = 1000;
const FAST_INTERVAL_MS = 20;

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
  const fastUntil = Date.now() + FAST_WINDOW_MS;
  let lastAliveCheck = Date.now();
  let attempt = 0;
  while (Date.now() < deadline) {
    if (await probe(host, port, opts.path, opts.timeoutMs)) return null;
    const now = Date.now();
    const fast = now < fastUntil;
    if (!fast || now - lastAliveCheck >= opts.intervalMs) {
      if (!(await isAlive())) return 'the process exited before answering HTTP';
      lastAliveCheck = now;
    }
    if (!fast) {
      attempt += 1;
      if (opts.attempts !== undefined && attempt >= opts.attempts) {
        return `no answer below 500 on ${opts.path} after ${attempt} attempts`;
      }
    }
    await new Promise((r) => setTimeout(r, fast ? Math.min(FAST_INTERVAL_MS, opts.intervalMs) : opts.intervalMs));
  }
  return `no HTTP answer on PORT within ${Math.round(opts.deadlineMs / 1000)} s`;
}

/** How long a non-web process must stay up to count as healthy. */
const SETTLE_MS = 2000;

/** web: answers HTTP on PORT; other types: stay up through the settle period. Null when healthy, else why not. */
export async function checkProcess(processes: Pick<ProcessDriver, 'inspect'>, p: ProcessInfo, health: HealthCheckOptions): Promise<string | null> {
  const alive = async () => {
    const now = await processes.inspect(p.id);
    return now.running && now.restarts === 0;
  };
  if (p.type === 'web' && p.upstream) return waitHealthy(p.upstream.host, p.upstream.port, alive, health);
  await new Promise((r) => setTimeout(r, SETTLE_MS));
  return (await alive()) ? null : 'the process exited within the settle period';
}

/**
 * Every process healthy, and still up and never restarted at the end (healthy once is not enough):
 * null, else the first culprit and why.
 */
export async function firstUnhealthy(
  processes: Pick<ProcessDriver, 'inspect'>,
  started: readonly ProcessInfo[],
  health: HealthCheckOptions,
): Promise<{ process: ProcessInfo; reason: string } | null> {
  const failures = await Promise.all(started.map((p) => checkProcess(processes, p, health)));
  const index = failures.findIndex((f) => f !== null);
  if (index !== -1) return { process: started[index]!, reason: failures[index]! };
  for (const p of started) {
    const now = await processes.inspect(p.id);
    if (!now.running || now.restarts > 0) {
      return { process: p, reason: now.oomKilled ? 'it went over its memory limit' : 'the process died after passing its check' };
    }
  }
  return null;
}
