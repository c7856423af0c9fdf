import { randomUUID } from 'node:crypto';
import type { Logger } from '../log.js';
import type { LogHub } from '../logs/log-hub.js';
import { RackError } from '../rack-error.js';
import type { DrainRecord } from '../store/records.js';
import type { Store } from '../store/store.js';
import { DRAIN_LIMITS, Drain, type DrainLimits, type DrainStats, type DrainTransport } from './drain.js';
import { parseDestination, resolveDestination, type Destination } from './drain-destination.js';
import { HttpsTransport } from './https-transport.js';
import { SyslogTransport } from './syslog-transport.js';

/** Per app: enough for a log service, an archive and a test receiver, few enough to bound the work. */
const MAX_PER_APP = 5;

export interface DrainView extends DrainStats {
  id: string;
  url: string;
  token: string;
  createdAt: string;
}

interface Running {
  record: DrainRecord;
  drain: Drain;
  stop: () => void;
}

/**
 * The apps' log drains: each one follows its app's lines in the LogHub and delivers them on its
 * own (drain.ts). Started after the store, stopped before it.
 */
export class Drains {
  readonly #running = new Map<string, Running>();

  constructor(
    private readonly store: Store,
    private readonly logs: LogHub,
    private readonly allow: readonly string[],
    private readonly log: Logger,
    private readonly limits: DrainLimits = DRAIN_LIMITS,
  ) {}

  async start(): Promise<void> {
    for (const record of await this.store.drains.list()) {
      try {
        this.#run(record);
      } catch (err) {
        this.log.warn({ app: record.app, drain: record.id, err: String(err) }, 'drain: not started');
      }
    }
  }

  async stop(): Promise<void> {
    const all = [...this.#running.values()];
    this.#running.clear();
    for (const r of all) r.stop();
    await Promise.all(all.map((r) => r.drain.stop()));
  }

  /** Checks the URL (scheme, then the tenant rules on where it resolves), records the drain and starts it. */
  async add(app: string, url: string, createdBy: string): Promise<DrainRecord> {
    const dest = parseDestination(url);
    await resolveDestination(dest, this.allow);
    const record: DrainRecord = { id: randomUUID(), app, url, token: `d.${randomUUID()}`, createdAt: new Date().toISOString(), createdBy };
    await this.store.drains.add(record, (existing) => {
      if (existing.some((d) => d.url === url)) throw new RackError('bad_argument', `${app} already drains to that URL`);
      if (existing.length >= MAX_PER_APP) throw new RackError('bad_argument', `${app} has ${MAX_PER_APP} drains, the most an app may have; remove one first`);
    });
    this.#run(record);
    return record;
  }

  /** Removes the drain named by its ID, token or URL. */
  async remove(app: string, which: string): Promise<DrainRecord> {
    const record = (await this.store.drains.list(app)).find((d) => d.id === which || d.token === which || d.url === which);
    if (!record) throw new RackError('no_such_drain', `${app} has no drain ${JSON.stringify(which.slice(0, 80))} (drains lists them)`);
    await this.store.drains.remove(record);
    await this.#end(record.id);
    return record;
  }

  async list(app: string): Promise<DrainView[]> {
    return (await this.store.drains.list(app)).map((r) => ({
      id: r.id,
      url: r.url,
      token: r.token,
      createdAt: r.createdAt,
      ...(this.#running.get(r.id)?.drain.stats ?? { sent: 0, dropped: 0 }),
    }));
  }

  /** An app destroyed: its drains are gone from the store (in the destroying batch); stop them. */
  async forgetApp(app: string): Promise<void> {
    await Promise.all([...this.#running.values()].filter((r) => r.record.app === app).map((r) => this.#end(r.record.id)));
  }

  /** apps:rename: the app's drains (moved in the store) follow its lines under the new name. */
  async renameApp(from: string, to: string): Promise<void> {
    await this.forgetApp(from);
    for (const record of await this.store.drains.list(to)) if (!this.#running.has(record.id)) this.#run(record);
  }

  async #end(id: string): Promise<void> {
    const running = this.#running.get(id);
    if (!running) return;
    this.#running.delete(id);
    running.stop();
    await running.drain.stop();
  }

  #run(record: DrainRecord): void {
    const dest = parseDestination(record.url);
    const drain = new Drain(record.id, this.#transport(dest, record.token), this.log.child({ app: record.app }), this.limits);
    drain.start();
    // A follower counts as wanting the router's per-request lines: the router sends them while it runs.
    const unfollow = this.logs.follow(record.app, (line) => drain.push(line));
    this.#running.set(record.id, { record, drain, stop: () => unfollow() });
  }

  #transport(dest: Destination, token: string): DrainTransport {
    return dest.scheme === 'https' || dest.scheme === 'http' ? new HttpsTransport(dest, token, this.allow) : new SyslogTransport(dest, token, this.allow);
  }
}
