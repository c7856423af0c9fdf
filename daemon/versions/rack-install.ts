import { createHash } from 'node:crypto';
import { access, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { RackError } from '../rack-error.js';
import { runProgram } from '../run-script.js';
import { checkout, versionsDir } from './rack-source.js';

/** Written last into an install whose build succeeded: a folder without it is not one to run. */
const READY_MARK = '.rack-install-ready';
/** What the stack images are made from: when these differ, the new version makes them again. */
const STACK_SOURCES = ['stack/build', 'stack/launch', 'scripts/make-stack.sh'];

export const versionDir = (home: string, commit: string) => join(versionsDir(home), commit);

/** Whether `dir` holds a finished install (checked out, dependencies, built). */
export async function isInstalled(dir: string): Promise<boolean> {
  try {
    await access(join(dir, READY_MARK));
    await access(join(dir, 'dist', 'daemon', 'main.js'));
    return true;
  } catch {
    return false;
  }
}

export interface InstallSteps {
  /** Times one named step of the install, for the user's `----->` lines and the ledger. */
  phase<T>(name: string, title: string, work: () => Promise<T>): Promise<T>;
  /** A line of a tool's output, for the user (indented under the step). */
  line(text: string): void;
}

async function sameFile(a: string, b: string): Promise<boolean> {
  const [x, y] = await Promise.all([readFile(a).catch(() => undefined), readFile(b).catch(() => undefined)]);
  return x !== undefined && y !== undefined && x.equals(y);
}

/** The last lines of a failed tool's output, for the one line the user is told. */
function lastWords(lines: string[]): string {
  return lines.filter((l) => l.trim() !== '').slice(-1)[0]?.trim().slice(0, 300) ?? '';
}

async function runStep(cmd: string, args: string[], cwd: string, steps: InstallSteps, what: string): Promise<void> {
  const lines: string[] = [];
  const code = await runProgram(cmd, args, { cwd, env: { ...process.env, CI: 'true', npm_config_update_notifier: 'false' } }, (line) => {
    lines.push(line);
    if (lines.length > 200) lines.shift();
    steps.line(line);
  });
  if (code !== 0) throw new RackError('update_failed', `${what} failed with status ${code}${lastWords(lines) ? `: ${lastWords(lines)}` : ''}`);
}

/**
 * Hard links of every file of a node_modules tree (symlinks copied as links): the new install's
 * dependencies in a second, taking no space, when its lockfile is the running install's. A link is
 * safe to share: npm replaces files, it never writes into them, and neither install does either.
 */
async function linkTree(from: string, to: string): Promise<void> {
  await runProgram('cp', ['-al', '--', from, to], {}, () => undefined).then((code) => {
    if (code !== 0) throw new Error(`cp -al exited with status ${code}`);
  });
}

/**
 * Installs rack at `commit` into `versions/<commit>` beside the running one: a checkout sharing
 * source.git's objects, its dependencies (linked from the running install when the lockfiles are
 * the same, else `npm ci`), and its own build (`npm run build`). Built in `<commit>.partial` and
 * renamed once done, so a folder under its name is always a whole install.
 */
export async function installVersion(home: string, commit: string, runningInstall: string, steps: InstallSteps): Promise<string> {
  const dir = versionDir(home, commit);
  if (await isInstalled(dir)) {
    steps.line(`already installed in ${dir}`);
    return dir;
  }
  const partial = `${dir}.partial`;
  await rm(partial, { recursive: true, force: true });
  await rm(dir, { recursive: true, force: true });
  await steps.phase('checkout', `Checking out ${commit.slice(0, 7)} in ${dir}`, () => checkout(home, commit, partial));
  await steps.phase('dependencies', 'Installing dependencies', async () => {
    const shared = (await sameFile(join(partial, 'package-lock.json'), join(runningInstall, 'package-lock.json'))) && (await exists(join(runningInstall, 'node_modules')));
    if (shared) {
      try {
        await linkTree(join(runningInstall, 'node_modules'), join(partial, 'node_modules'));
        steps.line('the lockfile is the running install\'s: its node_modules linked (no download)');
        return;
      } catch (err) {
        steps.line(`could not link the running install's node_modules (${(err as Error).message}); running npm ci`);
        await rm(join(partial, 'node_modules'), { recursive: true, force: true });
      }
    }
    await runStep('npm', ['ci', '--no-audit', '--no-fund', '--loglevel=error'], partial, steps, 'npm ci');
  });
  await steps.phase('build', 'Building (npm run build)', () => runStep('npm', ['run', 'build', '--silent'], partial, steps, 'npm run build'));
  await writeFile(join(partial, READY_MARK), `${new Date().toISOString()}\n`);
  await rename(partial, dir);
  return dir;
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

/** A digest of the files the stack images are made from, to tell whether two installs make the same ones. */
export async function stackDigest(installDir: string): Promise<string> {
  const hash = createHash('sha256');
  const walk = async (path: string): Promise<void> => {
    let entries;
    try {
      entries = await readdir(path, { withFileTypes: true });
    } catch {
      const content = await readFile(path).catch(() => undefined);
      if (content !== undefined) hash.update(`${relative(installDir, path)}\0`).update(content);
      return;
    }
    for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) await walk(join(path, e.name));
  };
  for (const p of STACK_SOURCES) await walk(join(installDir, p));
  return hash.digest('hex');
}

/** Makes the stack images with `dir`'s own script (they are shared by every version: the newest definition wins). */
export async function makeStack(dir: string, steps: InstallSteps): Promise<void> {
  await runStep('bash', [join(dir, 'scripts', 'make-stack.sh')], dir, steps, 'scripts/make-stack.sh');
}

