import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';
import type { Logger } from '../log.js';
import { requestHeadersForUpstream, responseHeadersForClient } from './forward-headers.js';
import type { InFlight } from './in-flight.js';
import { answerPlain, answerRackUnavailable } from './rack-answers.js';
import { mayRetry } from './retry-policy.js';
import type { Route } from './route-table.js';
import { CONTROL_PLANE_APP, upstreamKey, type Upstream } from './upstream.js';
import type { UpstreamPools } from './upstream-pools.js';

export interface ForwardDeps {
  pools: UpstreamPools;
  inFlight: InFlight;
  logger: Logger;
  /** The app's route as it is now, so a retry follows a swap that happened meanwhile. */
  currentRoute: (app: string) => Route | undefined;
}

const MAX_ATTEMPTS = 2;
/** One year, as the HSTS preload list asks; only ever sent over HTTPS (RFC 6797 §7.2). */
const HSTS = ['Strict-Transport-Security', 'max-age=31536000'] as const;

class ClientGoneError extends Error {
  constructor() {
    super('client closed the connection');
    this.name = 'ClientGoneError';
  }
}

function requestHasBody(req: IncomingMessage): boolean {
  if (req.headers['transfer-encoding'] !== undefined) return true;
  const length = req.headers['content-length'];
  return length !== undefined && length !== '0';
}

/**
 * One client request and its answer, across at most two upstream attempts. The in-flight count
 * follows the upstream currently serving it and is released once, when the client's response
 * closes (fully sent or aborted).
 */
class Exchange {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly app: string;
  readonly hasBody: boolean;
  readonly headers: string[];
  /** Add HSTS to the answer unless the app sent its own. */
  readonly hsts: boolean;
  readonly deps: ForwardDeps;
  attempts = 0;
  current: Attempt | undefined;
  inFlightKey: string | undefined;
  clientGone = false;

  constructor(deps: ForwardDeps, req: IncomingMessage, res: ServerResponse, app: string, secure: boolean, hsts: boolean) {
    this.deps = deps;
    this.req = req;
    this.res = res;
    this.app = app;
    this.hasBody = requestHasBody(req);
    this.hsts = secure && hsts;
    this.headers = requestHeadersForUpstream(req, { upgrade: false, proto: secure ? 'https' : 'http' });
    res.once('close', () => this.#onClientClose());
  }

  send(upstream: Upstream): void {
    this.attempts += 1;
    const key = upstreamKey(upstream);
    if (this.inFlightKey !== undefined) this.deps.inFlight.decrement(this.inFlightKey);
    this.deps.inFlight.increment(key);
    this.inFlightKey = key;
    const attempt = new Attempt(this, upstream);
    this.current = attempt;
    const opts: Dispatcher.DispatchOptions = {
      method: this.req.method ?? 'GET',
      path: this.req.url ?? '/',
      headers: this.headers,
      body: this.hasBody ? this.req : null,
    };
    try {
      this.deps.pools.get(upstream).dispatch(opts, attempt);
    } catch (err) {
      // dispatch reports through the handler; a throw here means the handler itself failed.
      attempt.onError(err instanceof Error ? err : new Error(String(err)));
    }
  }

  failed(attempt: Attempt, err: Error): void {
    if (attempt !== this.current || this.clientGone) return;
    const { logger } = this.deps;
    const code = (err as { code?: unknown }).code;
    if (this.attempts < MAX_ATTEMPTS && mayRetry(err, attempt)) {
      const next = this.deps.currentRoute(this.app)?.next();
      if (next !== undefined) {
        logger.info({ app: this.app, upstream: attempt.key, next: upstreamKey(next), code }, 'router: retrying on next upstream');
        // Out of undici's error callback: it is still unwinding the failed client's queue.
        queueMicrotask(() => {
          if (this.clientGone) return;
          this.send(next);
        });
        return;
      }
    }
    logger.warn({ app: this.app, upstream: attempt.key, code, err: err.message }, 'router: upstream request failed');
    if (this.res.headersSent) {
      // Half an answer is already with the client; cutting the connection is the only honest signal.
      this.res.destroy(err);
      return;
    }
    if (this.app === CONTROL_PLANE_APP) answerRackUnavailable(this.res, attempt.bodyTouched);
    else answerPlain(this.res, 502, `Bad gateway: app ${this.app} did not answer`, attempt.bodyTouched);
  }

  #onClientClose(): void {
    if (!this.res.writableFinished) {
      this.clientGone = true;
      this.current?.abort(new ClientGoneError());
    }
    if (this.inFlightKey !== undefined) {
      this.deps.inFlight.decrement(this.inFlightKey);
      this.inFlightKey = undefined;
    }
  }
}

