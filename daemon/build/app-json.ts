import { checkCronJobs } from '../cron/cron-jobs.js';
import type { CronJob } from '../store/records.js';

/** What an app may ask of its web health check; the supervisor fills in the rest. */
export interface AppHealthCheck {
  path?: string;
  timeoutMs?: number;
  intervalMs?: number;
  attempts?: number;
  initialDelayMs?: number;
}

/**
 * The health check an app asks for in app.json, Dokku's format:
 * `{"healthchecks": {"web": [{"path": "/health", "timeout": 5, "attempts": 10, "wait": 1, "initialDelay": 0}]}}`
 * (seconds). Unknown or malformed fields are ignored in favour of the defaults.
 */
export function healthCheckFromAppJson(text: string): AppHealthCheck | undefined {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return undefined;
  }
  const checks = (doc as { healthchecks?: { web?: unknown } } | null)?.healthchecks?.web;
  const check = Array.isArray(checks) ? (checks[0] as Record<string, unknown> | undefined) : undefined;
  if (!check || typeof check !== 'object') return undefined;
  const seconds = (v: unknown, max: number) => (typeof v === 'number' && v >= 0 && v <= max ? Math.round(v * 1000) : undefined);
  const out: AppHealthCheck = {};
  if (typeof check['path'] === 'string' && /^\/[\x21-\x7e]*$/.test(check['path'])) out.path = check['path'];
  const timeout = seconds(check['timeout'], 60);
  if (timeout) out.timeoutMs = timeout;
  const wait = seconds(check['wait'], 60);
  if (wait !== undefined) out.intervalMs = wait;
  const delay = seconds(check['initialDelay'], 300);
  if (delay !== undefined) out.initialDelayMs = delay;
  if (typeof check['attempts'] === 'number' && Number.isInteger(check['attempts']) && check['attempts'] > 0) out.attempts = Math.min(check['attempts'], 1000);
  return out;
}

/**
 * app.json's scheduled jobs (`cron`, Dokku's format), checked whole: a bad schedule or command
 * throws `build_failed` with one line, so the push is refused before anything rolls out. Undefined
 * when app.json has no `cron` (or is not JSON: the health check above reads it the same lenient way).
 */
export function cronFromAppJson(text: string): CronJob[] | undefined {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof doc !== 'object' || doc === null || !('cron' in doc)) return undefined;
  const jobs = checkCronJobs((doc as { cron: unknown }).cron);
  return jobs.length > 0 ? jobs : undefined;
}
