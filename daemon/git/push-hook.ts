import { resolve, sep } from 'node:path';
import type { Pipeline } from '../deploy.js';
import { RackError } from '../rack-error.js';
import { textOutput } from '../user-output.js';
import type { PushSessions } from './push-sessions.js';
import { GIT_OBJECT_ENV_KEYS, type GitObjectEnv } from './repo.js';

const DEPLOY_BRANCHES = ['refs/heads/main', 'refs/heads/master'];
const ZERO = /^0+$/;
const SHA = /^[0-9a-f]{40}([0-9a-f]{24})?$/;

interface RefUpdate {
  oldRev: string;
  newRev: string;
  ref: string;
}

/** Checks what a push would change; only a single update of main or master is deployable. */
export function deployableRef(refs: unknown): RefUpdate {
  if (!Array.isArray(refs) || refs.length === 0) throw new RackError('bad_ref', 'nothing was pushed');
  const updates = refs as Partial<RefUpdate>[];
  for (const u of updates) {
    if (typeof u.ref !== 'string' || typeof u.newRev !== 'string' || typeof u.oldRev !== 'string' || !SHA.test(u.newRev)) {
      throw new RackError('bad_ref', 'malformed ref update');
    }
    if (!DEPLOY_BRANCHES.includes(u.ref)) {
      throw new RackError('bad_ref', `rack deploys only the main or master branch; push with "git push rack ${shortRef(u.ref)}:main"`);
    }
    if (ZERO.test(u.newRev)) throw new RackError('bad_ref', `deleting ${shortRef(u.ref)} is not allowed`);
  }
  if (updates.length > 1) throw new RackError('bad_ref', 'push main or master, not both at once');
  return updates[0] as RefUpdate;
}

function shortRef(ref: string): string {
  return ref.replace(/^refs\/heads\//, '');
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
export function preReceiveHandler(sessions: PushSessions, pipeline: Pipeline) {
  return async (request: Record<string, unknown>, say: (line: string) => void): Promise<number> => {
    const session = sessions.get(request['token']);
    if (!session) throw new RackError('forbidden', 'unknown push');
    const update = deployableRef(request['refs']);
    await pipeline.push(
      {
        app: session.app,
        commit: update.newRev,
        repo: session.repo,
        objects: objectEnv(request['objects'], session.repo),
        keyName: session.keyName,
      },
      textOutput(say),
      session.interrupted,
    );
    return 0;
  };
}
