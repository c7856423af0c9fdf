import type { Sublevel, Value } from './store.js';
import type { Writes } from './store-writer.js';
import type { DeliveryOutcome, RepoLink } from './records.js';

/** How many delivery IDs are remembered per app: hosts redeliver within hours, not thousands of pushes later. */
export const DELIVERIES_KEPT = 200;

const pad = (n: number) => String(n).padStart(12, '0');
const k = {
  link: (app: string) => `link!${app}`,
  delivery: (app: string, id: string) => `delivery!${app}!${id}`,
  /** The order deliveries came in, to forget the oldest: `seen!APP!NNN` → the delivery ID. */
  seen: (app: string, n: number) => `seen!${app}!${pad(n)}`,
  seens: (app: string) => `seen!${app}!`,
  counter: (app: string) => `counter!${app}`,
};

/**
 * Connected repositories, one per app, and the delivery IDs each app's webhook has already taken
 * (the newest DELIVERIES_KEPT): kept in the store so that a redelivery after a restart is still
 * known as one.
 */
export class RepoStore {
  constructor(
    readonly db: Sublevel,
    private readonly writes: Writes<Value>,
  ) {}

  async get(app: string): Promise<RepoLink | undefined> {
    return (await this.db.get(k.link(app))) as RepoLink | undefined;
  }

  /** Connects (or reconnects, replacing the link and forgetting the deliveries of the old one). */
  put(link: RepoLink): Promise<void> {
    return this.writes.run(async () => {
      await this.writes.batch([...(await this.forgetOps(link.app)), { type: 'put', key: k.link(link.app), value: link }]);
    });
  }

  /** Removes the link and what its webhook delivered; false when there was none. */
  remove(app: string): Promise<boolean> {
    return this.writes.run(async () => {
      if (!(await this.get(app))) return false;
      await this.writes.batch([...(await this.forgetOps(app)), { type: 'del', key: k.link(app) }]);
      return true;
    });
  }

  /**
   * Notes a delivery ID; false when it was noted before (a redelivery). The check and the note are
   * one turn of the store's queue, so two copies of one delivery arriving together cannot both pass.
   */
  noteDelivery(app: string, id: string): Promise<boolean> {
    return this.writes.run(async () => {
      if ((await this.db.get(k.delivery(app, id))) !== undefined) return false;
      const n = (((await this.db.get(k.counter(app))) as number | undefined) ?? 0) + 1;
      const ops: { type: 'put' | 'del'; key: string; value?: Value }[] = [
        { type: 'put', key: k.counter(app), value: n },
        { type: 'put', key: k.seen(app, n), value: id },
        { type: 'put', key: k.delivery(app, id), value: n },
      ];
      if (n > DELIVERIES_KEPT) {
        const old = (await this.db.get(k.seen(app, n - DELIVERIES_KEPT))) as string | undefined;
        ops.push({ type: 'del', key: k.seen(app, n - DELIVERIES_KEPT) });
        // Only if it was noted then: one forgotten and noted again since is newer than that.
        if (old !== undefined && (await this.db.get(k.delivery(app, old))) === n - DELIVERIES_KEPT) ops.push({ type: 'del', key: k.delivery(app, old) });
      }
      await this.writes.batch(ops.map((op) => (op.type === 'put' ? { type: 'put', key: op.key, value: op.value! } : { type: 'del', key: op.key })));
      return true;
    });
  }

  /**
   * Forgets one delivery ID, so that the host's "redeliver" retries a delivery that failed. Its
   * `seen!` entry stays, and removes nothing when its turn to be forgotten comes (see noteDelivery).
   */
  forgetDelivery(app: string, id: string): Promise<void> {
    return this.writes.run(() => this.writes.del(k.delivery(app, id)));
  }

  /** Turns review apps on or off; false when the app has no link. */
  setReviewApps(app: string, on: boolean): Promise<boolean> {
    return this.writes.run(async () => {
      const link = await this.get(app);
      if (!link) return false;
      await this.writes.put(k.link(app), { ...link, reviewApps: on });
      return true;
    });
  }

  /** Records what became of a delivery on the link, if the app still has one. */
  setOutcome(app: string, outcome: DeliveryOutcome): Promise<void> {
    return this.writes.run(async () => {
      const link = await this.get(app);
      if (link) await this.writes.put(k.link(app), { ...link, lastDelivery: outcome });
    });
  }

  /** The ops that forget an app's link and deliveries, for a batch of the store's own (apps:destroy). */
  async forgetOps(app: string): Promise<{ type: 'del'; key: string }[]> {
    const ops: { type: 'del'; key: string }[] = [{ type: 'del', key: k.link(app) }, { type: 'del', key: k.counter(app) }];
    for (const prefix of [k.seens(app), `delivery!${app}!`]) {
      for await (const key of this.db.keys({ gte: prefix, lt: `${prefix}\xff` })) ops.push({ type: 'del', key });
    }
    return ops;
  }
}
