import { request } from 'node:http';
import type { ProcessDriver, ProcessInfo } from '../runtime/runtime.js';
import type { HealthCheckOptions } from '../store/records.js';
import { listeningPorts } from './listening-ports.js';

export type { HealthCheckOptions };

export const DEFAULT_HEALTH_CHECK: HealthCheckOptions = { path: '/', timeoutMs: 2000, intervalMs: 200, deadlineMs: 60_000 };

/** What one probe saw: the status (and whether the body held the wanted content), or why no answer came. */
export type ProbeResult = { status: number; contentFound: boolean } | { error: string };

/** Bodies are read this far looking for `content`; a check page is small. */
const CONTENT_READ_LIMIT = 64 * 1024;

/** One HTTP GET. */
export function probe(host: string, port: number, path: string, timeoutMs: number, content?: string): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const req = request({ host, port, path, method: 'GET', timeout: timeoutMs, agent: false }, (res) => {
      const status = res.statusCode ?? 500;
      if (content === undefined || status >= 500) {
        res.resume();
        resolve({ status, contentFound: content === undefined });
        return;
      }
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        if (body.length < CONTENT_READ_LIMIT) body += chunk;
        if (body.includes(content)) res.destroy();
      });
      res.on('close', () => resolve({ status, contentFound: body.includes(content) }));
      res.on('error', () => undefined);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (err: NodeJS.ErrnoException) => resolve({ error: err.code ?? err.message }));
    req.end();
  });
}

function passed(r: ProbeResult): boolean {
  return 'status' in r && r.status < 500 && r.contentFound;
}

/** The last probe's answer in words, for the reason a check failed. */
export function describeProbe(r: ProbeResult, path: string, content?: string): string {
  if ('error' in r) return `the last probe got ${r.error === 'ECONNREFUSED' || r.error === 'ECONNRESET' || r.error === 'socket hang up' ? 'no connection' : r.error}`;
  if (r.status >= 500) return `GET ${path} answered ${r.status} (a web process must answer below 500)`;
  return `GET ${path} answered ${r.status} without ${JSON.stringify(content)} in its body`;
}

/**
 * Why a web process never passed, from what it listens on when that can be seen: the commonest
 * mistake is a port of the app's own choosing (3000, 8080) instead of PORT.
 */
export function portReason(port: number, listening: number[] | undefined): string | undefined {
  if (listening === undefined) return undefined;
  if (listening.length === 0) return `nothing listens in the process (it must listen on PORT, ${port})`;
  if (!listening.includes(port)) return `the process listens on port ${listening.join(', ')}, not on PORT (${port}): listen on process.env.PORT`;
  return undefined;
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
  whyNoAnswer: () => Promise<string | undefined> = async () => undefined,
): Promise<string | null> {
  const deadline = Date.now() + opts.deadlineMs;
  if (opts.initialDelayMs) await new Promise((r) => setTimeout(r, opts.initialDelayMs));
  const fastUntil = Date.now() + FAST_WINDOW_MS;
  let lastAliveCheck = Date.now();
  let attempt = 0;
  let last: ProbeResult = { error: 'no probe' };
  // A failure says what the process did: the status it answered, or the port it listens on.
  const seen = async (lead: string) => {
    const port = 'error' in last ? await whyNoAnswer().catch(() => undefined) : undefined;
    return `${lead}: ${port ?? describeProbe(last, opts.path, opts.content)}`;
  };
  while (Date.now() < deadline) {
    last = await probe(host, port, opts.path, opts.timeoutMs, opts.content);
    if (passed(last)) return null;
    const now = Date.now();
    const fast = now < fastUntil;
    if (!fast || now - lastAliveCheck >= opts.intervalMs) {
      if (!(await isAlive())) return 'the process exited before answering HTTP';
      lastAliveCheck = now;
    }
    if (!fast) {
      attempt += 1;
      if (opts.attempts !== undefined && attempt >= opts.attempts) {
        return seen(`no passing answer on ${opts.path} after ${attempt} attempts`);
      }
    }
    await new Promise((r) => setTimeout(r, fast ? Math.min(FAST_INTERVAL_MS, opts.intervalMs) : opts.intervalMs));
  }
  return seen(`no passing answer on ${opts.path} within ${Math.round(opts.deadlineMs / 1000)} s`);
}

/** How long a non-web process must stay up to count as healthy. */
const SETTLE_MS = 2000;

/** web: answers HTTP on PORT; other types: stay up through the settle period. Null when healthy, else why not. */
export async function checkProcess(processes: Pick<ProcessDriver, 'inspect'>, p: ProcessInfo, health: HealthCheckOptions): Promise<string | null> {
  const alive = async () => {
    const now = await processes.inspect(p.id);
    return now.running && now.restarts === 0;
  };
  if (p.type === 'web' && p.upstream) {
    const inside = p.inside;
    const whyNoAnswer = inside ? async () => portReason(inside.port, await listeningPorts(inside.pid)) : undefined;
    return waitHealthy(p.upstream.host, p.upstream.port, alive, health, whyNoAnswer);
  }
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
