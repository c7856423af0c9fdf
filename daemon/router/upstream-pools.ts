import { Pool } from 'undici';
import type { Logger } from '../log.js';
import { upstreamKey, upstreamOrigin, type Upstream } from './upstream.js';

/** A dead container's address would otherwise hang a request for undici's default 10 s. */
const CONNECT_TIMEOUT_MS = 5_000;

/** One keep-alive undici Pool per upstream, made on first use and closed once no app routes there. */
export class UpstreamPools {
  readonly #pools = new Map<string, Pool>();
  readonly #logger: Logger;

  constructor(logger: Logger) {
    this.#logger = logger;
  }

  get(u: Upstream): Pool {
    const key = upstreamKey(u);
    let pool = this.#pools.get(key);
    if (pool === undefined) {
      pool =
        'socketPath' in u
          ? // rackd's own answers stream for as long as a build or a rollout runs, silent for minutes at a time.
            new Pool(upstreamOrigin(u), { connect: { socketPath: u.socketPath, timeout: CONNECT_TIMEOUT_MS }, headersTimeout: 0, bodyTimeout: 0 })
          : new Pool(upstreamOrigin(u), { connect: { timeout: CONNECT_TIMEOUT_MS } });
      // Pools emit connection errors as events too; the request handler already reports them.
      pool.on('connectionError', () => {});
      this.#pools.set(key, pool);
    }
    return pool;
  }

  /**
   * Close the pools of upstreams no longer routed to. close() lets their in-flight requests
   * finish, which is what draining an old release needs.
   */
  retain(live: ReadonlySet<string>): void {
    for (const [key, pool] of this.#pools) {
      if (live.has(key)) continue;
      this.#pools.delete(key);
      pool.close().catch((err: unknown) => this.#logger.debug({ err, upstream: key }, 'router: pool close failed'));
    }
  }

  async destroyAll(): Promise<void> {
    const pools = [...this.#pools.values()];
    this.#pools.clear();
    await Promise.all(pools.map((p) => p.destroy().catch(() => {})));
  }
}
