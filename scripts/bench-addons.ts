/**
 * Postgres add-ons, timed through a real rackd and the ssh client:
 * - the first `addons:create postgres`, which makes the service image from Debian's packages
 *   (removed first unless --keep-image), and later ones, each to accepting connections;
 * - a backup and a restore of about 100 MB of table data (random hex, so compression does not
 *   hide it); the restore includes the safety backup rack takes first, shown apart.
 *   npm run build && node dist/scripts/bench-addons.js [--keep-image] [--later N]
 */
import { KINDS } from '../daemon/addons/addon-kinds.js';
import { exec, RackDaemon } from '../test/support/rack-daemon.js';
import { median, secs } from './bench-host.js';

const keepImage = process.argv.includes('--keep-image');
const laterIndex = process.argv.indexOf('--later');
const LATER = laterIndex > 0 ? Number(process.argv[laterIndex + 1]) : 3;
const ROWS = 100_000; // × 1 KiB of random hex ≈ 100 MB

async function timed<T>(what: string, fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const start = Date.now();
  const value = await fn();
  return { ms: Date.now() - start, value };
}

async function main(): Promise<void> {
  const image = KINDS.postgres.image;
  if (!keepImage) await exec('docker', ['image', 'rm', image]);
  const rack = await RackDaemon.create();
  try {
    const ssh = async (args: string[]) => {
      const r = await rack.ssh(args);
      if (r.code !== 0) throw new Error(`${args.join(' ')}: ${r.stderr}${r.stdout}`);
      return r.stdout;
    };
    await ssh(['apps:create', 'bench']);
    const ready = (out: string) => Number(/accepting connections after ([\d.]+) s/.exec(out)?.[1] ?? NaN);

    const first = await timed('first', () => ssh(['addons:create', 'postgres', '--as', 'bench-1', '--alias', 'DB1', '-a', 'bench']));
    const made = /Making the/.test(first.value);
    const later: { ms: number; ready: number }[] = [];
    for (let i = 2; i <= LATER + 1; i++) {
      const r = await timed('later', () => ssh(['addons:create', 'postgres', '--as', `bench-${i}`, '--alias', `DB${i}`, '-a', 'bench']));
      later.push({ ms: r.ms, ready: ready(r.value) });
    }
    console.log(`addons:create postgres, first${made ? ' (image made from Debian packages)' : ' (image already there)'}: ${secs(first.ms)} (service ready ${ready(first.value).toFixed(1)} s after its start)`);
    console.log(`addons:create postgres, later (median of ${LATER}): ${secs(median(later.map((l) => l.ms)))} (service ready ${median(later.map((l) => l.ready)).toFixed(1)} s after its start)`);
    console.log(`  ratio later/first: ${(median(later.map((l) => l.ms)) / first.ms).toFixed(2)}`);

    const fill = await timed('fill', () =>
      ssh([
        'addons:connect', 'bench-1', '--', '-qc',
        // Quoted for the remote side, as a user types it after ssh.
        `"CREATE TABLE big AS SELECT g AS id, (SELECT string_agg(md5(random()::text || s || g), '') FROM generate_series(1, 32) s) AS payload FROM generate_series(1, ${ROWS}) g"`,
      ]),
    );
    const table = (await ssh(['addons:connect', 'bench-1', '--', '-tAc', `"SELECT pg_size_pretty(pg_table_size('big'))"`])).trim();
    const info = JSON.parse(await ssh(['addons:info', 'bench-1', '--json'])) as { size: number };
    console.log(`filled ${ROWS} rows in ${secs(fill.ms)}: table ${table}, data volume ${(info.size / 1e6).toFixed(0)} MB (WAL included)`);

    const backup = await timed('backup', () => ssh(['addons:backup', 'bench-1']));
    const size = /\(([\d.]+ [KMG]iB)/.exec(backup.value)?.[1] ?? '?';
    console.log(`addons:backup: ${secs(backup.ms)} (${size} file)`);
    await ssh(['addons:connect', 'bench-1', '--', '-qc', "'DELETE FROM big WHERE id % 2 = 0'"]);
    const restore = await timed('restore', () => ssh(['addons:restore', 'bench-1', 'b1']));
    const count = (await ssh(['addons:connect', 'bench-1', '--', '-tAc', "'SELECT count(*) FROM big'"])).trim();
    const safety = /as it was: b\d+ \(([^,]+), ([\d.]+) s\)/.exec(restore.value);
    const alone = /restored in ([\d.]+) s/.exec(restore.value)?.[1];
    console.log(`addons:restore of b1: ${secs(restore.ms)} in all; the safety backup first (${safety?.[1]} of half the rows) ${safety?.[2]} s, the restore itself ${alone} s; rows after: ${count} of ${ROWS}`);
    if (Number(count) !== ROWS) throw new Error(`the restore gave ${count} rows, not ${ROWS}`);
  } finally {
    await rack.destroy();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
