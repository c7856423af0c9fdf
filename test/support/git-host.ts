import { execFile, spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { cgiHeadEnd, parseCgiHead } from '../../daemon/git/cgi-head.js';

const run = promisify(execFile);

/**
 * A git host on loopback for workflow tests: bare repos served by git's own `git http-backend`
 * behind a small node HTTP server that asks for a Basic password (the access token) when one is
 * set, and a working copy per repo to commit and push from. It records the requests it served.
 */
export class GitHost {
  readonly requests: { method: string; path: string; authorization: string | undefined }[] = [];
  private constructor(
    readonly root: string,
    private readonly server: Server,
    readonly port: number,
    private readonly token: string | undefined,
  ) {}

  static async start(opts: { token?: string } = {}): Promise<GitHost> {
    const root = await mkdtemp(join(tmpdir(), 'rack-githost-'));
    await mkdir(join(root, 'repos'));
    let host: GitHost | undefined;
    const server = createServer((req, res) => {
      req.on('error', () => undefined);
      res.on('error', () => undefined);
      const url = new URL(req.url ?? '/', 'http://githost');
      host!.requests.push({ method: req.method ?? '', path: url.pathname, authorization: req.headers.authorization });
      const expected = opts.token === undefined ? undefined : `Basic ${Buffer.from(`x-access-token:${opts.token}`).toString('base64')}`;
      if (expected !== undefined && req.headers.authorization !== expected) {
        res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="githost"', 'Content-Length': '0' });
        return void res.end();
      }
      const child = spawn('git', ['http-backend'], {
        env: {
          PATH: process.env['PATH'],
          GIT_PROJECT_ROOT: join(root, 'repos'),
          GIT_HTTP_EXPORT_ALL: '1',
          PATH_INFO: url.pathname,
          QUERY_STRING: url.search.slice(1),
          REQUEST_METHOD: req.method ?? 'GET',
          CONTENT_TYPE: req.headers['content-type'] ?? '',
          ...(req.headers['git-protocol'] ? { GIT_PROTOCOL: String(req.headers['git-protocol']) } : {}),
        },
      });
      child.on('error', () => res.destroy());
      child.stdin.on('error', () => undefined);
      child.stderr.resume();
      req.pipe(child.stdin);
      let head = Buffer.alloc(0);
      let started = false;
      child.stdout.on('data', (chunk: Buffer) => {
        if (started) return void res.write(chunk);
        head = Buffer.concat([head, chunk]);
        const end = cgiHeadEnd(head.toString('latin1'));
        if (!end) return;
        const parsed = parseCgiHead(head.toString('latin1').slice(0, end.head));
        res.writeHead(parsed.status, parsed.headers);
        started = true;
        res.write(head.subarray(end.body));
      });
      child.on('close', () => res.end());
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    host = new GitHost(root, server, (server.address() as AddressInfo).port, opts.token);
    return host;
  }

  url(name: string): string {
    return `http://127.0.0.1:${this.port}/${name}.git`;
  }

  /** Makes a bare repo `name` with the fixture's files committed on `branch`; returns the working copy. */
  async createRepo(name: string, fixture: string, branch = 'main'): Promise<string> {
    const bare = join(this.root, 'repos', `${name}.git`);
    const work = join(this.root, 'work', name);
    await run('git', ['init', '-q', '--bare', `--initial-branch=${branch}`, bare]);
    await mkdir(work, { recursive: true });
    await run('cp', ['-r', `${fixture}/.`, work]);
    const git = (args: string[]) => run('git', args, { cwd: work });
    await git(['init', '-q', '-b', branch]);
    await git(['config', 'user.email', 'dev@example.com']);
    await git(['config', 'user.name', 'Dev']);
    await git(['add', '-A']);
    await git(['commit', '-qm', 'first']);
    await git(['remote', 'add', 'origin', bare]);
    await git(['push', '-q', 'origin', branch]);
    return work;
  }

  /**
   * Pushes the working copy's `ref` to the bare repo's `branch` (a local push, as a developer's would
   * land), or to any ref named in full (`refs/pull/7/head`, where GitHub keeps a pull request's head).
   */
  async push(work: string, ref = 'HEAD', branch = 'main'): Promise<void> {
    await run('git', ['push', '-q', '--force', 'origin', `${ref}:${branch.startsWith('refs/') ? branch : `refs/heads/${branch}`}`], { cwd: work });
  }

  get authorized(): boolean {
    return this.token !== undefined;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    await rm(this.root, { recursive: true, force: true });
  }
}
