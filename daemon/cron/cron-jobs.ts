import { createHash } from 'node:crypto';
import { RackError } from '../rack-error.js';
import type { CronConcurrency, CronJob } from '../store/records.js';
import { parseSchedule } from './cron-schedule.js';

/** More jobs than this in one app.json is a mistake, not a schedule. */
export const MAX_CRON_JOBS = 50;
const MAX_COMMAND = 4096;
const JOB_ID = /^[a-z0-9][a-z0-9_-]{0,39}$/;
const POLICIES: readonly CronConcurrency[] = ['allow', 'forbid', 'replace'];

/**
 * A job's ID when app.json gives none: a short hash of its schedule and command (Dokku's way), so
 * the same job keeps its ID, and its suspension, across releases; changing either makes a new job.
 */
export function cronJobId(schedule: string, command: string): string {
  return createHash('sha256').update(`${schedule}\n${command}`).digest('hex').slice(0, 8);
}

/**
 * app.json's `cron`, Dokku's shape: `[{"command": "node jobs/tick.js", "schedule": "*\/5 * * * *"}]`,
 * each entry optionally with an `id` and a `concurrency_policy` (`allow`, `forbid` (the default) or
 * `replace`). Anything wrong throws `build_failed` naming the entry, so the push is refused before
 * its rollout.
 */
export function checkCronJobs(value: unknown): CronJob[] {
  if (!Array.isArray(value)) throw new RackError('build_failed', 'app.json cron must be a list of {"command": ..., "schedule": ...}');
  if (value.length > MAX_CRON_JOBS) throw new RackError('build_failed', `app.json cron has ${value.length} jobs; an app may have ${MAX_CRON_JOBS}`);
  const jobs: CronJob[] = [];
  value.forEach((entry: unknown, i) => {
    const where = `app.json cron[${i}]`;
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) throw new RackError('build_failed', `${where} must be an object with "command" and "schedule"`);
    const e = entry as Record<string, unknown>;
    const command = typeof e['command'] === 'string' ? e['command'].trim() : '';
    if (command === '' || command.length > MAX_COMMAND || command.includes('\0')) {
      throw new RackError('build_failed', `${where}: "command" must be one command line under ${MAX_COMMAND} characters`);
    }
    if (typeof e['schedule'] !== 'string') throw new RackError('build_failed', `${where}: "schedule" must be a cron expression such as "*/5 * * * *" or "@daily"`);
    let schedule: string;
    try {
      schedule = parseSchedule(e['schedule']);
    } catch (err) {
      throw new RackError('build_failed', `${where}: ${(err as Error).message}`, { cause: err });
    }
    const policy = e['concurrency_policy'] ?? 'forbid';
    if (typeof policy !== 'string' || !POLICIES.includes(policy as CronConcurrency)) {
      throw new RackError('build_failed', `${where}: "concurrency_policy" must be one of ${POLICIES.join(', ')}`);
    }
    let id = cronJobId(schedule, command);
    if (e['id'] !== undefined) {
      if (typeof e['id'] !== 'string' || !JOB_ID.test(e['id'])) throw new RackError('build_failed', `${where}: "id" must be lowercase letters, digits, - and _ (at most 40)`);
      id = e['id'];
    }
    if (jobs.some((j) => j.id === id)) throw new RackError('build_failed', `${where}: a second job with id ${id} (give one an "id" of its own)`);
    jobs.push({ id, schedule, command, concurrency: policy as CronConcurrency });
  });
  return jobs;
}
