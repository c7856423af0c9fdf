import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig, paths } from '../config.js';
import type { Logger } from '../log.js';
import { RackError } from '../rack-error.js';
import { runProgram } from '../run-script.js';
import { Store } from '../store/store.js';
import { MIGRATIONS } from './migrations.js';
import { rackBuildOf } from './rack-build.js';
import { migrateDown } from './schema-migration.js';

const USAGE = 'rackd migrate --to N [--if-newer]';

/**
 * `rackd migrate --to N [--if-newer]`: takes the store of RACK_HOME back down to schema N, for an older rack,
 * with this rack's own down steps (only the rack that went up knows them). Run while rackd is
 * stopped: LevelDB lets one process hold the database, so a running rackd makes it fail at once.
 * @returns the exit status.
 */
export async function migrateCommand(argv: string[], installDir: string, io: { out(line: string): void; err(line: string): void }): Promise<number> {
  try {
    let to: number;
    let ifNewer = false;
    try {
      const { values, positionals } = parseArgs({ args: argv, options: { to: { type: 'string' }, 'if-newer': { type: 'boolean' } }, strict: true, allowPositionals: true });
      ifNewer = values['if-newer'] === true;
      if (positionals.length > 0 || values.to === undefined || !/^v?[0-9]{1,6}$/.test(values.to)) throw new Error('expected --to and a schema number');
      to = Number(values.to.replace(/^v/, ''));
    } catch (err) {
      throw new RackError('bad_argument', `${(err as Error).message.split('\n')[0]} (usage: ${USAGE})`);
    }
    const config = loadConfig(process.env, installDir);
    const build = await rackBuildOf(installDir);
    const store = new Store(paths.db(config), join(paths.logs(config), 'builds'));
    await store.start();
    try {
      const current = await store.schema.version();
      // --if-newer: a rack coming back after a failed switch takes the store down only if the other one took it up.
      if (ifNewer && (current === undefined || current <= to)) {
        io.out(`-----> The store is at schema v${current ?? 1}; nothing to migrate down`);
        return 0;
      }
      const steps = await migrateDown(store.schema, MIGRATIONS, to, { ...build, installDir });
      for (const s of steps) io.out(`-----> Migrated the store down: v${s.from} → v${s.to} (${s.name})`);
      io.out(`-----> The store is at schema v${to}`);
    } finally {
      await store.stop();
    }
    return 0;
  } catch (err) {
    const error = RackError.from(err);
    io.err(` !     ${error.message}`);
    return error.exitCode;
  }
}

/**
 * Runs an install's own `rackd migrate --to N --if-newer` with this RACK_HOME, the store closed
 * meanwhile: only the rack that took a store up knows the way back down.
 */
export async function runMigrate(installDir: string, to: number, log: Logger): Promise<void> {
  const lines: string[] = [];
  const code = await runProgram(process.execPath, [join(installDir, 'dist', 'daemon', 'main.js'), 'migrate', '--to', String(to), '--if-newer'], {}, (l) => lines.push(l));
  for (const line of lines) log.info({ migrate: line }, 'store migration');
  if (code !== 0) throw new RackError('store_failed', `migrate --to ${to} with ${installDir} failed: ${lines.at(-1) ?? `status ${code}`}`);
}
