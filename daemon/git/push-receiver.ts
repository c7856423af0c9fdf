import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { realpath } from 'node:fs/promises';
import { authorize } from '../access/access-policy.js';
import { createdBy, type Caller } from '../access/principal.js';
import { assertNewAppName } from '../app-name.js';
import type { AuditLog } from '../audit/audit-log.js';
import { assertDefaultHostFree } from '../domain-ownership.js';
import { formatSize } from '../config.js';
import type { Logger } from '../log.js';
import { RackError } from '../rack-error.js';
import { renamedError, type Store } from '../store/store.js';
import { textOutput } from '../user-output.js';
import type { PushCheck, PushOutcome } from './push-check.js';
import { PushIdleDeadline } from './push-idle-deadline.js';
import type { PushLock } from './push-lock.js';
import type { PushSession, PushSessions } from './push-sessions.js';
import { ensureBareRepo, removeQuarantines } from './repo.js';

/** After the hook has returned, git only has the ref update and its report left to do. */
const FINISH_GRACE_MS = 60_000;
/** index-pack's words when a pack is over receive.maxInputSize. */
const TOO_BIG = 'pack exceeds maximum allowed size';

/**
 * One way a push reaches git: an SSH channel (git-receive-pack) or an HTTP request (git
 * http-backend, which runs receive-pack). Everything else about a push is the receiver's.
 */
export interface PushClient {
  caller: Caller;
  /** Whether the client has gone away. */
  gone(): boolean;
  /** Calls `listener` once when the client goes away; returns the way to stop listening. */
  onGone(listener: () => void): () => void;
  /** Calls `listener` for each chunk the client sends git; returns the way to stop listening. */
  onInput(listener: () => void): () => void;
  /** A line for the user outside git's own output; a transport with no place for it drops it. */
  say(line: string): void;
  /** Starts git for the push in `repo` with git's config and `env` (the hook's socket and token) added, and wires it to the client. */
  start(git: { config: Record<string, string>; env: Record<string, string> }, repo: string): ChildProcessWithoutNullStreams;
  /** The client is gone: stop relaying, end git's input and drain its output so it never blocks. */
  detach(child: ChildProcessWithoutNullStreams): void;
  /** rack ends the push: as `detach`, after telling the client `line` where the transport has a place for it. */
  drop(child: ChildProcessWithoutNullStreams, line: string): void;
}

export interface PushReceiverOptions {
  reposRoot: string;
  hooksDir: string;
  controlSocket: string;
  maxPushBytes: number;
  /** A push whose client sends nothing this long while git waits for it is ended. */
  idleTimeoutMs: number;
  store: Store;
  /** RACK_DOMAIN and RACK_CONSOLE_HOST: a push creating an app must not give it a host another holds. */
  hosts: { domain: string; consoleHost: string };
  sessions: PushSessions;
  pushLock: PushLock;
  check: PushCheck;
  onAppCreated: (app: string) => Promise<void>;
  audit: AuditLog;
  log: Logger;
}

/** git's config as environment variables (git 2.31+): no argument a transport could get wrong. */
export function gitConfigEnv(config: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  const entries = Object.entries(config);
  entries.forEach(([key, value], i) => {
    env[`GIT_CONFIG_KEY_${i}`] = key;
    env[`GIT_CONFIG_VALUE_${i}`] = value;
  });
  env['GIT_CONFIG_COUNT'] = String(entries.length);
  return env;
}

/**
 * The one receive core of ssh and HTTP pushes: rights, the push lock from before git starts until
 * the branch is checked against what serves, the push session the pre-receive hook speaks for,
 * the handling of a client that goes away, and the audit record.
 */
export class PushReceiver {
  private stopping = false;

  constructor(private readonly opts: PushReceiverOptions) {}

  /**
   * rackd is stopping: pushes not yet started (waiting for the push lock included) are refused;
   * those under way go on, and the push lock's `idle()` says when they are done.
   */
  refuseNew(): void {
    this.stopping = true;
  }

  /** True when the app exists; throws when the caller may not push to it (or create it by pushing). */
  async authorize(caller: Caller, app: string): Promise<boolean> {
    const exists = (await this.opts.store.getApp(app)) !== undefined;
    if (exists) authorize(caller.principal, 'deploy', 'git push', app);
    else {
      // A push to a renamed app's old remote is told where it went, and creates nothing.
      const renamed = await this.opts.store.renamedTo(app);
      if (renamed) throw renamedError(renamed);
      authorize(caller.principal, 'admin', `git push creating ${app}`, undefined);
      assertNewAppName(app);
      assertDefaultHostFree(app, { ...this.opts.hosts, apps: await this.opts.store.listApps() });
    }
    return exists;
  }

  /** The push's config for git: the hooks and the size limit. */
  gitConfig(): Record<string, string> {
    return { 'core.hooksPath': this.opts.hooksDir, 'receive.maxInputSize': String(this.opts.maxPushBytes) };
  }