/**
 * One dispatch to one upstream; undici calls these hooks, and none may throw into undici.
 * These are undici's raw hooks, kept on purpose: its newer controller API wraps them and parses
 * every response's headers (and trailers) into objects the router never reads. onData returning
 * false pauses the upstream socket until resume().
 */
class Attempt implements Dispatcher.DispatchHandler {
  readonly key: string;
  readonly method: string;
  readonly hasBody: boolean;
  dispatched = false;
  responseStarted = false;
  #abort: ((err?: Error) => void) | undefined;
  #abortReason: Error | undefined;
  #resume: (() => void) | undefined;
  /**
   * The first body chunk waits for the end of the same read, so a small answer leaves as one
   * write (head, body and end together) instead of two.
   */
  #held: Buffer | undefined;
  #done = false;
  readonly #exchange: Exchange;

  constructor(exchange: Exchange, upstream: Upstream) {
    this.#exchange = exchange;
    this.key = upstreamKey(upstream);
    this.method = exchange.req.method ?? 'GET';
    this.hasBody = exchange.hasBody;
  }

  /** undici may have read part of the client's body, so that connection must not be reused. */
  get bodyTouched(): boolean {
    return this.hasBody && this.dispatched;
  }

  abort(reason: Error): void {
    if (this.#abort !== undefined) this.#abort(reason);
    else this.#abortReason = reason;
  }

  onConnect(abort: (err?: Error) => void): void {
    this.#abort = abort;
    this.dispatched = true;
    // The client left while this request sat in the pool's queue: abort before a byte is written.
    if (this.#abortReason !== undefined) abort(this.#abortReason);
  }

  onResponseStarted(): void {
    this.responseStarted = true;
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void, statusMessage: string): boolean {
    // 1xx hints are not relayed; the final status follows on the same call path.
    if (statusCode < 200) return true;
    this.responseStarted = true;
    this.#resume = resume;
    const { res } = this.#exchange;
    if (res.destroyed || res.headersSent) return true;
    const { headers, hasHsts } = responseHeadersForClient(rawHeaders);
    if (this.#exchange.hsts && !hasHsts) headers.push(...HSTS);
    try {
      if (statusMessage) res.writeHead(statusCode, statusMessage, headers);
      else res.writeHead(statusCode, headers);
    } catch (err) {
      // node refuses some bytes llhttp let through; the answer cannot be relayed faithfully.
      this.abort(err instanceof Error ? err : new Error(String(err)));
    }
    return true;
  }

  onData(chunk: Buffer): boolean {
    const { res } = this.#exchange;
    if (res.destroyed || res.writableEnded) return true;
    if (this.#held === undefined && !res.headersSent) {
      this.#held = chunk;
      queueMicrotask(() => this.#flushHeld());
      return true;
    }
    this.#flushHeld();
    return this.#write(chunk);
  }

  onComplete(): void {
    this.#done = true;
    const { res } = this.#exchange;
    const held = this.#held;
    this.#held = undefined;
    if (res.destroyed || res.writableEnded) return;
    if (held !== undefined) res.end(held);
    else res.end();
  }

  onError(err: Error): void {
    if (this.#done) return;
    this.#done = true;
    this.#held = undefined;
    try {
      this.#exchange.failed(this, err);
    } catch (e) {
      this.#exchange.deps.logger.error({ err: e }, 'router: failed to answer after upstream error');
      this.#exchange.res.destroy();
    }
  }

  /** A streamed answer: the first chunk goes out once the read that brought it is over. */
  #flushHeld(): void {
    const held = this.#held;
    if (held === undefined) return;
    this.#held = undefined;
    const { res } = this.#exchange;
    if (!res.destroyed && !res.writableEnded) this.#write(held);
  }

  #write(chunk: Buffer): boolean {
    const { res } = this.#exchange;
    if (res.write(chunk)) return true;
    // Backpressure: hold the upstream socket until the client catches up.
    res.once('drain', () => this.#resume?.());
    return false;
  }
}

/** Send one client request to the app's next upstream and stream the answer back. */
export function forwardRequest(deps: ForwardDeps, req: IncomingMessage, res: ServerResponse, route: Route, secure: boolean): void {
  const upstream = route.next();
  if (upstream === undefined) {
    answerPlain(res, 503, `No web processes are running for app ${route.app}`);
    return;
  }
  new Exchange(deps, req, res, route.app, secure, route.https.hsts).send(upstream);
}
