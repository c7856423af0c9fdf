import type { MigrationRecord } from './records.js';
import type { Sublevel, Value } from './store.js';
import type { WriteOp, Writes } from './store-writer.js';

/** The schema of a store that has no schema key: the data as it was before rack counted. */
export const FIRST_SCHEMA = 1;

const pad = (n: number) => String(n).padStart(8, '0');
const VERSION_KEY = 'version';
const COUNTER_KEY = 'counter!migration';
const migrationKey = (id: number) => `migration!${pad(id)}`;

/**
 * One migration's changes as it makes them. Reads see the store as it was before the migration
 * (its own puts are not read back); everything put or deleted is committed in one batch with the
 * migration's record and the new schema number, or not at all.
 */
export interface MigrationBatch {
  get(key: string): Promise<unknown>;
  /** Every key and value under a prefix, in key order. */
  entries(prefix: string): AsyncIterable<[string, unknown]>;
  put(key: string, value: unknown): void;
  del(key: string): void;
  /** The same on one of the store's own key spaces (`token`, `audit`, `cert`, `addon`, ...). */
  part(name: string): MigrationBatch;
}

/** The parts of the database a migration may reach: the root and the named sublevels. */
export interface MigrationTarget {
  root: KeySpace;
  part(name: string): Sublevel;
}

/** What a migration reads of the database or of a sublevel. */
export interface KeySpace {
  get(key: string): Promise<Value | undefined>;
  iterator(range: { gte: string; lt: string }): AsyncIterable<[string, Value]>;
}

/**
 * The store's schema number and the record of every migration run on it, in their own key space.
 * A store without the number is schema 1 (`FIRST_SCHEMA`), the data as rack kept it before it
 * counted; `stamp()` writes that down.
 */
export class SchemaStore {
  constructor(
    private readonly db: Sublevel,
    private readonly target: MigrationTarget,
    private readonly writes: Writes<Value>,
  ) {}

  /** The stored schema number; undefined for a store from before schemas were counted. */
  async version(): Promise<number | undefined> {
    return (await this.db.get(VERSION_KEY)) as number | undefined;
  }

  /** Writes the schema number of a store that has none. */
  stamp(version: number): Promise<void> {
    return this.writes.run(async () => {
      if ((await this.version()) !== undefined) return;
      await this.writes.batch([{ type: 'put', key: VERSION_KEY, value: version, sublevel: this.db }]);
    });
  }

  /** Every migration run on this store, oldest first. */
  async migrations(): Promise<MigrationRecord[]> {
    const out: MigrationRecord[] = [];
    for await (const value of this.db.values({ gte: 'migration!', lt: 'migration!\xff' })) out.push(value as MigrationRecord);
    return out;
  }

  /**
   * Runs one migration: `change` fills a batch, which is committed with the migration's record and
   * the schema number `record.to` in one synced batch through the store's write queue. The stored
   * number must still be `record.from` (a second rackd cannot hold the database, but a migration
   * run twice would do its work twice).
   */
  step(record: Omit<MigrationRecord, 'id'>, change: (batch: MigrationBatch) => Promise<void>): Promise<MigrationRecord> {
    return this.writes.run(async () => {
      const stored = (await this.version()) ?? FIRST_SCHEMA;
      if (stored !== record.from) throw new Error(`the store's schema is v${stored}, not v${record.from}: migration ${record.name} does not apply`);
      const ops: WriteOp<Value>[] = [];
      await change(batchOn(this.target.root, ops, this.target));
      const id = (((await this.db.get(COUNTER_KEY)) as number | undefined) ?? 0) + 1;
      const full: MigrationRecord = { id, ...record };
      ops.push(
        { type: 'put', key: migrationKey(id), value: full, sublevel: this.db },
        { type: 'put', key: COUNTER_KEY, value: id, sublevel: this.db },
        { type: 'put', key: VERSION_KEY, value: record.to, sublevel: this.db },
      );
      await this.writes.batch(ops);
      return full;
    });
  }
}

function batchOn(db: KeySpace, ops: WriteOp<Value>[], target: MigrationTarget, sublevel?: Sublevel): MigrationBatch {
  const where = sublevel === undefined ? {} : { sublevel };
  return {
    get: async (key) => db.get(key),
    entries: (prefix) => db.iterator({ gte: prefix, lt: `${prefix}\xff` }),
    put: (key, value) => void ops.push({ type: 'put', key, value: value as Value, ...where }),
    del: (key) => void ops.push({ type: 'del', key, ...where }),
    part: (name) => {
      const part = target.part(name);
      return batchOn(part, ops, target, part);
    },
  };
}
