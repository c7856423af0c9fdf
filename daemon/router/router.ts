import { createServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import type { Logger } from '../log.js';
import { AcmeChallenges } from './acme-challenges.js';
import { CertificateSet } from './certificate-set.js';
import { ClientConnection, type AccessEntry, type ConnectionDeps } from './client-connection.js';
import { ConnectionCaps, PER_ADDRESS_MAX, TOTAL_MAX } from './connection-caps.js';
import { H2Sessions } from './h2-session.js';
import { InFlight } from './in-flight.js';
import { takeEarlyConnections } from './router-handoff.js';
import type { Maintenance } from './maintenance-page.js';
import { answerBytes, plainAnswer } from './rack-answers.js';
import { normalizeHost, RouteTable, type HttpsPolicy, type Route } from './route-table.js';
import { RouteSummaries } from './route-summaries.js';
import { type Upstream } from './upstream.js';
import { UpstreamPools } from './upstream-pools.js';

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
  /**
   * `all` (the default): onAccess hears every app's requests. `asked`: only those of the apps last
   * given to setAccessApps, as the router process does, where a line nobody reads costs two processes CPU.
   */
  accessLines?: 'all' | 'asked';
  /** Open connections allowed from one client address (default PER_ADDRESS_MAX, 256). */
  maxConnectionsPerAddress?: number;
  /** Open client connections allowed in all (default TOTAL_MAX, 10,000). */
  maxConnections?: number;
  /**
   * Listening sockets handed over by the router process this one replaces (router-handoff.ts):
   * served as they are instead of binding `port` and `https.port`.
   */
  inherited?: Listeners;
}

/** The router's listening servers, as one router process hands them to its successor. */
export interface Listeners {
  http: Server;
  https?: Server;
}

/** A connection refused over a cap is given this long to take its 503 and close. */
const REFUSED_LINGER_MS = 5_000;
const OVER_CAP = answerBytes(plainAnswer(503, 'Too many connections from this address; try again shortly'), { close: true, head: false });

/** One app's entry in the table: the host names it answers and the processes serving it. */
export interface AppRoute {
  app: string;
  hosts: string[];
  upstreams: Upstream[];
  /** Absent: plain HTTP as before (no redirect, no HSTS). */
  https?: HttpsPolicy;
  /** How long the app has to start its answer (ms); absent: DEFAULT_TIMEOUT_MS. */
  timeoutMs?: number;
  /** Present while the app is in maintenance: every request gets its 503 page. */
  maintenance?: Maintenance;
}

/** A plain copy of a live route, as the protocol and the state file carry it. */
export function appRoute(r: Route): AppRoute {
  const route: AppRoute = { app: r.app, hosts: [...r.hosts], upstreams: r.upstreams.map((u) => ({ ...u })) };
  if (r.https.redirect || r.https.hsts) route.https = { ...r.https };
  if (r.timeoutSetting !== undefined) route.timeoutMs = r.timeoutSetting;
  if (r.maintenance !== undefined) route.maintenance = { ...r.maintenance };
  return route;
}

export type { AccessEntry } from './client-connection.js';

/**
 * The HTTP front door: picks the app by Host header and relays to one of its web processes.
 * It reads HTTP/1.1 itself (ClientConnection, HttpExchange) rather than through node's http
 * server and an HTTP client: relaying bodies as bytes costs a third of the CPU per request.
 * The deploy code owns the table (setApp/removeApp) and asks waitIdle before stopping old ones.
 */
export class Router {
  readonly #opts: RouterOptions;
  readonly #logger: Logger;
  readonly #table: RouteTable;
  readonly #pools = new UpstreamPools();
  readonly #inFlight = new InFlight();
  /** Every open client connection, tunnels included, so stop() can close them (undefined: refused over a cap). */
  readonly #sockets = new Map<Socket, { handOff(): void } | undefined>();
  readonly #deps: ConnectionDeps;
  readonly #certificates: CertificateSet | undefined;
  readonly #challenges = new AcmeChallenges();
  readonly #caps: ConnectionCaps;
  #server: Server | undefined;
  #secureServer: Server | undefined;
  #httpsPort = 0;
  #handingOff = false;
  /** Every request of every app, summed in 10 s buckets (metrics). */
  readonly summaries = new RouteSummaries();
  #accessApps = new Set<string>();

