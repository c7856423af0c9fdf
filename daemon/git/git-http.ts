import { execFile, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdir, mkdtemp, realpath, rm, stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { authorize } from '../access/access-policy.js';
import { createdBy, type Caller } from '../access/principal.js';
import { appFromRepoPath } from '../app-name.js';
import type { HttpHandler } from '../http/http-server.js';
import { HTTP_STATUS } from '../http/http-status.js';
import type { Logger } from '../log.js';
import { RackError } from '../rack-error.js';
import type { Store } from '../store/store.js';
import { cgiHeadEnd, MAX_CGI_HEAD, parseCgiHead } from './cgi-head.js';
import { gitConfigEnv, type PushClient, type PushReceiver } from './push-receiver.js';
import { repoDir } from './repo.js';
import { spawnTiedGit } from './tied-git.js';

const run = promisify(execFile);

const GIT_PATH = /^\/([^/]+)\.git\/(info\/refs|git-upload-pack|git-receive-pack|HEAD)$/;
type Service = 'git-upload-pack' | 'git-receive-pack';
const CONTENT_TYPE = /^application\/x-git-(upload|receive)-pack-request$/;
/** `Git-Protocol: version=2` (git's own header; keys and values of letters, digits and a few marks). */
const GIT_PROTOCOL = /^[A-Za-z0-9=:._-]{1,100}$/;
/** The whole body of git's probe before a push bigger than http.postBuffer: one flush packet, no commands. */
const PROBE = '0000';

export interface GitHttpOptions {
  reposRoot: string;
  /** Where empty repos are made to advertise an app that has none yet. */
  tmpDir: string;
  store: Store;
  receiver: PushReceiver;
  log: Logger;
}

/**
 * git's smart HTTP protocol, served by git's own `git http-backend` (CGI) behind the listener's
 * token check: each request is judged by the same access policy as ssh, and the push (POST
 * git-receive-pack) goes through the receive core ssh pushes use. The app name in the URL is
 * checked and rebuilt into the CGI path; nothing else of the request reaches git but its body and
 * a few checked headers.
 */
export class GitHttp {
  constructor(private readonly opts: GitHttpOptions) {}

  readonly handle: HttpHandler = async (req, res, url, caller) => {
    try {
      await this.serve(req, res, url, caller);
    } catch (err) {
      // git prints a text/plain answer's lines (as `remote: ...`); anything else gets the listener's JSON.
      if (!isGitClient(req) || res.headersSent) throw err;
      const error = RackError.from(err);
      if (error.code === 'internal') this.opts.log.error({ err, path: url.pathname }, 'git request failed');
      const body = `${error.message}\n`;
      res.writeHead(HTTP_STATUS[error.code], {
        'Content-Type': 'text/plain; charset=utf-8',
        'Content-Length': Buffer.byteLength(body),
        'Cache-Control': 'no-cache',
        // A refused upload was not read: the connection cannot carry another request.
        ...(req.method === 'POST' ? { Connection: 'close' } : {}),
      });
      res.end(body);
    }
  };

  private async serve(req: IncomingMessage, res: ServerResponse, url: URL, caller: Caller): Promise<void> {
    const m = GIT_PATH.exec(url.pathname);
    if (!m) throw new RackError('not_found', 'no such git resource');
    const app = appFromRepoPath(m[1]!);
    const resource = m[2]!;
    const headers = requestHeaders(req);
    if (resource === 'info/refs') {
      expectMethod(req, 'GET');
      const service = url.searchParams.get('service');
      if (service === 'git-upload-pack') await this.authorizeFetch(caller, app);
      else if (service === 'git-receive-pack') await this.opts.receiver.authorize(caller, app);
      else throw new RackError('bad_argument', "rack serves git's smart HTTP protocol only (?service=git-upload-pack or git-receive-pack)");
      return this.advertise(req, res, caller, app, service, headers);
    }
    if (resource === 'git-receive-pack') {
      expectMethod(req, 'POST');
      return this.push(req, res, caller, app, headers);
    }
    expectMethod(req, resource === 'HEAD' ? 'GET' : 'POST');
    await this.authorizeFetch(caller, app);
    if (!(await this.hasRepo(app))) throw new RackError('not_found', `nothing has been pushed to ${app} yet`);
    const root = await realpath(this.opts.reposRoot);
    await this.runOnce(req, res, caller, { root, app, resource, input: req, env: headers });
  }

  private async authorizeFetch(caller: Caller, app: string): Promise<void> {
    authorize(caller.principal, 'deploy', 'git fetch', app);
    await this.opts.store.requireApp(app);
  }

  private async hasRepo(app: string): Promise<boolean> {
    return stat(join(repoDir(this.opts.reposRoot, app), 'HEAD')).then(
      () => true,
      () => false,
    );
  }

  /**
   * The ref advertisement. An app with no repo yet (new, or made by apps:create and never pushed) is
   * advertised from an empty one made for the request: a GET creates nothing.
   */
  private async advertise(req: IncomingMessage, res: ServerResponse, caller: Caller, app: string, service: Service, headers: Record<string, string>): Promise<void> {
    const env = { ...headers, ...(service === 'git-receive-pack' ? gitConfigEnv(httpConfig(this.opts.receiver.gitConfig())) : {}) };
    if (await this.hasRepo(app)) {
      const root = await realpath(this.opts.reposRoot);
      return this.runOnce(req, res, caller, { root, app, resource: 'info/refs', service, input: req, env });
    }
    await mkdir(this.opts.tmpDir, { recursive: true });
    const root = await mkdtemp(join(this.opts.tmpDir, 'git-empty-'));
    try {
      await run('git', ['init', '--quiet', '--bare', '--initial-branch=main', join(root, `${app}.git`)], { env: baseEnv() });
      await this.runOnce(req, res, caller, { root, app, resource: 'info/refs', service, input: req, env });
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  }

  /** A request that changes nothing (advertisement, fetch): a client that goes away stops git. */
  private async runOnce(req: IncomingMessage, res: ServerResponse, caller: Caller, cgi: CgiRequest): Promise<void> {
    const child = this.startBackend(req, caller, cgi);
    const relay = relayCgi(child, res, this.opts.log);
    cgi.input.pipe(child.stdin);
    const onClose = () => {
      if (res.writableFinished) return;
      relay.detach();
      child.kill('SIGTERM');
    };
    res.once('close', onClose);
    try {
      await exited(child);
    } finally {
      res.off('close', onClose);
    }
  }

  /** POST git-receive-pack: git's probe is answered at once; a push goes through the receive core. */
  private async push(req: IncomingMessage, res: ServerResponse, caller: Caller, app: string, headers: Record<string, string>): Promise<void> {
    const { receiver, log } = this.opts;
    await receiver.authorize(caller, app);
    let input: Readable = req;
    if (req.headers['content-length'] === String(PROBE.length) && req.headers['content-encoding'] === undefined) {
      const body = await readAll(req, PROBE.length);
      if (body.toString('latin1') === PROBE) {
        // No commands: receive-pack would do nothing. No lock, no session, not a push in the audit log.
        res.writeHead(200, { 'Content-Type': 'application/x-git-receive-pack-result', 'Cache-Control': 'no-cache', 'Content-Length': 0 });
        res.end();
        return;
      }
      input = Readable.from([body]);
    }
    let gone = false;
    const goneListeners = new Set<() => void>();
    res.once('close', () => {
      if (res.writableFinished) return;
      gone = true;
      for (const listener of goneListeners) listener();
    });
    let relay: CgiRelay | undefined;
    const client: PushClient = {
      caller,
      gone: () => gone,
      onGone: (listener) => {
        goneListeners.add(listener);
        return () => goneListeners.delete(listener);
      },
      onInput: (listener) => {
        input.on('data', listener);
        return () => input.off('data', listener);
      },
      // Once git's answer has ended there is no place for more words: the operator's log gets them.
      say: (line) => log.info({ app, line }, 'push note not shown over HTTP'),
      start: (git, repo) => {
        const root = join(repo, '..');
        const env = { ...headers, ...gitConfigEnv(httpConfig(git.config)), ...git.env };
        const child = this.startBackend(req, caller, { root, app, resource: 'git-receive-pack', input, env });
        relay = relayCgi(child, res, log);
        input.pipe(child.stdin);
        return child;
      },
      detach: (child) => {
        relay?.detach();
        input.unpipe(child.stdin);
        child.stdin.end();
      },
      // http-backend answers its head before it reads the body, so the line has no place but the log
      // unless nothing was answered yet; the request's body was not read, so the connection goes.
      drop: (child, line) => {
        relay?.detach();
        input.unpipe(child.stdin);
        child.stdin.end();
        log.info({ app, line }, 'push ended by rack');
        if (res.headersSent) return void res.destroy();
        const body = `${line.replace(/^ !\s+/, '')}\n`;
        res.writeHead(408, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(body), Connection: 'close' });
        res.end(body);
      },
    };
    await receiver.push(client, app);
  }

  private startBackend(req: IncomingMessage, caller: Caller, cgi: CgiRequest): ChildProcessWithoutNullStreams {
    const env: Record<string, string> = {
      ...baseEnv(),
      GIT_PROJECT_ROOT: cgi.root,
      GIT_HTTP_EXPORT_ALL: '1',
      PATH_INFO: `/${cgi.app}.git/${cgi.resource}`,
      REQUEST_METHOD: req.method ?? 'GET',
      QUERY_STRING: cgi.service ? `service=${cgi.service}` : '',
      REMOTE_USER: createdBy(caller.principal),
      REMOTE_ADDR: caller.address,
      ...cgi.env,
    };
    const child = spawnTiedGit(['http-backend'], env);
    child.stdin.on('error', () => undefined);
    return child;
  }
}

interface CgiRequest {
  /** GIT_PROJECT_ROOT: the directory holding `APP.git`. */
  root: string;
  app: string;
  resource: string;
  service?: Service;
  input: Readable;
  env: Record<string, string>;
}

/** The config http-backend needs on top of a push's: receive-pack over HTTP is off unless asked for. */
function httpConfig(config: Record<string, string>): Record<string, string> {
  return { ...config, 'http.receivepack': 'true' };
}

/** The CGI variables from the request's headers, checked before anything starts. */
function requestHeaders(req: IncomingMessage): Record<string, string> {
  const env: Record<string, string> = {};
  const type = req.headers['content-type'];
  if (type !== undefined) {
    if (!CONTENT_TYPE.test(type)) throw new RackError('unsupported_media_type', `git sends application/x-git-*-pack-request, not ${type.slice(0, 60)}`);
    env['CONTENT_TYPE'] = type;
  }
  const length = req.headers['content-length'];
  if (length !== undefined && /^[0-9]{1,15}$/.test(length)) env['CONTENT_LENGTH'] = length;
  const encoding = req.headers['content-encoding'];
  if (encoding !== undefined) {
    if (encoding !== 'gzip' && encoding !== 'x-gzip') throw new RackError('unsupported_media_type', `git sends gzip or plain bodies, not ${encoding.slice(0, 30)}`);
    env['HTTP_CONTENT_ENCODING'] = encoding;
  }
  const protocol = req.headers['git-protocol'];
  if (typeof protocol === 'string' && GIT_PROTOCOL.test(protocol)) env['HTTP_GIT_PROTOCOL'] = protocol;
  return env;
}

function baseEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const key of ['PATH', 'HOME']) if (process.env[key] !== undefined) env[key] = process.env[key]!;
  return env;
}

