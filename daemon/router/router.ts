import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from '../log.js';
import { forwardRequest, type ForwardDeps } from './http-forwarder.js';
import { InFlight } from './in-flight.js';
import { answerPlain, answerPlainRaw } from './rack-answers.js';
import { normalizeHost, RouteTable, type Route } from './route-table.js';
import { CONTROL_PLANE_APP, type Upstream } from './upstream.js';
import { UpstreamPools } from './upstream-pools.js';
import { tunnelUpgrade, type TunnelDeps } from './websocket-tunnel.js';

export type { Upstream } from './upstream.js';

export interface RouterOptions {
  bind: string;
  port: number;
  logger: Logger;
  /** Called once per finished request of a known app (the app's `logs` show these). */
  onAccess?: (entry: AccessEntry) => void;
}

/** One app's entry in the table: the host names it answers and the processes serving it. */
export interface AppRoute {
  app: string;
  hosts: string[];
  upstreams: Upstream[];
}

export interface AccessEntry {
  app: string;
  method: string;
  path: string;
  host: string;
  status: number;
  ms: number;
  ip: string;
}

/**
 * The HTTP front door: picks the app by Host header and relays to one of its web processes.
 * The deploy code owns the table (setApp/removeApp) and asks waitIdle before stopping old ones.
 */
export class Router {
  readonly #opts: RouterOptions;
  readonly #logger: Logger;
  readonly #table: RouteTable;
  readonly #pools: UpstreamPools;
  readonly #inFlight = new InFlight();
  /** Upgraded sockets leave node's own connection tracking; stop() must still close them. */
  readonly #tunnelSockets = new Set<Duplex>();
  readonly #forwardDeps: ForwardDeps;
  readonly #tunnelDeps: TunnelDeps;
  #server: Server | undefined;

  constructor(opts: RouterOptions) {
    this.#opts = opts;
    this.#logger = opts.logger;
    this.#table = new RouteTable(opts.logger);
    this.#pools = new UpstreamPools(opts.logger);
    const currentRoute = (app: string): Route | undefined => this.#table.route(app);
    this.#forwardDeps = { pools: this.#pools, inFlight: this.#inFlight, logger: this.#logger, currentRoute };
    this.#tunnelDeps = {
      inFlight: this.#inFlight,
      logger: this.#logger,
      currentRoute,
      track: (socket) => {
        this.#tunnelSockets.add(socket);
        socket.once('close', () => this.#tunnelSockets.delete(socket));
      },
    };
  }

  start(): Promise<number> {
    if (this.#server !== undefined) return Promise.reject(new Error('router already started'));
    const server = createServer((req, res) => this.#onRequest(req, res));
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.#onUpgrade(req, socket, head));
    this.#server = server;
    return new Promise<number>((resolve, reject) => {
      const onListenError = (err: Error): void => {
        this.#server = undefined;
        reject(err);
      };
      server.once('error', onListenError);
      server.listen(this.#opts.port, this.#opts.bind, () => {
        server.off('error', onListenError);
        server.on('error', (err) => this.#logger.error({ err }, 'router: server error'));
        const addr = server.address();
        const port = typeof addr === 'object' && addr !== null ? addr.port : this.#opts.port;
        this.#logger.info({ bind: this.#opts.bind, port }, 'router: listening');
        resolve(port);
      });
    });
  }

  async stop(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    if (server !== undefined) {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      for (const socket of this.#tunnelSockets) socket.destroy();
      this.#tunnelSockets.clear();
      await closed;
    }
    await this.#pools.destroyAll();
  }

  setApp(app: string, hosts: string[], upstreams: Upstream[]): void {
    this.#table.set(app, hosts, upstreams);
    this.#pools.retain(this.#table.liveUpstreamKeys());
    this.#logger.debug({ app, hosts, upstreams }, 'router: app routes set');
  }

  removeApp(app: string): void {
    this.#table.remove(app);
    this.#pools.retain(this.#table.liveUpstreamKeys());
    this.#logger.debug({ app }, 'router: app removed');
  }

  /** The whole table as it routes now: what the router process persists and reports. */
  routes(): AppRoute[] {
    return this.#table.entries().map((r) => ({ app: r.app, hosts: [...r.hosts], upstreams: r.upstreams.map((u) => ({ ...u })) }));
  }

  waitIdle(upstreams: Upstream[], timeoutMs: number): Promise<boolean> {
    return this.#inFlight.waitIdle(upstreams, timeoutMs);
  }

  inFlight(upstream: Upstream): number {
    return this.#inFlight.count(upstream);
  }

  #onRequest(req: IncomingMessage, res: ServerResponse): void {
    // A client that vanishes mid-upload makes the request stream error; that is not the router's fault.
    req.on('error', (err) => this.#logger.debug({ err: err.message }, 'router: client request error'));
    res.on('error', (err) => this.#logger.debug({ err: err.message }, 'router: client response error'));
    const host = normalizeHost(req.headers.host);
    const route = this.#table.lookup(host);
    if (route === undefined) {
      answerPlain(res, 404, `No app is served at ${host === '' ? 'this address' : host}`);
      return;
    }
    const onAccess = this.#opts.onAccess;
    // rack's own host is no app's: its requests are not any app's `logs`.
    if (onAccess !== undefined && route.app !== CONTROL_PLANE_APP) {
      const started = performance.now();
      res.once('close', () =>
        onAccess({
          app: route.app,
          method: req.method ?? '',
          path: req.url ?? '',
          host,
          status: res.statusCode,
          ms: Math.round(performance.now() - started),
          ip: req.socket.remoteAddress ?? '',
        }),
      );
    }
    forwardRequest(this.#forwardDeps, req, res, route);
  }

  #onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const host = normalizeHost(req.headers.host);
    const route = this.#table.lookup(host);
    if (route === undefined) {
      socket.on('error', () => {});
      answerPlainRaw(socket, 404, `No app is served at ${host === '' ? 'this address' : host}`);
      return;
    }
    tunnelUpgrade(this.#tunnelDeps, req, socket, head, route);
  }
}
