import { constants, createServer, type Http2Server, type IncomingHttpHeaders, type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2';
import type { TLSSocket } from 'node:tls';
import type { ConnectionDeps } from './client-connection.js';
import { h2RequestHead } from './h2-checks.js';
import { H2Exchange, type H2ExchangeOwner } from './h2-exchange.js';
import { h2AnswerHeaders } from './h2-headers.js';
import { HeadError, MAX_HEAD_BYTES, type RequestHead } from './http1-head.js';
import { plainAnswer, type RackAnswer } from './rack-answers.js';
import { normalizeHost } from './route-table.js';
import { CONTROL_PLANE_APP, upstreamKey } from './upstream.js';

/** Streams one connection may have open at once (browsers open 100 at most, by the spec's advice). */
export const H2_MAX_STREAMS = 100;
/** An HTTP/2 connection with no stream open is closed (with a GOAWAY) after this long, as HTTP/1.1's idle ones. */
const IDLE_MS = 60_000;

/**
 * What every HTTP/2 connection announces. The header list is bounded as HTTP/1.1 heads are (a
 * larger one resets the stream); no server push; no extended CONNECT (RFC 8441), so WebSockets stay
 * on HTTP/1.1 connections.
 */
const SETTINGS = { maxConcurrentStreams: H2_MAX_STREAMS, maxHeaderListSize: MAX_HEAD_BYTES, enablePush: false, enableConnectProtocol: false };

/** What a stream's access line and summary need once it ends. */
interface Current {
  req: RequestHead;
  app: string;
  host: string;
  upstream: string;
  started: number;
}

/**
 * Turns TLS connections that negotiated `h2` by ALPN into HTTP/2 sessions. node's http2 server is used
 * only to make sessions: it never listens, the router's one TLS listener hands it each h2 socket, and
 * everything else on that listener stays on the HTTP/1.1 path.
 */
export class H2Sessions {
  readonly #server: Http2Server;
  readonly #deps: ConnectionDeps;
  /** The socket being handed to the server: its `session` event comes synchronously, with no socket to tell which. */
  #arriving: { socket: TLSSocket; session?: ServerHttp2Session } | undefined;

  constructor(deps: ConnectionDeps) {
    this.#deps = deps;
    this.#server = createServer({ settings: SETTINGS });
    this.#server.on('session', (session: ServerHttp2Session) => {
      if (this.#arriving !== undefined) this.#arriving.session = session;
    });
    this.#server.on('sessionError', (err: Error) => deps.debug(err, 'router: h2 session error'));
  }

  /** The session serving `socket`; undefined when node made none (the socket is then closed). */
  serve(socket: TLSSocket): H2Session | undefined {
    const arriving: { socket: TLSSocket; session?: ServerHttp2Session } = { socket };
    this.#arriving = arriving;
    try {
      this.#server.emit('connection', socket);
    } finally {
      this.#arriving = undefined;
    }
    if (arriving.session === undefined) {
      this.#deps.debug(new Error('node made no HTTP/2 session for the connection'), 'router: h2 connection refused');
      socket.destroy();
      return undefined;
    }
    return new H2Session(arriving.session, socket, this.#deps);
  }
}

/**
 * One HTTP/2 connection: each stream is routed as an HTTP/1.1 request would be (ClientConnection's
 * rules: 421 for a host another certificate serves, 404, 503, rack's own host) and relayed by an
 * H2Exchange. ACME challenges and the HTTPS redirect are plain-HTTP matters and never arise here.
 */
export class H2Session implements H2ExchangeOwner {
  readonly #session: ServerHttp2Session;
  readonly #socket: TLSSocket;
  readonly #deps: ConnectionDeps;
  readonly #open = new Map<H2Exchange, Current>();
  #handingOff = false;

  constructor(session: ServerHttp2Session, socket: TLSSocket, deps: ConnectionDeps) {
    this.#session = session;
    this.#socket = socket;
    this.#deps = deps;
    session.on('stream', this.#onStream);
    session.on('error', (err) => deps.debug(err, 'router: h2 session error'));
    session.on('frameError', (type: number, code: number) => deps.debug(new Error(`frame type ${type} not sent: code ${code}`), 'router: h2 frame error'));
    session.setTimeout(IDLE_MS, this.#onIdle);
  }

  /** A successor serves the listeners: GOAWAY now; the streams under way finish, then the connection closes. */
  handOff(): void {
    if (this.#handingOff) return;
    this.#handingOff = true;
    this.#goaway();
  }

  readonly #onIdle = (): void => {
    // A stream under way is its app's to time out, as a request is over HTTP/1.1.
    if (this.#open.size === 0) this.#goaway();
  };

  #goaway(): void {
    if (this.#session.closed || this.#session.destroyed) return;
    this.#session.close();
  }

  readonly #onStream = (stream: ServerHttp2Stream, _headers: IncomingHttpHeaders, flags: number, rawHeaders: string[]): void => {
    stream.on('error', (err) => this.#deps.debug(err, 'router: h2 stream error'));
    let fields = 0;
    for (const field of rawHeaders) fields += field.length + 16;
    const endStream = (flags & constants.NGHTTP2_FLAG_END_STREAM) !== 0;
    const answer = (method: string, rackAnswer: RackAnswer): void => answerStream(stream, method, rackAnswer, !endStream);
    let req: RequestHead;
    try {
      req = h2RequestHead(rawHeaders, endStream);
    } catch (err) {
      if (!(err instanceof HeadError)) throw err;
      this.#deps.debug(err, 'router: refused an h2 request');
      answer('GET', plainAnswer(err.status, err.status === 431 ? 'Request header fields too large' : `Bad request: ${err.message}`));
      return;
    }
    const host = normalizeHost(req.host);
    if (this.#misdirected(host)) {
      answer(req.method, plainAnswer(421, "Misdirected request: this connection's certificate is for another host"));
      return;
    }
    const route = this.#deps.lookup(host);
    if (route === undefined) {
      // Never the host itself: an answer that echoes what the client sent is a reflection vector.
      answer(req.method, plainAnswer(404, 'No app is served at this address'));
      return;
    }
    // As on HTTP/1.1 (client-connection.ts): the app is down for work, its processes run on.
    if (route.maintenanceAnswer !== undefined) {
      answer(req.method, route.maintenanceAnswer);
      this.#record({ req, app: route.app, host, upstream: '', started: performance.now() }, 503, fields, 0);
      return;
    }
    const upstream = route.next();
    if (upstream === undefined) {
      answer(req.method, plainAnswer(503, `No web processes are running for app ${route.app}`));
      this.#record({ req, app: route.app, host, upstream: '', started: performance.now() }, 503, fields, 0);
      return;
    }
    const exchange = new H2Exchange(this.#deps, stream, this.#socket, req, route, this, fields);
    this.#open.set(exchange, { req, app: route.app, host, upstream: upstreamKey(upstream), started: performance.now() });
    exchange.start(upstream);
  };

  /** As ClientConnection's: a browser reuses a connection for every host its certificate names (RFC 9110 §7.4). */
  #misdirected(host: string): boolean {
    const servername = this.#socket.servername;
    if (typeof servername !== 'string' || servername === '') return false;
    const sni = normalizeHost(servername);
    return sni !== host && !this.#deps.sameCertificate(sni, host);
  }

  streamEnded(exchange: H2Exchange, status: number, bytesIn: number, bytesOut: number): void {
    const current = this.#open.get(exchange);
    this.#open.delete(exchange);
    if (current !== undefined) this.#record(current, status, bytesIn, bytesOut);
  }

  #record(current: Current, status: number, bytesIn: number, bytesOut: number): void {
    // rack's own host is no app's: its requests are not any app's `logs` nor its metrics.
    if (current.app === CONTROL_PLANE_APP) return;
    const ms = performance.now() - current.started;
    this.#deps.summaries.record(current.app, current.upstream, status, ms, bytesIn, bytesOut);
    if (this.#deps.onAccess === undefined || !this.#deps.wantsAccess(current.app)) return;
    this.#deps.onAccess({
      app: current.app,
      method: current.req.method,
      path: current.req.target,
      host: current.host,
      status,
      ms: Math.round(ms),
      ip: this.#socket.remoteAddress ?? '',
      protocol: 'HTTP/2',
    });
  }
}

/**
 * rack's own answer on a stream no exchange serves. Whatever body the client is still sending is not
 * read: the stream is then reset with NO_ERROR once the answer is out (RFC 9113 §8.1).
 */
function answerStream(stream: ServerHttp2Stream, method: string, rackAnswer: RackAnswer, bodyPending: boolean): void {
  if (stream.destroyed || stream.closed) return;
  const head = method === 'HEAD';
  stream.respond(h2AnswerHeaders(rackAnswer), { endStream: head });
  if (!head) stream.end(rackAnswer.body);
  if (bodyPending) stream.close(constants.NGHTTP2_NO_ERROR);
}
