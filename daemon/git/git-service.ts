import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { join } from 'node:path';
import { authorize } from '../access/access-policy.js';
import { appFromRepoPath } from '../app-name.js';
import { RackError } from '../rack-error.js';
import type { ExecRequest } from '../ssh/ssh-server.js';
import type { Store } from '../store/store.js';
import { gitConfigEnv, type PushClient, type PushReceiver } from './push-receiver.js';
import { repoDir } from './repo.js';
import { spawnTiedGit } from './tied-git.js';

const GIT_COMMANDS = new Set(['git-receive-pack', 'git-upload-pack']);

export function isGitCommand(argv: string[]): boolean {
  return argv.length > 0 && GIT_COMMANDS.has(argv[0]!);
}

export interface GitServiceOptions {
  reposRoot: string;
  store: Store;
  receiver: PushReceiver;
}

/**
 * Serves `git push` (receive-pack) and `git fetch` (upload-pack) over SSH. The git program is
 * spawned with an argument array; pushes go through the receiver shared with git over HTTP.
 */
export class GitService {
  constructor(private readonly opts: GitServiceOptions) {}

  async serve(req: ExecRequest, argv: string[]): Promise<number> {
    if (argv.length !== 2) throw new RackError('bad_command', `usage: ${argv[0]} '/APP'`);
    const service = argv[0]!;
    const app = appFromRepoPath(argv[1]!);
    if (service === 'git-upload-pack') {
      authorize(req.caller.principal, 'deploy', 'git fetch', app);
      await this.opts.store.requireApp(app);
      return this.upload(req, repoDir(this.opts.reposRoot, app));
    }
    return this.opts.receiver.push(sshPushClient(req), app);
  }

  private upload(req: ExecRequest, repo: string): Promise<number> {
    const { channel } = req;
    const child = spawnTiedGit(['upload-pack', repo], { PATH: process.env['PATH'], HOME: process.env['HOME'] });
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

/** A push over an SSH channel: git-receive-pack speaks the protocol on the channel itself. */
function sshPushClient(req: ExecRequest): PushClient {
  const { channel } = req;
  let gone = false;
  channel.once('close', () => (gone = true));
  const detach = (child: ChildProcessWithoutNullStreams) => {
    channel.unpipe(child.stdin);
    child.stdout.unpipe();
    child.stderr.unpipe();
    child.stdout.resume();
    child.stderr.resume();
    child.stdin.end();
  };
  return {
    caller: req.caller,
    gone: () => gone,
    onGone: (listener) => {
      channel.once('close', listener);
      return () => channel.off('close', listener);
    },
    onInput: (listener) => {
      channel.on('data', listener);
      return () => channel.off('data', listener);
    },
    say: (line) => {
      if (!gone) channel.stderr.write(`${line}\n`);
    },
    start: (git, repo) => {
      const env = { PATH: process.env['PATH'], HOME: process.env['HOME'], ...gitConfigEnv(git.config), ...git.env };
      const child = spawnTiedGit(['receive-pack', repo], env);
      channel.pipe(child.stdin);
      child.stdout.pipe(channel, { end: false });
      child.stderr.pipe(channel.stderr, { end: false });
      child.stdin.on('error', () => undefined);
      return child;
    },
    detach,
    // The exit status follows when the push returns.
    drop: (child, line) => {
      detach(child);
      if (!gone) channel.stderr.write(`${line}\n`);
    },
  };
}

export const HOOKS_DIR = (installDir: string) => join(installDir, 'hooks');
