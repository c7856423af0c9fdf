import type { Sublevel, Value } from './store.js';
import type { Writes } from './store-writer.js';
import type { AuditEntry } from './records.js';

const pad = (n: number) => String(n).padStart(12, '0');

/**
 * The audit log: append-only, newest `keep` entries. Each append deletes the entry `keep` places
 * back in the same batch, so the log never grows past its bound and never needs a sweep.
 */
export class AuditStore {
  private last = 0;

  constructor(
    private readonly db: Sublevel,
    private readonly keep: number,
    private readonly writes: Writes<Value>,
  ) {}

  async start(): Promise<void> {
    for await (const key of this.db.keys({ reverse: true, limit: 1 })) this.last = Number(key);
  }

  append(entry: Omit<AuditEntry, 'id'>): Promise<AuditEntry> {
    return this.writes.run(async () => {
      const id = this.last + 1;
      const full: AuditEntry = { id, ...entry };
      await this.writes.batch([
        { type: 'put', key: pad(id), value: full },
        ...(id > this.keep ? [{ type: 'del' as const, key: pad(id - this.keep) }] : []),
      ]);
      this.last = id;
      return full;
    });
  }

  /** Newest first, at most `limit`, optionally one app's. */
  async list(opts: { app?: string; limit: number }): Promise<AuditEntry[]> {
    const out: AuditEntry[] = [];
    for await (const value of this.db.values({ reverse: true })) {
      const entry = value as AuditEntry;
      if (opts.app !== undefined && entry.app !== opts.app) continue;
      out.push(entry);
      if (out.length >= opts.limit) break;
    }
    return out;
  }
}
