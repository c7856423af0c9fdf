import { readFile } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';
import type { RackBuild } from '../store/records.js';

const OBJECT_ID = /^[0-9a-f]{40}([0-9a-f]{24})?$/;
// A ref git itself would write under refs/: no way out of the git folder.
const REF_NAME = /^refs\/[A-Za-z0-9._\/-]+$/;

async function readText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** Where an install's git data is: `.git` a folder, or (a worktree, a submodule) a file naming it. */
async function gitDirOf(installDir: string): Promise<string | undefined> {
  const dotGit = join(installDir, '.git');
  const file = await readText(dotGit);
  if (file === undefined) return (await readText(join(dotGit, 'HEAD'))) === undefined ? undefined : dotGit;
  const m = /^gitdir: (.+)$/m.exec(file);
  if (!m) return undefined;
  const dir = m[1]!.trim();
  return isAbsolute(dir) ? dir : resolve(installDir, dir);
}

/** A ref's object ID: its own file, in this git folder or the shared one of a worktree, else packed-refs. */
async function resolveRef(gitDir: string, ref: string): Promise<string | undefined> {
  if (!REF_NAME.test(ref) || ref.split('/').includes('..')) return undefined;
  const common = (await readText(join(gitDir, 'commondir')))?.trim();
  const dirs = [gitDir, ...(common ? [isAbsolute(common) ? common : resolve(gitDir, common)] : [])];
  for (const dir of dirs) {
    const loose = (await readText(join(dir, ref)))?.trim();
    if (loose !== undefined && OBJECT_ID.test(loose)) return loose;
  }
  for (const dir of dirs) {
    for (const line of ((await readText(join(dir, 'packed-refs'))) ?? '').split('\n')) {
      const [id, name] = line.trim().split(' ');
      if (name === ref && id !== undefined && OBJECT_ID.test(id)) return id;
    }
  }
  return undefined;
}

/**
 * The commit an install was checked out at, read from its git folder as git keeps it (HEAD, loose
 * refs, packed-refs), without running git: rackd may start where git is not installed, and nothing
 * here needs a shell. `unknown` when the install is no git checkout or its HEAD cannot be read.
 */
export async function installedCommit(installDir: string): Promise<string> {
  const gitDir = await gitDirOf(installDir);
  if (gitDir === undefined) return 'unknown';
  const head = (await readText(join(gitDir, 'HEAD')))?.trim();
  if (head === undefined) return 'unknown';
  if (OBJECT_ID.test(head)) return head;
  const ref = /^ref: (.+)$/.exec(head)?.[1];
  return (ref && (await resolveRef(gitDir, ref))) ?? 'unknown';
}

/** Which rack this install is: package.json's version and the commit it was checked out at. */
export async function rackBuildOf(installDir: string): Promise<RackBuild> {
  const pkg = JSON.parse(await readFile(join(installDir, 'package.json'), 'utf8')) as { version?: unknown };
  return { version: typeof pkg.version === 'string' ? pkg.version : 'unknown', commit: await installedCommit(installDir) };
}

/** `0.1.0 (9a26463)`, or the version alone when the commit is not known. */
export function describeBuild(build: RackBuild): string {
  return build.commit === 'unknown' ? build.version : `${build.version} (${build.commit.slice(0, 7)})`;
}
