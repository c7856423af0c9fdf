import { RackError } from '../rack-error.js';
import type { KeyRole } from '../store/records.js';
import type { Principal } from './principal.js';

/**
 * What a command needs of the key that runs it:
 * - `public`: anyone with a key (help, version);
 * - `checked-by-command`: anyone with a key reaches the command, which checks the rights itself
 *   because the app comes from what it names, not from `-a`: an add-on's app, a host's app (it calls
 *   `authorize()` with that app), or a list it filters to the key's apps;
 * - `deploy`: a key for this app, deploy-only keys included (push, reading releases/builds/logs);
 * - `member`: a full key for this app (config, rollback, run, domains, ...);
 * - `admin`: an admin key (creating and destroying apps, keys).
 */
export type AccessLevel = 'public' | 'checked-by-command' | 'deploy' | 'member' | 'admin';

const ROLE_WORDS: Record<KeyRole, string> = {
  admin: 'an admin',
  app: 'an app',
  deploy: 'a deploy-only',
};

/** Whether the key or token acts on this app at all. Names are compared exactly: `shop-prod` is not `shop`. */
export function keyHasApp(key: Principal, app: string): boolean {
  return key.role === 'admin' || key.apps.includes(app);
}

export function allowed(key: Principal, level: AccessLevel, app: string | undefined): boolean {
  if (key.role === 'admin') return true;
  switch (level) {
    case 'public':
    case 'checked-by-command':
      return true;
    case 'admin':
      return false;
    case 'deploy':
      return app !== undefined && key.apps.includes(app);
    case 'member':
      return app !== undefined && key.role === 'app' && key.apps.includes(app);
  }
}

/** Throws a refusal that names the key (or token) and the reason. */
export function authorize(key: Principal, level: AccessLevel, action: string, app: string | undefined): void {
  if (allowed(key, level, app)) return;
  const what = app ? `${action} on ${app}` : action;
  let why: string;
  if (level === 'admin') why = `it is ${ROLE_WORDS[key.role]} ${key.kind}, and only admin ${key.kind}s may`;
  else if (app === undefined || !key.apps.includes(app)) why = `it has no right on ${app ?? 'that app'}`;
  else why = `it is ${ROLE_WORDS[key.role]} ${key.kind}`;
  throw new RackError('forbidden', `${key.kind} "${key.name}" may not run ${what}: ${why}`);
}
