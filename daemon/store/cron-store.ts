import type { Sublevel, Value } from './store.js';
import type { Writes, WriteOp } from './store-writer.js';
import type { CronJobState, CronRunRecord } from './records.js';

/**
 * What rack keeps of each app's scheduled jobs, keyed `APP!ID`: suspensions and each job's last
 * run. The jobs themselves are part of the release; this outlives releases, so a job that keeps
 * its ID keeps its suspension.
 */
export class CronStore {
  constructor(
    readonly db: Sublevel,
    private readonly writes: Writes<Value>,
  ) {}

  async list(app?: string): Promise<CronJobState[]> {
    const range = app === undefined ? {} : { gte: `${app}!`, lt: `${app}!\xff` };
    const out: CronJobState[] = [];
    for await (const value of this.db.values(range)) out.push(value as CronJobState);
    return out;
  }

  async get(app: string, id: string): Promise<CronJobState | undefined> {
    return (await this.db.get(`${app}!${id}`)) as CronJobState | undefined;
  }

  /** Read and written in one turn of the store's queue, so a run's end never undoes a suspension. */
  private update(app: string, id: string, change: (state: CronJobState) => CronJobState): Promise<void> {
    return this.writes.run(async () => {
      const state = (await this.get(app, id)) ?? { app, id };
      await this.writes.put(`${app}!${id}`, change(state));
    });
  }

  setSuspended(app: string, id: string, suspended: boolean): Promise<void> {
    return this.update(app, id, (s) => {
      const { suspended: _was, ...rest } = s;
      return suspended ? { ...rest, suspended: true } : rest;
    });
  }

  setLastRun(app: string, id: string, run: CronRunRecord): Promise<void> {
    return this.update(app, id, (s) => ({ ...s, lastRun: run }));
  }

  /** The deletes of an app's job states, for the batch that destroys the app. */
  async removalOps(app: string): Promise<WriteOp<Value>[]> {
    return (await this.list(app)).map((s) => ({ type: 'del', sublevel: this.db, key: `${app}!${s.id}` }));
  }
}
