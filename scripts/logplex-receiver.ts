/**
 * A Heroku-drain receiver for bench-observability: an HTTPS server on loopback, its certificate from
 * a throwaway CA (rackd is told to trust it through NODE_EXTRA_CA_CERTS), that reads each Logplex
 * POST's octet frames strictly and counts them, as a log service would have to.
 */
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { parseOctetFrames } from '../test/support/octet-frames.js';
import { TestCa } from '../test/support/test-certs.js';

export class LogplexReceiver {
  frames = 0;
  posts = 0;
  /** Bodies whose framing was wrong: the bench says so, a drain that sent them would be broken. */
  badPosts = 0;

  private constructor(
    private readonly server: Server,
    /** The CA's certificate, in a file for NODE_EXTRA_CA_CERTS. */
    readonly caFile: string,
  ) {}

  static async start(caFile: string): Promise<LogplexReceiver> {
    const ca = await TestCa.create('rack bench drain CA');
    const leaf = await ca.leaf({ names: ['localhost'] });
    await writeFile(caFile, ca.ca.cert);
    let receiver: LogplexReceiver | undefined;
    const server = createServer({ cert: leaf.cert, key: leaf.key }, (req, res) => {
      const chunks: Buffer[] = [];
      req.on('error', () => undefined);
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        if (receiver === undefined) return;
        receiver.posts++;
        try {
          receiver.frames += parseOctetFrames(Buffer.concat(chunks)).length;
          res.writeHead(204).end();
        } catch {
          receiver.badPosts++;
          res.writeHead(400).end();
        }
      });
    });
    server.on('error', () => undefined);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    receiver = new LogplexReceiver(server, caFile);
    return receiver;
  }

  /** The drain's URL, by name: a TLS certificate names a host, and RACK_FETCH_ALLOW lets rackd post to it. */
  get url(): string {
    return `https://localhost:${(this.server.address() as AddressInfo).port}/logs`;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((r) => this.server.close(r));
  }
}
