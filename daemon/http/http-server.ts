import { chmod, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Caller } from '../access/principal.js';
import type { Logger } from '../log.js';
import { RackError } from '../rack-error.js';
import { answerError } from './json-answer.js';
import type { TokenAuth } from './token-auth.js';

/** A part of the HTTP side; `caller` is set for every request but public ones. */
export type HttpHandler = (req: IncomingMessage, res: ServerResponse, url: URL, caller: Caller) => Promise<void>;
export type PublicHandler = (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<void>;

export interface HttpServerOptions {
  socketPath: string;
  auth: TokenAuth;
  /** `/api/v1/...` */
  api: HttpHandler;
  /** `/APP.git/...`: git's smart HTTP. */
  git: HttpHandler;
  /** Paths answered without a token (the OpenAPI document, the index). */
  public: Record<string, PublicHandler>;
  /** `/hooks/APP`: repository webhooks, whose signature is their proof (workflows/webhook-receiver.ts). */
  hooks?: PublicHandler;
  /** The Console (`/console/...`, and `/` for browsers): it signs its users in with its own cookie. */
  console?: { owns(req: IncomingMessage, path: string): boolean; handle: PublicHandler };
  logger: Logger;
}

const PATH_TRICK = /(^|\/)(\.|%2e){1,2}(\/|$)|%2f|%5c|\\|%00/i;
const GIT_PATH = /^\/[^/]+\.git\/(info\/refs|git-upload-pack|git-receive-pack|HEAD)$/;

/**
 * rackd's own HTTP listener: the API and git over HTTP. It listens on a Unix socket in RACK_HOME
 * that only the router (the same user) can open; the router forwards rack's host name to it, so
 * apps, API and git share one public port, and X-Forwarded-For can be trusted.
 */
export class HttpServer {
  private server: Server | undefined;

  constructor(private readonly opts: HttpServerOptions) {}

  async start(): Promise<void> {
    const { socketPath, logger } = this.opts;
    // A socket file left by a rackd that was killed would make listen fail with EADDRINUSE.
    await rm(socketPath, { force: true });
    const server = createServer((req, res) => void this.route(req, res));
    // Streams of long deploys and big pushes: no server-side cut-offs; clients going away end them.
    server.requestTimeout = 0;
    server.headersTimeout = 60_000;
    server.on('error', (err) => logger.error({ err: err.message }, 'http server error'));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socketPath, () => {
        server.off('error', reject);
        resolve();
      });
    });
    await chmod(socketPath, 0o600);
    this.server = server;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections();
    await closed;
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    req.on('error', () => undefined);
    res.on('error', () => undefined);
    const { logger } = this.opts;
    try {
      const raw = (req.url ?? '/').split('?')[0]!;
      // URL parsing would quietly resolve `..` and `%2e%2e` to another resource: refuse them instead.
      if (PATH_TRICK.test(raw)) throw new RackError('bad_argument', 'the path holds dot segments, encoded slashes or backslashes');
      // Only the path is taken from the request; the host is fixed so nothing can redirect it.
      const url = new URL(req.url ?? '/', 'http://rack');
      if (this.opts.console?.owns(req, url.pathname)) return await this.opts.console.handle(req, res, url);
      if (this.opts.hooks && url.pathname.startsWith('/hooks/')) return await this.opts.hooks(req, res, url);
      const open = this.opts.public[url.pathname];
      if (open) return await open(req, res, url);
      const isGit = GIT_PATH.test(url.pathname);
      if (!isGit && !url.pathname.startsWith('/api/v1/')) throw new RackError('not_found', `nothing at ${url.pathname.slice(0, 100)}; the API is at /api/v1/`);
      let caller: Caller;
      try {
        caller = await this.opts.auth.authenticate(req);
      } catch (err) {
        const error = RackError.from(err);
        const headers: Record<string, string> = {};
        // git (libcurl) sends its credentials only after a Basic challenge.
        if (error.code === 'unauthorized') headers['WWW-Authenticate'] = isGit ? 'Basic realm="rack"' : 'Bearer realm="rack"';
        if (error.code === 'throttled') headers['Retry-After'] = String(Math.max(1, Math.ceil(this.opts.auth.retryAfterMs(req) / 1000)));
        // The rest of an upload is not read: say so, so the connection is not reused mid-body.
        headers['Connection'] = 'close';
        return answerError(res, error, headers);
      }
      await (isGit ? this.opts.git : this.opts.api)(req, res, url, caller);
    } catch (err) {
      const error = RackError.from(err);
      if (error.code === 'internal') logger.error({ err, method: req.method, path: (req.url ?? '').split('?')[0] }, 'http request failed');
      if (!res.headersSent) answerError(res, error);
      else res.destroy();
    }
  }
}
