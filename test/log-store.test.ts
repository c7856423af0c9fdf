import test from 'ava';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { AppLog } from '../daemon/logs/app-log.js';
import type { LogLine } from '../daemon/logs/log-hub.js';
import { parseDuration, parseLogKeep } from '../daemon/logs/log-keep.js';
import { parseLogTime } from '../daemon/logs/log-query.js';
import { MAX_STORED_TEXT } from '../daemon/logs/log-segment.js';
import { LogStore } from '../daemon/logs/log-store.js';

// Real files in a temp dir; the age bound is read against a clock the test moves, never a sleep.

const log = pino({ level: 'silent' });
const DAY = 86_400_000;
const START = Date.parse('2026-12-01T00:00:00.000Z');

async function folder(t: { teardown(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'logstore-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function line(ms: number, text: string, type = 'web', app = 'shop'): LogLine {
  return { time: new Date(ms).toISOString(), app, source: type === 'router' ? 'rack[router]' : `app[${type}.abc123]`, type, text };
}

async function bytesIn(dir: string): Promise<number> {
  let total = 0;
  for (const name of await readdir(dir)) total += (await stat(join(dir, name))).size;
  return total;
}

test('lines are found again after the store is stopped and opened on the same folder, filtered by time, type and text', async (t) => {
  const dir = await folder(t);
  const keep = parseLogKeep('7d,1m');
  const first = new LogStore({ dir, keep, log, now: () => START + DAY });
  for (let i = 0; i < 1000; i++) first.append(line(START + i * 60_000, `request ${i} done`, i % 2 === 0 ? 'web' : 'worker'));
  first.append(line(START + 1000 * 60_000, 'method=GET path="/" status=200', 'router'));
  await first.stop();

  const again = new LogStore({ dir, keep, log, now: () => START + DAY });
  t.teardown(() => again.stop());
  const all = await again.query('shop', { limit: 99_999 });
  t.is(all.length, 1001);
  t.is(all[0]!.text, 'request 0 done');
  const last = await again.query('shop', { limit: 3 });
  t.deepEqual(last.map((l) => l.text), ['request 998 done', 'request 999 done', 'method=GET path="/" status=200'], '-n is the last N');
  const hour = await again.query('shop', { limit: 99_999, since: new Date(START + 100 * 60_000).toISOString(), until: new Date(START + 159 * 60_000).toISOString() });
  t.deepEqual([hour.length, hour[0]!.text, hour.at(-1)!.text], [60, 'request 100 done', 'request 159 done'], 'since and until both included');
  const grep = await again.query('shop', { limit: 99_999, grep: 'request 99', type: 'worker' });
  t.deepEqual(grep.map((l) => l.text), ['request 99 done', 'request 991 done', 'request 993 done', 'request 995 done', 'request 997 done', 'request 999 done']);
  t.deepEqual(await again.query('shop', { limit: 10, grep: 'REQUEST' }), [], 'grep is case-sensitive');
  t.deepEqual(all.at(-1), { time: new Date(START + 1000 * 60_000).toISOString(), app: 'shop', source: 'rack[router]', type: 'router', text: 'method=GET path="/" status=200' });
});

test('a segment read back in 1 MiB chunks loses and repeats no line at the chunks\' edges', async (t) => {
  const dir = await folder(t);
  const store = new LogStore({ dir, keep: parseLogKeep('7d,64m'), log, now: () => START + DAY, segmentBytes: 8 * 1024 ** 2 });
  t.teardown(() => store.stop());
  const n = 40_000; // about 4 MB in one segment: three chunk edges, each in the middle of some line
  for (let i = 0; i < n; i++) {
    store.append(line(START + i, `line ${i} ${'é'.repeat(i % 50)}`));
    if (i % 5000 === 4999) await store.query('shop', { limit: 0 });
  }
  const all = await store.query('shop', { limit: 99_999 });
  t.is(all.length, n);
  t.true(all.every((l, i) => l.text === `line ${i} ${'é'.repeat(i % 50)}`));
  t.is((await store.query('shop', { limit: 99_999, grep: 'line 3999' })).length, 11);
});

test('writing past the size bound drops the oldest segments, and the newest lines stay', async (t) => {
  const dir = await folder(t);
  const keep = { maxAgeMs: 7 * DAY, maxBytes: 64 * 1024 };
  const store = new LogStore({ dir, keep, log, now: () => START + DAY, segmentBytes: 8 * 1024 });
  t.teardown(() => store.stop());
  const text = 'x'.repeat(100);
  // About 1.4 MB in all, twenty times the bound, in flushes of a few KiB.
  for (let i = 0; i < 10_000; i++) {
    store.append(line(START + i, `${i} ${text}`));
    if (i % 50 === 49) await store.query('shop', { limit: 0 });
  }
  await store.query('shop', { limit: 0 });
  const total = await bytesIn(join(dir, 'shop'));
  t.true(total <= keep.maxBytes, `${total} bytes kept`);
  t.true(total > keep.maxBytes - 2 * 8 * 1024, `${total} bytes kept: no more than a segment under the bound is lost`);
  const kept = await store.query('shop', { limit: 99_999 });
  t.is(kept.at(-1)!.text, `9999 ${text}`);
  t.true(Number(kept[0]!.text.split(' ')[0]) > 9000, 'the oldest lines went first');
  t.is(kept.length, 10_000 - Number(kept[0]!.text.split(' ')[0]), 'what is kept has no hole');
});

test('the age bound removes segments older than it, an idle app\'s too, and hides older lines', async (t) => {
  const dir = await folder(t);
  let now = START;
  const keep = parseLogKeep('2d,1m');
  const store = new LogStore({ dir, keep, log, now: () => now, segmentBytes: 16 * 1024 });
  t.teardown(() => store.stop());
  for (let day = 0; day < 4; day++) {
    for (let i = 0; i < 400; i++) store.append(line(START + day * DAY + i * 1000, `day ${day} line ${i} ${'y'.repeat(40)}`));
    await store.query('shop', { limit: 0 });
  }
  store.append(line(START, 'an idle app', 'web', 'idle'));
  await store.query('idle', { limit: 0 });
  now = START + 3 * DAY + 200_000;
  const before = (await readdir(join(dir, 'shop'))).length;
  await store.prune();
  const after = await readdir(join(dir, 'shop'));
  t.true(after.length < before, `${before} segments before, ${after.length} after`);
  const kept = await store.query('shop', { limit: 99_999 });
  t.is(kept[0]!.text, `day 1 line 200 ${'y'.repeat(40)}`, 'nothing older than two days is shown');
  t.is(kept.length, 200 + 400 + 400);
  t.true(kept.every((l) => l.time >= new Date(now - 2 * DAY).toISOString()));
  for (const name of after) {
    const span = /^\d{10}\.(\d+)-(\d+)\.log$/.exec(name);
    if (span) t.true(Number(span[2]) >= now - 2 * DAY, `${name} is within the bound`);
  }
  t.deepEqual(await readdir(join(dir, 'idle')), [], 'an app that wrote nothing since is pruned by the same pass');
});

test('a huge line is cut at 8 KiB, the cut said; newlines in a line do not split it', async (t) => {
  const dir = await folder(t);
  const store = new LogStore({ dir, keep: parseLogKeep('7d,1m'), log, now: () => START });
  t.teardown(() => store.stop());
  store.append(line(START, `${'é'.repeat(100_000)}`));
  store.append(line(START + 1, 'one\ntwo'));
  const [huge, two] = await store.query('shop', { limit: 10 });
  t.is(MAX_STORED_TEXT, 8192);
  t.true(huge!.text.startsWith('é'.repeat(4096)));
  t.regex(huge!.text, /é \[191808 more bytes cut\]$/);
  t.true(Buffer.byteLength(huge!.text) < MAX_STORED_TEXT + 40);
  t.is(two!.text, 'one two');
});

test('lines read again from Docker after a restart (adoption tails each process) are not stored twice', async (t) => {
  const dir = await folder(t);
  const keep = parseLogKeep('7d,1m');
  const first = new LogStore({ dir, keep, log, now: () => START });
  for (let i = 0; i < 5; i++) first.append(line(START + Math.floor(i / 2), `before ${i}`));
  await first.stop();
  const again = new LogStore({ dir, keep, log, now: () => START });
  t.teardown(() => again.stop());
  for (let i = 0; i < 5; i++) again.append(line(START + Math.floor(i / 2), `before ${i}`));
  again.append(line(START + 2, 'same time, new text'));
  again.append(line(START + 3, 'after'));
  again.append(line(START + 3, 'after'));
  t.deepEqual((await again.query('shop', { limit: 100 })).map((l) => l.text), ['before 0', 'before 1', 'before 2', 'before 3', 'before 4', 'same time, new text', 'after', 'after']);
});

test('past its buffer, an app\'s lines are dropped and counted, never waited for, and the drop is logged in the app\'s log', async (t) => {
  const dir = await folder(t);
  const app = new AppLog('shop', join(dir, 'shop'), { keep: parseLogKeep('7d,1m'), segmentBytes: 1024 ** 2, flushBytes: 1024 ** 2, bufferBytes: 4096, now: () => START, log });
  // All in one turn: no write can happen in between, as with a disk that does not answer.
  for (let i = 0; i < 1000; i++) app.append(line(START, `line ${i} ${'z'.repeat(50)}`));
  t.true(app.dropped > 900, `${app.dropped} dropped`);
  const kept = await app.query({ limit: 2000 });
  t.is(kept.length, 1000 - app.dropped + 1);
  t.deepEqual(kept.at(-1)!, { time: new Date(START).toISOString(), app: 'shop', source: 'rack[logs]', type: 'logs', text: `${app.dropped} lines dropped: the disk was slower than the app's output` });
  await app.close();
});

test('removing an app removes its folder', async (t) => {
  const dir = await folder(t);
  const store = new LogStore({ dir, keep: parseLogKeep('7d,1m'), log, now: () => START });
  t.teardown(() => store.stop());
  store.append(line(START, 'hello'));
  store.append(line(START, 'hello', 'web', 'other'));
  await store.query('shop', { limit: 1 });
  await store.query('other', { limit: 1 });
  await store.remove('shop');
  t.deepEqual(await readdir(dir), ['other']);
});

test('RACK_LOG_KEEP, --since and --until words', (t) => {
  t.deepEqual(parseLogKeep('7d,256m'), { maxAgeMs: 7 * DAY, maxBytes: 256 * 1024 ** 2 });
  t.deepEqual(parseLogKeep('12h, 1g'), { maxAgeMs: 12 * 3_600_000, maxBytes: 1024 ** 3 });
  for (const bad of ['256m', '7d', '7d,256', '7d,1k', 'x,1m', '7d,1m,2']) t.throws(() => parseLogKeep(bad), { message: /RACK_LOG_KEEP must be/ }, bad);
  t.is(parseDuration('30m'), 30 * 60_000);
  t.is(parseDuration('0m'), undefined);
  t.is(parseLogTime('--since', '2h', START), new Date(START - 2 * 3_600_000).toISOString());
  t.is(parseLogTime('--since', '2026-12-06T04:00', START), '2026-12-06T04:00:00.000Z', 'no zone: UTC');
  t.is(parseLogTime('--until', '2026-12-06T05:00:00+01:00', START), '2026-12-06T04:00:00.000Z');
  t.is(parseLogTime('--since', '2026-12-06', START), '2026-12-06T00:00:00.000Z');
  for (const bad of ['yesterday', '2h ago', '-1h', '2026-13-45', '$(id)']) t.throws(() => parseLogTime('--since', bad, START), { message: /--since takes a duration/ }, bad);
});
