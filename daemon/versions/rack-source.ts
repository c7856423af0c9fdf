import { execFile } from 'node:child_process';
import { access, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { RackError } from '../rack-error.js';
import { runProgram } from '../run-script.js';

const run = promisify(execFile);

/** Where rack keeps its own versions: `source.git` (what was fetched) and one folder per commit. */
export const versionsDir = (home: string) => join(home, 'versions');
const sourceRepo = (home: string) => join(versionsDir(home), 'source.git');

// git never asks a question nobody is there to answer, and reads no user's config.
const GIT_ENV = { ...process.env, GIT_TERMINAL_PROMPT: '0', GIT_CONFIG_NOSYSTEM: '1', GIT_ASKPASS: '/bin/false', SSH_ASKPASS: '/bin/false' };

/** A tag, branch or commit as a user names it: no option, no way out of refs/, nothing git refuses. */
const REF = /^(?!-)(?!.*\.\.)(?!.*\/\/)(?!.*\.lock$)[A-Za-z0-9._/-]{1,200}$/;
const COMMIT = /^[0-9a-f]{7,40}$/;

export function checkRef(ref: string): string {
  if (!REF.test(ref) || ref.endsWith('/') || ref.endsWith('.')) throw new RackError('bad_argument', `not a tag, branch or commit: ${JSON.stringify(ref.slice(0, 60))}`);
  return ref;
}

/** A repository git can fetch from: a URL of its own schemes, scp-like `user@host:path`, or a path. */
export function checkSourceUrl(url: string): string {
  // eslint-disable-next-line no-control-regex
  const bad = url.length === 0 || url.length > 1000 || url.startsWith('-') || /[\x00-\x20\x7f]/.test(url) || /^ext::|^fd::/i.test(url);
  const shaped = /^(https?|ssh|git|file):\/\/[^\s]+$/.test(url) || /^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^\s]+$/.test(url) || url.startsWith('/');
  if (bad || !shaped) throw new RackError('bad_argument', `not a repository URL git fetches from (https://, ssh://, git://, file://, user@host:path or an absolute path): ${JSON.stringify(url.slice(0, 80))}`);
  return url;
}

async function git(args: string[], cwd?: string): Promise<string> {
  const { stdout } = await run('git', args, { cwd, env: GIT_ENV, maxBuffer: 16 * 1024 * 1024 });
  return stdout.trim();
}

/** The repository rack was installed from: its install's `origin`, else the install itself. */
export async function defaultSource(installDir: string): Promise<string> {
  const origin = await git(['-C', installDir, 'config', '--get', 'remote.origin.url']).catch(() => '');
  if (origin !== '') return origin;
  try {
    await access(join(installDir, '.git'));
    return installDir;
  } catch {
    throw new RackError('update_failed', `rack at ${installDir} is no git checkout and has no origin: name a repository with --from URL`);
  }
}

export interface Fetched {
  commit: string;
  /** What the commit was found as: `HEAD of URL`, `tag v1.2`, `branch main`, `commit abc1234`. */
  as: string;
  /** package.json's version at that commit. */
  version: string;
}

/**
 * Fetches the source's branches, tags and HEAD into `versions/source.git` (a bare repository of
 * rack's own, kept between updates so the next fetch is small) and finds `ref` there: a tag, then
 * a branch, then a commit; the source's HEAD when none is given.
 */
export async function fetchSource(home: string, url: string, ref: string | undefined, onLine: (line: string) => void): Promise<Fetched> {
  const repo = sourceRepo(home);
  await mkdir(versionsDir(home), { recursive: true, mode: 0o700 });
  await access(join(repo, 'HEAD')).catch(() => git(['init', '--quiet', '--bare', repo]));
  const lines: string[] = [];
  const code = await runProgram(
    'git',
    ['-C', repo, 'fetch', '--quiet', '--no-tags', '--force', '--prune', '--', url, '+HEAD:refs/source/HEAD', '+refs/heads/*:refs/source/heads/*', '+refs/tags/*:refs/source/tags/*'],
    { env: GIT_ENV },
    (line) => {
      lines.push(line);
      onLine(line);
    },
  );
  if (code !== 0) throw new RackError('update_failed', `git could not fetch ${url}: ${lines.at(-1) ?? `status ${code}`}`);
  const candidates: [string, string][] =
    ref === undefined
      ? [['refs/source/HEAD', `the HEAD of ${url}`]]
      : [
          [`refs/source/tags/${ref}`, `tag ${ref}`],
          [`refs/source/heads/${ref}`, `branch ${ref}`],
          ...(COMMIT.test(ref) ? ([[ref, `commit ${ref}`]] as [string, string][]) : []),
        ];
  for (const [name, as] of candidates) {
    const commit = await git(['-C', repo, 'rev-parse', '--verify', '--quiet', '--end-of-options', `${name}^{commit}`]).catch(() => '');
    if (/^[0-9a-f]{40}$/.test(commit)) return { commit, as, version: await versionAt(home, commit) };
  }
  throw new RackError('update_failed', `${url} has no tag, branch or commit ${ref ?? 'HEAD'}`);
}

/** package.json's version at a fetched commit. */
export async function versionAt(home: string, commit: string): Promise<string> {
  try {
    const pkg = JSON.parse(await git(['-C', sourceRepo(home), 'show', `${commit}:package.json`])) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : 'unknown';
  } catch {
    throw new RackError('update_failed', `commit ${commit.slice(0, 7)} has no package.json: it is not rack`);
  }
}

/** How many commits `to` has that `from` has not, when both are in source.git; undefined when `from` is unknown there. */
export async function commitsAhead(home: string, from: string, to: string): Promise<number | undefined> {
  const out = await git(['-C', sourceRepo(home), 'rev-list', '--count', `${from}..${to}`]).catch(() => '');
  return /^\d+$/.test(out) ? Number(out) : undefined;
}

/** A working copy of `commit` in `dir`, sharing source.git's objects (nothing is copied twice). */
export async function checkout(home: string, commit: string, dir: string): Promise<void> {
  await git(['clone', '--quiet', '--shared', '--no-checkout', sourceRepo(home), dir]);
  await git(['-C', dir, 'checkout', '--quiet', '--detach', commit]);
}
