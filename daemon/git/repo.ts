import { execFile, spawn } from 'node:child_process';
import { link, mkdir, readdir, rm, stat } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { promisify } from 'node:util';
import type { Logger } from '../log.js';
import { RackError } from '../rack-error.js';

const run = promisify(execFile);

/**
 * Git objects pushed but not yet accepted live in a quarantine directory that only the hook's
 * environment names. A build running from pre-receive must read through these variables.
 */
export interface GitObjectEnv {
  GIT_OBJECT_DIRECTORY?: string;
  GIT_ALTERNATE_OBJECT_DIRECTORIES?: string;
  GIT_QUARANTINE_PATH?: string;
}

export const GIT_OBJECT_ENV_KEYS = ['GIT_OBJECT_DIRECTORY', 'GIT_ALTERNATE_OBJECT_DIRECTORIES', 'GIT_QUARANTINE_PATH'] as const;

export function repoDir(reposRoot: string, app: string): string {
  return join(reposRoot, `${app}.git`);
}

/** Creates the app's bare repo on first use. `app` must already be a validated name. */
export async function ensureBareRepo(reposRoot: string, app: string): Promise<string> {
  const dir = repoDir(reposRoot, app);
  try {
    await stat(join(dir, 'HEAD'));
    return dir;
  } catch {
    await mkdir(reposRoot, { recursive: true });
    await run('git', ['init', '--quiet', '--bare', '--initial-branch=main', dir]);
    return dir;
  }
}

/** The quarantine of a push in `objects/`: git-receive-pack's `tmp_objdir-incoming-XXXXXX` (older git: `incoming-XXXXXX`). */
const QUARANTINE = /^(tmp_objdir-)?incoming-[A-Za-z0-9_]+$/;

/**
 * Removes what pushes that never finished left in quarantine (git deletes its own on any exit it
 * lives through, not after a SIGKILL): each is a whole pack, and each retry of a killed push adds
 * another. Only while no git-receive-pack runs for the repo: under the app's push lock, or at start.
 * Returns the names removed.
 */
export async function removeQuarantines(dir: string): Promise<string[]> {
  let entries: string[];
  try {
    entries = await readdir(join(dir, 'objects'));
  } catch {
    return []; // no repo yet
  }
  const left = entries.filter((name) => QUARANTINE.test(name));
  for (const name of left) await rm(join(dir, 'objects', name), { recursive: true, force: true });
  return left;
}

function gitEnv(objects: GitObjectEnv): NodeJS.ProcessEnv {
  return { PATH: process.env['PATH'], HOME: process.env['HOME'], ...objects };
}

/**
 * `git archive` of one commit as a tar stream, every path under `prefix`. `done` settles when git
 * exits: a consumer of the stream cannot tell a short archive from a failed one otherwise.
 */
export function archive(dir: string, commit: string, prefix: string, objects: GitObjectEnv): { tar: Readable; done: Promise<void> } {
  const child = spawn('git', ['archive', '--format=tar', `--prefix=${prefix}`, commit], {
    cwd: dir,
    env: gitEnv(objects),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const done = new Promise<void>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve();
      else reject(new RackError('build_failed', `git archive failed: ${stderr.trim() || `status ${code}`}`));
    });
  });
  done.catch(() => undefined); // the builder awaits it; this keeps an early failure from going unhandled
  // Node discards what an exited child wrote to a pipe nobody reads yet; hold it in our own stream.
  const tar = new PassThrough();
  child.stdout.pipe(tar);
  return { tar, done };
}

/** A file's contents at a commit, or undefined when the commit has no such file. */
export async function showFile(dir: string, commit: string, path: string, objects: GitObjectEnv): Promise<string | undefined> {
  try {
    const { stdout } = await run('git', ['cat-file', 'blob', `${commit}:${path}`], {
      cwd: dir,
      env: gitEnv(objects),
      maxBuffer: 1024 * 1024,
    });
    return stdout;
  } catch {
    return undefined;
  }
}

