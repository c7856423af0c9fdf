import { execFile, spawn } from 'node:child_process';
import { mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { promisify } from 'node:util';
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

/** The commit main (or else master) points at, or undefined before the first push. */
export async function headCommit(dir: string): Promise<string | undefined> {
  for (const ref of ['refs/heads/main', 'refs/heads/master']) {
    try {
      const { stdout } = await run('git', ['rev-parse', '--verify', '--quiet', `${ref}^{commit}`], { cwd: dir, env: gitEnv({}) });
      if (stdout.trim() !== '') return stdout.trim();
    } catch {
      // no such branch
    }
  }
  return undefined;
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
