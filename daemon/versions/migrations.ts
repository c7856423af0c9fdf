import type { KeyRecord } from '../store/records.js';
import type { MigrationBatch } from '../store/schema-store.js';

/**
 * One step of the store's schema, from `from` to `from + 1`. `up` reads the store as it was and
 * puts what changes into the batch; the runner commits the batch, the step's record and the new
 * schema number in one atomic write. `down` is what makes the step reversible: with it, a store
 * this rack moved forward can be taken back for an older rack (`rackd migrate --to N`).
 */
export interface Migration {
  /** Short and stable: the records name the step by it. */
  name: string;
  from: number;
  up(batch: MigrationBatch): Promise<void>;
  down?(batch: MigrationBatch): Promise<void>;
}

/**
 * rack's migrations, in order: the nth takes schema n to n + 1. Append only; a released migration
 * is never edited (stores out there already ran it).
 */
export const MIGRATIONS: Migration[] = [
  {
    // Keys from before keys were scoped to apps have no `apps`, and every reader had to remember
    // that absent means none. Written out once, the record says it.
    name: 'keys-list-their-apps',
    from: 1,
    async up(batch) {
      for await (const [key, value] of batch.entries('key!')) {
        const record = value as Partial<KeyRecord>;
        if (record.apps === undefined) batch.put(key, { ...record, apps: [] });
      }
    },
    // An empty list reads as the absent one did: nothing to take back.
    async down() {},
  },
];
