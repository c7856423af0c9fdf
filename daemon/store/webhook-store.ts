import type { Sublevel, Value } from './store.js';
import type { Writes, WriteOp } from './store-writer.js';
import type { DeliveryRecord, WebhookRecord } from './records.js';

const pad = (n: number) => String(n).padStart(12, '0');

/**
 * App webhooks (keyed `APP!ID`) and the newest `keep` deliveries of all apps (keyed by sequence).
 * A delivery is written when it starts and after each attempt, so `webhooks:deliveries` shows one
 * that is still being retried; the one `keep` places back goes in the batch that adds a new one.
 */
export class WebhookStore {
  #last = 0;

  constructor(
    readonly hooks: Sublevel,
    private readonly hookWrites: Writes<Value>,
    readonly deliveries: Sublevel,
    private readonly deliveryWrites: Writes<Value>,
    private readonly keep = 1000,
  ) {}

  async start(): Promise<void> {
    for await (const key of this.deliveries.keys({ reverse: true, limit: 1 })) this.#last = Number(key);
  }

  async list(app?: string): Promise<WebhookRecord[]> {
    const range = app === undefined ? {} : { gte: `${app}!`, lt: `${app}!\xff` };
    const out: WebhookRecord[] = [];
    for await (const value of this.hooks.values(range)) out.push(value as WebhookRecord);
    return out;
  }

  add(record: WebhookRecord, check: (existing: WebhookRecord[]) => void): Promise<void> {
    return this.hookWrites.run(async () => {
      check(await this.list(record.app));
      await this.hookWrites.put(`${record.app}!${record.id}`, record);
    });
  }

  remove(record: WebhookRecord): Promise<void> {
    return this.hookWrites.run(() => this.hookWrites.del(`${record.app}!${record.id}`));
  }

  /** Records a new delivery (its `seq` assigned here), dropping the oldest past the bound. */
  startDelivery(fields: Omit<DeliveryRecord, 'seq'>): Promise<DeliveryRecord> {
    return this.deliveryWrites.run(async () => {
      const seq = this.#last + 1;
      const record: DeliveryRecord = { seq, ...fields };
      await this.deliveryWrites.batch([
        { type: 'put', key: pad(seq), value: record },
        ...(seq > this.keep ? [{ type: 'del' as const, key: pad(seq - this.keep) }] : []),
      ]);
      this.#last = seq;
      return record;
    });
  }

  /** A delivery's progress; not synced (nobody is told of it, and the next synced write carries it). */
  updateDelivery(record: DeliveryRecord): Promise<void> {
    return this.deliveryWrites.run(async () => {
      // Gone past the bound meanwhile: nothing to update.
      if (record.seq <= this.#last - this.keep) return;
      await this.deliveryWrites.put(pad(record.seq), record, { sync: false });
    });
  }

  /** Newest first, at most `limit`, of one app. */
  async listDeliveries(app: string, limit: number): Promise<DeliveryRecord[]> {
    const out: DeliveryRecord[] = [];
    for await (const value of this.deliveries.values({ reverse: true })) {
      const d = value as DeliveryRecord;
      if (d.app !== app) continue;
      out.push(d);
      if (out.length >= limit) break;
    }
    return out;
  }

  /** The deletes of an app's webhooks and deliveries, for the batch that destroys the app. */
  async removalOps(app: string): Promise<WriteOp<Value>[]> {
    const ops: WriteOp<Value>[] = (await this.list(app)).map((h) => ({ type: 'del', sublevel: this.hooks, key: `${app}!${h.id}` }));
    for await (const [key, value] of this.deliveries.iterator()) {
      if ((value as DeliveryRecord).app === app) ops.push({ type: 'del', sublevel: this.deliveries, key });
    }
    return ops;
  }
}
