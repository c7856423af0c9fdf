import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { isChallengePath, type AcmeChallenges } from './acme-challenges.js';
import { HttpExchange, type ExchangeEnd, type ExchangeOwner } from './http-exchange.js';
import type { ExchangeDeps } from './upstream-attempt.js';
import { carriesBody, headEnd, HeadError, parseRequestHead, type RequestHead } from './http1-head.js';
import { answerBytes, plainAnswer, redirectAnswer, type RackAnswer } from './rack-answers.js';
import { normalizeHost, type Route } from './route-table.js';
import type { RouteSummaries } from './route-summaries.js';
import { CONTROL_PLANE_APP, upstreamKey } from './upstream.js';

export interface AccessEntry {
  app: string;
  method: string;
  path: string;
  host: string;
  status: number;
  ms: number;
  ip: string;
  /** The router process that served it (one of several with RACK_ROUTER_PROCESSES). */
  pid?: number;
  /** `HTTP/2` for a stream of an h2 connection; absent for HTTP/1.x. */
  protocol?: 'HTTP/2';
}

/** The request being relayed: what its access line and summary need once it ends. */
interface Current {
  req: RequestHead;
  app: string;
  host: string;
  upstream: string;
  started: number;
}

export interface ConnectionDeps extends ExchangeDeps {
  lookup: (host: string) => Route | undefined;
  challenges: AcmeChallenges;
  /** Where a plain-HTTP request for this host goes instead; undefined: it is served as it is. */
  httpsLocation: (route: Route, host: string, target: string) => string | undefined;
  /** A TLS connection opened for `servername` may carry requests for `host` (one certificate serves both). */
  sameCertificate: (servername: string, host: string) => boolean;
  onAccess: ((entry: AccessEntry) => void) | undefined;
  /** Whether someone wants the app's per-request lines now (rackd says which apps: `access`). */
  wantsAccess: (app: string) => boolean;
  /** Every request of an app is counted here (metrics), whether or not its line is wanted. */
  summaries: RouteSummaries;
  debug: (err: Error, what: string) => void;
}

/**
 * An idle keep-alive connection is closed after this long, and a request head must arrive whole
 * within it (a client trickling one byte at a time cannot hold a connection for ever).
 */
const IDLE_MS = 60_000;
/**
 * Bytes of pipelined requests held while the one before is answered, or while the client reads
 * nothing of the answers already written. Past this the socket stays paused: the kernel's buffers
 * and the client's TCP window hold the rest, not the router's heap.
 */
export const PIPELINED_MAX = 64 * 1024;
/**
 * Once the router hands its listeners to a successor, a connection silent this long is closed. A
 * client sending all the while is told `Connection: close` with its next answer instead, which it
 * can never mistake for a failure; only one silent this long can race its next request with the close.
 */
const DRAIN_IDLE_MS = 2_000;

/**
 * One client connection, plain or TLS: read a request head → answer it or relay it through an
 * HttpExchange → read the next one. Requests are taken one at a time; bytes of a pipelined next
 * request wait, with the socket paused, until the answer before it is complete and the client has
 * read enough of it that the socket's write buffer is below its high-water mark. A client that
 * pipelines and never reads thus costs one answer's bytes, whoever writes them.
 */
export class ClientConnection implements ExchangeOwner {
  readonly #socket: Socket;
  readonly #secure: boolean;
  readonly #deps: ConnectionDeps;
  /** Bytes read and not yet used: part of a head, or requests pipelined behind the current one. */
  #buf: Buffer | undefined;
  #exchange: HttpExchange | undefined;
  /** What the access entry of the exchange running now needs. */
  #current: Current | undefined;
  /** The socket's byte counts when the last request ended: the bytes since are the next one's. */
  #countedIn = 0;
  #countedOut = 0;
  #headStarted = 0;
  #closing = false;
  /** Waiting for the client to read what it was sent before its next request is read. */
  #awaitingDrain = false;
  /** A successor serves the listeners: this connection ends after its current request. */
  #handingOff = false;
  #tunnelled = false;

