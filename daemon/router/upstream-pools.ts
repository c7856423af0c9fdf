import { connect, type Socket } from 'node:net';
import type { Upstream } from './upstream.js';

/** A dead container's address would otherwise hang a request for the kernel's minutes. */
const CONNECT_TIMEOUT_MS = 5_000;
/**
 * An idle connection is closed before the app's server would close it, so the router seldom
 * writes into a connection just as the app hangs it up (a request with a body cannot be sent
 * again). Apps that say their timeout (`Keep-Alive: timeout=5` from node) get it less a second;
 * others get 2 s, within gunicorn's default of 2 s and node's of 5 s.
 */
const IDLE_MS = 2_000;
const IDLE_MAX_MS = 4_000;
const IDLE_MARGIN_MS = 1_000;
/**
 * Idle connections kept per upstream; more are closed as they come back. One HTTP/2 client may have
 * 100 requests in flight on one connection, each on an app connection of its own: kept fewer than
 * the requests a busy client keeps in flight, most of them would open a new one.
 */
const MAX_IDLE = 256;
/** An app silent this long in the middle of an answer is given up on. */
const APP_SILENCE_MS = 300_000;
/**
 * Every upstream socket reads into this one buffer (net's `onread`), and what a read brought is
 * copied out at its size. Otherwise each read allocates 64 KiB and passes through the stream
 * machinery, which cost the router more per request than its own work on the answer.
 */
const READ_BUFFER = Buffer.allocUnsafe(64 * 1024);

/** Whoever holds a connection hears what happens on it; nobody holds an idle one. */
export interface UpstreamUser {
  onUpstreamConnect(): void;
  onUpstreamData(chunk: Buffer): void;
  onUpstreamError(err: Error): void;
  onUpstreamClose(): void;
}

/**
 * One connection to an upstream. Its listeners are set once, when it is made, and call whoever
 * holds it now: adding and removing listeners for every request cost more than the request.
 */
export class UpstreamConnection {
  readonly socket: Socket;
  user: UpstreamUser | undefined;
  /** The connection served an earlier request: a close before any answer may be its idle timeout. */
  reused = false;
  /** When this connection, now idle, must not be used any more. */
  idleUntil = 0;
  readonly #pool: Pool;

  /** Where a detached connection's bytes go; false from it pauses the socket. */
  #relay: ((chunk: Buffer) => boolean) | undefined;

