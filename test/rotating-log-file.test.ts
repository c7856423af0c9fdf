import test from 'ava';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { RotatingLogFile } from '../daemon/rotating-log-file.js';

// Real files: a log written far past its limit stays within (1 + keep) × maxBytes, newest last.

test('a rotating log stays bounded after writing many times its limit, keeping the newest lines', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'rlog-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, 'logs', 'router.log');
  const file = new RotatingLogFile(path, { maxBytes: 10_000, keep: 3 });
  const log = pino({ base: null }, file);
  const lines = 5000; // about 300 KB: thirty times the limit
  for (let i = 0; i < lines; i++) log.info({ i }, 'a line of the router log, long enough to fill the file');
  file.end();

  t.deepEqual((await readdir(join(dir, 'logs'))).sort(), ['router.log', 'router.log.1', 'router.log.2', 'router.log.3']);
  for (const name of ['router.log', 'router.log.1', 'router.log.2', 'router.log.3']) {
    t.true((await stat(join(dir, 'logs', name))).size <= 10_000, name);
  }
  const numbers = async (name: string): Promise<number[]> =>
    (await readFile(join(dir, 'logs', name), 'utf8'))
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => (JSON.parse(l) as { i: number }).i);
  const newest = await numbers('router.log');
  t.is(newest.at(-1), lines - 1, 'the last line written is in the current file');
  // Oldest file first, the kept lines are one unbroken run up to the last: nothing lost in between.
  const kept = [...(await numbers('router.log.3')), ...(await numbers('router.log.2')), ...(await numbers('router.log.1')), ...newest];
  t.deepEqual(kept, kept.map((_, k) => kept[0]! + k));
});

test('a rotating log appends to what is there and counts it toward the limit', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'rlog-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, 'rackd.log');
  const first = new RotatingLogFile(path, { maxBytes: 100, keep: 1 });
  first.write(`${'a'.repeat(59)}\n`);
  first.end();
  const second = new RotatingLogFile(path, { maxBytes: 100, keep: 1 });
  second.write(`${'b'.repeat(59)}\n`);
  second.end();
  t.is(await readFile(`${path}.1`, 'utf8'), `${'a'.repeat(59)}\n`);
  t.is(await readFile(path, 'utf8'), `${'b'.repeat(59)}\n`);
});
