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
      attempt.onResponseError(undefined, err instanceof Error ? err : new Error(String(err)));
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

/** One dispatch to one upstream; undici calls these hooks. None may throw into undici. */
class Attempt implements Dispatcher.DispatchHandler {
  readonly key: string;
  readonly method: string;
  readonly hasBody: boolean;
  dispatched = false;
  responseStarted = false;
  #controller: Dispatcher.DispatchController | undefined;
  #abortReason: Error | undefined;
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
    if (this.#controller !== undefined) this.#controller.abort(reason);
    else this.#abortReason = reason;
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    this.dispatched = true;
    // The client left while this request sat in the pool's queue: abort before a byte is written.
    if (this.#abortReason !== undefined) controller.abort(this.#abortReason);
  }

  onResponseStarted(): void {
    this.responseStarted = true;
  }

  onResponseStart(
    controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: Record<string, string | string[] | undefined>,
    statusMessage?: string,
  ): void {
    // 1xx hints are not relayed; the final status follows on the same call path.
    if (statusCode < 200) return;
    this.responseStarted = true;
    const { res } = this.#exchange;
    if (res.destroyed || res.headersSent) return;
    const raw = controller.rawHeaders;
    const list = Array.isArray(raw) ? responseHeadersForClient(raw) : responseHeadersForClient(flatten(headers));
    if (this.#exchange.hsts && headers['strict-transport-security'] === undefined) list.push(...HSTS);
    try {
      if (statusMessage) res.writeHead(statusCode, statusMessage, list);
      else res.writeHead(statusCode, list);
    } catch (err) {
      // node refuses some bytes llhttp let through; the answer cannot be relayed faithfully.
      controller.abort(err instanceof Error ? err : new Error(String(err)));
    }
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    const { res } = this.#exchange;
    if (res.destroyed || res.writableEnded) return;
    if (!res.write(chunk)) {
      // Backpressure: hold the upstream socket until the client catches up.
      controller.pause();
      res.once('drain', () => controller.resume());
    }
  }

  onResponseEnd(): void {
    this.#done = true;
    const { res } = this.#exchange;
    if (!res.destroyed && !res.writableEnded) res.end();
  }

  onResponseError(_controller: Dispatcher.DispatchController | undefined, err: Error): void {
    if (this.#done) return;
    this.#done = true;
    try {
      this.#exchange.failed(this, err);
    } catch (e) {
      this.#exchange.deps.logger.error({ err: e }, 'router: failed to answer after upstream error');
      this.#exchange.res.destroy();
    }
  }
}

function flatten(headers: Record<string, string | string[] | undefined>): string[] {
  const out: string[] = [];
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    if (Array.isArray(value)) for (const v of value) out.push(name, v);
    else out.push(name, value);
  }
  return out;
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
