/**
 * What syncing each store write costs: N puts of a release-sized record into a real LevelDB, without
 * and with `sync: true` (an fdatasync of its log each), then the store's writes of one config:set
 * (a release created, then finished, its timings and the audit entry: four synced commits) through
 * the Store itself. Run it on the disk RACK_HOME lives on: fsync's price is the disk's.
 *   npm run build && node dist/scripts/bench-store-sync.js [DIR] [N]
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Level } from 'level';
import { Store } from '../daemon/store/store.js';

const DIR = process.argv[2] ?? tmpdir();
const N = Number(process.argv[3] ?? 500);

const config: Record<string, string> = {};
for (let i = 0; i < 20; i++) config[`VAR_${i}`] = `value-${i}-${'x'.repeat(40)}`;
const record = { app: 'shop', version: 0, config, processTypes: { web: 'node server.js' }, formation: { web: 1 }, description: 'Set VAR_1', createdBy: 'alice' };

async function puts(sync: boolean): Promise<number> {
  const dir = await mkdtemp(join(DIR, 'rack-bench-sync-'));
  const db = new Level<string, unknown>(join(dir, 'db'), { valueEncoding: 'json' });
  await db.open();
  try {
    const start = process.hrtime.bigint();
    for (let i = 0; i < N; i++) await db.put(`release!shop!${String(i).padStart(10, '0')}`, { ...record, version: i }, { sync });
    return Number(process.hrtime.bigint() - start) / 1e6 / N;
  } finally {
    await db.close();
    await rm(dir, { recursive: true, force: true });
  }
}

async function configSets(): Promise<number> {
  const dir = await mkdtemp(join(DIR, 'rack-bench-sync-'));
  const store = new Store(join(dir, 'db'), join(dir, 'builds'));
  await store.start();
  try {
    await store.createApp('shop');
    const rounds = Math.max(1, Math.floor(N / 4));
    const start = process.hrtime.bigint();
    for (let i = 0; i < rounds; i++) {
      const release = await store.createRelease('shop', { build: 1, image: 'rack/shop:b1', processTypes: record.processTypes, formation: record.formation, config, description: 'Set VAR_1', createdBy: 'alice' });
      await store.finishRelease(release, 'succeeded', null, ['c1']);
      await store.setReleaseTimings('shop', release.version, { total: 1 });
      await store.audit.append({ time: '', actor: { kind: 'key', name: 'alice' }, via: 'ssh', address: '', app: 'shop', action: 'config:set', detail: 'VAR_1', outcome: 'ok' });
    }
    return Number(process.hrtime.bigint() - start) / 1e6 / rounds;
  } finally {
    await store.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

const unsynced = await puts(false);
const synced = await puts(true);
const perConfigSet = await configSets();
console.log(`disk: ${DIR}, ${N} puts of a ${JSON.stringify(record).length}-byte record`);
console.log(`put without sync: ${unsynced.toFixed(3)} ms each`);
console.log(`put with sync:    ${synced.toFixed(3)} ms each (+${(synced - unsynced).toFixed(3)} ms)`);
console.log(`a config:set's four store writes, synced, through the Store: ${perConfigSet.toFixed(3)} ms`);
