import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createSecureServer } from 'node:https';
import type { Duplex } from 'node:stream';
import type { Logger } from '../log.js';
import { AcmeChallenges, isChallengePath } from './acme-challenges.js';
import { CertificateSet } from './certificate-set.js';
import { forwardRequest, type ForwardDeps } from './http-forwarder.js';
import { InFlight } from './in-flight.js';
import { answerPlain, answerPlainRaw } from './rack-answers.js';
import { normalizeHost, RouteTable, type HttpsPolicy, type Route } from './route-table.js';
import { CONTROL_PLANE_APP, type Upstream } from './upstream.js';
import { UpstreamPools } from './upstream-pools.js';
import { tunnelUpgrade, type TunnelDeps } from './websocket-tunnel.js';

export type { Upstream } from './upstream.js';
export type { HttpsPolicy } from './route-table.js';

export interface RouterOptions {
  bind: string;
  port: number;
  /** The TLS listener: its port (0: any free one) and the folder of `HOST.pem` files it serves by SNI. */
  https?: { port: number; certDir: string };
  logger: Logger;
  /** Called once per finished request of a known app (the app's `logs` show these). */
  onAccess?: (entry: AccessEntry) => void;
}

/** One app's entry in the table: the host names it answers and the processes serving it. */
export interface AppRoute {
  app: string;
  hosts: string[];
  upstreams: Upstream[];
  /** Absent: plain HTTP as before (no redirect, no HSTS). */
  https?: HttpsPolicy;
}

