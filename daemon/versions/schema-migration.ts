import type { Logger } from '../log.js';
import { RackError } from '../rack-error.js';
import type { MigrationRecord, RackBuild } from '../store/records.js';
import { FIRST_SCHEMA, type SchemaStore } from '../store/schema-store.js';
import type { Migration } from './migrations.js';
import { describeBuild } from './rack-build.js';

/** The rack that runs a migration, as its record names it. */
export type Migrator = RackBuild & { installDir: string };

/** The schema a store has once every migration of the list has run. */
export function latestSchema(list: Migration[]): number {
  return FIRST_SCHEMA + list.length;
}

/** A list out of order would migrate a store into a shape nobody wrote: refused before it runs. */
function checkList(list: Migration[]): void {
  list.forEach((m, i) => {
    if (m.from !== FIRST_SCHEMA + i) throw new RackError('internal', `migration ${m.name} is listed at v${FIRST_SCHEMA + i} but goes from v${m.from}`);
  });
}



/**
 * The one line a rack gets at start when the store is newer than it reads. The way back down is
 * known only to the rack that went up: each `up` record says whether it could be taken back.
 */
export function newerSchemaRefusal(stored: number, latest: number, records: MigrationRecord[]): RackError {
  const ups = new Map<number, MigrationRecord>();
  for (const r of records) if (r.direction === 'up') ups.set(r.from, r);
  const steps = Array.from({ length: stored - latest }, (_, i) => ups.get(latest + i));
  const newest = ups.get(stored - 1);
  const forward = newest ? `rack ${describeBuild(newest.by)} or newer` : `a rack that reads v${stored}`;
  const head = `the store's schema is v${stored}; this rack reads up to v${latest}: roll forward to ${forward}`;
  const reversible = steps.every((s) => s?.reversible === true);
  const how = reversible && newest
    ? `, or migrate down with \`node ${newest.by.installDir}/dist/daemon/main.js migrate --to ${latest}\` (that rack's own rackd, with this RACK_HOME, rackd stopped)`
    : ` (the way from v${stored} down to v${latest} is not known)`;
  return new RackError('store_too_new', `${head}${how}`);
}

/**
 * Brings the store up to the schema this rack reads, before anything reads it: each migration in
 * order, each committed with its record in one batch, so a crash between two leaves the store at
 * the one before, to go on from at the next start. A store without a schema number is v1 and gets
 * it written. A store newer than this rack is refused.
 * @returns the schema the store is at now.
 */
export async function migrateUp(schema: SchemaStore, list: Migration[], by: Migrator, log?: Logger): Promise<number> {
  checkList(list);
  const latest = latestSchema(list);
  const stored = await schema.version();
  if (stored === undefined) await schema.stamp(FIRST_SCHEMA);
  let current = stored ?? FIRST_SCHEMA;
  if (current > latest) throw newerSchemaRefusal(current, latest, await schema.migrations());
  for (const m of list.slice(current - FIRST_SCHEMA)) {
    const record = await schema.step(
      { name: m.name, from: m.from, to: m.from + 1, direction: 'up', at: new Date().toISOString(), by, reversible: m.down !== undefined },
      (batch) => m.up(batch),
    );
    log?.info({ migration: record.name, from: record.from, to: record.to }, 'store migrated');
    current = record.to;
  }
  return current;
}

/**
 * Takes the store back down to schema `to`, for an older rack: the down step of each migration,
 * newest first, each with its record. Refused, before any step, when one of them has no way down.
 */
export async function migrateDown(schema: SchemaStore, list: Migration[], to: number, by: Migrator, log?: Logger): Promise<MigrationRecord[]> {
  checkList(list);
  const latest = latestSchema(list);
  const current = (await schema.version()) ?? FIRST_SCHEMA;
  if (!Number.isInteger(to) || to < FIRST_SCHEMA) throw new RackError('bad_argument', `the schema to migrate to is a number from ${FIRST_SCHEMA}, got ${String(to)}`);
  if (current > latest) throw new RackError('store_too_new', `the store's schema is v${current}; this rack knows the way down from v${latest} at most`);
  if (to >= current) throw new RackError('bad_argument', `the store's schema is already v${current}; nothing to migrate down to v${to}`);
  const steps = list.slice(to - FIRST_SCHEMA, current - FIRST_SCHEMA).reverse();
  const stuck = steps.find((m) => m.down === undefined);
  if (stuck) throw new RackError('bad_argument', `migration ${stuck.name} (v${stuck.from} → v${stuck.from + 1}) has no way back down`);
  const done: MigrationRecord[] = [];
  for (const m of steps) {
    const record = await schema.step(
      { name: m.name, from: m.from + 1, to: m.from, direction: 'down', at: new Date().toISOString(), by, reversible: true },
      (batch) => m.down!(batch),
    );
    log?.info({ migration: record.name, from: record.from, to: record.to }, 'store migrated down');
    done.push(record);
  }
  return done;
}
