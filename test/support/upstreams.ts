import type { ExecutionContext } from 'ava';
import { once } from 'node:events';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Upstream } from '../../daemon/router/upstream.js';

/** A real HTTP server on a loopback port for the router to forward to, closed when the test ends. */
export async function upstream(t: ExecutionContext, handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<Upstream> {
  const server = http.createServer(handler);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  return { host: '127.0.0.1', port: (server.address() as AddressInfo).port };
}

/** An upstream that answers every request with its name. */
export const named = (t: ExecutionContext, name: string): Promise<Upstream> => upstream(t, (_req, res) => res.end(name));