  /** A whole push: `app` must already be a checked name. Resolves with git's exit status. */
  async push(client: PushClient, app: string): Promise<number> {
    const { store, pushLock, log } = this.opts;
    this.assertOpen();
    // Rights are checked before git reads a byte (and before waiting): a refused push changes nothing.
    await this.authorize(client.caller, app);
    return pushLock.run(
      app,
      async () => {
        if (client.gone()) return 1;
        this.assertOpen();
        if (!(await this.authorize(client.caller, app))) {
          await store.createApp(assertNewAppName(app));
          await this.opts.onAppCreated(app);
          log.info({ app, by: createdBy(client.caller.principal), via: client.caller.via }, 'app created by push');
          await this.opts.audit.record(client.caller, { app, action: 'apps:create', detail: 'by git push', outcome: 'ok' });
        }
        // Git reports quarantine paths under the real path; compare like with like.
        const repo = await realpath(await ensureBareRepo(this.opts.reposRoot, app));
        // A marker kept because its repair failed is tried again before this push can replace it.
        await this.opts.check.retryPending(app);
        return client.gone() ? 1 : this.receive(client, app, repo);
      },
      () => client.say(`-----> Waiting for another push to ${app} to finish`),
    );
  }

  /** Runs under the push lock, for a client still there: git, then the check of what its hook released. */
  private async receive(client: PushClient, app: string, repo: string): Promise<number> {
    const { sessions, controlSocket, maxPushBytes, log } = this.opts;
    const interrupted = new AbortController();
    const { token, session } = sessions.open({ app, keyName: createdBy(client.caller.principal), repo, interrupted: interrupted.signal });
    let outcome: PushOutcome | 'none' = 'none';
    let code = 1;
    let gone = false;
    let idle = false;
    let stopListening = () => {};
    let stopInput = () => {};
    let deadline: PushIdleDeadline | undefined;
    try {
      const child = client.start({ config: this.gitConfig(), env: { RACK_CONTROL_SOCKET: controlSocket, RACK_PUSH_TOKEN: token } }, repo);
      const tooBig = watchFor(child, TOO_BIG);
      stopListening = client.onGone(() => {
        gone = true;
        interrupted.abort();
        client.detach(child);
        this.clientGone(child, session);
      });
      const silence = new PushIdleDeadline(this.opts.idleTimeoutMs, () => {
        // Once the hook has called in, git is never killed (the release is rolling out).
        if (session.stage !== 'receiving' || gone) return true;
        // git has not taken what the client sent: rack is behind, not the client.
        if (child.stdin.writableLength > 0) return false;
        idle = true;
        interrupted.abort();
        client.drop(child, ` !     No data from your push for ${Math.round(this.opts.idleTimeoutMs / 1000)} s: rack ended it`);
        child.kill('SIGTERM');
        return true;
      });
      deadline = silence;
      stopInput = client.onInput(() => silence.touch());
      child.stdout.on('data', () => silence.touch());
      child.stderr.on('data', () => silence.touch());
      silence.start();
      code = await new Promise<number>((resolve, reject) => {
        child.on('error', reject);
        child.on('close', (c) => resolve(c ?? 1));
      });
      silence.stop();
      stopListening();
      sessions.close(token);
      // git may die while the hook's handler still rolls out: the check waits for it.
      if (session.stage === 'deploying') await session.handlerDone;
      if (session.released) {
        const out = textOutput((line) => (gone ? undefined : client.say(line)));
        outcome = await this.opts.check.settle(session.released, out);
      }
      if (tooBig() && !gone) client.say(` !     push refused: it is over rack's limit of ${formatSize(maxPushBytes)} (RACK_MAX_PUSH)`);
      return code;
    } finally {
      deadline?.stop();
      stopInput();
      stopListening();
      sessions.close(token);
      // Still under the push lock, git done and the hook returned: what a failed push left in quarantine can go.
      if (code !== 0) await this.removeQuarantines(app, repo);
      log.info({ app, code, gone, idle, via: client.caller.via, release: session.released?.release, outcome }, 'push finished');
      const released = session.released;
      await this.opts.audit.record(client.caller, {
        app,
        action: 'git push',
        detail: released ? `v${released.release} ${released.commit.slice(0, 7)}` : '',
        outcome: !released ? (gone || idle ? 'interrupted' : 'rejected') : (session.failed ?? (outcome === 'rolled-back' ? 'rolled_back' : 'ok')),
      });
    }
  }

  private assertOpen(): void {
    if (this.stopping) throw new RackError('restarting', 'rack is restarting; try again in a moment');
  }

  private async removeQuarantines(app: string, repo: string): Promise<void> {
    try {
      const removed = await removeQuarantines(repo);
      if (removed.length > 0) this.opts.log.info({ app, removed }, 'quarantine of a failed push removed');
    } catch (err) {
      this.opts.log.warn({ app, err: String(err) }, 'could not remove the quarantine of a failed push');
    }
  }

  /**
   * The client hung up. Before the hook has called in, nothing was released: stop git. Once it has,
   * git is left to finish (a rollout cut short would be worse than a push nobody watched), and is
   * killed only if it hangs long after the hook.
   */
  private clientGone(child: ChildProcessWithoutNullStreams, session: PushSession): void {
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
