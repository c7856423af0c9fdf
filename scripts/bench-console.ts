/**
 * Measures the server-side render time of the Console's Releases tab for an app with 500 releases
 * (target: 50 ms). The records are made in a real LevelDB (a temp dir) through the Store, as rackd
 * makes them; then each round reads them back as the tab does and renders the whole page.
 *   npm run bench:console [rounds]
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { page, appPath } from '../daemon/console/layout-view.js';
import { releasesTab, type ReleaseRow } from '../daemon/console/releases-view.js';
import { Store } from '../daemon/store/store.js';

const RELEASES = 500;
const TARGET_MS = 50;
const rounds = Number(process.argv[2] ?? 200);
const app = 'bench-console';

const dir = await mkdtemp(join(tmpdir(), 'rack-bench-console-'));
const store = new Store(join(dir, 'db'), join(dir, 'builds'));
await store.start();
try {
  await store.createApp(app);
  const subjects = new Map<string, string>();
  let config: Record<string, string> = {};
  let build = await store.createBuild(app, { commit: '0'.repeat(40), createdBy: 'alice' });
  for (let v = 1; v <= RELEASES; v++) {
    if (v % 5 === 1) {
      // A push every fifth release, config changes in between: a realistic history.
      const commit = v.toString(16).padStart(40, 'a');
      build = await store.createBuild(app, { commit, createdBy: 'alice' });
      build = { ...build, status: 'succeeded', image: `rack/${app}:b${build.id}`, processTypes: { web: 'node server.js' }, finishedAt: new Date().toISOString(), durationMs: 1200 };
      await store.finishBuild(build, [Buffer.from('-----> Building\n')]);
      subjects.set(commit, `Change number ${v} <with> "markup" & such`);
    } else {
      config = { ...config, [`KEY_${v % 40}`]: `value-${v}`, DATABASE_URL: `postgres://u:secret-${v}@db/app` };
    }
    const release = await store.createRelease(app, {
      build: build.id,
      image: build.image ?? '',
      processTypes: build.processTypes,
      formation: { web: 1 },
      config,
      description: v % 5 === 1 ? `Deploy ${build.commit.slice(0, 7)}` : `Set KEY_${v % 40}, DATABASE_URL`,
      createdBy: v % 3 === 0 ? 'token:ci' : 'alice',
    });
    await store.finishRelease(release, v % 17 === 0 ? 'failed' : v % 23 === 0 ? 'recorded' : 'succeeded', v % 17 === 0 ? 'web did not answer on PORT within 30 s' : null);
  }

  const renderOnce = async (): Promise<{ total: number; render: number; bytes: number }> => {
    const t0 = performance.now();
    const record = await store.requireApp(app);
    const rows: ReleaseRow[] = (await store.listReleases(app)).map((r) => ({ ...r, current: r.version === record.currentRelease }));
    const builds = await store.listBuilds(app);
    const t1 = performance.now();
    const body = releasesTab({ app, releases: rows, builds: new Map(builds.map((b) => [b.id, b])), subjects, canChange: true });
    const out = String(page({ title: `Releases · ${app}`, principal: { kind: 'token', name: 'admin', role: 'admin', apps: [] }, app, tab: 'releases', events: appPath(app, '/events'), body }));
    const t2 = performance.now();
    return { total: t2 - t0, render: t2 - t1, bytes: Buffer.byteLength(out) };
  };

  for (let i = 0; i < 20; i++) await renderOnce(); // warm-up (JIT)
  const totals: number[] = [];
  const renders: number[] = [];
  let bytes = 0;
  for (let i = 0; i < rounds; i++) {
    const r = await renderOnce();
    totals.push(r.total);
    renders.push(r.render);
    bytes = r.bytes;
  }
  const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))]!;
  const fmt = (ms: number) => `${ms.toFixed(2)} ms`;
  console.log(`Releases tab, ${RELEASES} releases, ${rounds} rounds, page ${(bytes / 1024).toFixed(0)} KiB`);
  console.log(`  render only:            median ${fmt(pct(renders, 50))}  p95 ${fmt(pct(renders, 95))}`);
  console.log(`  store read + render:    median ${fmt(pct(totals, 50))}  p95 ${fmt(pct(totals, 95))}  (target ≤ ${TARGET_MS} ms)`);
  console.log(pct(totals, 95) <= TARGET_MS ? 'PASS' : 'OVER TARGET');
} finally {
  await store.stop();
  await rm(dir, { recursive: true, force: true });
}
