import type { Socket } from 'node:net';
import { BodyFramer } from './body-framer.js';
import { requestHeadForUpstream, responseHeadForClient } from './forward-headers.js';
import { carriesBody, headEnd, HeadError, parseResponseHead, type RequestHead, type ResponseHead } from './http1-head.js';
import { answerBytes, plainAnswer, unansweredAnswer, type RackAnswer } from './rack-answers.js';
import type { Route } from './route-table.js';
import type { Upstream } from './upstream.js';
import { UpstreamAttempt, type ExchangeDeps } from './upstream-attempt.js';
import type { UpstreamUser } from './upstream-pools.js';

/** What the client's connection learns when the exchange is over. */
export interface ExchangeEnd {
  /** The status the client was sent (0: none, the client left or the connection was cut). */
  status: number;
  /** The connection must close: the request or the answer could not be delimited, or it was cut. */
  close: boolean;
  /**
   * The connection now carries another protocol, spliced to this app connection until either side
   * closes; what the client sent past the upgrade request goes to it first.
   */
  tunnel?: Socket;
}

/** The client connection an exchange runs on. */
export interface ExchangeOwner {
  /** Bytes past this request (a pipelined next one), handed back. */
  surplus(bytes: Buffer): void;
  exchangeEnded(end: ExchangeEnd): void;
}

/**
 * A request body up to this size is read whole before the request goes upstream, as nginx does
 * by default. The app then gets the request in one piece, and a slow client does not hold an app
 * connection. It also closes a race: an app that answers early and closes (rackd refusing an
 * unauthenticated upload) would otherwise make the next body write fail, and the answer
 * already on its way would be lost with the connection.
 */
const BUFFERED_BODY_MAX = 64 * 1024;
/** A whole answer up to this size leaves in one write with its head, as one string. */
const ONE_WRITE_MAX = 16 * 1024;
/** Long-lived tunnels through NAT and container bridges die silently without TCP keep-alive. */
const TUNNEL_KEEPALIVE_MS = 30_000;
/**
 * Interim (1xx) answers allowed per request (100 Continue and a few 103 Early Hints are plenty).
 * One more is a broken app: the exchange fails with 502 and the app's connection is closed, since
 * an app sending them without end would otherwise hold the router's memory (to a client that does
 * not read) or its CPU (reading and dropping them) for as long as it liked.
 */
export const INTERIM_MAX = 8;

/**
 * One client request relayed to an app and its answer relayed back, over at most two upstream
 * attempts: write the head → relay the body → read the answer's head → relay its body → hand the
 * upstream connection back. Bodies pass as the bytes they came in; BodyFramer only finds their
 * ends. The in-flight count follows the upstream serving the request and is released once.
 */
export class HttpExchange implements UpstreamUser {
  readonly #deps: ExchangeDeps;
  readonly #client: Socket;
  readonly #req: RequestHead;
  readonly #app: string;
  readonly #hsts: boolean;
  readonly #owner: ExchangeOwner;
  readonly #head: string;
  readonly #requestBody: BodyFramer;
  /** Body bytes held while the upstream connection is being made, so a refused one can be retried. */
  #held: Buffer[] = [];
  /** A small body read whole before sending; kept so a refused connection can be retried with it. */
  #whole: Buffer | undefined;
  /** Where the request goes once its small body is read whole. */
  #pending: Upstream | undefined;
  readonly #upstream: UpstreamAttempt;
  #responseBuf: Buffer | undefined;
  #response: ResponseHead | undefined;
  #responseBody: BodyFramer | undefined;
  /** The status sent to the client; nonzero once the client has bytes of an answer. */
  #status = 0;
  /** The client was told `Connection: close` with the answer. */
  #closeAfter = false;
  #finished = false;
  #interims = 0;
  /** How long the app has for the head of its answer once it has the whole request; 0: no limit. */
  readonly #timeoutMs: number;
  #answerTimer: NodeJS.Timeout | undefined;

  constructor(
    deps: ExchangeDeps,
    client: Socket,
    req: RequestHead,
    route: Route,
    secure: boolean,
    owner: ExchangeOwner,
  ) {
    this.#deps = deps;
    this.#client = client;
    this.#req = req;
    this.#app = route.app;
    this.#hsts = secure && route.https.hsts;
    this.#owner = owner;
    this.#timeoutMs = route.timeoutMs;
    this.#head = requestHeadForUpstream(req, { proto: secure ? 'https' : 'http', socket: client });
    this.#requestBody = new BodyFramer(req.framing, 400);
    this.#upstream = new UpstreamAttempt(deps, route.app, this);
  }

