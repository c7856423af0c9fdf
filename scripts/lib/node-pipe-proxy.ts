/**
 * The floor under any router written for Node: a process that gives each client connection its own
 * connection to the upstream and moves bytes both ways as they come, parsing nothing (no routing,
 * no header checks, no pools, no timers). Measured beside the router and nginx, it tells how much
 * of the router's cost per request is Node's own (a read and a write on each side of the proxy
 * through libuv and the stream machinery) and how much is the router's work on top.
 */
import type { ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { nodeChild } from '../bench-children.js';

export interface NodePipeProxy {
  child: ChildProcess;
  port: number;
  httpsPort: number;
}

/** What the pipe proxy does, for the bench's header. */
export const NODE_PIPE_SUMMARY = 'net/tls servers, one upstream connection per client connection, bytes relayed unparsed (socket.pipe both ways), noDelay';

export async function startNodePipe(upstream: { host: string; port: number }, tls: { cert: string; key: string }): Promise<NodePipeProxy> {
  const [cert, key] = await Promise.all([readFile(tls.cert, 'utf8'), readFile(tls.key, 'utf8')]);
  const source = `import net from 'node:net';
import tls from 'node:tls';
const upstream = ${JSON.stringify(upstream)};
const relay = (client) => {
  client.setNoDelay(true);
  const app = net.connect({ ...upstream, noDelay: true });
  client.pipe(app);
  app.pipe(client);
  client.on('error', () => app.destroy());
  app.on('error', () => client.destroy());
  client.on('close', () => app.destroy());
  app.on('close', () => client.destroy());
};
const plain = net.createServer(relay);
const secure = tls.createServer({ cert: ${JSON.stringify(cert)}, key: ${JSON.stringify(key)}, ALPNProtocols: ['http/1.1'] }, relay);
await Promise.all([new Promise((r) => plain.listen(0, '127.0.0.1', r)), new Promise((r) => secure.listen(0, '127.0.0.1', r))]);
console.log(JSON.stringify({ port: plain.address().port, httpsPort: secure.address().port }));`;
  const { child, port, httpsPort } = await nodeChild('node-pipe', source);
  return { child, port, httpsPort: httpsPort as number };
}
