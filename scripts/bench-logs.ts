/**
 * `logs` over a lot of kept output: fills one app's log store (the real LogStore and its files, in
 * process, no rackd or ssh in between) with MB megabytes of router-like and app lines spread over a
 * week, then opens it again as a restarted rackd would and times the queries `logs` makes: the last
 * 100 lines, `--grep` of a rare text over everything, `--grep` of a common one (last 100), and a
 * one-hour `--since/--until` window in the middle of the week (the segment names let it skip the rest).
 *   npm run build && node dist/scripts/bench-logs.js [MB] [DIR]
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import type { LogLine } from '../daemon/logs/log-hub.js';
import type { LogQuery } from '../daemon/logs/log-query.js';
import { LogStore } from '../daemon/logs/log-store.js';

const MB = Number(process.argv[2] ?? 256);
const DIR = process.argv[3] ?? tmpdir();
const log = pino({ level: 'warn' });
const WEEK = 7 * 86_400_000;
const END = Date.now();

const dir = await mkdtemp(join(DIR, 'rack-bench-logs-'));
try {
  const keep = { maxAgeMs: 8 * 86_400_000, maxBytes: (MB + 64) * 1024 ** 2 };
  const writer = new LogStore({ dir, keep, log });
  const paths = ['/', '/api/orders', '/api/users/42', '/static/app.js', '/health'];
  const lineOf = (i: number, ms: number): LogLine =>
    i % 3 === 0
      ? { time: new Date(ms).toISOString(), app: 'shop', source: `app[web.${(i % 4).toString(16).padStart(6, 'a')}]`, type: 'web', text: `request ${i} handled for user ${i % 9973} in ${i % 97} ms${i % 200_001 === 3 ? ' needle-rare' : ''}` }
      : { time: new Date(ms).toISOString(), app: 'shop', source: 'rack[router]', type: 'router', text: `method=GET path="${paths[i % paths.length]}" host=shop.example.com status=${i % 50 === 0 ? 500 : 200} ms=${i % 41} ip=10.0.${i % 255}.${i % 253}` };
  // The line count that makes MB megabytes, at about 110 bytes a line.
  const lines = Math.round((MB * 1024 ** 2) / 110);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < lines; i++) {
    writer.append(lineOf(i, END - WEEK + Math.floor((i / lines) * WEEK)));
    // Turns of the event loop between bursts, as in rackd; a burst past the writer's 2 MiB buffer
    // would be dropped, so the fill waits for the disk every 16,000 lines (under 2 MB).
    if (i % 2000 === 1999) await new Promise((r) => setImmediate(r));
    if (i % 16_000 === 15_999) await writer.query('shop', { limit: 0 });
  }
  const dropped = writer.dropped('shop');
  await writer.stop();
  const writeMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const segments = (await readdir(join(dir, 'shop'))).length;
  console.log(`wrote ${lines} lines (${MB} MB) in ${segments} segments: ${(writeMs / 1000).toFixed(1)} s, ${((writeMs * 1000) / lines).toFixed(2)} µs a line, ${dropped} dropped`);

  const reader = new LogStore({ dir, keep, log });
  const time = async (what: string, q: LogQuery) => {
    const start = process.hrtime.bigint();
    const found = await reader.query('shop', q);
    const ms = Number(process.hrtime.bigint() - start) / 1e6;
    console.log(`${what.padEnd(52)} ${ms.toFixed(0).padStart(6)} ms  ${found.length} lines`);
  };
  const iso = (ms: number) => new Date(ms).toISOString();
  await time('logs (first read after a restart: opens the folder)', { limit: 100 });
  await time('logs -n 100', { limit: 100 });
  await time('logs --since 7d --grep needle-rare', { limit: 99_999, since: iso(END - WEEK), grep: 'needle-rare' });
  await time('logs --since 7d --grep needle-rare (again, warm)', { limit: 99_999, since: iso(END - WEEK), grep: 'needle-rare' });
  await time('logs --grep status=500 (last 100)', { limit: 100, grep: 'status=500' });
  await time('logs --since 7d --grep "user 9972 " -p web', { limit: 99_999, since: iso(END - WEEK), grep: 'user 9972 ', type: 'web' });
  await time('logs --since T --until T+1h (mid-week)', { limit: 99_999, since: iso(END - WEEK / 2), until: iso(END - WEEK / 2 + 3_600_000) });
  const rss = process.memoryUsage().rss / 1024 ** 2;
  console.log(`rss after the queries: ${rss.toFixed(0)} MB`);
  await reader.stop();
} finally {
  await rm(dir, { recursive: true, force: true });
}
