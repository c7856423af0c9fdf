import { chmod, rename, rm, stat } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { basename, dirname, join } from 'node:path';
import type { Logger } from '../log.js';
import { readLines } from './line-reader.js';
import { HandoffError } from './router-handoff.js';
import type { AccessEntry, Router } from './router.js';
import type { RouterWorkers } from './router-workers.js';
import { SaveError, type TableChange } from './table-changes.js';
import {
  checkAccessApps,
  checkAppRoute,
  checkChallenge,
  checkHandoff,
  checkInFlight,
  checkToken,
  checkRemoveApp,
  checkWaitIdle,
  encode,
  MAX_LINE_BYTES,
  parseMessage,
  ProtocolError,
  type EventMessage,
  type RequestMessage,
  type RouterIdentity,
} from './router-protocol.js';

/** A waitIdle longer than a deploy's drain would ever ask for is a mistake, not a wish to wait a day. */
const MAX_WAIT_IDLE_MS = 10 * 60_000;

/** How often the socket file is checked to still be ours (see start()). */
const PATH_CHECK_MS = 1000;

/** A subscriber this far behind is not reading; its access events are dropped rather than buffered. */
const MAX_SUBSCRIBER_BACKLOG = 1024 * 1024;

export interface ControlDeps {
  router: Router;
  /** This router's workers (RACK_ROUTER_PROCESSES > 1): each call that changes what routes reaches them all before it is answered. */
  workers?: RouterWorkers | undefined;
  identity: () => RouterIdentity;
  /** Saves then applies one table change; it is acknowledged only once this resolves. */
  change: (change: TableChange) => Promise<void>;
  /** Asked for by a `shutdown` request, after its answer has been written. */
  shutdown: () => void;
  /**
   * Starts a successor and gives it the listeners (router-handoff.ts); resolves to its identity
   * once it serves (and owns the socket path) and this router has stopped accepting.
   */
  handoff: (script: string) => Promise<RouterIdentity>;
  /** After a handoff's answer has been written: this router's connections end and it exits. */
  handedOff: () => void;
  /** A connection subscribed: summaries held while nobody listened can go out now. */
  subscribed?: () => void;
  logger: Logger;
}

/**
 * The router process's Unix control socket (see router-protocol.ts). Several clients may be
 * connected at once: rackd, a second rackd that is starting, a test.
 */
export class RouterControlServer {
  readonly #path: string;
  readonly #deps: ControlDeps;
  readonly #sockets = new Set<Socket>();
  readonly #subscribers = new Set<Socket>();
  #server: Server | undefined;
  /** The inode of our socket file: on stop we remove the path only while it is still ours. */
  #ino: number | undefined;
  #dropped = 0;
  #listens = 0;
  #watch: NodeJS.Timeout | undefined;
  #relistening = false;
  #handoff: Promise<RouterIdentity> | undefined;

  constructor(path: string, deps: ControlDeps) {
    this.#path = path;
    this.#deps = deps;
  }

