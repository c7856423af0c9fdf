import { CronExpressionParser } from 'cron-parser';
import { RackError } from '../rack-error.js';

/**
 * Dokku's nicknames, spelled out before cron-parser sees them: it knows most of them, but not
 * `@midnight`, and spelling them here keeps `cron:list` showing what will actually run.
 */
const NICKNAMES: Record<string, string> = {
  '@yearly': '0 0 1 1 *',
  '@annually': '0 0 1 1 *',
  '@monthly': '0 0 1 * *',
  '@weekly': '0 0 * * 0',
  '@daily': '0 0 * * *',
  '@midnight': '0 0 * * *',
  '@hourly': '0 * * * *',
};

/**
 * A schedule as Dokku takes it: five fields (minute hour day-of-month month day-of-week) or one of
 * the nicknames above, read in UTC. Six fields (seconds) are refused: a job every second would be a
 * container every second. Returns the five fields; throws `bad_argument` with the reason.
 */
export function parseSchedule(text: string): string {
  const trimmed = text.trim().replace(/\s+/g, ' ');
  const schedule = NICKNAMES[trimmed.toLowerCase()] ?? trimmed;
  if (schedule.startsWith('@')) throw new RackError('bad_argument', `unknown schedule ${JSON.stringify(text.slice(0, 40))} (known: ${Object.keys(NICKNAMES).join(', ')})`);
  if (schedule.split(' ').length !== 5) throw new RackError('bad_argument', `schedule ${JSON.stringify(text.slice(0, 60))} must have five fields: minute hour day-of-month month day-of-week`);
  try {
    // One next time proves the expression can ever fire (`0 0 31 2 *` cannot).
    CronExpressionParser.parse(schedule, { tz: 'UTC', currentDate: new Date(0) }).next();
  } catch (err) {
    throw new RackError('bad_argument', `schedule ${JSON.stringify(text.slice(0, 60))} is not a cron expression: ${(err as Error).message}`, { cause: err });
  }
  return schedule;
}

/** The first time after `after` (strictly) that a schedule (as parseSchedule returned it) fires. */
export function nextFire(schedule: string, after: Date): Date {
  return CronExpressionParser.parse(schedule, { tz: 'UTC', currentDate: after }).next().toDate();
}