  constructor(opts: RouterOptions) {
    this.#opts = opts;
    this.#logger = opts.logger;
    this.#table = new RouteTable(opts.logger);
    this.#certificates = opts.https === undefined ? undefined : new CertificateSet(opts.https.certDir, opts.logger);
    this.#caps = new ConnectionCaps({ perAddress: opts.maxConnectionsPerAddress ?? PER_ADDRESS_MAX, total: opts.maxConnections ?? TOTAL_MAX }, opts.logger);
    this.#deps = {
      pools: this.#pools,
      inFlight: this.#inFlight,
      logger: this.#logger,
      currentRoute: (app) => this.#table.route(app),
      lookup: (host) => this.#table.lookup(host),
      challenges: this.#challenges,
      httpsLocation: (route, host, target) => this.#httpsLocation(route, host, target),
      sameCertificate: (servername, host) => this.#certificates?.sameCertificate(servername, host) === true,
      onAccess: opts.onAccess,
      wantsAccess: opts.accessLines === 'asked' ? (app) => this.#accessApps.has(app) : () => true,
      summaries: this.summaries,
      debug: (err, what) => this.#logger.debug({ err: err.message }, what),
    };
  }

  /** Opens the plain listener, and the TLS one when configured; resolves to the plain port. */
  async start(): Promise<number> {
    if (this.#server !== undefined) throw new Error('router already started');
    const server = createServer({ noDelay: true }, (socket) => {
      if (this.#admit(socket)) this.#accept(socket, false);
      else this.#refuse(socket);
    });
    this.#server = server;
    const port = await this.#listen(server, this.#opts.inherited?.http ?? this.#opts.port, 'http').catch((err: unknown) => {
      this.#server = undefined;
      throw err;
    });
    const https = this.#opts.https;
    const certificates = this.#certificates;
    if (https !== undefined && certificates !== undefined) {
      await certificates.reload();
      const secure = createTlsServer({
        noDelay: true,
        minVersion: 'TLSv1.2',
        // h2 first: a client offering both gets HTTP/2; one offering neither (or no ALPN) gets HTTP/1.1.
        ALPNProtocols: ['h2', 'http/1.1'],
        // Looked up per handshake, so a reloaded certificate serves the next connection.
        SNICallback: (name, cb) => {
          const context = certificates.get(normalizeHost(name));
          if (context === undefined) cb(new Error(`no certificate for ${name.slice(0, 100)}`), undefined);
          else cb(null, context);
        },
      });
      // Counted before the handshake, which costs the most; one over a cap is closed unread.
      secure.on('connection', (socket: Socket) => {
        if (!this.#admit(socket)) {
          socket.destroy();
          return;
        }
        // Known from the first byte, so a handoff waits for a handshake under way too.
        this.#sockets.set(socket, undefined);
        socket.once('close', () => this.#sockets.delete(socket));
      });
      const h2 = new H2Sessions(this.#deps);
      secure.on('secureConnection', (socket: TLSSocket) => {
        if (socket.alpnProtocol === 'h2') this.#acceptH2(h2, socket);
        else this.#accept(socket, true);
      });
      // A scanner's failed handshake is not worth a line each.
      secure.on('tlsClientError', (err: Error) => this.#logger.debug({ err: err.message }, 'router: TLS handshake failed'));
      this.#secureServer = secure;
      try {
        this.#httpsPort = await this.#listen(secure, this.#opts.inherited?.https ?? https.port, 'https');
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

  /** Counts a new connection in until it closes; false when it is over a cap. */
  #admit(socket: Socket): boolean {
    const address = socket.remoteAddress ?? '';
    if (!this.#caps.admit(address)) return false;
    socket.once('close', () => this.#caps.release(address));
    return true;
  }

  /** Over a cap on the plain listener: a short 503, its request drained unread so the close is no reset. */
  #refuse(socket: Socket): void {
    this.#sockets.set(socket, undefined);
    socket.once('close', () => this.#sockets.delete(socket));
    socket.on('error', () => {});
    socket.setTimeout(REFUSED_LINGER_MS, () => socket.destroy());
    socket.resume();
    socket.end(OVER_CAP);
  }

  #accept(socket: Socket, secure: boolean): void {
    const connection = new ClientConnection(socket, secure, this.#deps);
    this.#sockets.set(socket, connection);
    socket.once('close', () => this.#sockets.delete(socket));
    if (this.#handingOff) connection.handOff();
  }

  #acceptH2(h2: H2Sessions, socket: TLSSocket): void {
    const session = h2.serve(socket);
    if (session === undefined) return;
    this.#sockets.set(socket, session);
    socket.once('close', () => this.#sockets.delete(socket));
    if (this.#handingOff) session.handOff();
  }

  /** Listens on `port`, or on an inherited listening socket (which keeps its own port and address). */
  #listen(server: Server, port: number | Server, what: 'http' | 'https'): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      const listening = (): void => {
        server.off('error', reject);
        // Accepted by the passed listener before this server took it over: served as if accepted here.
        if (typeof port !== 'number') for (const socket of takeEarlyConnections(port)) server.emit('connection', socket);
        server.on('error', (err) => this.#logger.error({ err }, `router: ${what} server error`));
        const addr = server.address();
        const bound = typeof addr === 'object' && addr !== null ? addr.port : typeof port === 'number' ? port : 0;
        this.#logger.info({ bind: this.#opts.bind, port: bound, inherited: typeof port !== 'number' }, `router: listening (${what})`);
        resolve(bound);
      };
      if (typeof port === 'number') server.listen(port, this.#opts.bind, listening);
      else server.listen(port, listening);
    });
  }

  /** The listening servers, for handing to a successor; undefined before start or after stop. */
  listeners(): Listeners | undefined {
    if (this.#server === undefined) return undefined;
    return this.#secureServer === undefined ? { http: this.#server } : { http: this.#server, https: this.#secureServer };
  }

  /**
   * A successor serves the listening sockets now: this router stops accepting (the successor's
   * copies of the sockets stay open) and its connections end as their requests finish. Resolves
   * once every connection is closed, tunnels included, or after `boundMs`, when the rest are cut.
   */
  async handOff(boundMs: number): Promise<void> {
    this.#handingOff = true;
    for (const server of [this.#server, this.#secureServer]) server?.close();
    this.#server = undefined;
    this.#secureServer = undefined;
    for (const connection of this.#sockets.values()) connection?.handOff();
    const deadline = Date.now() + boundMs;
    while (this.#sockets.size > 0 && Date.now() < deadline) {
      const [socket] = this.#sockets.keys();
      if (socket === undefined) break;
      // One close at a time, each bounded by what is left of the whole wait.
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.max(0, deadline - Date.now()));
        const done = (): void => {
          clearTimeout(timer);
          resolve();
        };
        if (socket.closed) done();
        else socket.once('close', done);
      });
      this.#sockets.delete(socket);
    }
    if (this.#sockets.size > 0) this.#logger.warn({ connections: this.#sockets.size }, 'router: connections still open after the handoff bound; closing them');
    for (const socket of this.#sockets.keys()) socket.destroy();
    this.#sockets.clear();
    this.#pools.destroyAll();
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
    // Closing a client connection aborts its exchange, which closes the app's side too.
    for (const socket of this.#sockets.keys()) socket.destroy();
    this.#sockets.clear();
    await Promise.all(closed);
    this.#pools.destroyAll();
  }

  setApp(app: string, hosts: string[], upstreams: Upstream[], https?: HttpsPolicy, timeoutMs?: number, maintenance?: Maintenance): void {
    this.#table.set(app, hosts, upstreams, https, timeoutMs, maintenance);
    this.#pools.retain(this.#table.liveUpstreamKeys());
    this.#logger.debug({ app, hosts, upstreams }, 'router: app routes set');
  }

  removeApp(app: string): void {
    this.#table.remove(app);
    this.#pools.retain(this.#table.liveUpstreamKeys());
    this.#logger.debug({ app }, 'router: app removed');
  }

  /** The whole table as it routes now: what the router process persists and reports. */
  /** The apps whose per-request lines go to onAccess (with `accessLines: 'asked'`), replacing the last set. */
  setAccessApps(apps: string[]): void {
    this.#accessApps = new Set(apps);
  }

  routes(): AppRoute[] {
    return this.#table.entries().map(appRoute);
  }

  waitIdle(upstreams: Upstream[], timeoutMs: number): Promise<boolean> {
    return this.#inFlight.waitIdle(upstreams, timeoutMs);
  }

  inFlight(upstream: Upstream): number {
    return this.#inFlight.count(upstream);
  }

  /** HTTP → HTTPS where the app asks for it and a certificate for the host is there to serve. */
  #httpsLocation(route: Route, host: string, target: string): string | undefined {
    if (!route.https.redirect || this.#certificates?.has(host) !== true) return undefined;
    const port = this.#httpsPort === 443 || this.#httpsPort === 0 ? '' : `:${this.#httpsPort}`;
    const name = host.includes(':') ? `[${host}]` : host;
    return `https://${name}${port}${target.startsWith('/') ? target : '/'}`;
  }
}
