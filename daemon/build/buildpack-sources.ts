import { execFile } from 'node:child_process';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import { promisify } from 'node:util';
import { RackError } from '../rack-error.js';
import { canonicalBuildpackPath } from './buildpack-path.js';
import { pinFetch } from './fetch-destination.js';

const run = promisify(execFile);
const BUILT_IN = /^[a-z0-9][a-z0-9-]*$/;
const GIT_URL = /^(https?|git|file):\/\/[^\s]+$/i;
const REF = /^[A-Za-z0-9][A-Za-z0-9._\/-]{0,99}$/;
const MAX_BUILDPACKS = 10;

/**
 * Only these transports: `ext::` and friends would run commands on the rack host. The file
 * transport is allowed only for a local clone of a canonical path checked to lie under
 * RACK_HOME/buildpacks, never for a remote URL (a redirect or a submodule must not reach the host).
 */
const gitProtocols = (local: boolean) => [
  '-c', 'protocol.allow=never',
  '-c', `protocol.https.allow=${local ? 'never' : 'always'}`,
  '-c', `protocol.http.allow=${local ? 'never' : 'always'}`,
  '-c', `protocol.git.allow=${local ? 'never' : 'always'}`,
  '-c', `protocol.file.allow=${local ? 'always' : 'never'}`,
];

export interface BuildpackSet {
  /** The value the build runner takes as RACK_BUILDPACKS: built-in names and mount points. */
  list: string;
  /** Beside `list` (RACK_BUILDPACK_LABELS): each as the user wrote it, credentials dropped. */
  labels: string;
  binds: string[];
  cleanup(): Promise<void>;
}

/** `.buildpacks` lines or a `BUILDPACK_URL` value: one entry per line or comma, `#` comments. */
export function parseBuildpackList(text: string): string[] {
  return text
    .split(/[\n,]/)
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
}

/**
 * Resolves the buildpacks a build asked for: built-in names stay names; a git URL (`URL#REF` pins a
 * ref) is cloned on the host, from a public address only (fetch-destination.ts); a path is used as it is. Paths and file:// URLs must lie under
 * `localRoot` (RACK_HOME/buildpacks): a key for one app must not read the rest of the host through a
 * build. Each custom buildpack is mounted read-only at /rack/custom/N.
 */
export async function resolveBuildpacks(
  entries: string[],
  opts: { builtInDir: string; localRoot: string; workDir: string; fetchAllow: readonly string[] },
): Promise<BuildpackSet> {
  if (entries.length > MAX_BUILDPACKS) throw new RackError('build_failed', `at most ${MAX_BUILDPACKS} buildpacks`);
  const names: string[] = [];
  const labels = entries.map(displayName);
  const binds: string[] = [];
  let temp: string | undefined;
  const cleanup = async () => {
    if (temp) await rm(temp, { recursive: true, force: true });
  };
  try {
    for (const [i, given] of entries.entries()) {
      const mount = `/rack/custom/${i}`;
      const entry = await builtInAlias(given, opts.builtInDir);
      if (BUILT_IN.test(entry)) {
        if (!(await isDir(join(opts.builtInDir, entry)))) throw new RackError('build_failed', `no built-in buildpack named "${entry}"`);
        names.push(entry);
      } else if (isAbsolute(entry)) {
        const path = await canonicalBuildpackPath(entry, opts.localRoot);
        if (!(await isDir(path))) throw new RackError('build_failed', `buildpack path ${entry} must be a directory under ${opts.localRoot}`);
        binds.push(`${path}:${mount}:ro`);
        names.push(mount);
      } else if (GIT_URL.test(entry)) {
        const [url, ref] = entry.split('#', 2) as [string, string | undefined];
        if (ref !== undefined && !REF.test(ref)) throw new RackError('build_failed', `invalid buildpack ref "${ref.slice(0, 40)}"`);
        const local = /^file:/i.test(url);
        temp ??= await mkdtemp(join(opts.workDir, 'buildpacks-'));
        const dir = join(temp, String(i));
        if (local) {
          // git percent-decodes file:// URLs itself: it gets the canonical path, never the URL.
          const source = await canonicalBuildpackPath(url, opts.localRoot);
          await git([...gitProtocols(true), 'clone', '--quiet', '--no-local', '--', source, dir], `cannot clone buildpack ${url}`);
        } else {
          // One text for every failure (refused address, closed port, no answer, no repository):
          // a difference between them would tell a tenant what the host's network holds.
          const failed = () => new RackError('build_failed', `cannot fetch buildpack ${displayName(url)}: it is not reachable from this host, or holds no git repository`);
          const pinned = await pinFetch(url, opts.fetchAllow, failed);
          await git([...gitProtocols(false), ...pinned.gitConfig, 'clone', '--quiet', '--', pinned.url, dir], failed);
        }
        if (ref !== undefined) await git([...gitProtocols(true), '-C', dir, 'checkout', '--quiet', ref, '--'], `buildpack ${url} has no ref ${ref}`);
        binds.push(`${dir}:${mount}:ro`);
        names.push(mount);
      } else {
        throw new RackError('build_failed', `not a buildpack name, path or git URL: "${entry.slice(0, 80)}"`);
      }
    }
    return { list: names.join(','), labels: labels.join(','), binds, cleanup };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

/**
 * `heroku/nodejs` (Heroku's name, as app.json and Procfile-era docs give it) is the built-in
 * `nodejs`; `heroku/ruby` and other names rack does not carry are refused with what it has.
 */
async function builtInAlias(entry: string, builtInDir: string): Promise<string> {
  const m = /^heroku\/([a-z0-9][a-z0-9-]*)$/.exec(entry);
  if (m === null) return entry;
  if (await isDir(join(builtInDir, m[1]!))) return m[1]!;
  const have = (await readdir(builtInDir)).filter((n) => BUILT_IN.test(n)).sort().join(', ');
  throw new RackError('build_failed', `${entry}: rack has no built-in ${m[1]} buildpack (built in: ${have}); give the buildpack's git URL instead`);
}

/** An entry for messages: a URL without user or password (a token in it is a secret). */
function displayName(entry: string): string {
  return entry.replace(/^([a-z]+:\/\/)[^@/]*@/i, '$1').replace(/,/g, '%2C');
}

async function isDir(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

/** Runs git; a failure is `failure` with git's last line, or exactly `failure()` (git's kept as the cause). */
async function git(args: string[], failure: string | (() => RackError)): Promise<void> {
  try {
    await run('git', args, { env: { PATH: process.env['PATH'], HOME: process.env['HOME'], GIT_TERMINAL_PROMPT: '0' }, timeout: 120_000 });
  } catch (err) {
    if (typeof failure === 'function') throw new RackError('build_failed', failure().message, { cause: err });
    const detail = ((err as { stderr?: string }).stderr ?? '').trim().split('\n').pop() ?? '';
    throw new RackError('build_failed', `${failure}${detail ? `: ${detail}` : ''}`, { cause: err });
  }
}
