import type { Sublevel, Value } from './store.js';
import type { Writes } from './store-writer.js';
import type { CertRecord } from './records.js';

/** What rack knows of each host's certificate, by host name. */
export class CertStore {
  constructor(
    readonly db: Sublevel,
    private readonly writes: Writes<Value>,
  ) {}

  async get(host: string): Promise<CertRecord | undefined> {
    return (await this.db.get(host)) as CertRecord | undefined;
  }

  async list(): Promise<CertRecord[]> {
    const out: CertRecord[] = [];
    for await (const value of this.db.values()) out.push(value as CertRecord);
    return out;
  }

  put(record: CertRecord): Promise<void> {
    return this.writes.run(() => this.writes.put(record.host, record));
  }

  /** Changes a record in the store's queue, so two updates of one host never interleave. */
  update(host: string, change: (current: CertRecord | undefined) => CertRecord | undefined): Promise<CertRecord | undefined> {
    return this.writes.run(async () => {
      const next = change(await this.get(host));
      if (next === undefined) await this.writes.del(host);
      else await this.writes.put(host, next);
      return next;
    });
  }

  remove(host: string): Promise<void> {
    return this.writes.run(() => this.writes.del(host));
  }
}