  constructor(pool: Pool) {
    this.#pool = pool;
    const socket = dial(pool.upstream, this.#onRead);
    this.socket = socket;
    socket.on('connect', this.#onConnect);
    socket.on('error', this.#onError);
    socket.on('close', this.#onClose);
    socket.on('timeout', this.#onTimeout);
  }

  readonly #onConnect = (): void => {
    // rackd's own answers stream for as long as a build or a rollout runs, silent for minutes.
    this.socket.setTimeout('socketPath' in this.#pool.upstream ? 0 : APP_SILENCE_MS);
    this.user?.onUpstreamConnect();
  };

  readonly #onTimeout = (): void => {
    if (this.socket.connecting) return;
    this.socket.destroy(Object.assign(new Error(`no answer for ${APP_SILENCE_MS / 1000} s`), { code: 'ETIMEDOUT' }));
  };

  readonly #onRead = (n: number, buf: Buffer): boolean => {
    const chunk = Buffer.allocUnsafe(n);
    buf.copy(chunk, 0, 0, n);
    if (this.#relay !== undefined) return this.#relay(chunk);
    // An idle connection is owed nothing: bytes from it retire it.
    if (this.user === undefined) this.socket.destroy();
    else this.user.onUpstreamData(chunk);
    return true;
  };

  readonly #onError = (err: Error): void => {
    this.user?.onUpstreamError(err);
  };

  readonly #onClose = (): void => {
    this.#pool.forget(this);
    this.user?.onUpstreamClose();
  };

  /**
   * Back to the pool, or closed when it cannot serve another request. `appIdleMs`: how long the
   * app said it keeps an idle connection.
   */
  release(reusable: boolean, appIdleMs?: number): void {
    this.user = undefined;
    if (!reusable) {
      this.socket.destroy();
      return;
    }
    const idleMs = appIdleMs === undefined ? IDLE_MS : Math.min(IDLE_MAX_MS, appIdleMs - IDLE_MARGIN_MS);
    this.idleUntil = Date.now() + idleMs;
    if (idleMs > 0) this.#pool.give(this);
    else this.socket.destroy();
  }

  /**
   * The connection leaves rack's hands (a websocket tunnel): the listeners go, the socket stays,
   * and what it reads goes to `relay` (which pauses the socket by answering false).
   */
  detach(relay: (chunk: Buffer) => boolean): Socket {
    this.user = undefined;
    this.#relay = relay;
    this.#pool.forget(this);
    this.socket.off('connect', this.#onConnect);
    this.socket.off('error', this.#onError);
    this.socket.off('close', this.#onClose);
    this.socket.off('timeout', this.#onTimeout);
    this.socket.setTimeout(0);
    return this.socket;
  }
}

/** One upstream's idle keep-alive connections. */
class Pool {
  readonly upstream: Upstream;
  readonly #idle: UpstreamConnection[] = [];
  #sweeper: NodeJS.Timeout | undefined;
  closed = false;

  constructor(upstream: Upstream) {
    this.upstream = upstream;
  }

  take(user: UpstreamUser): UpstreamConnection {
    for (;;) {
      const conn = this.#idle.pop();
      if (conn === undefined) break;
      // Timers run late on a busy machine: the deadline is checked here, not only by the sweeper.
      if (conn.socket.destroyed || !conn.socket.writable || conn.idleUntil <= Date.now()) {
        conn.socket.destroy();
        continue;
      }
      conn.user = user;
      conn.reused = true;
      return conn;
    }
    const conn = new UpstreamConnection(this);
    conn.user = user;
    return conn;
  }

  give(conn: UpstreamConnection): void {
    if (this.closed || this.#idle.length >= MAX_IDLE || conn.socket.destroyed || !conn.socket.writable) {
      conn.socket.destroy();
      return;
    }
    this.#idle.push(conn);
    // One timer per pool rather than one per connection: it closes what sat idle too long.
    this.#sweeper ??= setInterval(() => this.#sweep(), IDLE_MS / 4).unref();
  }

  forget(conn: UpstreamConnection): void {
    const at = this.#idle.indexOf(conn);
    if (at !== -1) this.#idle.splice(at, 1);
  }

  close(): void {
    this.closed = true;
    this.#stopSweeper();
    for (const conn of this.#idle.splice(0)) conn.socket.destroy();
  }

  #sweep(): void {
    const now = Date.now();
    for (const conn of this.#idle.filter((c) => c.idleUntil <= now)) {
      this.forget(conn);
      conn.socket.destroy();
    }
    if (this.#idle.length === 0) this.#stopSweeper();
  }

  #stopSweeper(): void {
    if (this.#sweeper !== undefined) clearInterval(this.#sweeper);
    this.#sweeper = undefined;
  }
}

function dial(u: Upstream, onRead: (n: number, buf: Buffer) => boolean): Socket {
  const onread = { buffer: READ_BUFFER, callback: onRead };
  const socket = 'socketPath' in u ? connect({ path: u.socketPath, onread }) : connect({ host: u.host, port: u.port, noDelay: true, onread });
  socket.setTimeout(CONNECT_TIMEOUT_MS, () => {
    if (socket.connecting) socket.destroy(Object.assign(new Error(`connect timeout after ${CONNECT_TIMEOUT_MS} ms`), { code: 'ETIMEDOUT' }));
  });
  return socket;
}

/**
 * Keep-alive connections per upstream, made on demand. An upstream that leaves the route table
 * has its idle connections closed; those still busy close when their request is done, which is
 * what draining an old release needs.
 */
export class UpstreamPools {
  readonly #pools = new Map<string, Pool>();

  /**
   * A connection to the upstream (`key`: its upstreamKey) for `user`: an idle one when there is
   * one, else a new one (maybe still connecting).
   */
  lease(u: Upstream, key: string, user: UpstreamUser): UpstreamConnection {
    let pool = this.#pools.get(key);
    if (pool === undefined) {
      pool = new Pool(u);
      this.#pools.set(key, pool);
    }
    return pool.take(user);
  }

  retain(live: ReadonlySet<string>): void {
    for (const [key, pool] of this.#pools) {
      if (live.has(key)) continue;
      this.#pools.delete(key);
      pool.close();
    }
  }

  destroyAll(): void {
    for (const pool of this.#pools.values()) pool.close();
    this.#pools.clear();
  }
}
