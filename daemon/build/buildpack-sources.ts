import { execFile } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { isAbsolute, join, resolve, sep } from 'node:path';
import { promisify } from 'node:util';
import { RackError } from '../rack-error.js';

const run = promisify(execFile);
const BUILT_IN = /^[a-z0-9][a-z0-9-]*$/;
const URL = /^(https?|git|file):\/\/[^\s]+$/;
const REF = /^[A-Za-z0-9._\/-]{1,100}$/;
const MAX_BUILDPACKS = 10;

/** Only these transports: `ext::` and friends would run commands on the rack host. */
const GIT_PROTOCOLS = [
  '-c', 'protocol.allow=never',
  '-c', 'protocol.https.allow=always',
  '-c', 'protocol.http.allow=always',
  '-c', 'protocol.git.allow=always',
  '-c', 'protocol.file.allow=always',
];

export interface BuildpackSet {
  /** The value the build runner takes as RACK_BUILDPACKS: built-in names and mount points. */
  list: string;
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

function inside(root: string, path: string): boolean {
  return resolve(path).startsWith(resolve(root) + sep);
}

/**
 * Resolves the buildpacks a build asked for: built-in names stay names; a git URL (`URL#REF` pins a
 * ref) is cloned on the host; a path is used as it is. Paths and file:// URLs must lie under
 * `localRoot` (RACK_HOME/buildpacks): a key for one app must not read the rest of the host through a
 * build. Each custom buildpack is mounted read-only at /rack/custom/N.
 */
export async function resolveBuildpacks(
  entries: string[],
  opts: { builtInDir: string; localRoot: string; workDir: string },
): Promise<BuildpackSet> {
  if (entries.length > MAX_BUILDPACKS) throw new RackError('build_failed', `at most ${MAX_BUILDPACKS} buildpacks`);
  const names: string[] = [];
  const binds: string[] = [];
  let temp: string | undefined;
  const cleanup = async () => {
    if (temp) await rm(temp, { recursive: true, force: true });
  };
  try {
    for (const [i, entry] of entries.entries()) {
      const mount = `/rack/custom/${i}`;
      if (BUILT_IN.test(entry)) {
        if (!(await isDir(join(opts.builtInDir, entry)))) throw new RackError('build_failed', `no built-in buildpack named "${entry}"`);
        names.push(entry);
      } else if (isAbsolute(entry)) {
        if (!inside(opts.localRoot, entry) || !(await isDir(entry))) {
          throw new RackError('build_failed', `buildpack path ${entry} must be a directory under ${opts.localRoot}`);
        }
        binds.push(`${resolve(entry)}:${mount}:ro`);
        names.push(mount);
      } else if (URL.test(entry)) {
        const [url, ref] = entry.split('#', 2) as [string, string | undefined];
        if (ref !== undefined && !REF.test(ref)) throw new RackError('build_failed', `invalid buildpack ref "${ref.slice(0, 40)}"`);
        if (url.startsWith('file://') && !inside(opts.localRoot, url.slice('file://'.length))) {
          throw new RackError('build_failed', `file:// buildpacks must lie under ${opts.localRoot}`);
        }
        temp ??= await mkdtemp(join(opts.workDir, 'buildpacks-'));
        const dir = join(temp, String(i));
        await git([...GIT_PROTOCOLS, 'clone', '--quiet', '--', url, dir], `cannot clone buildpack ${url}`);
        if (ref !== undefined) await git(['-C', dir, 'checkout', '--quiet', ref, '--'], `buildpack ${url} has no ref ${ref}`);
        binds.push(`${dir}:${mount}:ro`);
        names.push(mount);
      } else {
        throw new RackError('build_failed', `not a buildpack name, path or git URL: "${entry.slice(0, 80)}"`);
      }
    }
    return { list: names.join(','), binds, cleanup };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

async function isDir(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

async function git(args: string[], failure: string): Promise<void> {
  try {
    await run('git', args, { env: { PATH: process.env['PATH'], HOME: process.env['HOME'], GIT_TERMINAL_PROMPT: '0' }, timeout: 120_000 });
  } catch (err) {
    const detail = ((err as { stderr?: string }).stderr ?? '').trim().split('\n').pop() ?? '';
    throw new RackError('build_failed', `${failure}${detail ? `: ${detail}` : ''}`, { cause: err });
  }
}
