import { constants, type OutgoingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import type { TLSSocket } from 'node:tls';
import { BodyFramer } from './body-framer.js';
import { requestHeadForUpstream } from './forward-headers.js';
import { fieldBytes, h2AnswerHeaders, h2ResponseHeaders } from './h2-headers.js';
import { carriesBody, headEnd, parseResponseHead, type RequestHead, type ResponseHead } from './http1-head.js';
import { INTERIM_MAX } from './http-exchange.js';
import { plainAnswer, unansweredAnswer, type RackAnswer } from './rack-answers.js';
import type { Route } from './route-table.js';
import type { Upstream } from './upstream.js';
import { UpstreamAttempt, type ExchangeDeps } from './upstream-attempt.js';
import type { UpstreamUser } from './upstream-pools.js';

/** The h2 connection a stream belongs to, told once when the stream's exchange is over. */
export interface H2ExchangeOwner {
  /** `status`: what the client was sent (0: nothing, the stream was cut); bytes: fields and DATA, both ways. */
  streamEnded(exchange: H2Exchange, status: number, bytesIn: number, bytesOut: number): void;
}

/** As HttpExchange: a small body with a known length is read whole before the request goes upstream. */
const BUFFERED_BODY_MAX = 64 * 1024;
/**
 * A client that stops sending in the middle of its body holds an app connection for each stream,
 * up to a hundred per connection: such a stream is reset after this long without a DATA frame.
 */
const BODY_IDLE_MS = 60_000;
const CRLF = Buffer.from('\r\n', 'latin1');
const LAST_CHUNK = Buffer.from('0\r\n\r\n', 'latin1');

/**
 * One HTTP/2 stream relayed to an app as an HTTP/1.1 request over the same keep-alive pools, timeouts
 * and retry policy as HttpExchange: write the head → relay DATA as the body (chunked when the client
 * gave no length) → read the answer's head → send it as HEADERS → its body, de-chunked, as DATA →
 * hand the app connection back. The client's flow control is the backpressure both ways: a stream
 * that is not read pauses the app's connection, an app that does not read pauses the stream.
 */
export class H2Exchange implements UpstreamUser {
  readonly #deps: ExchangeDeps;
  readonly #stream: ServerHttp2Stream;
  readonly #req: RequestHead;
  readonly #app: string;
  readonly #hsts: boolean;
  readonly #owner: H2ExchangeOwner;
  readonly #head: string;
  readonly #timeoutMs: number;
  /** The client gave no length: the router frames the body in chunks for the app. */
  readonly #chunked: boolean;
  /** Body bytes the client still owes by its content-length (chunked: unknown, -1). */
  #owed: number;
  #bodyDone: boolean;
  #bodyEndSent = false;
  /** Body bytes held until the app connection is made (so a refused one can be retried), or all of a small body. */
  #held: Buffer[] = [];
  #whole: Buffer | undefined;
  #pending: Upstream | undefined;
  readonly #upstream: UpstreamAttempt;
  #responseBuf: Buffer | undefined;
  #response: ResponseHead | undefined;
  #responseBody: BodyFramer | undefined;
  /** The status the client was sent; nonzero once the answer's HEADERS went. */
  #status = 0;
  #finished = false;
  #interims = 0;
  #answerTimer: NodeJS.Timeout | undefined;
  #bytesIn = 0;
  #bytesOut = 0;

  constructor(deps: ExchangeDeps, stream: ServerHttp2Stream, client: TLSSocket, req: RequestHead, route: Route, owner: H2ExchangeOwner, requestFieldBytes: number) {
    this.#deps = deps;
    this.#stream = stream;
    this.#req = req;
    this.#app = route.app;
    this.#hsts = route.https.hsts;
    this.#owner = owner;
    this.#timeoutMs = route.timeoutMs;
    this.#head = requestHeadForUpstream(req, { proto: 'https', socket: client });
    this.#chunked = req.framing.kind === 'chunked';
    this.#owed = req.framing.kind === 'length' ? req.framing.length : -1;
    this.#bodyDone = !carriesBody(req.framing);
    this.#bytesIn = requestFieldBytes;
    this.#upstream = new UpstreamAttempt(deps, route.app, this);
  }

  /** Sends the request to `upstream`; the stream's DATA follows as it comes. */
  start(upstream: Upstream): void {
    const stream = this.#stream;
    stream.on('data', this.#onData);
    stream.on('end', this.#onEnd);
    // Trailers of a request have nowhere to go in the HTTP/1.1 head already sent: dropped.
    stream.on('close', () => this.abort());
    if (!this.#bodyDone) stream.setTimeout(BODY_IDLE_MS, this.#onBodyIdle);
    // A client waiting for 100 Continue sends no body until the app has seen the head.
    const small = this.#owed > 0 && this.#owed <= BUFFERED_BODY_MAX;
    if (small && !this.#req.expectsContinue) this.#pending = upstream;
    else this.#send(upstream);
  }

  readonly #onData = (chunk: Buffer): void => {
    if (this.#finished) return;
    this.#bytesIn += chunk.length;
    if (this.#owed >= 0) {
      // nghttp2 resets a stream whose DATA outruns its content-length first; checked here all the same.
      if (chunk.length > this.#owed) {
        this.#refuseBody('more DATA than its content-length');
        return;
      }
      this.#owed -= chunk.length;
    }
    if (this.#pending !== undefined || !this.#upstream.connected) {
      this.#held.push(chunk);
      if (this.#pending === undefined) this.#stream.pause();
      return;
    }
    this.#writeBody(chunk);
  };

  readonly #onEnd = (): void => {
    if (this.#finished) return;
    this.#stream.setTimeout(0);
    if (this.#owed > 0) {
      this.#refuseBody('less DATA than its content-length');
      return;
    }
    this.#bodyDone = true;
    const pending = this.#pending;
    if (pending !== undefined) {
      this.#pending = undefined;
      this.#whole = Buffer.concat(this.#held);
      this.#held = [];
      this.#send(pending);
      return;
    }
    if (this.#upstream.connected) this.#writeBodyEnd();
    this.#startAnswerTimer();
  };

  readonly #onBodyIdle = (): void => {
    if (this.#finished || this.#bodyDone) return;
    this.#deps.logger.info({ app: this.#app }, 'router: h2 stream sent no DATA for too long; reset');
    this.#upstream.drop();
    this.#stream.close(constants.NGHTTP2_CANCEL);
    this.#finish(false);
  };

  /** A body that is not the length it said: a malformed stream (RFC 9113 §8.1.1), reset; the app's connection goes. */
  #refuseBody(why: string): void {
    this.#deps.logger.info({ app: this.#app, err: why }, 'router: refused a malformed h2 stream');
    this.#upstream.drop();
    this.#stream.close(constants.NGHTTP2_PROTOCOL_ERROR);
    this.#finish(false);
  }

  #send(upstream: Upstream): void {
    const conn = this.#upstream.lease(upstream);
    this.#responseBuf = undefined;
    this.#bodyEndSent = false;
    if (this.#whole !== undefined) {
      conn.socket.write(Buffer.concat([Buffer.from(this.#head, 'latin1'), this.#whole]));
      this.#bodyEndSent = true;
      this.#startAnswerTimer();
      return;
    }
    conn.socket.write(this.#head, 'latin1');
    if (this.#bodyDone) this.#startAnswerTimer();
    if (this.#upstream.connected) this.#flushHeld();
  }

  onUpstreamConnect(): void {
    this.#upstream.onConnect();
    if (this.#whole !== undefined) return;
    this.#flushHeld();
  }

  #flushHeld(): void {
    const held = this.#held;
    this.#held = [];
    for (const chunk of held) this.#writeBody(chunk);
    if (this.#bodyDone) this.#writeBodyEnd();
    else if (!this.#finished) this.#stream.resume();
  }

  #writeBody(chunk: Buffer): void {
    const socket = this.#upstream.conn?.socket;
    if (socket === undefined || socket.destroyed || chunk.length === 0) return;
    let ok: boolean;
    if (this.#chunked) {
      socket.cork();
      socket.write(`${chunk.length.toString(16)}\r\n`, 'latin1');
      socket.write(chunk);
      ok = socket.write(CRLF);
      socket.uncork();
    } else {
      ok = socket.write(chunk);
    }
    if (!ok) {
      // The app reads slower than the client sends: the stream waits, and with it its flow-control window.
      this.#stream.pause();
      socket.once('drain', () => {
        if (!this.#finished && this.#upstream.conn?.socket === socket) this.#stream.resume();
      });
    }
  }

  #writeBodyEnd(): void {
    if (this.#bodyEndSent) return;
    this.#bodyEndSent = true;
    if (this.#chunked) this.#upstream.conn?.socket.write(LAST_CHUNK);
  }

  #startAnswerTimer(): void {
    if (this.#timeoutMs === 0 || this.#answerTimer !== undefined || this.#finished || this.#response !== undefined) return;
    this.#answerTimer = setTimeout(this.#onAnswerTimeout, this.#timeoutMs);
  }

  #stopAnswerTimer(): void {
    if (this.#answerTimer === undefined) return;
    clearTimeout(this.#answerTimer);
    this.#answerTimer = undefined;
  }

  readonly #onAnswerTimeout = (): void => {
    this.#answerTimer = undefined;
    if (this.#finished || this.#response !== undefined) return;
    this.#deps.logger.warn({ app: this.#app, upstream: this.#upstream.key, timeoutMs: this.#timeoutMs }, 'router: app did not answer in time');
    this.#upstream.drop();
    this.#answerFailure(plainAnswer(504, `Gateway timeout: app ${this.#app} did not answer in ${this.#timeoutMs / 1000} s`));
  };

  /** The client reset the stream or went away: cut the app's request and free its in-flight slot. */
  abort(): void {
    if (this.#finished) return;
    this.#finish(false);
  }

  onUpstreamData(chunk: Buffer): void {
    if (this.#finished) return;
    try {
      if (this.#responseBody === undefined) this.#readResponseHead(chunk);
      else this.#relayTaken(chunk, 0, this.#responseBody.take(chunk, 0));
    } catch (err) {
      this.#malformedAnswer(err as Error);
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
      if (res.status < 200) {
        this.#interim(res);
        buf = buf.subarray(end);
        if (buf.length === 0) return;
        continue;
      }
      this.#response = res;
      this.#stopAnswerTimer();
      const framer = new BodyFramer(res.framing, 502, res.framing.kind === 'chunked' ? this.#relayChunkData : undefined);
      this.#responseBody = framer;
      if (!this.#respond(h2ResponseHeaders(res, this.#hsts), framer.done)) return;
      // The app's head stands for the fields sent (HPACK makes them smaller still): no count per field.
      this.#bytesOut += end;
      this.#status = res.status;
      this.#relayTaken(buf, end, framer.take(buf, end));
      return;
    }
  }

  /** Sends the answer's HEADERS; false when the stream is already gone (the exchange is then over). */
  #respond(headers: OutgoingHttpHeaders, endStream: boolean): boolean {
    const stream = this.#stream;
    if (stream.destroyed || stream.closed) {
      this.#finish(false);
      return false;
    }
    stream.respond(headers, { endStream });
    return true;
  }

  /** 100 Continue and 103 Early Hints pass on as informational HEADERS; a stray 101 has no place in HTTP/2. */
  #interim(res: ResponseHead): void {
    this.#interims += 1;
    if (this.#interims > INTERIM_MAX) throw new Error(`more than ${INTERIM_MAX} interim answers`);
    if (res.status === 101 || this.#stream.headersSent || this.#stream.destroyed) return;
    this.#stream.additionalHeaders(h2ResponseHeaders(res, false));
  }

  readonly #relayChunkData = (buf: Buffer, start: number, end: number): void => {
    if (end > start) this.#write(buf.subarray(start, end));
  };

  /** Relays the `n` bytes of `buf` from `start` that the answer's framer took (chunked: already relayed). */
  #relayTaken(buf: Buffer, start: number, n: number): void {
    const framer = this.#responseBody as BodyFramer;
    if (n > 0 && (this.#response as ResponseHead).framing.kind !== 'chunked') {
      const bytes = start === 0 && n === buf.length ? buf : buf.subarray(start, start + n);
      // The last bytes go with the end: a write of their own would complete after the stream is
      // gone, and node makes an error (stack trace and all) for every such late callback.
      if (framer.done && !this.#stream.writableEnded) {
        this.#bytesOut += bytes.length;
        this.#stream.end(bytes);
      } else {
        this.#write(bytes);
      }
    }
    if (framer.done) this.#complete(start + n === buf.length);
  }

  #write(bytes: Buffer): void {
    if (this.#finished) return;
    this.#bytesOut += bytes.length;
    if (!this.#stream.write(bytes)) this.#pauseUpstreamUntilDrain();
  }

  /** The client reads slower than the app writes: the app waits, not the router's memory. */
  #pauseUpstreamUntilDrain(): void {
    const socket = this.#upstream.conn?.socket;
    if (socket === undefined || socket.isPaused()) return;
    socket.pause();
    this.#stream.once('drain', () => {
      if (this.#upstream.conn?.socket === socket) socket.resume();
    });
  }

  #complete(clean: boolean): void {
    const stream = this.#stream;
    if (!stream.writableEnded) stream.end();
    // An answer before the whole body: the rest is not wanted (RFC 9113 §8.1), and the app's
    // connection, with part of a body on it, is not reused.
    if (!this.#bodyDone) stream.close(constants.NGHTTP2_NO_ERROR);
    const res = this.#response as ResponseHead;
    this.#finish(clean && this.#bodyDone && this.#bodyEndSent && res.keepAlive);
  }

  onUpstreamError(err: Error): void {
    this.#upstreamFailed(err);
  }

  onUpstreamClose(): void {
    if (this.#finished) return;
    if (this.#response?.framing.kind === 'close') {
      this.#complete(false);
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
    if (next !== undefined) this.#send(next);
    else this.#answerFailure(unansweredAnswer(this.#app));
  }

  #malformedAnswer(err: Error): void {
    this.#upstream.drop();
    this.#deps.logger.info({ app: this.#app, side: 'upstream', err: err.message }, 'router: refused a malformed message');
    this.#answerFailure(plainAnswer(502, `Bad gateway: app ${this.#app} sent a malformed answer`));
  }

  /** rack's own answer while the client has no HEADERS yet; else the stream is reset (its answer is cut). */
  #answerFailure(answer: RackAnswer): void {
    const stream = this.#stream;
    if (this.#status !== 0) {
      if (!stream.destroyed) stream.close(constants.NGHTTP2_INTERNAL_ERROR);
      this.#finish(false);
      return;
    }
    const head = this.#req.method === 'HEAD';
    const headers = h2AnswerHeaders(answer);
    if (!this.#respond(headers, head)) return;
    this.#bytesOut += fieldBytes(headers);
    this.#status = answer.status;
    stream.end(head ? undefined : answer.body);
    if (!head) this.#bytesOut += answer.body.length;
    if (!this.#bodyDone) stream.close(constants.NGHTTP2_NO_ERROR);
    this.#finish(false);
  }

  #finish(reusable: boolean): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#stopAnswerTimer();
    this.#held = [];
    this.#whole = undefined;
    const stream = this.#stream;
    stream.off('data', this.#onData);
    stream.off('end', this.#onEnd);
    stream.setTimeout(0);
    // Never left open with nothing to end it: a stream cut before its answer is reset.
    if (!stream.destroyed && !stream.writableEnded) stream.close(constants.NGHTTP2_CANCEL);
    this.#upstream.end(reusable, this.#response?.idleTimeoutMs);
    this.#owner.streamEnded(this, this.#status, this.#bytesIn, this.#bytesOut);
  }
}
