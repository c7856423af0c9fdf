import test, { type ExecutionContext } from 'ava';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { pino, type Logger } from 'pino';
import { RackError } from '../daemon/rack-error.js';
import { Store } from '../daemon/store/store.js';
import { storeErrorReason, storeWriteFailed } from '../daemon/store/store-failure.js';
import { ROOT } from './support/rack-daemon.js';
import { fillDisk, smallDisk } from './support/small-disk.js';

const run = promisify(execFile);

// A real Store (LevelDB) on a small tmpfs that really fills up (see support/small-disk.ts).

/** An operator log whose lines the test can read. */
function capturedLog(): { log: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
  return { log, lines };
}

const token = (name: string) => ({ name, hash: name.padEnd(64, '0'), role: 'admin' as const, apps: [], createdAt: '', createdBy: '', expiresAt: null, lastUsedAt: null });
const BIG = 'x'.repeat(256 * 1024); // more than any page the database's log file has left

const MESSAGE = 'rack cannot save changes: its store failed to write (ENOSPC: no space left on device); free space and restart rackd';

/** One change after the disk filled and emptied again, and how to read it back. */
type Change = [name: string, make: (s: Store) => Promise<unknown>, read: (s: Store) => Promise<unknown>];

const changes: Change[] = [
  ['apps:create', (s) => s.createApp('after'), (s) => s.getApp('after')],
  ['config:set', (s) => s.setAppConfig('before', { A: '1' }), async (s) => (await s.getApp('before'))?.config?.['A']],
  ['release', (s) => s.createRelease('before', { build: 0, image: '', processTypes: {}, formation: {}, config: {}, description: 'Set A', createdBy: 'admin' }), (s) => s.getRelease('before', 1)],
  ['tokens:create', (s) => s.tokens.add(token('second')), (s) => s.tokens.get('second')],
  ['keys:add', (s) => s.addKey({ name: 'dev', publicKey: 'ssh-ed25519 AAAA', fingerprint: 'SHA256:x', role: 'admin', apps: [], createdAt: '' }), (s) => s.getKey('dev')],
  ['push marker', (s) => s.putPushMarker({ app: 'before', release: 1, commit: '1'.repeat(40), branch: 'main', oldRev: '0'.repeat(40), createdAt: '' }), async (s) => (await s.listPushMarkers())[0]],
  ['certs', (s) => s.certs.put({ host: 'a.example', app: 'before', source: 'manual', updatedAt: '' }), (s) => s.certs.get('a.example')],
  ['audit', (s) => s.audit.append({ time: '', actor: { kind: 'key', name: 'admin' }, via: 'ssh', address: '', app: null, action: 'x', detail: '', outcome: 'ok' }), async (s) => (await s.audit.list({ limit: 10 }))[0]],
];

/**
 * A store whose disk fills (a write fails), then empties, then is asked for every kind of change.
 * Returns what each change answered; the store is still open.
 */
async function afterAFullDisk(t: ExecutionContext, log?: Logger): Promise<{ store: Store; disk: string; failed: unknown; outcomes: Map<string, unknown> }> {
  const disk = await smallDisk(t, '8m');
  const store = new Store(join(disk, 'db'), join(disk, 'builds'), 100, log);
  await store.start();
  await store.createApp('before');
  await store.tokens.add(token('first'));
  const filler = await fillDisk(disk);
  const failed = await store.setAppConfig('before', { BIG }).then(() => undefined, (err: unknown) => err);
  await rm(filler);
  const outcomes = new Map<string, unknown>();
  for (const [name, make] of changes) outcomes.set(name, await make(store).then(() => 'confirmed', (err: unknown) => err));
  return { store, disk, failed, outcomes };
}

test('a change confirmed after a write failed on a full disk is still there after a restart', async (t) => {
  const { store, disk, outcomes } = await afterAFullDisk(t);
  await store.stop();
  const again = new Store(join(disk, 'db'), join(disk, 'builds'), 100);
  await again.start();
  try {
    t.truthy(await again.getApp('before'));
    t.truthy(await again.tokens.get('first'));
    // Before the fix each change was confirmed and readable, and all were gone after the restart.
    for (const [name, , read] of changes) {
      if (outcomes.get(name) === 'confirmed') t.truthy(await read(again), `${name} was confirmed but is lost after a restart`);
    }
    await again.createApp('later');
    t.truthy(await again.getApp('later'), 'a restarted store takes changes again');
  } finally {
    await again.stop();
  }
});

