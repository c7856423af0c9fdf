import type { IncomingMessage } from 'node:http';
import { connect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from '../log.js';
import { requestHeadersForUpstream } from './forward-headers.js';
import type { InFlight } from './in-flight.js';
import { answerPlainRaw } from './rack-answers.js';
import { mayRetry } from './retry-policy.js';
import type { Route } from './route-table.js';
import { upstreamKey, type Upstream } from './upstream.js';

export interface TunnelDeps {
  inFlight: InFlight;
  logger: Logger;
  currentRoute: (app: string) => Route | undefined;
  /** Sockets node no longer tracks after an upgrade; the router must close them on stop. */
  track: (socket: Duplex) => void;
}

const CONNECT_TIMEOUT_MS = 5_000;
/** Long-lived tunnels through NAT and container bridges die silently without TCP keep-alive. */
const KEEPALIVE_MS = 30_000;

/** The upgrade request as the upstream must see it, written by hand since the socket is raw. */
function requestHead(req: IncomingMessage, secure: boolean): string {
  const headers = requestHeadersForUpstream(req, { upgrade: true, proto: secure ? 'https' : 'http' });
  let head = `${req.method ?? 'GET'} ${req.url ?? '/'} HTTP/1.1\r\n`;
  for (let i = 0; i + 1 < headers.length; i += 2) head += `${headers[i]}: ${headers[i + 1]}\r\n`;
  return `${head}\r\n`;
}

/**
 * A websocket (or any Upgrade) request: dial an upstream, replay the request, then splice the two
 * sockets. The app answers the handshake itself; from then on bytes pass untouched.
 */
export function tunnelUpgrade(deps: TunnelDeps, req: IncomingMessage, client: Duplex, head: Buffer, route: Route, secure: boolean): void {
  const { inFlight, logger } = deps;
  const app = route.app;
  client.on('error', (err) => logger.debug({ app, err: err.message }, 'router: websocket client error'));
  deps.track(client);

  let inFlightKey: string | undefined;
  let upstreamSocket: Socket | undefined;
  let closed = false;
  const release = (): void => {
    if (inFlightKey !== undefined) inFlight.decrement(inFlightKey);
    inFlightKey = undefined;
  };
  const closeAll = (): void => {
    if (closed) return;
    closed = true;
    client.destroy();
    upstreamSocket?.destroy();
    release();
  };
  client.once('close', closeAll);

  const dial = (upstream: Upstream, attempt: number): void => {
    const key = upstreamKey(upstream);
    release();
    inFlight.increment(key);
    inFlightKey = key;
    const up = connect('socketPath' in upstream ? { path: upstream.socketPath } : { host: upstream.host, port: upstream.port });
    upstreamSocket = up;
    deps.track(up);
    up.setTimeout(CONNECT_TIMEOUT_MS, () => up.destroy(Object.assign(new Error('connect timeout'), { code: 'ETIMEDOUT' })));
    let connected = false;

    up.on('error', (err: NodeJS.ErrnoException) => {
      if (connected || closed) {
        logger.debug({ app, upstream: key, err: err.message }, 'router: websocket upstream error');
        return;
      }
      const state = { method: 'GET', dispatched: false, hasBody: false, responseStarted: false };
      const next = attempt < 2 && mayRetry(err, state) ? deps.currentRoute(app)?.next() : undefined;
      if (next !== undefined) {
        logger.info({ app, upstream: key, next: upstreamKey(next), code: err.code }, 'router: retrying websocket on next upstream');
        dial(next, attempt + 1);
        return;
      }
      logger.warn({ app, upstream: key, code: err.code }, 'router: websocket upstream connect failed');
      closed = true;
      release();
      answerPlainRaw(client, 502, `Bad gateway: app ${app} did not answer`);
    });

    up.once('connect', () => {
      if (closed) {
        up.destroy();
        return;
      }
      connected = true;
      up.setTimeout(0);
      up.setNoDelay(true);
      up.setKeepAlive(true, KEEPALIVE_MS);
      const clientSocket = client as Partial<Socket>;
      if (typeof clientSocket.setKeepAlive === 'function') clientSocket.setKeepAlive(true, KEEPALIVE_MS);
      up.write(requestHead(req, secure), 'latin1');
      if (head.length > 0) up.write(head);
      up.once('close', closeAll);
      up.pipe(client);
      client.pipe(up);
    });
  };

  const first = route.next();
  if (first === undefined) {
    closed = true;
    answerPlainRaw(client, 503, `No web processes are running for app ${app}`);
    return;
  }
  dial(first, 1);
}
