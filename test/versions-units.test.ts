import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Level } from 'level';
import { formatUptime } from '../daemon/commands/rack.js';
import { RackError } from '../daemon/rack-error.js';
import type { MigrationBatch } from '../daemon/store/schema-store.js';
import { Store } from '../daemon/store/store.js';
import { MIGRATIONS, type Migration } from '../daemon/versions/migrations.js';
import { installedCommit } from '../daemon/versions/rack-build.js';
import { noteRunningRack } from '../daemon/versions/rack-ledger.js';
import { checkWayDown } from '../daemon/versions/rack-updates.js';
import { checkRef, checkSourceUrl } from '../daemon/versions/rack-source.js';
import { migrateDown, migrateUp, type Migrator } from '../daemon/versions/schema-migration.js';

// The store's schema and rack's own ledger on a real LevelDB in a temp dir; the commit read from
// real git folders made by the real git client.
const run = promisify(execFile);

async function tempDir(t: { teardown(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'rack-versions-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A store in `dir` (its database kept between opens), stopped after the test. */
async function openStore(t: { teardown(fn: () => Promise<void>): void }, dir: string): Promise<Store> {
  const store = new Store(join(dir, 'db'), join(dir, 'builds'));
  await store.start();
  t.teardown(() => store.stop().catch(() => undefined));
  return store;
}

const BY: Migrator = { version: '9.9.9', commit: 'a'.repeat(40), installDir: '/opt/rack-9.9.9' };
const OLD: Migrator = { version: '1.0.0', commit: 'unknown', installDir: '/opt/rack-1.0.0' };

/** Test migrations that each append their name to `trail` as they find it, so order shows. */
function trailMigration(from: number, opts: { down?: boolean; failUp?: boolean } = {}): Migration {
  const name = `step-${from}`;
  const append = async (batch: MigrationBatch, word: string) => {
    const trail = ((await batch.get('trail')) as string[] | undefined) ?? [];
    batch.put('trail', [...trail, word]);
  };
  return {
    name,
    from,
    async up(batch) {
      await append(batch, `up ${from}`);
      batch.put(`made!${from}`, from);
      if (opts.failUp) throw new Error(`${name} broke halfway`);
    },
    ...(opts.down === false ? {} : {
      async down(batch: MigrationBatch) {
        await append(batch, `down ${from}`);
        batch.del(`made!${from}`);
      },
    }),
  };
}

/** A value of the store's root key space, read through a migration batch that is never committed. */
async function rootGet(store: Store, key: string): Promise<unknown> {
  let value: unknown;
  await store.schema.step({ name: 'peek', from: (await store.schema.version())!, to: (await store.schema.version())!, direction: 'up', at: '', by: BY, reversible: true }, async (b) => {
    value = await b.get(key);
    throw new Error('peek only');
  }).catch(() => undefined);
  return value;
}

test('a store without a schema number is v1, and gets it written', async (t) => {
  const dir = await tempDir(t);
  const store = await openStore(t, dir);
  t.is(await store.schema.version(), undefined);
  t.is(await migrateUp(store.schema, [], BY), 1);
  t.is(await store.schema.version(), 1);
  t.deepEqual(await store.schema.migrations(), []);
});

test('migrations run in order, each seeing the one before, each recorded with who ran it', async (t) => {
  const dir = await tempDir(t);
  const store = await openStore(t, dir);
  const list = [trailMigration(1), trailMigration(2, { down: false }), trailMigration(3)];
  t.is(await migrateUp(store.schema, list, BY), 4);
  t.deepEqual(await rootGet(store, 'trail'), ['up 1', 'up 2', 'up 3']);
  const records = await store.schema.migrations();
  t.deepEqual(records.map((r) => [r.id, r.name, r.from, r.to, r.direction, r.reversible]), [
    [1, 'step-1', 1, 2, 'up', true],
    [2, 'step-2', 2, 3, 'up', false],
    [3, 'step-3', 3, 4, 'up', true],
  ]);
  t.deepEqual(records[0]!.by, BY);
  t.false(Number.isNaN(Date.parse(records[0]!.at)));
  // At the schema it reads already: nothing runs again.
  t.is(await migrateUp(store.schema, list, BY), 4);
  t.is((await store.schema.migrations()).length, 3);
  t.deepEqual(await rootGet(store, 'trail'), ['up 1', 'up 2', 'up 3']);
});

test('a migration that fails leaves nothing of itself: no change, no record, the schema where it was', async (t) => {
  const dir = await tempDir(t);
  const store = await openStore(t, dir);
  const list = [trailMigration(1), trailMigration(2, { failUp: true })];
  await t.throwsAsync(migrateUp(store.schema, list, BY), { message: /step-2 broke halfway/ });
  t.is(await store.schema.version(), 2);
  t.deepEqual(await rootGet(store, 'trail'), ['up 1']);
  t.is(await rootGet(store, 'made!2'), undefined);
  t.deepEqual((await store.schema.migrations()).map((r) => r.name), ['step-1']);
  // Fixed, the next start goes on from v2.
  t.is(await migrateUp(store.schema, [trailMigration(1), trailMigration(2)], BY), 3);
  t.deepEqual(await rootGet(store, 'trail'), ['up 1', 'up 2']);
});

test('each migration is committed with its record and schema number in one batch, and survives a reopen', async (t) => {
  const dir = await tempDir(t);
  const first = new Store(join(dir, 'db'), join(dir, 'builds'));
  await first.start((schema) => migrateUp(schema, [trailMigration(1), trailMigration(2)], BY));
  await first.stop();
  // Read the database as LevelDB has it on disk: the data, the record and the number together.
  const raw = new Level<string, unknown>(join(dir, 'db'), { valueEncoding: 'json' });
  await raw.open();
  try {
    t.deepEqual(await raw.get('trail'), ['up 1', 'up 2']);
    t.is(await raw.get('!schema!version'), 3);
    t.is((await raw.get('!schema!migration!00000002') as { name: string }).name, 'step-2');
  } finally {
    await raw.close();
  }
});

test('a store newer than this rack is refused at start, naming the way down when the newer rack knows one', async (t) => {
  const dir = await tempDir(t);
  const newer = await openStore(t, dir);
  await migrateUp(newer.schema, [trailMigration(1), trailMigration(2), trailMigration(3)], BY);
  await newer.stop();

  const older = new Store(join(dir, 'db'), join(dir, 'builds'));
  const refusal = await t.throwsAsync(older.start((schema) => migrateUp(schema, [trailMigration(1)], OLD)));
  await older.stop();
  t.true(refusal instanceof RackError);
  t.is((refusal as RackError).code, 'store_too_new');
  t.is(
    refusal!.message,
    "the store's schema is v4; this rack reads up to v2: roll forward to rack 9.9.9 (aaaaaaa) or newer, or migrate down with `node /opt/rack-9.9.9/dist/daemon/main.js migrate --to 2` (that rack's own rackd, with this RACK_HOME, rackd stopped)",
  );
  t.false(refusal!.message.includes('\n'));
});

test('a newer store with a step that cannot go back is refused without a way down', async (t) => {
  const dir = await tempDir(t);
  const store = await openStore(t, dir);
  await migrateUp(store.schema, [trailMigration(1), trailMigration(2, { down: false })], BY);
  const refusal = await t.throwsAsync(migrateUp(store.schema, [], OLD));
  t.is(refusal!.message, "the store's schema is v3; this rack reads up to v1: roll forward to rack 9.9.9 (aaaaaaa) or newer (the way from v3 down to v1 is not known)");
  t.is(await store.schema.version(), 3);
});

test('the way down: each down step newest first, recorded, and then the older rack reads the store', async (t) => {
  const dir = await tempDir(t);
  const store = await openStore(t, dir);
  const list = [trailMigration(1), trailMigration(2), trailMigration(3)];
  await migrateUp(store.schema, list, BY);
  const down = await migrateDown(store.schema, list, 2, BY);
  t.deepEqual(down.map((r) => [r.name, r.from, r.to, r.direction]), [
    ['step-3', 4, 3, 'down'],
    ['step-2', 3, 2, 'down'],
  ]);
  t.is(await store.schema.version(), 2);
  t.deepEqual(await rootGet(store, 'trail'), ['up 1', 'up 2', 'up 3', 'down 3', 'down 2']);
  t.is(await rootGet(store, 'made!3'), undefined);
  t.is(await rootGet(store, 'made!1'), 1);
  t.is(await migrateUp(store.schema, list.slice(0, 1), OLD), 2);
  // ...and the newer rack, started again, goes back up.
  t.is(await migrateUp(store.schema, list, BY), 4);
  t.deepEqual((await store.schema.migrations()).map((r) => `${r.direction} ${r.from}→${r.to}`), ['up 1→2', 'up 2→3', 'up 3→4', 'down 4→3', 'down 3→2', 'up 2→3', 'up 3→4']);
});

test('the way down is refused before any step when one step has none', async (t) => {
  const dir = await tempDir(t);
  const store = await openStore(t, dir);
  const list = [trailMigration(1, { down: false }), trailMigration(2)];
  await migrateUp(store.schema, list, BY);
  await t.throwsAsync(migrateDown(store.schema, list, 1, BY), { message: 'migration step-1 (v1 → v2) has no way back down' });
  t.is(await store.schema.version(), 3);
  await t.throwsAsync(migrateDown(store.schema, list, 3, BY), { message: /already v3/ });
});

test('a migration list out of order is refused before it runs', async (t) => {
  const dir = await tempDir(t);
  const store = await openStore(t, dir);
  await t.throwsAsync(migrateUp(store.schema, [trailMigration(2)], BY), { message: /listed at v1 but goes from v2/ });
  t.is(await store.schema.version(), undefined);
});

test("rack's own migration: keys from before scoped keys get their empty list of apps", async (t) => {
  const dir = await tempDir(t);
  const raw = new Level<string, unknown>(join(dir, 'db'), { valueEncoding: 'json' });
  const old = { name: 'old', publicKey: 'ssh-ed25519 AAAA', fingerprint: 'SHA256:x', role: 'admin', createdAt: '2025-01-01T00:00:00.000Z' };
  await raw.put('key!old', old);
  await raw.put('key!scoped', { ...old, name: 'scoped', role: 'app', apps: ['shop'] });
  await raw.close();
  const store = await openStore(t, dir);
  t.is(await migrateUp(store.schema, MIGRATIONS, BY), 2);
  t.deepEqual(await rootGet(store, 'key!old'), { ...old, apps: [] });
  t.deepEqual((await store.getKey('scoped'))?.apps, ['shop']);
  await migrateDown(store.schema, MIGRATIONS, 1, BY);
  t.is(await store.schema.version(), 1);
});

test('the ledger: an install, nothing for the same build, an entry when the build changed under rackd', async (t) => {
  const dir = await tempDir(t);
  const store = await openStore(t, dir);
  const started = new Date(Date.now() - 1500);
  const first = await noteRunningRack(store.rackReleases, { version: '0.1.0', commit: 'b'.repeat(40) }, 2, started, '/opt/rack');
  t.like(first, { id: 1, kind: 'install', from: null, status: 'succeeded', createdBy: 'rackd', description: 'Install 0.1.0 (bbbbbbb)', schema: 2 });
  t.true(first!.durationMs! >= 1500);
  t.is(await noteRunningRack(store.rackReleases, { version: '0.1.0', commit: 'b'.repeat(40) }, 2, new Date(), '/opt/rack'), undefined);
  const second = await noteRunningRack(store.rackReleases, { version: '0.1.0', commit: 'unknown' }, 2, new Date(), '/opt/rack');
  t.like(second, { id: 2, kind: 'start', from: { version: '0.1.0', commit: 'b'.repeat(40) }, description: 'Started as 0.1.0, was 0.1.0 (bbbbbbb)' });
  t.deepEqual((await store.rackReleases.list()).map((r) => r.id), [2, 1]);
});

test('the ledger at start: a pending update is finished by the rackd that starts next, succeeded or failed', async (t) => {
  const dir = await tempDir(t);
  const store = await openStore(t, dir);
  const old = { version: '0.1.0', commit: 'b'.repeat(40) };
  const next = { version: '0.2.0', commit: 'c'.repeat(40) };
  await noteRunningRack(store.rackReleases, old, 2, new Date(), '/opt/rack');
  const update = (to: typeof next) => store.rackReleases.create({
    ...to, from: old, kind: 'update', description: `Update to ${to.version}`, createdBy: 'key admin', createdAt: new Date().toISOString(),
    status: 'pending', finishedAt: null, durationMs: null, failedStep: null, error: null, schema: 2,
  });
  // rack:update switched to 0.2.0, which finishes the entry once it serves, with its start's time.
  const pending = await update(next);
  await store.rackReleases.notePhases(pending.id, [{ name: 'build', ms: 900 }]);
  const done = await noteRunningRack(store.rackReleases, next, 2, new Date(Date.now() - 700), '/opt/rack');
  t.like(done, { id: pending.id, status: 'succeeded' });
  t.deepEqual(done!.phases!.map((p) => p.name), ['build', 'start']);
  t.true(done!.phases![1]!.ms >= 700);
  // An update to 0.1.0 whose new rackd did not start: 0.2.0 comes back and says why; nothing else is added.
  const back = await update(old);
  t.is(await noteRunningRack(store.rackReleases, next, 2, new Date(), '/opt/rack', { step: 'start', error: 'it exited' }), undefined);
  t.like(await store.rackReleases.get(back.id), { status: 'failed', failedStep: 'start', error: 'it exited' });
  // A crash mid-update leaves it pending: the next start marks it interrupted.
  const cut = await update(old);
  t.is(await noteRunningRack(store.rackReleases, next, 2, new Date(), '/opt/rack'), undefined);
  t.like(await store.rackReleases.get(cut.id), { status: 'failed', failedStep: 'interrupted' });
  // A hand-made update to 0.1.0 afterwards is noticed, from what ran before it.
  t.like(await noteRunningRack(store.rackReleases, old, 2, new Date(), '/opt/rack'), { kind: 'start', from: next, dir: '/opt/rack' });
});

test('the ledger: an update opens pending and is finished once, with the step it failed at', async (t) => {
  const dir = await tempDir(t);
  const store = await openStore(t, dir);
  const pending = await store.rackReleases.create({
    version: '0.2.0', commit: 'c'.repeat(40), from: { version: '0.1.0', commit: 'b'.repeat(40) }, kind: 'update', description: 'Update to 0.2.0',
    createdBy: 'key admin', createdAt: new Date().toISOString(), status: 'pending', finishedAt: null, durationMs: null, failedStep: null, error: null, schema: 2,
  });
  const failed = await store.rackReleases.finish(pending.id, 'failed', { failedStep: 'migrate', error: 'disk full' });
  t.like(failed, { status: 'failed', failedStep: 'migrate', error: 'disk full' });
  t.true(failed.durationMs! >= 0);
  await t.throwsAsync(store.rackReleases.finish(pending.id, 'succeeded'), { message: 'rack release r1 is already failed' });
  t.like(await store.rackReleases.latest(), { id: 1, status: 'failed' });
});

test("the install's commit is read from its git folder without git: loose ref, packed ref, detached, worktree, none", async (t) => {
  const dir = await tempDir(t);
  const repo = join(dir, 'repo');
  const git = (args: string[], cwd = repo) => run('git', args, { cwd });
  await run('git', ['init', '-q', '-b', 'main', repo]);
  await git(['-c', 'user.email=a@b', '-c', 'user.name=A', 'commit', '-q', '--allow-empty', '-m', 'one']);
  const head = (await git(['rev-parse', 'HEAD'])).stdout.trim();
  t.is(await installedCommit(repo), head);
  await git(['pack-refs', '--all']);
  t.is(await installedCommit(repo), head);
  const tree = join(dir, 'tree');
  await git(['worktree', 'add', '-q', '-b', 'other', tree]);
  t.is(await installedCommit(tree), head);
  await git(['-c', 'user.email=a@b', '-c', 'user.name=A', 'commit', '-q', '--allow-empty', '-m', 'two'], tree);
  t.is(await installedCommit(tree), (await git(['rev-parse', 'HEAD'], tree)).stdout.trim());
  await git(['checkout', '-q', '--detach', head]);
  t.is(await installedCommit(repo), head);
  t.is(await installedCommit(join(dir, 'nowhere')), 'unknown');
  await writeFile(join(dir, 'bogus'), '');
  await run('mkdir', [join(dir, 'odd')]);
  await writeFile(join(dir, 'odd', '.git'), 'gitdir: ../repo/.git\n');
  t.is(await installedCommit(join(dir, 'odd')), head);
  await writeFile(join(dir, 'odd', '.git'), 'not a git file\n');
  t.is(await installedCommit(join(dir, 'odd')), 'unknown');
});

test('uptimes read in their two largest units', (t) => {
  t.is(formatUptime(0), '0s');
  t.is(formatUptime(59), '59s');
  t.is(formatUptime(61), '1m 1s');
  t.is(formatUptime(3600), '1h');
  t.is(formatUptime(3 * 86_400 + 4 * 3600 + 59), '3d 4h');
  t.is(formatUptime(7260), '2h 1m');
});

test('a switch to a rack that reads an older schema: allowed when every step down has a way down, refused in one line otherwise', (t) => {
  const step = (name: string, from: number, down: boolean): Migration => ({ name, from, async up() {}, ...(down ? { async down() {} } : {}) });
  const list = [step('a', 1, true), step('b', 2, false), step('c', 3, true)];
  t.notThrows(() => checkWayDown(4, 3, list));
  t.notThrows(() => checkWayDown(3, 3, list));
  const refused = t.throws(() => checkWayDown(4, 1, list), { instanceOf: RackError });
  t.is(refused?.code, 'store_too_new');
  t.is(refused?.message, 'that rack reads the store up to schema v1, and it is at v4: migration b (v2 → v3) has no way down');
  t.regex(t.throws(() => checkWayDown(6, 1, list))?.message ?? '', /newer than this rack knows \(v4\)/);
  // rack's own list today: its one migration can be taken back.
  t.notThrows(() => checkWayDown(2, 1));
});

test('rack:update takes a ref and a source URL only in shapes git cannot mistake for options or paths out', (t) => {
  for (const ok of ['main', 'v1.2.3', 'release/2026-12', 'abc1234', 'a'.repeat(40)]) t.is(checkRef(ok), ok);
  for (const bad of ['-uhack', '--upload-pack=x', '../etc', 'a..b', 'refs//x', 'x.lock', 'x/', 'a b', '', 'x'.repeat(201)]) {
    t.throws(() => checkRef(bad), { code: 'bad_argument' } as never, bad);
  }
  for (const ok of ['https://git.example.com/rack.git', 'ssh://git@example.com/rack.git', 'git@example.com:org/rack.git', '/srv/rack', 'file:///srv/rack']) t.is(checkSourceUrl(ok), ok);
  for (const bad of ['-uhack', 'ext::sh -c touch% /tmp/x', 'fd::3', 'relative/path', 'https://a b', 'x'.repeat(1001), '']) {
    t.throws(() => checkSourceUrl(bad), { code: 'bad_argument' } as never, bad);
  }
});
