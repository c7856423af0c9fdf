import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { repoDir } from '../git/repo.js';
import type { ReleaseRecord } from '../store/records.js';
import type { Store } from '../store/store.js';

const run = promisify(execFile);

/** The commit a release runs, and the bare repo that holds it (the building app's, for a promoted release). */
export interface ReleaseSource {
  app: string;
  release: number;
  commit: string;
  repo: string;
}

export async function releaseSource(store: Store, reposRoot: string, release: ReleaseRecord): Promise<ReleaseSource | undefined> {
  const buildApp = release.promotedFrom?.buildApp ?? release.app;
  const buildId = release.promotedFrom?.build ?? release.build;
  const build = await store.getBuild(buildApp, buildId);
  if (!build) return undefined;
  return { app: release.app, release: release.version, commit: build.commit, repo: repoDir(reposRoot, buildApp) };
}

export interface CommitLine {
  commit: string;
  author: string;
  subject: string;
}

export type CommitDiff =
  | { kind: 'same' }
  | { kind: 'ahead'; commits: CommitLine[]; behind: CommitLine[] }
  /** No common history (a tarball build, an unrelated push): each side's commit is all there is to say. */
  | { kind: 'unrelated'; from: CommitLine | undefined; to: CommitLine | undefined };

const FORMAT = '--format=%H%x00%an%x00%s';
const MAX_COMMITS = 200;

/**
 * The commits `from` has that `to` lacks, and the reverse, read with git by argv from the two bare
 * repos: the second repo's objects are lent to the first as alternates for this one read (git
 * writes nothing then), so apps with separate repos compare as one history.
 */
export async function commitDiff(from: ReleaseSource, to: ReleaseSource): Promise<CommitDiff> {
  if (from.commit === to.commit) return { kind: 'same' };
  const env = { PATH: process.env['PATH'], HOME: process.env['HOME'], GIT_ALTERNATE_OBJECT_DIRECTORIES: join(to.repo, 'objects') };
  const git = async (args: string[]) => (await run('git', args, { cwd: from.repo, env, maxBuffer: 4 * 1024 * 1024 })).stdout;
  const one = async (commit: string): Promise<CommitLine | undefined> => {
    try {
      return parseLines(await git(['log', '-1', FORMAT, commit, '--']))[0];
    } catch {
      return undefined;
    }
  };
  try {
    await git(['merge-base', from.commit, to.commit]);
  } catch {
    return { kind: 'unrelated', from: await one(from.commit), to: await one(to.commit) };
  }
  const commits = parseLines(await git(['log', `--max-count=${MAX_COMMITS}`, FORMAT, `${to.commit}..${from.commit}`, '--']));
  const behind = parseLines(await git(['log', `--max-count=${MAX_COMMITS}`, FORMAT, `${from.commit}..${to.commit}`, '--']));
  return { kind: 'ahead', commits, behind };
}

function parseLines(text: string): CommitLine[] {
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => {
      const [commit = '', author = '', subject = ''] = l.split('\0');
      return { commit, author, subject };
    });
}