  constructor(socket: Socket, secure: boolean, deps: ConnectionDeps) {
    this.#socket = socket;
    this.#secure = secure;
    this.#deps = deps;
    socket.on('data', this.#onData);
    socket.on('error', (err) => deps.debug(err, 'router: client connection error'));
    socket.on('close', this.#onClose);
    socket.on('timeout', this.#onTimeout);
    socket.setTimeout(IDLE_MS);
  }

  readonly #onData = (chunk: Buffer): void => {
    if (this.#exchange !== undefined) {
      this.#exchange.clientData(chunk);
      return;
    }
    if (this.#closing) return;
    this.#append(chunk);
    this.#readHeads();
  };

  readonly #onDrain = (): void => {
    this.#awaitingDrain = false;
    if (this.#closing || this.#exchange !== undefined) return;
    this.#socket.resume();
    this.#readHeads();
  };

  readonly #onClose = (): void => {
    this.#closing = true;
    this.#exchange?.abort();
  };

  readonly #onTimeout = (): void => {
    // A request in progress is the app's to time out; the router drops idle connections, and
    // clients silent in the middle of a body it reads before sending.
    if (this.#exchange === undefined) {
      if (this.#handingOff) this.#close();
      else this.#socket.destroy();
    } else if (this.#exchange.readingBody && !this.#handingOff) this.#socket.destroy();
  };

  /**
   * The router stopped accepting (a successor took its listeners): the request under way finishes,
   * its answer or the next one says `Connection: close`, and a connection left idle is closed.
   * A tunnel is not this connection's any more; the router waits for it to close.
   */
  handOff(): void {
    if (this.#handingOff || this.#closing || this.#tunnelled) return;
    this.#handingOff = true;
    this.#socket.setTimeout(DRAIN_IDLE_MS);
  }

  #readHeads(): void {
    while (this.#exchange === undefined && !this.#closing && !this.#awaitingDrain && this.#buf !== undefined) {
      if (this.#socket.writableNeedDrain) {
        // Answers the client has not read yet: the next request waits until it does.
        this.#awaitingDrain = true;
        this.#socket.pause();
        this.#socket.once('drain', this.#onDrain);
        return;
      }
      const buf = this.#buf;
      let req: RequestHead;
      try {
        const end = headEnd(buf, 'request');
        if (end === -1) {
          if (this.#headStarted === 0) this.#headStarted = Date.now();
          else if (Date.now() - this.#headStarted > IDLE_MS) throw new HeadError(408, 'request head took too long');
          break;
        }
        this.#buf = end < buf.length ? buf.subarray(end) : undefined;
        this.#headStarted = 0;
        req = parseRequestHead(buf, end);
      } catch (err) {
        this.#refuse(err as HeadError);
        return;
      }
      this.#onRequest(req);
    }
    // Everything held was used, or it is part of a head: read on, unless something else waits.
    if (this.#exchange === undefined && !this.#closing && !this.#awaitingDrain) this.#socket.resume();
  }

  #onRequest(head: RequestHead): void {
    const req = this.#handingOff ? { ...head, keepAlive: false } : head;
    const host = normalizeHost(req.host);
    if (this.#misdirected(host)) {
      this.#answer(req, plainAnswer(421, "Misdirected request: this connection's certificate is for another host"));
      return;
    }
    const route = this.#deps.lookup(host);
    if (route === undefined) {
      // Never the Host itself: an answer that echoes what the client sent is a reflection vector.
      this.#answer(req, plainAnswer(404, 'No app is served at this address'));
      return;
    }
    if (!this.#secure) {
      const challenge = this.#deps.challenges.answer(req.method, req.target, host);
      if (challenge !== undefined) {
        // The CA's visit is the one proof an order's validation happened; worth a line.
        this.#deps.logger.info({ host, ip: this.#socket.remoteAddress }, 'router: answered an ACME http-01 challenge');
        this.#answer(req, challenge);
        return;
      }
      const location = isChallengePath(req.target) ? undefined : this.#deps.httpsLocation(route, host, req.target);
      if (location !== undefined) {
        this.#answer(req, redirectAnswer(location));
        return;
      }
    }
    // After the ACME answer above: a certificate keeps renewing while the app is down for work.
    if (route.maintenanceAnswer !== undefined) {
      this.#answer(req, route.maintenanceAnswer);
      this.#logAccess({ req, app: route.app, host, upstream: '', started: performance.now() }, 503);
      return;
    }
    const upstream = route.next();
    if (upstream === undefined) {
      this.#answer(req, plainAnswer(503, `No web processes are running for app ${route.app}`));
      this.#logAccess({ req, app: route.app, host, upstream: '', started: performance.now() }, 503);
      return;
    }
    const exchange = new HttpExchange(this.#deps, this.#socket, req, route, this.#secure, this);
    this.#exchange = exchange;
    this.#current = { req, app: route.app, host, upstream: upstreamKey(upstream), started: performance.now() };
    const rest = this.#buf;
    this.#buf = undefined;
    exchange.start(upstream, rest);
  }

  /**
   * A browser reuses a TLS connection for another host whose name its certificate also covers
   * (RFC 9110 §7.4). rack picks a certificate per SNI name, so a request whose Host would have been
   * given a different one (or none) is answered 421, and the client opens a connection for it.
   */
  #misdirected(host: string): boolean {
    // No Host (HTTP/1.0) names no other site: it gets what any request for an unknown host gets.
    if (!this.#secure || host === '') return false;
    const servername = (this.#socket as TLSSocket).servername;
    if (typeof servername !== 'string' || servername === '') return false;
    const sni = normalizeHost(servername);
    return sni !== host && !this.#deps.sameCertificate(sni, host);
  }

  #logAccess(current: Current, status: number): void {
    // rack's own host is no app's: its requests are not any app's `logs` nor its metrics.
    if (current.app === CONTROL_PLANE_APP) return;
    const ms = performance.now() - current.started;
    // Every byte the connection moved is some request's: a pipelined head read early is the next one's.
    const socket = this.#socket;
    const bytesIn = socket.bytesRead - this.#countedIn;
    const bytesOut = socket.bytesWritten - this.#countedOut;
    this.#countedIn = socket.bytesRead;
    this.#countedOut = socket.bytesWritten;
    this.#deps.summaries.record(current.app, current.upstream, status, ms, bytesIn, bytesOut);
    if (this.#deps.onAccess === undefined || !this.#deps.wantsAccess(current.app)) return;
    this.#deps.onAccess({
      app: current.app,
      method: current.req.method,
      path: current.req.target,
      host: current.host,
      status,
      ms: Math.round(ms),
      ip: socket.remoteAddress ?? '',
    });
  }

  /** Bytes past the current request wait for its answer to be complete. */
  surplus(bytes: Buffer): void {
    this.#append(bytes);
    this.#socket.pause();
  }

  #append(bytes: Buffer): void {
    this.#buf = this.#buf === undefined ? bytes : Buffer.concat([this.#buf, bytes]);
    // What is held is read only after the answers before it: hold no more until then.
    if (this.#buf.length > PIPELINED_MAX) this.#socket.pause();
  }

  exchangeEnded(end: ExchangeEnd): void {
    this.#exchange = undefined;
    if (this.#current !== undefined) this.#logAccess(this.#current, end.status);
    this.#current = undefined;
    const socket = this.#socket;
    if (end.tunnel !== undefined) {
      this.#tunnelled = true;
      socket.off('data', this.#onData);
      socket.off('timeout', this.#onTimeout);
      socket.setTimeout(0);
      const early = this.#buf;
      this.#buf = undefined;
      if (early !== undefined) end.tunnel.write(early);
      return;
    }
    if (end.close || socket.destroyed) {
      this.#close();
      return;
    }
    // Off this call stack: the exchange that ended may still be unwinding. Reading resumes there,
    // unless the client has yet to read the answer just sent.
    process.nextTick(() => {
      if (this.#buf !== undefined) this.#readHeads();
      else if (!this.#closing && this.#exchange === undefined) this.#resumeWhenDrained();
    });
  }

  /** Reads on once the socket's write buffer is below its high-water mark. */
  #resumeWhenDrained(): void {
    if (this.#awaitingDrain) return;
    if (!this.#socket.writableNeedDrain) {
      this.#socket.resume();
      return;
    }
    this.#awaitingDrain = true;
    this.#socket.pause();
    this.#socket.once('drain', this.#onDrain);
  }

  /**
   * The router's own answer. The connection goes on unless the request's body is left unread or
   * the client meant to switch protocols on it.
   */
  #answer(req: RequestHead, answer: RackAnswer): void {
    const close = !req.keepAlive || carriesBody(req.framing) || req.upgrade !== undefined;
    this.#socket.write(answerBytes(answer, { close, head: req.method === 'HEAD' }));
    if (close) this.#close();
  }

  /** A head the router cannot read: say why and close, since where the next request starts is unknown. */
  #refuse(err: HeadError): void {
    if (!(err instanceof HeadError)) throw err;
    this.#deps.debug(err, 'router: refused a request');
    const text = err.status === 431 ? 'Request header fields too large' : err.status === 408 ? 'Request timeout' : `Bad request: ${err.message}`;
    this.#socket.write(answerBytes(plainAnswer(err.status, text), { close: true, head: false }));
    this.#close();
  }

  #close(): void {
    this.#closing = true;
    this.#buf = undefined;
    this.#socket.end();
  }
}
