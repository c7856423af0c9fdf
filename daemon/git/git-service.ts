import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { realpath } from 'node:fs/promises';
import { join } from 'node:path';
import { authorize } from '../access/access-policy.js';
import { createdBy } from '../access/principal.js';
import { appFromRepoPath, assertNewAppName } from '../app-name.js';
import { formatSize } from '../config.js';
import type { AuditLog } from '../audit/audit-log.js';
import type { Logger } from '../log.js';
import { RackError } from '../rack-error.js';
import type { ExecRequest } from '../ssh/ssh-server.js';
import type { Store } from '../store/store.js';
import { textOutput } from '../user-output.js';
import type { PushCheck, PushOutcome } from './push-check.js';
import type { PushLock } from './push-lock.js';
import type { PushSession, PushSessions } from './push-sessions.js';
import { ensureBareRepo, repoDir } from './repo.js';

const GIT_COMMANDS = new Set(['git-receive-pack', 'git-upload-pack']);
/** After the hook has returned, git only has the ref update and its report left to do. */
const FINISH_GRACE_MS = 60_000;
/** index-pack's words when a pack is over receive.maxInputSize. */
const TOO_BIG = 'pack exceeds maximum allowed size';

export function isGitCommand(argv: string[]): boolean {
  return argv.length > 0 && GIT_COMMANDS.has(argv[0]!);
}

export interface GitServiceOptions {
  reposRoot: string;
  hooksDir: string;
  controlSocket: string;
  maxPushBytes: number;
  store: Store;
  sessions: PushSessions;
  pushLock: PushLock;
  check: PushCheck;
  onAppCreated: (app: string) => Promise<void>;
  audit: AuditLog;
  log: Logger;
}

/**
 * Serves `git push` (receive-pack) and `git fetch` (upload-pack) over SSH. The git program is
 * spawned with an argument array; the pushed refs are judged and built by the pre-receive hook,
 * which calls back into the daemon.
 */
export class GitService {
  constructor(private readonly opts: GitServiceOptions) {}

  async serve(req: ExecRequest, argv: string[]): Promise<number> {
    if (argv.length !== 2) throw new RackError('bad_command', `usage: ${argv[0]} '/APP'`);
    const service = argv[0]!;
    const app = appFromRepoPath(argv[1]!);
    const { store, pushLock } = this.opts;
    if (service === 'git-upload-pack') {
      authorize(req.caller.principal, 'deploy', 'git fetch', app);
      await store.requireApp(app);
      return this.upload(req, repoDir(this.opts.reposRoot, app));
    }
    // Rights are checked before git reads a byte (and before waiting): a refused push changes nothing.
    await this.authorizePush(req, app);
    let gone = false;
    req.channel.once('close', () => (gone = true));
    return pushLock.run(
      app,
      async () => {
        if (gone) return 1;
        if (!(await this.authorizePush(req, app))) {
          await store.createApp(assertNewAppName(app));
          await this.opts.onAppCreated(app);
          this.opts.log.info({ app, key: req.caller.principal.name }, 'app created by push');
          await this.opts.audit.record(req.caller, { app, action: 'apps:create', detail: 'by git push', outcome: 'ok' });
        }
        // Git reports quarantine paths under the real path; compare like with like.
        const repo = await realpath(await ensureBareRepo(this.opts.reposRoot, app));
        return gone ? 1 : this.receive(req, app, repo);
      },
      () => req.channel.stderr.write(`-----> Waiting for another push to ${app} to finish\n`),
    );
  }

  /** True when the app exists; throws when the key may not push to it (or create it). */
  private async authorizePush(req: ExecRequest, app: string): Promise<boolean> {
    const exists = (await this.opts.store.getApp(app)) !== undefined;
    if (exists) authorize(req.caller.principal, 'deploy', 'git push', app);
    else authorize(req.caller.principal, 'admin', `git push creating ${app}`, undefined);
    return exists;
  }