  /** Sends the request to the route's next upstream; `rest` are the bytes read after its head. */
  start(upstream: Upstream, rest: Buffer | undefined): void {
    const framing = this.#req.framing;
    // A client waiting for 100 Continue sends no body until the app has seen the head.
    const small = framing.kind === 'length' && framing.length > 0 && framing.length <= BUFFERED_BODY_MAX;
    if (small && !this.#req.expectsContinue) this.#pending = upstream;
    else this.#send(upstream);
    if (rest !== undefined && rest.length > 0) this.clientData(rest);
  }

  /** The client owes the rest of a small body the router reads before sending anything upstream. */
  get readingBody(): boolean {
    return this.#pending !== undefined;
  }

  /** Bytes from the client while this exchange runs: the request's body, then maybe the next request. */
  clientData(chunk: Buffer): void {
    if (this.#finished) {
      this.#owner.surplus(chunk);
      return;
    }
    let n: number;
    try {
      n = this.#requestBody.take(chunk, 0);
    } catch (err) {
      this.#fail(err as Error, 'client');
      return;
    }
    if (n > 0) this.#forwardBody(n === chunk.length ? chunk : chunk.subarray(0, n));
    if (n < chunk.length) this.#owner.surplus(chunk.subarray(n));
    const pending = this.#pending;
    if (pending !== undefined && this.#requestBody.done) {
      this.#pending = undefined;
      this.#whole = Buffer.concat(this.#held);
      this.#held = [];
      this.#send(pending);
    } else if (n > 0 && this.#requestBody.done) {
      this.#startAnswerTimer();
    }
  }

  /** The app has the whole request (or it is on its way): its answer's head is now due. */
  #startAnswerTimer(): void {
    if (this.#timeoutMs === 0 || this.#answerTimer !== undefined || this.#finished || this.#response !== undefined) return;
    this.#answerTimer = setTimeout(this.#onAnswerTimeout, this.#timeoutMs);
  }

  #stopAnswerTimer(): void {
    if (this.#answerTimer === undefined) return;
    clearTimeout(this.#answerTimer);
    this.#answerTimer = undefined;
  }

  /** As Heroku's H12: the app held the request too long without answering; its connection goes. */
  readonly #onAnswerTimeout = (): void => {
    this.#answerTimer = undefined;
    if (this.#finished || this.#response !== undefined) return;
    const seconds = this.#timeoutMs / 1000;
    this.#deps.logger.warn({ app: this.#app, upstream: this.#upstream.key, timeoutMs: this.#timeoutMs }, 'router: app did not answer in time');
    this.#upstream.drop();
    this.#answerFailure(plainAnswer(504, `Gateway timeout: app ${this.#app} did not answer in ${seconds} s`));
  };

  /** The client went away: cut the upstream request and free its in-flight slot. */
  abort(): void {
    if (this.#finished) return;
    this.#finish({ status: this.#status, close: true }, false);
  }

  #send(upstream: Upstream): void {
    const conn = this.#upstream.lease(upstream);
    const connected = this.#upstream.connected;
    this.#responseBuf = undefined;
    if (this.#whole !== undefined) {
      conn.socket.write(Buffer.concat([Buffer.from(this.#head, 'latin1'), this.#whole]));
      this.#startAnswerTimer();
      return;
    }
    if (this.#requestBody.done) this.#startAnswerTimer();
    // The body waits for the connection, so a refused one leaves it whole for the next attempt.
    if (!connected && carriesBody(this.#req.framing)) this.#client.pause();
    conn.socket.write(this.#head, 'latin1');
    if (connected) this.#flushHeld();
  }

  onUpstreamConnect(): void {
    this.#upstream.onConnect();
    if (this.#whole !== undefined) return;
    this.#flushHeld();
    this.#resumeClientForBody();
  }

  /**
   * Reads on from the client where the exchange paused it for the request's body. Once the body is
   * all read, what the client sends is the next request: the connection holds it back, paused, until
   * this answer has been read, and the exchange must not undo that.
   */
  #resumeClientForBody(): void {
    if (!this.#finished && !this.#requestBody.done) this.#client.resume();
  }

  #flushHeld(): void {
    const held = this.#held;
    this.#held = [];
    for (const chunk of held) this.#writeUpstream(chunk);
  }

  #forwardBody(chunk: Buffer): void {
    if (this.#pending !== undefined) {
      this.#held.push(chunk);
      return;
    }
    if (!this.#upstream.connected) {
      this.#held.push(chunk);
      this.#client.pause();
      return;
    }
    this.#writeUpstream(chunk);
  }

  #writeUpstream(chunk: Buffer): void {
    const socket = this.#upstream.conn?.socket;
    if (socket === undefined || socket.destroyed) return;
    if (!socket.write(chunk)) {
      this.#client.pause();
      socket.once('drain', () => this.#resumeClientForBody());
    }
  }

  onUpstreamData(chunk: Buffer): void {
    if (this.#finished) return;
    try {
      if (this.#responseBody === undefined) this.#readResponseHead(chunk);
      else this.#relayResponseBody(chunk, 0);
    } catch (err) {
      this.#fail(err as Error, 'upstream');
    }
  }

  #readResponseHead(chunk: Buffer): void {
    let buf = this.#responseBuf === undefined ? chunk : Buffer.concat([this.#responseBuf, chunk]);
    for (;;) {
      const end = headEnd(buf, 'response');
      if (end === -1) {
        this.#responseBuf = buf;
        return;
      }
      this.#responseBuf = undefined;
      const res = parseResponseHead(buf, end, this.#req.method);
      if (res.status === 101 && this.#req.upgrade !== undefined) {
        this.#tunnel(res, buf.subarray(end));
        return;
      }
      if (res.status < 200) {
        this.#interim(res);
        buf = buf.subarray(end);
        if (buf.length === 0) return;
        continue;
      }
      this.#response = res;
      this.#stopAnswerTimer();
      const framer = new BodyFramer(res.framing, 502);
      this.#responseBody = framer;
      this.#status = res.status;
      // An answer that comes before the whole request body leaves the rest of it unread.
      this.#closeAfter = this.#closesClient() || !this.#requestBody.done;
      const head = responseHeadForClient(res, { hsts: this.#hsts, close: this.#closeAfter, upgrade: undefined });
      const client = this.#client;
      const rest = buf.length - end;
      const n = framer.take(buf, end);
      if (framer.done && n === rest && rest <= ONE_WRITE_MAX) {
        // The common case, a small answer read whole: one write, and no stream buffering.
        client.write(rest === 0 ? head : head + buf.toString('latin1', end), 'latin1');
        this.#complete(true);
        return;
      }
      client.cork();
      client.write(head, 'latin1');
      this.#relayTaken(buf, end, n);
      client.uncork();
      return;
    }
  }

  /**
   * Interim answers (100 Continue, 103 Early Hints) pass on, the final one follows; at most
   * INTERIM_MAX per request, and none to an HTTP/1.0 client, which has no idea of them (RFC 9110 §15.2).
   */
  #interim(res: ResponseHead): void {
    this.#interims += 1;
    if (this.#interims > INTERIM_MAX) throw new Error(`more than ${INTERIM_MAX} interim answers`);
    if (res.status === 101 || this.#req.minor === 0) return;
    const ok = this.#client.write(responseHeadForClient(res, { hsts: false, close: false, upgrade: undefined }), 'latin1');
    if (!ok) this.#pauseUpstreamUntilDrain();
  }

  /** The client reads slower than the app writes: the app waits, not the router's memory. */
  #pauseUpstreamUntilDrain(): void {
    const socket = this.#upstream.conn?.socket;
    if (socket === undefined || socket.isPaused()) return;
    socket.pause();
    // By the drain the connection may be back in the pool, or serving another exchange that paused it.
    this.#client.once('drain', () => {
      if (this.#upstream.conn?.socket === socket) socket.resume();
    });
  }

  /** The client's connection ends with this answer: it asked to, or the answer's end is the close. */
  #closesClient(): boolean {
    return !this.#req.keepAlive || this.#req.upgrade !== undefined || this.#response?.framing.kind === 'close';
  }

  #relayResponseBody(buf: Buffer, start: number): void {
    this.#relayTaken(buf, start, (this.#responseBody as BodyFramer).take(buf, start));
  }

  /** Sends the client the `n` bytes of `buf` from `start` that the answer's framer took. */
  #relayTaken(buf: Buffer, start: number, n: number): void {
    if (n > 0 && !this.#client.write(start === 0 && n === buf.length ? buf : buf.subarray(start, start + n))) {
      this.#pauseUpstreamUntilDrain();
    }
    if ((this.#responseBody as BodyFramer).done) {
      // Bytes past the answer's end mean the app and the router disagree about it: never reuse.
      this.#complete(start + n === buf.length);
    }
  }

  #complete(clean: boolean): void {
    const res = this.#response as ResponseHead;
    const reusable = clean && this.#requestBody.done && res.keepAlive && this.#req.minor === 1 && this.#req.upgrade === undefined;
    this.#finish({ status: this.#status, close: this.#closeAfter || !this.#requestBody.done }, reusable);
  }

  #tunnel(res: ResponseHead, early: Buffer): void {
    this.#stopAnswerTimer();
    const client = this.#client;
    const { socket, closed: tunnelClosed } = this.#upstream.detach((chunk) => {
      if (client.write(chunk)) return true;
      // The client reads slower than the app writes: the app waits, not the router's memory.
      client.once('drain', () => socket.resume());
      return false;
    });
    this.#status = 101;
    socket.setKeepAlive(true, TUNNEL_KEEPALIVE_MS);
    client.setKeepAlive(true, TUNNEL_KEEPALIVE_MS);
    client.write(responseHeadForClient(res, { hsts: this.#hsts, close: false, upgrade: this.#req.upgrade }), 'latin1');
    if (early.length > 0) client.write(early);
    const closeBoth = (): void => {
      client.destroy();
      socket.destroy();
      tunnelClosed();
    };
    socket.on('error', (err) => this.#deps.logger.debug({ app: this.#app, err: err.message }, 'router: tunnel upstream error'));
    socket.once('close', closeBoth);
    client.once('close', closeBoth);
    this.#finished = true;
    // The connection hands over what it read past the upgrade request, then leaves the socket.
    this.#owner.exchangeEnded({ status: 101, close: false, tunnel: socket });
    // The app's half-close reaches the client, as a pipe would pass it on.
    socket.once('end', () => client.end());
    client.pipe(socket);
    client.resume();
  }

  onUpstreamError(err: Error): void {
    this.#upstreamFailed(err);
  }

  onUpstreamClose(): void {
    if (this.#finished) return;
    const framing = this.#response?.framing;
    if (framing?.kind === 'close') {
      // The close is how this answer ends.
      this.#finish({ status: this.#status, close: true }, false);
      return;
    }
    this.#upstreamFailed(Object.assign(new Error('the app closed the connection'), { code: 'ECONNRESET' }));
  }

  #upstreamFailed(err: Error): void {
    if (this.#finished) return;
    const next = this.#upstream.next(err, {
      method: this.#req.method,
      hasBody: carriesBody(this.#req.framing),
      responseStarted: this.#response !== undefined || this.#responseBuf !== undefined,
    });
    // A connect failure wrote nothing upstream: the head and any held body go again whole.
    if (next !== undefined) this.#send(next);
    else this.#answerFailure(unansweredAnswer(this.#app));
  }

  /** A malformed body from the client (400) or a malformed answer from the app (502). */
  #fail(err: Error, side: 'client' | 'upstream'): void {
    this.#upstream.drop();
    this.#deps.logger.info({ app: this.#app, side, err: err.message }, 'router: refused a malformed message');
    const status = err instanceof HeadError ? err.status : 502;
    // After an app broke HTTP (a malformed answer, an interim flood) the client's connection ends
    // with the 502: what it pipelined behind would each cost a new connection to the same app,
    // and a client that reads nothing could keep the router doing that for megabytes of requests.
    this.#answerFailure(plainAnswer(status, side === 'client' ? `Bad request: ${err.message}` : `Bad gateway: app ${this.#app} sent a malformed answer`), side === 'upstream');
  }

  /** Answers with the router's own status when the client has no byte of an answer yet; else cuts. */
  #answerFailure(answer: RackAnswer, closeClient = false): void {
    if (this.#status !== 0) {
      this.#client.destroy();
      this.#finish({ status: this.#status, close: true }, false);
      return;
    }
    this.#status = answer.status;
    // The request's unread body, if any, is still on the connection: close it after the answer.
    const close = closeClient || !this.#req.keepAlive || !this.#requestBody.done;
    this.#client.write(answerBytes(answer, { close, head: this.#req.method === 'HEAD' }));
    this.#finish({ status: answer.status, close }, false);
  }

  #finish(end: ExchangeEnd, reusable: boolean): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#stopAnswerTimer();
    this.#held = [];
    this.#upstream.end(reusable, this.#response?.idleTimeoutMs);
    this.#owner.exchangeEnded(end);
  }
}