/** A plain copy of a live route, as the protocol and the state file carry it. */
export function appRoute(r: Route): AppRoute {
  const route: AppRoute = { app: r.app, hosts: [...r.hosts], upstreams: r.upstreams.map((u) => ({ ...u })) };
  if (r.https.redirect || r.https.hsts) route.https = { ...r.https };
  return route;
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
  readonly #certificates: CertificateSet | undefined;
  readonly #challenges = new AcmeChallenges();
  #server: Server | undefined;
  #secureServer: Server | undefined;
  #httpsPort = 0;

  constructor(opts: RouterOptions) {
    this.#opts = opts;
    this.#logger = opts.logger;
    this.#table = new RouteTable(opts.logger);
    this.#pools = new UpstreamPools(opts.logger);
    this.#certificates = opts.https === undefined ? undefined : new CertificateSet(opts.https.certDir, opts.logger);
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

  /** Opens the plain listener, and the TLS one when configured; resolves to the plain port. */
  async start(): Promise<number> {
    if (this.#server !== undefined) throw new Error('router already started');
    const server = createServer((req, res) => this.#onRequest(req, res, false));
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.#onUpgrade(req, socket, head, false));
    this.#server = server;
    const port = await this.#listen(server, this.#opts.port, 'http').catch((err: unknown) => {
      this.#server = undefined;
      throw err;
    });
    const https = this.#opts.https;
    const certificates = this.#certificates;
    if (https !== undefined && certificates !== undefined) {
      await certificates.reload();
      const secure = createSecureServer({
        minVersion: 'TLSv1.2',
        ALPNProtocols: ['http/1.1'],
        // Looked up per handshake, so a reloaded certificate serves the next connection.
        SNICallback: (name, cb) => {
          const context = certificates.get(normalizeHost(name));
          if (context === undefined) cb(new Error(`no certificate for ${name.slice(0, 100)}`), undefined);
          else cb(null, context);
        },
      });
      secure.on('request', (req: IncomingMessage, res: ServerResponse) => this.#onRequest(req, res, true));
      secure.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.#onUpgrade(req, socket, head, true));
      // A scanner's failed handshake is not worth a line each.
      secure.on('tlsClientError', (err: Error) => this.#logger.debug({ err: err.message }, 'router: TLS handshake failed'));
      this.#secureServer = secure;
      try {
        this.#httpsPort = await this.#listen(secure, https.port, 'https');
      } catch (err) {
        this.#secureServer = undefined;
        await this.stop();
        throw err;
      }
    }
    return port;
  }

  /** The TLS listener's port; 0 when there is none. */
  get httpsPort(): number {
    return this.#httpsPort;
  }

  #listen(server: Server, port: number, what: 'http' | 'https'): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, this.#opts.bind, () => {
        server.off('error', reject);
        server.on('error', (err) => this.#logger.error({ err }, `router: ${what} server error`));
        const addr = server.address();
        const bound = typeof addr === 'object' && addr !== null ? addr.port : port;
        this.#logger.info({ bind: this.#opts.bind, port: bound }, `router: listening (${what})`);
        resolve(bound);
      });
    });
  }

  /** Serves the certificate folder as it is now; answers the hosts that have one. */
  reloadCertificates(): Promise<string[]> {
    return this.#certificates?.reload() ?? Promise.resolve([]);
  }

  setChallenge(token: string, host: string, keyAuthorization: string): void {
    this.#challenges.set(token, normalizeHost(host), keyAuthorization);
  }

  removeChallenge(token: string): void {
    this.#challenges.remove(token);
  }

  async stop(): Promise<void> {
    const servers = [this.#server, this.#secureServer].filter((s): s is Server => s !== undefined);
    this.#server = undefined;
    this.#secureServer = undefined;
    const closed = servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve())));
    for (const server of servers) server.closeAllConnections();
    for (const socket of this.#tunnelSockets) socket.destroy();
    this.#tunnelSockets.clear();
    await Promise.all(closed);
    await this.#pools.destroyAll();
  }

  setApp(app: string, hosts: string[], upstreams: Upstream[], https?: HttpsPolicy): void {
    this.#table.set(app, hosts, upstreams, https);
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
    return this.#table.entries().map(appRoute);
  }

  waitIdle(upstreams: Upstream[], timeoutMs: number): Promise<boolean> {
    return this.#inFlight.waitIdle(upstreams, timeoutMs);
  }

  inFlight(upstream: Upstream): number {
    return this.#inFlight.count(upstream);
  }

  #onRequest(req: IncomingMessage, res: ServerResponse, secure: boolean): void {
    // A client that vanishes mid-upload makes the request stream error; that is not the router's fault.
    req.on('error', (err) => this.#logger.debug({ err: err.message }, 'router: client request error'));
    res.on('error', (err) => this.#logger.debug({ err: err.message }, 'router: client response error'));
    const host = normalizeHost(req.headers.host);
    const route = this.#table.lookup(host);
    if (route === undefined) {
      answerPlain(res, 404, `No app is served at ${host === '' ? 'this address' : host}`);
      return;
    }
    if (!secure) {
      if (this.#challenges.answer(req, res, host)) {
        // The CA's visit is the one proof an order's validation happened; worth a line.
        this.#logger.info({ host, ip: req.socket.remoteAddress }, 'router: answered an ACME http-01 challenge');
        return;
      }
      if (route.https.redirect && this.#certificates?.has(host) === true && !isChallengePath(req.url)) {
        this.#redirectToHttps(res, host, req.url ?? '/');
        return;
      }
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
    forwardRequest(this.#forwardDeps, req, res, route, secure);
  }

  /** 308 keeps the method and body, so a form POST to http:// is not turned into a GET. */
  #redirectToHttps(res: ServerResponse, host: string, url: string): void {
    const port = this.#httpsPort === 443 || this.#httpsPort === 0 ? '' : `:${this.#httpsPort}`;
    const name = host.includes(':') ? `[${host}]` : host;
    const location = `https://${name}${port}${url.startsWith('/') ? url : '/'}`;
    res.writeHead(308, { Location: location, 'Content-Length': 0, 'Cache-Control': 'no-store' });
    res.end();
  }

  #onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, secure: boolean): void {
    const host = normalizeHost(req.headers.host);
    const route = this.#table.lookup(host);
    if (route === undefined) {
      socket.on('error', () => {});
      answerPlainRaw(socket, 404, `No app is served at ${host === '' ? 'this address' : host}`);
      return;
    }
    tunnelUpgrade(this.#tunnelDeps, req, socket, head, route, secure);
  }
}
