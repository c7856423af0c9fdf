import { assertAppName, isAppName } from '../app-name.js';
import { RackError } from '../rack-error.js';
import { keyHasApp } from '../access/access-policy.js';
import type { Principal } from '../access/principal.js';
import type { Store } from '../store/store.js';

export interface AppHints {
  flag: string | undefined;
  env: string | undefined;
  login: string;
  key: Principal;
}

/**
 * Which app a command is about: `-a APP`, else `RACK_APP` sent by ssh, else the login name when it
 * names an app, else the key's only app (for an admin key, the only app there is); else an error
 * that lists the choices.
 */
export async function selectApp(store: Store, hints: AppHints): Promise<string> {
  // An explicit -a is always checked, even when empty; an empty RACK_APP counts as not sent.
  for (const explicit of [hints.flag, hints.env === '' ? undefined : hints.env]) {
    if (explicit !== undefined) {
      const name = assertAppName(explicit);
      await store.requireApp(name);
      return name;
    }
  }
  if (isAppName(hints.login) && (await store.getApp(hints.login))) return hints.login;
  const apps = (await store.listApps()).filter((a) => keyHasApp(hints.key, a.name));
  if (apps.length === 1) return apps[0]!.name;
  if (apps.length === 0) throw new RackError('app_required', 'no apps yet: push one with "git push rack main"');
  throw new RackError('app_required', `which app? add -a APP (one of: ${apps.map((a) => a.name).join(', ')})`);
}

/**
 * The app a command names as its argument (`pipelines:add APP`, `apps:destroy NAME`) or, as Heroku
 * users type it, with `-a APP` (then in `selected`); given both ways, they must agree.
 */
export function namedOrSelected(selected: string, word: string | undefined, usage: string): string {
  if (word === undefined) {
    if (selected === '') throw new RackError('bad_argument', `which app? (usage: ${usage})`);
    return selected;
  }
  const name = assertAppName(word);
  if (selected !== '' && selected !== name) throw new RackError('bad_argument', `-a ${selected} and ${name} name two apps; give one (usage: ${usage})`);
  return name;
}