  async start(): Promise<void> {
    await this.#listen();
    // A deleted socket file would leave this router serving but unreachable, and holding the lock
    // and port that a replacement needs: nobody could change its table again. So it is put back.
    this.#watch = setInterval(() => void this.#checkPath(), PATH_CHECK_MS);
    this.#watch.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#watch);
    this.#watch = undefined;
    const server = this.#server;
    this.#server = undefined;
    for (const s of this.#sockets) s.destroy();
    if (server !== undefined) await new Promise<void>((resolve) => server.close(() => resolve()));
    const now = await stat(this.#path).catch(() => undefined);
    if (now !== undefined && now.ino === this.#ino) await rm(this.#path, { force: true });
  }

  /**
   * Listens on a temp name and renames it over the socket path, so a client never finds the path
   * missing: it connects either to the dead router's stale file (refused, it retries) or to us.
   */
  async #listen(): Promise<void> {
    const temp = join(dirname(this.#path), `.${basename(this.#path)}.${process.pid}.${++this.#listens}`);
    await rm(temp, { force: true });
    const server = createServer((socket) => this.#accept(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(temp, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (err) => this.#deps.logger.error({ err }, 'router: control socket error'));
    await chmod(temp, 0o600);
    await rename(temp, this.#path);
    this.#ino = (await stat(this.#path)).ino;
    const old = this.#server;
    this.#server = server;
    // Stops accepting on the lost name only; the connections made through it carry on.
    old?.close();
  }

  async #checkPath(): Promise<void> {
    if (this.#server === undefined || this.#relistening) return;
    const now = await stat(this.#path).catch(() => undefined);
    if (now?.ino === this.#ino || this.#server === undefined) return;
    this.#relistening = true;
    this.#deps.logger.warn({ socket: this.#path }, 'router: control socket file gone; listening on it again');
    try {
      await this.#listen();
    } catch (err) {
      this.#deps.logger.error({ err }, 'router: cannot listen on the control socket again');
    } finally {
      this.#relistening = false;
    }
  }

  /**
   * The successor takes the socket path over (renaming its own socket onto it), so the path watch
   * must not take it back; if the successor fails, the path is ours again at once.
   */
  async #handOff(script: string): Promise<RouterIdentity> {
    clearInterval(this.#watch);
    try {
      return await this.#deps.handoff(script);
    } catch (err) {
      this.#handoff = undefined;
      await this.#checkPath();
      this.#watch = setInterval(() => void this.#checkPath(), PATH_CHECK_MS);
      this.#watch.unref();
      throw err;
    }
  }

  /** Whether any connection has subscribed: summaries wait for one rather than go nowhere. */
  get subscribed(): boolean {
    return this.#subscribers.size > 0;
  }

  /** Streams one access entry to every subscribed connection. */
  broadcast(entry: AccessEntry): void {
    this.send({ event: 'access', data: entry });
  }

  /** Streams one event to every subscribed connection, dropping it for one too far behind. */
  send(event: EventMessage): void {
    if (this.#subscribers.size === 0) return;
    const line = encode(event);
    for (const socket of this.#subscribers) {
      if (socket.writableLength > MAX_SUBSCRIBER_BACKLOG) {
        if (this.#dropped++ % 1000 === 0) this.#deps.logger.warn({ dropped: this.#dropped, event: event.event }, 'router: slow subscriber, events dropped');
        continue;
      }
      socket.write(line);
    }
  }

  #accept(socket: Socket): void {
    this.#sockets.add(socket);
    socket.on('close', () => {
      this.#sockets.delete(socket);
      this.#subscribers.delete(socket);
    });
    socket.on('error', (err) => this.#deps.logger.debug({ err: err.message }, 'router: control connection error'));
    // Handled in arrival order: each table change is queued (to be saved, then applied) before the next line is looked at.
    readLines(socket, MAX_LINE_BYTES, (line) => this.#onLine(socket, line), () =>
      this.#deps.logger.warn('router: control line too long, connection dropped'),
    );
  }

  #onLine(socket: Socket, line: string): void {
    const msg = parseMessage(line);
    if (msg === undefined || !('method' in msg)) {
      this.#deps.logger.debug({ line: line.slice(0, 200) }, 'router: not a request, ignored');
      return;
    }
    const reply = (body: { result: unknown } | { error: { code: string; message: string } }, then?: () => void): void => {
      if (socket.destroyed) {
        // A handoff done is done whoever waited for it: this router no longer accepts, so it must go.
        if (msg.method === 'handoff') then?.();
        return;
      }
      socket.write(encode({ id: msg.id, ...body }), then === undefined ? undefined : () => then());
    };
    this.#answer(socket, msg).then(
      (result) => reply({ result }, msg.method === 'shutdown' ? this.#deps.shutdown : msg.method === 'handoff' ? this.#deps.handedOff : undefined),
      (err: unknown) => {
        const code = err instanceof ProtocolError || err instanceof SaveError || err instanceof HandoffError ? err.code : 'internal';
        if (code === 'internal') this.#deps.logger.error({ err, method: msg.method }, 'router: control request failed');
        reply({ error: { code, message: err instanceof Error ? err.message : String(err) } });
      },
    );
  }

  /** Runs one request. A table change is queued, in arrival order, before this returns. */
  #answer(socket: Socket, msg: RequestMessage): Promise<unknown> {
    const { router, workers, change, logger } = this.#deps;
    try {
      switch (msg.method) {
        case 'ping':
          return Promise.resolve(this.#deps.identity());
        case 'setApp': {
          const r = checkAppRoute(msg.params);
          return change({ method: 'setApp', route: r }).then(() => {
            logger.info({ app: r.app, hosts: r.hosts, upstreams: r.upstreams }, 'router: app routes set');
            return true;
          }, logFailure(logger, r.app));
        }
        case 'removeApp': {
          const { app } = checkRemoveApp(msg.params);
          return change({ method: 'removeApp', app }).then(() => {
            logger.info({ app }, 'router: app removed');
            return true;
          }, logFailure(logger, app));
        }
        case 'waitIdle': {
          const { upstreams, timeoutMs } = checkWaitIdle(msg.params);
          const bound = Math.min(timeoutMs, MAX_WAIT_IDLE_MS);
          return Promise.all([router.waitIdle(upstreams, bound), workers?.waitIdle(upstreams, bound) ?? true]).then(([a, b]) => a && b);
        }
        case 'inFlight':
        {
          const { upstream } = checkInFlight(msg.params);
          return (workers?.inFlight(upstream) ?? Promise.resolve(0)).then((n) => n + router.inFlight(upstream));
        }
        case 'routes':
          return Promise.resolve(router.routes());
        case 'reloadCertificates':
          return workers === undefined ? router.reloadCertificates() : Promise.all([router.reloadCertificates(), workers.reloadCertificates()]).then(([hosts]) => hosts);
        case 'setChallenge': {
          const { token, host, keyAuthorization } = checkChallenge(msg.params);
          router.setChallenge(token, host, keyAuthorization);
          return (workers?.setChallenge({ token, host, keyAuthorization }) ?? Promise.resolve()).then(() => true);
        }
        case 'removeChallenge':
        {
          const { token } = checkToken(msg.params);
          router.removeChallenge(token);
          return (workers?.removeChallenge(token) ?? Promise.resolve()).then(() => true);
        }
        case 'subscribe':
          this.#subscribers.add(socket);
          this.#deps.subscribed?.();
          return Promise.resolve(true);
        case 'access':
        {
          const { apps } = checkAccessApps(msg.params);
          router.setAccessApps(apps);
          return (workers?.setAccessApps(apps) ?? Promise.resolve()).then(() => true);
        }
        case 'shutdown':
          this.#deps.logger.info('router: shutdown requested over the control socket');
          return Promise.resolve(true);
        case 'handoff': {
          const { script } = checkHandoff(msg.params);
          if (this.#handoff !== undefined) throw new ProtocolError('a handoff is already under way');
          this.#handoff = this.#handOff(script);
          return this.#handoff;
        }
        default:
          throw new ProtocolError(`unknown method ${JSON.stringify(msg.method)}`);
      }
    } catch (err) {
      return Promise.reject(err);
    }
  }
}

/** A change that could not be saved is the operator's business too (a full disk); it is then re-thrown to the client. */
function logFailure(logger: Logger, app: string): (err: unknown) => never {
  return (err) => {
    logger.error({ app, err: err instanceof Error ? err.message : String(err) }, 'router: table change not applied');
    throw err;
  };
}
