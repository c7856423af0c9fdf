import { RackError } from '../rack-error.js';
import type { Sublevel, Value } from './store.js';
import type { Writes } from './store-writer.js';
import type { PipelineMember, PipelineRecord, PipelineStage } from './records.js';

const k = {
  pipeline: (name: string) => `pipeline!${name}`,
  member: (app: string) => `member!${app}`,
};

const now = () => new Date().toISOString();

/**
 * Pipelines and which app sits at which stage of which. Membership is kept by app (an app is in
 * one pipeline at most), so "which pipeline is this app in" is one read.
 */
export class PipelineStore {
  constructor(
    readonly db: Sublevel,
    private readonly writes: Writes<Value>,
  ) {}

  async get(name: string): Promise<PipelineRecord | undefined> {
    return (await this.db.get(k.pipeline(name))) as PipelineRecord | undefined;
  }

  async require(name: string): Promise<PipelineRecord> {
    const pipeline = await this.get(name);
    if (!pipeline) throw new RackError('no_such_pipeline', `no pipeline named "${name}"`);
    return pipeline;
  }

  list(): Promise<PipelineRecord[]> {
    return this.range<PipelineRecord>('pipeline!');
  }

  async memberOf(app: string): Promise<PipelineMember | undefined> {
    return (await this.db.get(k.member(app))) as PipelineMember | undefined;
  }

  /** The pipeline's apps, in stage order, then by name. */
  async members(pipeline: string): Promise<PipelineMember[]> {
    const all = await this.range<PipelineMember>('member!');
    const order = ['development', 'staging', 'production'];
    return all.filter((m) => m.pipeline === pipeline).sort((a, b) => order.indexOf(a.stage) - order.indexOf(b.stage) || a.app.localeCompare(b.app));
  }

  create(name: string, createdBy: string): Promise<PipelineRecord> {
    return this.writes.run(async () => {
      if (await this.get(name)) throw new RackError('bad_argument', `a pipeline named "${name}" already exists`);
      const record: PipelineRecord = { name, createdAt: now(), createdBy };
      await this.writes.put(k.pipeline(name), record);
      return record;
    });
  }

  /** Adds the app, or moves it to another stage of the same pipeline; an app in another pipeline is refused. */
  add(pipeline: string, app: string, stage: PipelineStage): Promise<PipelineMember> {
    return this.writes.run(async () => {
      await this.require(pipeline);
      const current = await this.memberOf(app);
      if (current && current.pipeline !== pipeline) {
        throw new RackError('bad_argument', `${app} is already in pipeline ${current.pipeline}: pipelines:remove ${app} first`);
      }
      const member: PipelineMember = { app, pipeline, stage, addedAt: current?.addedAt ?? now() };
      await this.writes.put(k.member(app), member);
      return member;
    });
  }

  remove(app: string): Promise<PipelineMember> {
    return this.writes.run(async () => {
      const member = await this.memberOf(app);
      if (!member) throw new RackError('bad_argument', `${app} is in no pipeline`);
      await this.writes.del(k.member(app));
      return member;
    });
  }

  /** The pipeline and its memberships in one batch; the apps themselves stay. */
  destroy(name: string): Promise<PipelineMember[]> {
    return this.writes.run(async () => {
      await this.require(name);
      const members = await this.members(name);
      await this.writes.batch([{ type: 'del', key: k.pipeline(name) }, ...members.map((m) => ({ type: 'del' as const, key: k.member(m.app) }))]);
      return members;
    });
  }

  /** The op that takes a destroyed app out of its pipeline, for the store's own batch (`destroyApp`). */
  memberKey(app: string): string {
    return k.member(app);
  }

  private async range<T>(prefix: string): Promise<T[]> {
    const out: T[] = [];
    for await (const value of this.db.values({ gte: prefix, lt: `${prefix}\xff` })) out.push(value as T);
    return out;
  }
}
