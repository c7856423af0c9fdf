import type { Sublevel, Value } from './store.js';
import type { Writes } from './store-writer.js';
import type { AddonRecord, BackupRecord } from './records.js';

// Backups sort by add-on then zero-padded number, so a range read lists one add-on's in order.
const pad = (n: number) => String(n).padStart(10, '0');
const k = {
  addon: (name: string) => `addon!${name}`,
  backup: (addon: string, n: number) => `backup!${addon}!${pad(n)}`,
  backups: (addon: string) => `backup!${addon}!`,
  counter: (addon: string) => `counter!${addon}`,
};

/** Add-ons and their backups, by name. Numbers of backups are never reused, even after deletion. */
export class AddonStore {
  constructor(
    readonly db: Sublevel,
    private readonly writes: Writes<Value>,
  ) {}

  async get(name: string): Promise<AddonRecord | undefined> {
    return (await this.db.get(k.addon(name))) as AddonRecord | undefined;
  }

  async list(): Promise<AddonRecord[]> {
    return this.range<AddonRecord>('addon!');
  }

  /** Adds a new add-on; false when the name is taken (checked in the store's queue, so two creations cannot both win). */
  create(record: AddonRecord): Promise<boolean> {
    return this.writes.run(async () => {
      if (await this.get(record.name)) return false;
      await this.writes.put(k.addon(record.name), record);
      return true;
    });
  }

  update(name: string, change: (current: AddonRecord) => AddonRecord): Promise<void> {
    return this.writes.run(async () => {
      const current = await this.get(name);
      if (current) await this.writes.put(k.addon(name), change(current));
    });
  }

  /** The add-on and its backup records go in one batch; the backup files are the caller's. */
  remove(name: string): Promise<void> {
    return this.writes.run(async () => {
      const ops: { type: 'del'; key: string }[] = [{ type: 'del', key: k.addon(name) }];
      for await (const key of this.db.keys({ gte: k.backups(name), lt: `${k.backups(name)}\xff` })) ops.push({ type: 'del', key });
      await this.writes.batch(ops);
    });
  }

  /** The next backup number of an add-on, taken now: a crash before the record is written skips a number. */
  nextBackupNumber(addon: string): Promise<number> {
    return this.writes.run(async () => {
      const n = (((await this.db.get(k.counter(addon))) as number | undefined) ?? 0) + 1;
      await this.writes.put(k.counter(addon), n);
      return n;
    });
  }

  putBackup(record: BackupRecord): Promise<void> {
    return this.writes.run(() => this.writes.put(k.backup(record.addon, Number(record.id.slice(1))), record));
  }

  removeBackup(record: BackupRecord): Promise<void> {
    return this.writes.run(() => this.writes.del(k.backup(record.addon, Number(record.id.slice(1)))));
  }

  /** Newest first. */
  listBackups(addon: string): Promise<BackupRecord[]> {
    return this.range<BackupRecord>(k.backups(addon), true);
  }

  async getBackup(addon: string, id: string): Promise<BackupRecord | undefined> {
    const m = /^b([1-9][0-9]{0,8})$/.exec(id);
    if (!m) return undefined;
    return (await this.db.get(k.backup(addon, Number(m[1])))) as BackupRecord | undefined;
  }

  private async range<T>(prefix: string, reverse = false): Promise<T[]> {
    const out: T[] = [];
    for await (const value of this.db.values({ gte: prefix, lt: `${prefix}\xff`, reverse })) out.push(value as T);
    return out;
  }
}
