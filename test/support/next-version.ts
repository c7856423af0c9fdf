import { execFile } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from './rack-daemon.js';

const run = promisify(execFile);

/**
 * A source to update rack from: a clone of this checkout with one more commit on branch `next`
 * (the version gets `-SUFFIX`). `installed` is this checkout's commit, `next` the new one; `dir`
 * sits in a temp folder of its own (remove `dir/..`).
 */
export async function nextVersionSource(suffix = 'next'): Promise<{ dir: string; installed: string; next: string }> {
  const git = async (args: string[], cwd: string) => (await run('git', args, { cwd })).stdout.trim();
  const installed = await git(['rev-parse', 'HEAD'], ROOT);
  const dir = join(await mkdtemp(join(tmpdir(), 'rack-source-')), 'rack');
  await run('git', ['clone', '-q', ROOT, dir]);
  await git(['checkout', '-q', '-b', 'next', installed], dir);
  const pkg = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8')) as { version: string };
  await writeFile(join(dir, 'package.json'), `${JSON.stringify({ ...pkg, version: `${pkg.version}-${suffix}` }, null, 2)}\n`);
  await git(['-c', 'user.email=dev@example.com', '-c', 'user.name=Dev', 'commit', '-qam', 'the next version'], dir);
  return { dir, installed, next: await git(['rev-parse', 'HEAD'], dir) };
}
