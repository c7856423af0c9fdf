import { RackError } from './rack-error.js';

/**
 * The one place app names are checked. Names end up in paths, image tags, container labels and
 * host names, so this is a security boundary: only lower-case DNS-label characters get through.
 */
const APP_NAME = /^[a-z][a-z0-9]*(-[a-z0-9]+)*$/;
const MAX_LENGTH = 30;

export function isAppName(name: string): boolean {
  return name.length <= MAX_LENGTH && APP_NAME.test(name);
}

export function assertAppName(name: string): string {
  if (!isAppName(name)) {
    const shown = JSON.stringify(name.length > 40 ? `${name.slice(0, 40)}...` : name);
    throw new RackError(
      'bad_app_name',
      `invalid app name ${shown}: use 1-${MAX_LENGTH} lower-case letters, digits and single dashes, starting with a letter`,
    );
  }
  return name;
}

/**
 * Names a new app may not take: `stack` and `stack-run` would tag their images in the stack
 * images' repositories (`rack/stack`, `rack/stack-run`), which Dockerfiles may build on; `rack`
 * is the console's host name.
 */
const RESERVED = new Set(['stack', 'stack-run', 'rack']);

export function assertNewAppName(name: string): string {
  assertAppName(name);
  if (RESERVED.has(name)) throw new RackError('bad_app_name', `"${name}" is reserved by rack; choose another app name`);
  return name;
}

/** `'/myapp.git'`, `'myapp'`, `'/myapp'` → `myapp`; anything else (paths, dots, escapes) is refused. */
export function appFromRepoPath(repoPath: string): string {
  const trimmed = repoPath.replace(/^\//, '').replace(/\.git$/, '');
  return assertAppName(trimmed);
}