test('after a write fails on a full disk, every later change is refused in one line, said once to the operator, and reads go on', async (t) => {
  const { log, lines } = capturedLog();
  const { store, failed, outcomes } = await afterAFullDisk(t, log);
  try {
    t.like(failed, { code: 'store_failed', message: MESSAGE });
    for (const [name] of changes) t.like(outcomes.get(name), { code: 'store_failed', message: MESSAGE }, name);
    t.deepEqual((await store.listApps()).map((a) => a.name), ['before']);
    t.truthy(await store.tokens.get('first'));
    // A token's use is not a change anyone is told of: marking it stays quiet.
    await t.notThrowsAsync(store.tokens.touch('first', new Date().toISOString()));
    t.is(lines.filter((l) => l['code'] === 'store_failed').length, 1, 'the operator log says it once');
  } finally {
    await store.stop();
  }
});

test('a store opened on a full disk fails with one line naming the cause', async (t) => {
  const disk = await smallDisk(t, '8m');
  const path = join(disk, 'db');
  const store = new Store(path, join(disk, 'builds'));
  await store.start();
  for (let i = 0; i < 20; i++) await store.createApp(`app${i}`);
  await store.stop();
  await fillDisk(disk);
  const err = await t.throwsAsync(new Store(path, join(disk, 'builds')).start(), { instanceOf: RackError });
  t.is(err.code, 'store_failed');
  t.is(err.message, `cannot open the store at ${path}: no space left on device`);
});

test('each change is on disk (fdatasync) before it is confirmed', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'rack-sync-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  // A real process under strace: which system calls it makes is the only proof of a sync.
  const script = `
    const { Store } = await import(${JSON.stringify(pathToFileURL(join(ROOT, 'dist', 'daemon', 'store', 'store.js')).href)});
    const store = new Store(${JSON.stringify(join(dir, 'db'))}, ${JSON.stringify(join(dir, 'builds'))});
    await store.start();
    await store.createApp('shop');
    await store.setAppConfig('shop', { A: '1' });
    await store.tokens.add(${JSON.stringify(token('ci'))});
    await store.addons.create({ name: 'db', kind: 'postgres', version: '15', image: 'x', createdFor: 'shop', createdBy: 'a', createdAt: '', password: 'p' });
    await store.stop();
  `;
  const trace = join(dir, 'trace');
  await run('strace', ['-f', '-qq', '-y', '-e', 'trace=fdatasync,fsync', '-o', trace, process.execPath, '--input-type=module', '-e', script]);
  const syncs = (await readFile(trace, 'utf8')).split('\n').filter((l) => /(fdatasync|fsync)\(\d+<[^>]*\/db\/\d+\.log>\)\s+=\s+0/.test(l));
  t.true(syncs.length >= 4, `four changes, ${syncs.length} syncs of the database's log`);
});

test('a LevelDB error is told by its errno where it names one', (t) => {
  const io = Object.assign(new Error('IO error: /var/lib/rack/db/000003.log: No space left on device'), { code: 'LEVEL_IO_ERROR' });
  t.deepEqual(storeErrorReason(io), { errno: 'ENOSPC', text: 'no space left on device' });
  t.deepEqual(storeErrorReason(new Error('Database failed to open', { cause: io })), { errno: 'ENOSPC', text: 'no space left on device' });
  t.deepEqual(storeErrorReason(new Error('IO error: /x/MANIFEST-000001: Read-only file system')), { errno: 'EROFS', text: 'read-only file system' });
  const locked = Object.assign(new Error('IO error: lock /x/LOCK: Resource temporarily unavailable'), { code: 'LEVEL_LOCKED' });
  t.deepEqual(storeErrorReason(new Error('Database failed to open', { cause: locked })), { errno: undefined, text: 'another process has it open' });
  t.deepEqual(storeErrorReason(new Error('Corruption: bad record length')), { errno: undefined, text: 'Corruption: bad record length' });
  t.is(storeWriteFailed(new Error('IO error: /x/000003.log: Disk quota exceeded')).message, 'rack cannot save changes: its store failed to write (EDQUOT: disk quota exceeded); free space and restart rackd');
  t.is(storeWriteFailed(new Error('IO error: /x/000003.log: Input/output error')).message, 'rack cannot save changes: its store failed to write (EIO: input/output error); restart rackd once that is fixed');
});
