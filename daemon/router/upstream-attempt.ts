import type { Socket } from 'node:net';
import type { Logger } from '../log.js';
import type { InFlight } from './in-flight.js';
import { mayRetry, type AttemptState } from './retry-policy.js';
import type { Route } from './route-table.js';
import { upstreamKey, type Upstream } from './upstream.js';
import type { UpstreamConnection, UpstreamPools, UpstreamUser } from './upstream-pools.js';

/** What an exchange needs of the router to reach an app. */
export interface ExchangeDeps {
  pools: UpstreamPools;
  inFlight: InFlight;
  logger: Logger;
  /** The app's route as it is now, so a retry follows a swap that happened meanwhile. */
  currentRoute: (app: string) => Route | undefined;
}

const MAX_ATTEMPTS = 2;

/**
 * The app side of one relayed request, the same for an HTTP/1.1 exchange and an h2 stream: the
 * connection it holds, the in-flight count that follows the upstream serving it (released once),
 * and whether a failed attempt may go to the route's next upstream (two attempts in all).
 */
export class UpstreamAttempt {
  readonly #deps: ExchangeDeps;
  readonly #app: string;
  readonly #user: UpstreamUser;
  #attempts = 0;
  #conn: UpstreamConnection | undefined;
  #connected = false;
  #inFlightKey: string | undefined;

  constructor(deps: ExchangeDeps, app: string, user: UpstreamUser) {
    this.#deps = deps;
    this.#app = app;
    this.#user = user;
  }

  /** The connection held now, if any. */
  get conn(): UpstreamConnection | undefined {
    return this.#conn;
  }

  /** The held connection is made (a pooled one from the start). */
  get connected(): boolean {
    return this.#connected;
  }

  /** The upstream serving the request, for log lines. */
  get key(): string | undefined {
    return this.#inFlightKey;
  }

  /** A connection to `upstream` for this request; the in-flight count moves to it. */
  lease(upstream: Upstream): UpstreamConnection {
    this.#attempts += 1;
    const key = upstreamKey(upstream);
    if (this.#inFlightKey !== undefined) this.#deps.inFlight.decrement(this.#inFlightKey);
    this.#deps.inFlight.increment(key);
    this.#inFlightKey = key;
    const conn = this.#deps.pools.lease(upstream, key, this.#user);
    this.#conn = conn;
    this.#connected = !conn.socket.connecting;
    return conn;
  }

  onConnect(): void {
    this.#connected = true;
  }

  /** The connection cannot serve another request: it is closed. */
  drop(): void {
    this.#conn?.release(false);
    this.#conn = undefined;
  }

  /**
   * After the held connection failed: it is closed, and the answer is the upstream to try next, or
   * undefined when the request may not go again (what was sent, or a second failure) or the route
   * has no other. Either way a line says so.
   */
  next(err: Error, state: Omit<AttemptState, 'connected' | 'reused'>): Upstream | undefined {
    const conn = this.#conn as UpstreamConnection;
    this.#conn = undefined;
    conn.release(false);
    const { logger } = this.#deps;
    const code = (err as NodeJS.ErrnoException).code;
    if (this.#attempts < MAX_ATTEMPTS && mayRetry({ ...state, connected: this.#connected, reused: conn.reused })) {
      const next = this.#deps.currentRoute(this.#app)?.next();
      if (next !== undefined) {
        logger.info({ app: this.#app, upstream: this.#inFlightKey, next: upstreamKey(next), code }, 'router: retrying on next upstream');
        return next;
      }
    }
    logger.warn({ app: this.#app, upstream: this.#inFlightKey, code, err: err.message }, 'router: upstream request failed');
    return undefined;
  }

  /** The request is over: the connection goes back to its pool (or is closed), the in-flight slot is freed. */
  end(reusable: boolean, appIdleMs: number | undefined): void {
    const conn = this.#conn;
    this.#conn = undefined;
    if (conn !== undefined) {
      conn.socket.resume();
      conn.release(reusable, appIdleMs);
    }
    if (this.#inFlightKey !== undefined) this.#deps.inFlight.decrement(this.#inFlightKey);
    this.#inFlightKey = undefined;
  }

  /**
   * The connection leaves the pool for a tunnel (see UpstreamConnection.detach); `closed` frees the
   * in-flight slot, which the tunnel holds until either side closes.
   */
  detach(relay: (chunk: Buffer) => boolean): { socket: Socket; closed: () => void } {
    const socket = (this.#conn as UpstreamConnection).detach(relay);
    this.#conn = undefined;
    const key = this.#inFlightKey;
    this.#inFlightKey = undefined;
    let freed = false;
    return {
      socket,
      closed: () => {
        if (freed || key === undefined) return;
        freed = true;
        this.#deps.inFlight.decrement(key);
      },
    };
  }
}
