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
 * The lines of a chunk of stored lines that pass the query, in order. With a grep, only the lines
 * where its bytes occur are decoded: a search over gigabytes skips the rest at Buffer.indexOf's
 * speed. Without one, a line's time (its first 24 bytes) is compared before the rest is decoded.
 */
export function matchingLines(app: string, chunk: Buffer, q: Omit<LogQuery, 'limit'>): LogLine[] {
  const out: LogLine[] = [];
  if (q.grep !== undefined && q.grep !== '') {
    const needle = Buffer.from(q.grep);
    let at = chunk.indexOf(needle);
    while (at >= 0) {
      const start = chunk.lastIndexOf(10, at) + 1;
      let end = chunk.indexOf(10, at);
      if (end < 0) end = chunk.length;
      const line = decodeLine(app, chunk.toString('utf8', start, end));
      if (line && matches(line, q)) out.push(line);
      at = chunk.indexOf(needle, end + 1);
    }
    return out;
  }
  const text = chunk.toString('utf8');
  let start = 0;
  while (start < text.length) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    const time = text.slice(start, start + 24);
    if (end > start && (q.since === undefined || time >= q.since) && (q.until === undefined || time <= q.until)) {
      const line = decodeLine(app, text.slice(start, end));
      if (line && matches(line, q)) out.push(line);
    }
    start = end + 1;
  }
  return out;
}
