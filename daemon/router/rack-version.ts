import { readFileSync } from 'node:fs';

/**
 * rack's version as the install this code runs from says (its package.json, beside dist/): a
 * router process reports it, and rackd hands off from a router whose version is not its own.
 * 'unknown' when there is no package.json there (a dist folder copied on its own).
 */
export function installedVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : 'unknown';
  } catch {
    return 'unknown';
  }
}