/** The commit a branch points at, or undefined when it does not exist (before the first push). */
export async function headCommit(dir: string, branch: string): Promise<string | undefined> {
  try {
    const { stdout } = await run('git', ['rev-parse', '--verify', '--quiet', `refs/heads/${branch}^{commit}`], { cwd: dir, env: gitEnv({}) });
    return stdout.trim() === '' ? undefined : stdout.trim();
  } catch {
    return undefined; // no such branch
  }
}

/** Whether the repo's own object store (not a push's quarantine) holds the commit. */
export async function hasCommit(dir: string, commit: string): Promise<boolean> {
  try {
    await run('git', ['cat-file', '-e', `${commit}^{commit}`], { cwd: dir, env: gitEnv({}) });
    return true;
  } catch {
    return false;
  }
}

/** Moves a branch to `commit` only if it still points at `oldRev` (all zeros: only if it does not exist). */
export async function updateRef(dir: string, branch: string, commit: string, oldRev: string): Promise<void> {
  await run('git', ['update-ref', '-m', 'rack: the release of this commit serves', `refs/heads/${branch}`, commit, oldRev], {
    cwd: dir,
    env: gitEnv({}),
  });
}

/** Points the repo's HEAD at the deploy branch, so a clone checks it out. */
export async function setHeadBranch(dir: string, branch: string): Promise<void> {
  await run('git', ['symbolic-ref', 'HEAD', `refs/heads/${branch}`], { cwd: dir, env: gitEnv({}) });
}

/**
 * Hard-links the objects of a push still in quarantine into the repo's object store, so that the
 * commit about to serve survives whatever happens to git-receive-pack next (a rackd killed mid-push
 * makes the hook fail and git delete the quarantine). Git's own migration afterwards finds the
 * files already there, which it accepts. Pack data goes before its index: an index without its
 * pack would be an error to readers, a pack without an index is ignored.
 */
export async function keepPushedObjects(dir: string, objects: GitObjectEnv): Promise<void> {
  const quarantine = objects.GIT_QUARANTINE_PATH;
  if (!quarantine) return;
  const store = join(dir, 'objects');
  const files: string[] = [];
  for (const entry of await readdir(quarantine, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) files.push(relative(quarantine, join(entry.parentPath ?? entry.path, entry.name)));
  }
  const rank = (f: string) => (f.endsWith('.idx') ? 2 : f.endsWith('.pack') ? 0 : 1);
  files.sort((a, b) => rank(a) - rank(b));
  for (const file of files) {
    if (!/^([0-9a-f]{2}\/[0-9a-f]{38,62}|pack\/pack-[0-9a-f]+\.(pack|idx|rev))$/.test(file.split(sep).join('/'))) continue;
    await mkdir(dirname(join(store, file)), { recursive: true });
    try {
      await link(join(quarantine, file), join(store, file));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
}

/** The mode of a path at a commit (`100644`, `100755`, `120000` for a symlink), or undefined. */
export async function fileMode(dir: string, commit: string, path: string, objects: GitObjectEnv): Promise<string | undefined> {
  try {
    const { stdout } = await run('git', ['ls-tree', commit, '--', path], { cwd: dir, env: gitEnv(objects) });
    return stdout.split(/\s/)[0] || undefined;
  } catch {
    return undefined;
  }
}

/** Removes what cut-off pushes left in each repo's quarantine (see `removeQuarantines`). */
export async function sweepQuarantines(reposRoot: string, log: Logger): Promise<void> {
  for (const name of await readdir(reposRoot)) {
    if (!name.endsWith('.git')) continue;
    try {
      const removed = await removeQuarantines(join(reposRoot, name));
      if (removed.length > 0) log.info({ repo: name, removed }, 'quarantine left by a cut-off push removed');
    } catch (err) {
      log.warn({ repo: name, err: String(err) }, 'could not remove a quarantine');
    }
  }
}
