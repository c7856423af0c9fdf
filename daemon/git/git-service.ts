import { spawn } from 'node:child_process';
import { realpath } from 'node:fs/promises';
import { join } from 'node:path';
import { authorize } from '../access/access-policy.js';
import { appFromRepoPath } from '../app-name.js';
import type { Logger } from '../log.js';
import { RackError } from '../rack-error.js';
import type { ExecRequest } from '../ssh/ssh-server.js';
import type { Store } from '../store/store.js';
import type { PushSessions } from './push-sessions.js';
import { ensureBareRepo, repoDir } from './repo.js';

const GIT_COMMANDS = new Set(['git-receive-pack', 'git-upload-pack']);

export function isGitCommand(argv: string[]): boolean {
  return argv.length > 0 && GIT_COMMANDS.has(argv[0]!);
}

/**
 * Serves `git push` (receive-pack) and `git fetch` (upload-pack) over SSH. The git program is
 * spawned with an argument array; the pushed refs are judged and built by the pre-receive hook,
 * which calls back into the daemon.
 */
export class GitService {
  constructor(
    private readonly reposRoot: string,
    private readonly hooksDir: string,
    private readonly controlSocket: string,
    private readonly store: Store,
    private readonly sessions: PushSessions,
    private readonly onAppCreated: (app: string) => Promise<void>,
    private readonly log: Logger,
  ) {}

  async serve(req: ExecRequest, argv: string[]): Promise<number> {
    if (argv.length !== 2) throw new RackError('bad_command', `usage: ${argv[0]} '/APP'`);
    const service = argv[0]!;
    const app = appFromRepoPath(argv[1]!);
    if (service === 'git-upload-pack') {
      authorize(req.key, 'deploy', 'git fetch', app);
      await this.store.requireApp(app);
      return this.spawnGit(req, ['upload-pack', repoDir(this.reposRoot, app)], {});
    }
    const exists = (await this.store.getApp(app)) !== undefined;
    // Rights are checked before git reads a byte: a refused push changes nothing.
    if (exists) authorize(req.key, 'deploy', 'git push', app);
    else authorize(req.key, 'admin', `git push creating ${app}`, undefined);
    if (!exists) {
      await this.store.createApp(app);
      await this.onAppCreated(app);
      this.log.info({ app, key: req.key.name }, 'app created by push');
    }
    // Git reports quarantine paths under the real path; compare like with like.
    const repo = await realpath(await ensureBareRepo(this.reposRoot, app));
    const interrupted = new AbortController();
    req.channel.once('close', () => interrupted.abort());
    const token = this.sessions.open({ app, keyName: req.key.name, repo, interrupted: interrupted.signal });
    try {
      return await this.spawnGit(req, ['-c', `core.hooksPath=${this.hooksDir}`, 'receive-pack', repo], {
        RACK_CONTROL_SOCKET: this.controlSocket,
        RACK_PUSH_TOKEN: token,
      });
    } finally {
      this.sessions.close(token);
    }
  }

  private spawnGit(req: ExecRequest, args: string[], extraEnv: Record<string, string>): Promise<number> {
    const { channel } = req;
    const child = spawn('git', args, {
      env: { PATH: process.env['PATH'], HOME: process.env['HOME'], ...extraEnv },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    channel.pipe(child.stdin);
    child.stdout.pipe(channel, { end: false });
    child.stderr.pipe(channel.stderr, { end: false });
    child.stdin.on('error', () => undefined);
    // A client that hangs up mid-push must not leave git running.
    channel.on('close', () => child.kill('SIGTERM'));
    return new Promise((resolve, reject) => {
      child.on('error', reject);
      child.on('close', (code) => resolve(code ?? 1));
    });
  }
}

export const HOOKS_DIR = (installDir: string) => join(installDir, 'hooks');
