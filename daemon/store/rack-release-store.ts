import { RackError } from '../rack-error.js';
import type { RackReleasePhase, RackReleaseRecord, RackReleaseStatus } from './records.js';
import type { Sublevel, Value } from './store.js';
import type { Writes } from './store-writer.js';

const pad = (n: number) => String(n).padStart(10, '0');
const releaseKey = (id: number) => `r!${pad(id)}`;
const COUNTER_KEY = 'counter';

/**
 * The ledger of rack's own releases (r1, r2, ...), in its own key space: each new entry and its
 * counter in one batch through the store's write queue, as apps' releases are. An entry is opened
 * once, gets the times of its steps before its rackd lets go of the store, and is finished once
 * (pending → succeeded or failed, by whichever rackd runs then); nothing else rewrites it.
 */
export class RackReleaseStore {
  constructor(
    private readonly db: Sublevel,
    private readonly writes: Writes<Value>,
  ) {}

  create(fields: Omit<RackReleaseRecord, 'id'>): Promise<RackReleaseRecord> {
    return this.writes.run(async () => {
      const id = (((await this.db.get(COUNTER_KEY)) as number | undefined) ?? 0) + 1;
      const release: RackReleaseRecord = { id, ...fields };
      await this.writes.batch([
        { type: 'put', key: releaseKey(id), value: release },
        { type: 'put', key: COUNTER_KEY, value: id },
      ]);
      return release;
    });
  }

  /** The steps a pending entry went through so far, kept before the switch that ends it. */
  notePhases(id: number, phases: RackReleasePhase[]): Promise<RackReleaseRecord> {
    return this.writes.run(async () => {
      const release = await this.get(id);
      if (!release) throw new RackError('bad_argument', `no rack release r${id}`);
      if (release.status !== 'pending') throw new RackError('bad_argument', `rack release r${id} is already ${release.status}`);
      const noted: RackReleaseRecord = { ...release, phases };
      await this.writes.put(releaseKey(id), noted);
      return noted;
    });
  }

  /** From pending to its outcome, once; `phases` are added to those noted; `schema`, the one it runs on. */
  finish(id: number, status: Exclude<RackReleaseStatus, 'pending'>, outcome: { failedStep?: string; error?: string; phases?: RackReleasePhase[]; schema?: number } = {}): Promise<RackReleaseRecord> {
    return this.writes.run(async () => {
      const release = await this.get(id);
      if (!release) throw new RackError('bad_argument', `no rack release r${id}`);
      if (release.status !== 'pending') throw new RackError('bad_argument', `rack release r${id} is already ${release.status}`);
      const finishedAt = new Date();
      const done: RackReleaseRecord = {
        ...release,
        status,
        finishedAt: finishedAt.toISOString(),
        durationMs: finishedAt.getTime() - Date.parse(release.createdAt),
        failedStep: outcome.failedStep ?? null,
        error: outcome.error ?? null,
        ...(outcome.phases ? { phases: [...(release.phases ?? []), ...outcome.phases] } : {}),
        ...(outcome.schema === undefined ? {} : { schema: outcome.schema }),
      };
      await this.writes.put(releaseKey(id), done);
      return done;
    });
  }

  async get(id: number): Promise<RackReleaseRecord | undefined> {
    return (await this.db.get(releaseKey(id))) as RackReleaseRecord | undefined;
  }

  /** The newest entry (that passes `match`), read newest first without listing the ledger. */
  async latest(match: (r: RackReleaseRecord) => boolean = () => true): Promise<RackReleaseRecord | undefined> {
    for await (const value of this.db.values({ gte: 'r!', lt: 'r!\xff', reverse: true })) {
      if (match(value as RackReleaseRecord)) return value as RackReleaseRecord;
    }
    return undefined;
  }

  /** Newest first. */
  async list(limit = 1000): Promise<RackReleaseRecord[]> {
    const out: RackReleaseRecord[] = [];
    for await (const value of this.db.values({ gte: 'r!', lt: 'r!\xff', reverse: true, limit })) out.push(value as RackReleaseRecord);
    return out;
  }
}