  /** Runs under the push lock, for a client still there: receive-pack, then the check of what its hook released. */
  private async receive(req: ExecRequest, app: string, repo: string): Promise<number> {
    const { channel } = req;
    const { sessions, controlSocket, hooksDir, maxPushBytes, log } = this.opts;
    const interrupted = new AbortController();
    const { token, session } = sessions.open({ app, keyName: createdBy(req.caller.principal), repo, interrupted: interrupted.signal });
    let outcome: PushOutcome | 'none' = 'none';
    let code = 1;
    let gone = false;
    try {
      const child = spawn(
        'git',
        ['-c', `core.hooksPath=${hooksDir}`, '-c', `receive.maxInputSize=${maxPushBytes}`, 'receive-pack', repo],
        { env: { PATH: process.env['PATH'], HOME: process.env['HOME'], RACK_CONTROL_SOCKET: controlSocket, RACK_PUSH_TOKEN: token } },
      );
      const tooBig = watchFor(child, TOO_BIG);
      channel.pipe(child.stdin);
      child.stdout.pipe(channel, { end: false });
      child.stderr.pipe(channel.stderr, { end: false });
      child.stdin.on('error', () => undefined);
      const onGone = () => {
        gone = true;
        interrupted.abort();
        this.clientGone(child, session);
      };
      channel.once('close', onGone);
      code = await new Promise<number>((resolve, reject) => {
        child.on('error', reject);
        child.on('close', (c) => resolve(c ?? 1));
      });
      channel.off('close', onGone);
      sessions.close(token);
      // receive-pack may die while the hook's handler still rolls out: the check waits for it.
      if (session.stage === 'deploying') await session.handlerDone;
      if (session.released) {
        const out = textOutput((line) => (gone ? undefined : channel.stderr.write(`${line}\n`)));
        outcome = await this.opts.check.settle(session.released, out);
      }
      if (tooBig() && !gone) {
        channel.stderr.write(` !     push refused: it is over rack's limit of ${formatSize(maxPushBytes)} (RACK_MAX_PUSH)\n`);
      }
      return code;
    } finally {
      sessions.close(token);
      log.info({ app, code, gone, release: session.released?.release, outcome }, 'push finished');
      const released = session.released;
      await this.opts.audit.record(req.caller, {
        app,
        action: 'git push',
        detail: released ? `v${released.release} ${released.commit.slice(0, 7)}` : '',
        outcome: !released ? (gone ? 'interrupted' : 'rejected') : outcome === 'rolled-back' ? 'rolled_back' : 'ok',
      });
    }
  }

  /**
   * The client hung up. Before the hook has called in, nothing was released: stop git. Once it has,
   * git is left to finish (a rollout cut short would be worse than a push nobody watched): its
   * output is drained so it never blocks, and it is killed only if it hangs long after the hook.
   */
  private clientGone(child: ChildProcessWithoutNullStreams, session: PushSession): void {
    child.stdout.unpipe();
    child.stderr.unpipe();
    child.stdout.resume();
    child.stderr.resume();
    child.stdin.end();
    if (session.stage === 'receiving') {
      child.kill('SIGTERM');
      return;
    }
    void session.handlerDone.then(() => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const timer = setTimeout(() => child.kill('SIGKILL'), FINISH_GRACE_MS);
      timer.unref();
      child.once('close', () => clearTimeout(timer));
    });
  }

  private upload(req: ExecRequest, repo: string): Promise<number> {
    const { channel } = req;
    const child = spawn('git', ['upload-pack', repo], {
      env: { PATH: process.env['PATH'], HOME: process.env['HOME'] },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    channel.pipe(child.stdin);
    child.stdout.pipe(channel, { end: false });
    child.stderr.pipe(channel.stderr, { end: false });
    child.stdin.on('error', () => undefined);
    // A fetch changes nothing: a client that hangs up must not leave git running.
    channel.on('close', () => child.kill('SIGTERM'));
    return new Promise((resolve, reject) => {
      child.on('error', reject);
      child.on('close', (code) => resolve(code ?? 1));
    });
  }
}

/** Whether git said `words` in its output (progress and errors travel in its sideband on stdout). */
function watchFor(child: ChildProcessWithoutNullStreams, words: string): () => boolean {
  let seen = false;
  let tail = '';
  const scan = (chunk: Buffer) => {
    if (seen) return;
    const text = tail + chunk.toString('latin1');
    seen = text.includes(words);
    tail = text.slice(-words.length);
  };
  child.stdout.on('data', scan);
  child.stderr.on('data', scan);
  return () => seen;
}

export const HOOKS_DIR = (installDir: string) => join(installDir, 'hooks');
