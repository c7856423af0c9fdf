import { randomBytes } from 'node:crypto';
import { resolve, sep } from 'node:path';
import { deployLines } from '../deploy-lines.js';
import { RackError } from '../rack-error.js';
import { textOutput, type OutputFlow } from '../user-output.js';
import type { PushPipeline } from './push-pipeline.js';
import type { PushSessions } from './push-sessions.js';
import type { Logger } from '../log.js';
import type { DeployBranch, PushMarker } from '../store/records.js';
import type { Store } from '../store/store.js';
import { DEPLOY_BRANCHES, deployBranch } from './deploy-branch.js';
import { GIT_OBJECT_ENV_KEYS, headCommit, keepPushedObjects, setHeadBranch, type GitObjectEnv } from './repo.js';

const ZERO = /^0+$/;
const SHA = /^[0-9a-f]{40}([0-9a-f]{24})?$/;

interface RefUpdate {
  oldRev: string;
  newRev: string;
  ref: string;
}

/**
 * Checks what a push would change: only a single update of the app's deploy branch is deployable
 * (main or master before the app has one).
 */
export function deployableRef(refs: unknown, app = 'this app', branch?: DeployBranch): RefUpdate & { branch: DeployBranch } {
  if (!Array.isArray(refs) || refs.length === 0) throw new RackError('bad_ref', 'nothing was pushed');
  const updates = refs as Partial<RefUpdate>[];
  for (const u of updates) {
    if (typeof u.ref !== 'string' || typeof u.newRev !== 'string' || typeof u.oldRev !== 'string' || !SHA.test(u.newRev)) {
      throw new RackError('bad_ref', 'malformed ref update');
    }
    const name = shortRef(u.ref);
    if (!u.ref.startsWith('refs/heads/') || !(DEPLOY_BRANCHES as readonly string[]).includes(name)) {
      throw new RackError('bad_ref', `rack deploys only the main or master branch; push with "git push rack ${name}:${branch ?? 'main'}"`);
    }
    if (branch !== undefined && name !== branch) {
      throw new RackError('bad_ref', `rack deploys ${app} from ${branch}; push with "git push rack HEAD:${branch}"`);
    }
    if (ZERO.test(u.newRev)) throw new RackError('bad_ref', `deleting ${name} is not allowed`);
  }
  if (updates.length > 1) throw new RackError('bad_ref', 'push main or master, not both at once');
  const update = updates[0] as RefUpdate;
  return { ...update, branch: shortRef(update.ref) as DeployBranch };
}

function shortRef(ref: string): string {
  return ref.replace(/^refs\/heads\//, '');
}

/**
 * The update must start from the branch's head as it is now (all zeros: from no branch). git checks
 * this only when it moves the ref, after the hook has released: a push advertised a head that has
 * since moved (HTTP advertises in one request and pushes in another, outside the push lock) would
 * otherwise serve a commit the branch never gets.
 */
export async function assertCurrentHead(repo: string, update: { oldRev: string; branch: string }): Promise<void> {
  const head = await headCommit(repo, update.branch);
  if (head === undefined ? ZERO.test(update.oldRev) : head === update.oldRev) return;
  const was = ZERO.test(update.oldRev) ? 'no branch' : update.oldRev.slice(0, 7);
  const now = head === undefined ? 'no longer exists' : `is at ${head.slice(0, 7)}`;
  throw new RackError('bad_ref', `the branch moved since you fetched; pull and push again (${update.branch} ${now}, your push expected ${was})`);
}

/** Quarantine paths from the hook are only used when they lie inside the app's own repo. */
function objectEnv(raw: unknown, repo: string): GitObjectEnv {
  const env: GitObjectEnv = {};
  if (typeof raw !== 'object' || raw === null) return env;
  const root = resolve(repo) + sep;
  for (const key of GIT_OBJECT_ENV_KEYS) {
    const value = (raw as Record<string, unknown>)[key];
    if (typeof value !== 'string') continue;
    const parts = value.split(':').filter((p) => p !== '');
    if (parts.every((p) => resolve(repo, p).startsWith(root))) env[key] = value;
  }
  return env;
}

/** The control-socket handler behind `hooks/pre-receive`. */
export function preReceiveHandler(sessions: PushSessions, pipeline: PushPipeline, store: Store, log: Logger) {
  return async (request: Record<string, unknown>, say: (line: string) => void, flow: OutputFlow): Promise<number> => {
    const session = sessions.get(request['token']);
    if (!session || session.stage !== 'receiving') throw new RackError('forbidden', 'unknown push');
    // A client gone before the hook ran gets nothing built: git will not update the ref for it.
    if (session.interrupted.aborted) throw new RackError('deploy_failed', 'push interrupted: the client went away; nothing was built');
    session.stage = 'deploying';
    // The push's lines also go to pages watching the app live (the Console's Releases tab).
    const push = randomBytes(6).toString('hex');
    let ok = false;
    try {
      const app = await store.requireApp(session.app);
      const update = deployableRef(request['refs'], app.name, await deployBranch(app, session.repo));
      await assertCurrentHead(session.repo, update);
      const objects = objectEnv(request['objects'], session.repo);
      await pipeline.push(
        { app: app.name, commit: update.newRev, repo: session.repo, objects, keyName: session.keyName, receivedAt: session.openedAt },
        textOutput((line) => {
          say(line);
          deployLines.emit({ app: app.name, push, text: line });
        }, flow),
        session.interrupted,
        async (release) => {
          if (app.branch === undefined) {
            await store.setAppBranch(app.name, update.branch);
            await setHeadBranch(session.repo, update.branch);
          }
          // Best effort: without the objects, a failed ref update is mended by a rollback instead.
          await keepPushedObjects(session.repo, objects).catch((err: unknown) => {
            log.warn({ app: app.name, err: String(err) }, 'could not keep the pushed objects');
          });
          const marker: PushMarker = {
            app: app.name,
            release: release.version,
            commit: update.newRev,
            branch: update.branch,
            oldRev: update.oldRev,
            createdAt: new Date().toISOString(),
          };
          await store.putPushMarker(marker);
          session.released = marker;
        },
      );
      ok = true;
      return 0;
    } catch (err) {
      // A release made and then refused (health check, release phase) is a failed push in the audit log, not `ok`.
      if (session.released) session.failed = RackError.from(err).code;
      throw err;
    } finally {
      deployLines.emit({ app: session.app, push, done: { ok } });
      session.stage = 'settled';
      session.markHandlerDone();
    }
  };
}
