import { RackError } from '../rack-error.js';
import type { LogLine } from './log-hub.js';
import { parseDuration } from './log-keep.js';
import { decodeLine } from './log-segment.js';

/** What `logs` asks of an app's history: the last `limit` lines that pass every filter given. */
export interface LogQuery {
  /** ISO times, both ends included. */
  since?: string;
  until?: string;
  /** A plain substring of the line's text, case-sensitive (never a pattern: users' regexes can take exponential time). */
  grep?: string;
  type?: string;
  limit: number;
}

/** Most bytes of text one answer holds, whatever `limit` says: the newest lines are kept. */
export const MAX_ANSWER_BYTES = 32 * 1024 * 1024;

const ISO_INPUT = /^\d{4}-\d\d-\d\d(T\d\d:\d\d(:\d\d(\.\d{1,9})?)?(Z|[+-]\d\d:\d\d)?)?$/;

/**
 * `--since` and `--until`: a duration back from now (`30m`, `2h`, `1d`) or an ISO time
 * (`2026-12-06T04:00:00Z`, `2026-12-06`); a time without a zone is UTC.
 */
export function parseLogTime(flag: string, raw: string, nowMs: number): string {
  const ago = parseDuration(raw);
  if (ago !== undefined) return new Date(nowMs - ago).toISOString();
  if (ISO_INPUT.test(raw)) {
    const zoned = raw.includes('T') && !/(Z|[+-]\d\d:\d\d)$/.test(raw) ? `${raw}Z` : raw;
    const ms = Date.parse(zoned);
    if (Number.isFinite(ms)) return new Date(ms).toISOString();
  }
  throw new RackError('bad_argument', `${flag} takes a duration (30m, 2h, 1d) or an ISO time (2026-12-06T04:00:00Z), got ${JSON.stringify(raw.slice(0, 40))}`);
}

export function matches(line: LogLine, q: Omit<LogQuery, 'limit'>): boolean {
  return (
    (q.since === undefined || line.time >= q.since) &&
    (q.until === undefined || line.time <= q.until) &&
    (q.type === undefined || line.type === q.type) &&
    (q.grep === undefined || line.text.includes(q.grep))
  );
}

/**
 * The lines of a chunk of stored text that pass the query, in order. With a grep, only the lines
 * where the text occurs are decoded: a search over gigabytes skips the rest at indexOf's speed.
 */
export function matchingLines(app: string, chunk: string, q: Omit<LogQuery, 'limit'>): LogLine[] {
  const out: LogLine[] = [];
  const take = (start: number, end: number) => {
    const line = decodeLine(app, chunk.slice(start, end));
    if (line && matches(line, q)) out.push(line);
  };
  if (q.grep !== undefined && q.grep !== '') {
    let at = chunk.indexOf(q.grep);
    while (at >= 0) {
      const start = chunk.lastIndexOf('\n', at) + 1;
      let end = chunk.indexOf('\n', at);
      if (end < 0) end = chunk.length;
      take(start, end);
      at = chunk.indexOf(q.grep, end + 1);
    }
    return out;
  }
  let start = 0;
  while (start < chunk.length) {
    let end = chunk.indexOf('\n', start);
    if (end < 0) end = chunk.length;
    if (end > start) take(start, end);
    start = end + 1;
  }
  return out;
}
