/**
 * `logs` over a lot of kept output: fills one app's log store (the real LogStore and its files, in
 * process, no rackd or ssh in between) with MB megabytes of router-like and app lines spread over a
 * week, then opens it again as a restarted rackd would and times the queries `logs` makes: the last
 * 100 lines, `--grep` of a rare text over everything, `--grep` of a common one (last 100), and a
 * one-hour `--since/--until` window in the middle of the week (the segment names let it skip the rest).
 * bench-observability imports the fill and the queries (exported below) for its log-store part.
 *   npm run build && node dist/scripts/bench-logs.js [MB] [DIR]
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { pino } from 'pino';
import type { LogLine } from '../daemon/logs/log-hub.js';
import type { LogKeep } from '../daemon/logs/log-keep.js';
import type { LogQuery } from '../daemon/logs/log-query.js';
import { LogStore } from '../daemon/logs/log-store.js';

const log = pino({ level: 'warn' });
export const WEEK = 7 * 86_400_000;
/** The one app the fill writes. */
export const LOG_APP = 'shop';

export interface Filled {
  lines: number;
  writeMs: number;
  dropped: number;
  segments: number;
  keep: LogKeep;
}

/** What the store keeps for a fill of `mb` megabytes: everything, so the queries see it all. */
export const keepFor = (mb: number): LogKeep => ({ maxAgeMs: 8 * 86_400_000, maxBytes: (mb + 64) * 1024 ** 2 });

const paths = ['/', '/api/orders', '/api/users/42', '/static/app.js', '/health'];
/** Two router lines to one app line, about 110 bytes each; `needle-rare` once in 200,001 lines. */
export const lineOf = (i: number, ms: number): LogLine =>
  i % 3 === 0
    ? { time: new Date(ms).toISOString(), app: LOG_APP, source: `app[web.${(i % 4).toString(16).padStart(6, 'a')}]`, type: 'web', text: `request ${i} handled for user ${i % 9973} in ${i % 97} ms${i % 200_001 === 3 ? ' needle-rare' : ''}` }
    : { time: new Date(ms).toISOString(), app: LOG_APP, source: 'rack[router]', type: 'router', text: `method=GET path="${paths[i % paths.length]}" host=shop.example.com status=${i % 50 === 0 ? 500 : 200} ms=${i % 41} ip=10.0.${i % 255}.${i % 253}` };

/**
 * Writes `mb` megabytes of lines spread evenly over the `spanMs` before `end` into a LogStore on
 * `dir`, then closes it. `onStore` sees the live store once written (for its memory, say).
 */
export async function fillLogs(dir: string, mb: number, end: number, spanMs = WEEK, onStore?: () => void): Promise<Filled> {
  const keep = keepFor(mb);
  const writer = new LogStore({ dir, keep, log });
  // The line count that makes MB megabytes, at about 110 bytes a line.
  const lines = Math.round((mb * 1024 ** 2) / 110);
  const t0 = process.hrtime.bigint();
  let dropped = 0;
  try {
    for (let i = 0; i < lines; i++) {
      writer.append(lineOf(i, end - spanMs + Math.floor((i / lines) * spanMs)));
      // Turns of the event loop between bursts, as in rackd; a burst past the writer's 2 MiB buffer
      // would be dropped, so the fill waits for the disk every 16,000 lines (under 2 MB).
      if (i % 2000 === 1999) await new Promise((r) => setImmediate(r));
      if (i % 16_000 === 15_999) await writer.query(LOG_APP, { limit: 0 });
    }
    await writer.query(LOG_APP, { limit: 0 });
    // Read before stop(), which forgets the app and its count.
    dropped = writer.dropped(LOG_APP);
    onStore?.();
  } finally {
    await writer.stop();
  }
  const writeMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const segments = (await readdir(join(dir, LOG_APP))).length;
  return { lines, writeMs, dropped, segments, keep };
}

export interface TimedQuery {
  what: string;
  ms: number;
  found: number;
}

/** The queries `logs` makes, each timed, over a store filled by fillLogs for a week before `end`. */
export async function timeLogQueries(dir: string, keep: LogKeep, end: number): Promise<TimedQuery[]> {
  const reader = new LogStore({ dir, keep, log });
  const out: TimedQuery[] = [];
  const iso = (ms: number) => new Date(ms).toISOString();
  const time = async (what: string, q: LogQuery) => {
    const start = process.hrtime.bigint();
    const found = await reader.query(LOG_APP, q);
    out.push({ what, ms: Number(process.hrtime.bigint() - start) / 1e6, found: found.length });
  };
  try {
    await time('logs (first read after a restart: opens the folder)', { limit: 100 });
    await time('logs -n 100', { limit: 100 });
    await time('logs --since 7d --grep needle-rare', { limit: 99_999, since: iso(end - WEEK), grep: 'needle-rare' });
    await time('logs --since 7d --grep needle-rare (again, warm)', { limit: 99_999, since: iso(end - WEEK), grep: 'needle-rare' });
    await time('logs --grep status=500 (last 100)', { limit: 100, grep: 'status=500' });
    await time('logs --since 7d --grep "user 9972 " -p web', { limit: 99_999, since: iso(end - WEEK), grep: 'user 9972 ', type: 'web' });
    await time('logs --since T --until T+1h (mid-week)', { limit: 99_999, since: iso(end - WEEK / 2), until: iso(end - WEEK / 2 + 3_600_000) });
  } finally {
    await reader.stop();
  }
  return out;
}

async function main(): Promise<void> {
  const mb = Number(process.argv[2] ?? 256);
  const dir = await mkdtemp(join(process.argv[3] ?? tmpdir(), 'rack-bench-logs-'));
  const end = Date.now();
  try {
    const filled = await fillLogs(dir, mb, end);
    console.log(`wrote ${filled.lines} lines (${mb} MB) in ${filled.segments} segments: ${(filled.writeMs / 1000).toFixed(1)} s, ${((filled.writeMs * 1000) / filled.lines).toFixed(2)} µs a line, ${filled.dropped} dropped`);
    for (const q of await timeLogQueries(dir, filled.keep, end)) console.log(`${q.what.padEnd(52)} ${q.ms.toFixed(0).padStart(6)} ms  ${q.found} lines`);
    console.log(`rss after the queries: ${(process.memoryUsage().rss / 1024 ** 2).toFixed(0)} MB`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

// Run as a script, not when bench-observability imports the fill.
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
