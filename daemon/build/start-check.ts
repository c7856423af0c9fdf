/**
 * A Node.js app that the nodejs buildpack will build but nothing will start: no Procfile, no
 * `start` script and no server.js. Said before the install (which can take minutes) rather than
 * after it, as the push's one failure line; undefined when something will start, or when another
 * buildpack has the last word (it gives the default process types).
 */
export function nothingToStart(input: {
  packageJson: string | undefined;
  hasServerJs: boolean;
  hasProcfileTypes: boolean;
  /** The buildpacks asked for (.buildpacks or BUILDPACK_URL); empty: detection. */
  buildpacks: readonly string[];
}): string | undefined {
  if (input.hasProcfileTypes || input.hasServerJs || input.packageJson === undefined) return undefined;
  const last = input.buildpacks.at(-1);
  if (last !== undefined && last !== 'nodejs' && last !== 'heroku/nodejs') return undefined;
  let pkg: unknown;
  try {
    pkg = JSON.parse(input.packageJson);
  } catch {
    return undefined; // the buildpack says what is wrong with it
  }
  if (typeof pkg !== 'object' || pkg === null) return undefined;
  const { scripts, main } = pkg as { scripts?: unknown; main?: unknown };
  const start = typeof scripts === 'object' && scripts !== null ? (scripts as Record<string, unknown>)['start'] : undefined;
  if (typeof start === 'string' && start.trim() !== '') return undefined;
  const entry = typeof main === 'string' && /^[\w./-]{1,100}$/.test(main) ? main : 'index.js';
  return `nothing would start this app: package.json has no "start" script and there is no server.js or Procfile; add "start": "node ${entry}" to its scripts (or a Procfile line "web: node ${entry}")`;
}
