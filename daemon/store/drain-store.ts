import type { Sublevel, Value } from './store.js';
import type { Writes, WriteOp } from './store-writer.js';
import type { DrainRecord } from './records.js';

/** Each app's log drains, keyed `APP!ID` so one app's are one range. */
export class DrainStore {
  constructor(
    readonly db: Sublevel,
    private readonly writes: Writes<Value>,
  ) {}

  async list(app?: string): Promise<DrainRecord[]> {
    const range = app === undefined ? {} : { gte: `${app}!`, lt: `${app}!\xff` };
    const out: DrainRecord[] = [];
    for await (const value of this.db.values(range)) out.push(value as DrainRecord);
    return out;
  }

  /** Adds a drain unless the app has `max` already or one to the same URL (checked in the write turn). */
  add(record: DrainRecord, check: (existing: DrainRecord[]) => void): Promise<void> {
    return this.writes.run(async () => {
      check(await this.list(record.app));
      await this.writes.put(`${record.app}!${record.id}`, record);
    });
  }

  remove(record: DrainRecord): Promise<void> {
    return this.writes.run(() => this.writes.del(`${record.app}!${record.id}`));
  }

  /** The deletes of an app's drains, for the batch that destroys the app. */
  async removalOps(app: string): Promise<WriteOp<Value>[]> {
    return (await this.list(app)).map((d) => ({ type: 'del', sublevel: this.db, key: `${app}!${d.id}` }));
  }
}
