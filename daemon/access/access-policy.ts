import { RackError } from '../rack-error.js';
import type { KeyRecord } from '../store/records.js';

/**
 * What a command needs of the key that runs it:
 * - `public`: anyone with a key (help, version, the app list filtered to the key's apps);
 * - `deploy`: a key for this app, deploy-only keys included (push, reading releases/builds/logs);
 * - `member`: a full key for this app (config, rollback, run, domains, ...);
 * - `admin`: an admin key (creating and destroying apps, keys).
 */
export type AccessLevel = 'public' | 'deploy' | 'member' | 'admin';

const ROLE_WORDS: Record<KeyRecord['role'], string> = {
  admin: 'an admin key',
  app: 'an app key',
  deploy: 'a deploy-only key',
};

/** Whether the key acts on this app at all. Names are compared exactly: `shop-prod` is not `shop`. */
export function keyHasApp(key: KeyRecord, app: string): boolean {
  return key.role === 'admin' || key.apps.includes(app);
}

export function allowed(key: KeyRecord, level: AccessLevel, app: string | undefined): boolean {
  if (key.role === 'admin') return true;
  switch (level) {
    case 'public':
      return true;
    case 'admin':
      return false;
    case 'deploy':
      return app !== undefined && key.apps.includes(app);
    case 'member':
      return app !== undefined && key.role === 'app' && key.apps.includes(app);
  }
}

/** Throws a refusal that names the key and the reason. */
export function authorize(key: KeyRecord, level: AccessLevel, action: string, app: string | undefined): void {
  if (allowed(key, level, app)) return;
  const what = app ? `${action} on ${app}` : action;
  let why: string;
  if (level === 'admin') why = `it is ${ROLE_WORDS[key.role]}, and only admin keys may`;
  else if (app === undefined || !key.apps.includes(app)) why = `it has no right on ${app ?? 'that app'}`;
  else why = `it is ${ROLE_WORDS[key.role]}`;
  throw new RackError('forbidden', `key "${key.name}" may not run ${what}: ${why}`);
}