function isGitClient(req: IncomingMessage): boolean {
  return /^git\//.test(req.headers['user-agent'] ?? '');
}

function expectMethod(req: IncomingMessage, method: 'GET' | 'POST'): void {
  if (req.method !== method) throw new RackError('method_not_allowed', `${req.method ?? '?'} is not how git asks for this; use ${method}`);
}

function exited(child: ChildProcessWithoutNullStreams): Promise<number> {
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve(code ?? 1));
  });
}

async function readAll(req: IncomingMessage, max: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > max) throw new RackError('bad_argument', 'the request body is longer than its Content-Length');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

interface CgiRelay {
  /** The client is gone: git's output is drained and no longer written anywhere. */
  detach(): void;
}

/**
 * Turns http-backend's CGI answer into the HTTP response: its head into a status and headers, its
 * body streamed as it comes (the build's live `remote:` lines travel in git's sideband inside it),
 * with git waiting while the client reads slower than git writes.
 */
function relayCgi(child: ChildProcessWithoutNullStreams, res: ServerResponse, log: Logger): CgiRelay {
  let detached = false;
  let failed = false;
  let head: Buffer | undefined = Buffer.alloc(0);
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => {
    if (stderr.length < 4096) stderr += c.toString('utf8');
  });
  const write = (chunk: Buffer) => {
    if (detached || res.destroyed || chunk.length === 0) return;
    if (!res.write(chunk)) {
      child.stdout.pause();
      const resume = () => {
        res.off('drain', resume);
        res.off('close', resume);
        child.stdout.resume();
      };
      res.once('drain', resume);
      res.once('close', resume);
    }
  };
  child.stdout.on('data', (chunk: Buffer) => {
    if (failed) return;
    if (head === undefined) return write(chunk);
    head = Buffer.concat([head, chunk]);
    const end = cgiHeadEnd(head.toString('latin1'));
    if (!end) {
      if (head.length > MAX_CGI_HEAD) fail('git http-backend sent no end of headers');
      return;
    }
    const rest = head.subarray(end.body);
    let parsed;
    try {
      parsed = parseCgiHead(head.subarray(0, end.head).toString('latin1'));
    } catch (err) {
      return fail(String(err));
    }
    head = undefined;
    if (!detached && !res.headersSent && !res.destroyed) res.writeHead(parsed.status, parsed.headers);
    write(rest);
  });
  child.stdout.on('end', () => {
    if (failed) return;
    if (head !== undefined) return fail(`git http-backend answered no headers${stderr ? `: ${stderr.trim().slice(0, 300)}` : ''}`);
    if (!detached && !res.destroyed) res.end();
  });
  child.on('close', (code) => {
    if (code !== 0 && stderr) log.warn({ code, stderr: stderr.trim().slice(0, 1000) }, 'git http-backend failed');
  });
  function fail(why: string): void {
    log.error({ why }, 'git http-backend answered badly');
    failed = true;
    head = undefined;
    if (detached || res.destroyed) return;
    if (!res.headersSent) {
      res.writeHead(502, { 'Content-Type': 'text/plain; charset=utf-8', Connection: 'close' });
      res.end('git http-backend failed\n');
    } else res.destroy();
    detached = true;
    child.stdout.resume();
  }
  return {
    detach: () => {
      detached = true;
      child.stdout.resume();
    },
  };
}
