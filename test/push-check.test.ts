import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pino from 'pino';
import { loadConfig } from '../daemon/config.js';
import { describePendingCheck, PushCheck } from '../daemon/git/push-check.js';
import { PushIdleDeadline } from '../daemon/git/push-idle-deadline.js';
import { removeQuarantines } from '../daemon/git/repo.js';
import type { Pipeline } from '../daemon/pipeline.js';
import { RackError } from '../daemon/rack-error.js';
import type { PushMarker, ReleaseRecord } from '../daemon/store/records.js';
import { Store } from '../daemon/store/store.js';

const run = promisify(execFile);

// The push check against a real LevelDB and a real bare repo; only the pipeline's rollback is a
// stand-in, so that it can fail on demand.

async function withRepoAndStore(body: (store: Store, repo: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'rack-push-check-'));
  const store = new Store(join(dir, 'db'), join(dir, 'builds'));
  await store.start();
  try {
    const repo = join(dir, 'app.git');
    await run('git', ['init', '--quiet', '--bare', '--initial-branch=main', repo]);
    await body(store, repo);
  } finally {
    await store.stop().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }
}

/** An app whose v1 serves, as a pushed release does between its rollout and its check. */
async function servingRelease(store: Store, app: string): Promise<ReleaseRecord> {
  await store.createApp(app);
  const release = await store.createRelease(app, { build: 1, image: `rack/${app}:b1`, processTypes: { web: 'x' }, config: {}, description: 'Deploy', createdBy: 'test' });
  await store.finishRelease(release, 'succeeded', null);
  return release;
}

test('a push check whose repair fails keeps its marker with the error, shows it, and is retried until it works', async (t) => {
  await withRepoAndStore(async (store, repo) => {
    await servingRelease(store, 'mend');
    // The released commit is not in the repo: the branch cannot be moved to it, so the check rolls back.
    const marker: PushMarker = { app: 'mend', release: 1, commit: 'a'.repeat(40), branch: 'main', oldRev: '0'.repeat(40), createdAt: '2026-12-06T01:00:00.000Z' };
    await store.putPushMarker(marker);
    let rollbackWorks = false;
    let rollbacks = 0;
    const pipeline = {
      revertPush: async () => {
        rollbacks++;
        if (!rollbackWorks) throw new RackError('no_such_build', 'the image of v0 was pruned; cannot roll back');
        return undefined;
      },
    } as unknown as Pipeline;
    const check = new PushCheck(store, pipeline, () => repo, pino({ level: 'silent' }));

    await t.throwsAsync(check.settle(marker), { message: /cannot roll back/ });
    const kept = await check.pending('mend');
    t.truthy(kept, 'the marker outlives the failed repair');
    t.is(kept!.lastError, 'the image of v0 was pruned; cannot roll back');
    t.regex(describePendingCheck(kept!), /^pending since 2026-12-06T01:00:00.000Z: v1 \(aaaaaaa on main\) could not be mended \(last try .+: the image of v0 was pruned; cannot roll back\)/);

    // At start (or before the next push) it is tried again; still failing, it stays.
    await check.recover();
    t.is(rollbacks, 2);
    t.truthy(await check.pending('mend'));

    rollbackWorks = true;
    await check.retryPending('mend');
    t.is(rollbacks, 3);
    t.is(await check.pending('mend'), undefined, 'cleared once the repair worked');
  });
});

test('a push check that finds the branch and what serves agree clears its marker', async (t) => {
  await withRepoAndStore(async (store, repo) => {
    await servingRelease(store, 'fine');
    const empty = (await run('git', ['-C', repo, 'hash-object', '-t', 'tree', '-w', '/dev/null'])).stdout.trim();
    const env = { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@x', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@x' };
    const commit = (await run('git', ['-C', repo, 'commit-tree', empty, '-m', 'one'], { env })).stdout.trim();
    await run('git', ['-C', repo, 'update-ref', 'refs/heads/main', commit]);
    const marker: PushMarker = { app: 'fine', release: 1, commit, branch: 'main', oldRev: '0'.repeat(40), createdAt: new Date().toISOString() };
    await store.putPushMarker(marker);
    const check = new PushCheck(store, {} as Pipeline, () => repo, pino({ level: 'silent' }));
    t.is(await check.settle(marker), 'consistent');
    t.is(await check.pending('fine'), undefined);
    t.regex(describePendingCheck(marker), /is being checked against its branch/);
  });
});

test('the quarantines of pushes that never finished are removed, and nothing else in objects/', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'rack-quarantine-'));
  try {
    const repo = join(dir, 'app.git');
    await run('git', ['init', '--quiet', '--bare', repo]);
    for (const q of ['tmp_objdir-incoming-a1B2c3', 'incoming-Xy9z00']) {
      await mkdir(join(repo, 'objects', q, 'pack'), { recursive: true });
      await writeFile(join(repo, 'objects', q, 'pack', 'tmp_pack_1'), 'half a pack');
    }
    const before = (await readdir(join(repo, 'objects'))).sort();
    t.deepEqual((await removeQuarantines(repo)).sort(), ['incoming-Xy9z00', 'tmp_objdir-incoming-a1B2c3']);
    t.deepEqual((await readdir(join(repo, 'objects'))).sort(), before.filter((n) => !n.includes('incoming')));
    t.deepEqual(await removeQuarantines(join(dir, 'none.git')), []);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('the idle deadline: when rack itself is behind it runs again, and ends the push the next time', async (t) => {
  const ends: string[] = [];
  let busy = true;
  await new Promise<void>((resolve) => {
    const deadline = new PushIdleDeadline(30, () => {
      if (busy) {
        busy = false;
        ends.push('busy');
        return false;
      }
      ends.push('ended');
      resolve();
      return true;
    });
    deadline.start();
  });
  t.deepEqual(ends, ['busy', 'ended']);
});

test('RACK_PUSH_IDLE_TIMEOUT and RACK_STOP_GRACE are seconds, 60 unless set, and bad ones are refused', (t) => {
  const base = { RACK_HOME: '/tmp/rack-config-test' };
  const plain = loadConfig(base, '/opt/rack');
  t.is(plain.pushIdleTimeoutMs, 60_000);
  t.is(plain.stopGraceMs, 60_000);
  const set = loadConfig({ ...base, RACK_PUSH_IDLE_TIMEOUT: '5', RACK_STOP_GRACE: '120' }, '/opt/rack');
  t.is(set.pushIdleTimeoutMs, 5_000);
  t.is(set.stopGraceMs, 120_000);
  for (const name of ['RACK_PUSH_IDLE_TIMEOUT', 'RACK_STOP_GRACE']) {
    for (const bad of ['0', '-1', '1.5', '10s']) {
      t.throws(() => loadConfig({ ...base, [name]: bad }, '/opt/rack'), { message: new RegExp(`^${name} must be a positive integer`) });
    }
  }
});
