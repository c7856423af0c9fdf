import { lstat, readlink, rename, rm, stat, symlink } from 'node:fs/promises';
import { join, resolve } from 'node:path';

/** `RACK_HOME/current`: a symlink to the install the launcher starts, written by rack:update and rack:rollback. */
export const currentLink = (home: string) => join(home, 'current');

/** The entry point of an install, wherever it is. */
export const rackdScript = (dir: string) => join(dir, 'dist', 'daemon', 'main.js');

/**
 * The install the launcher starts: `current` when it points at a built install, else the launcher's
 * own. An install rebuilt by hand after the last rack:update (its main.js newer than the link) wins
 * over the link: the operator who pulled and built there means to run it, and the link is dropped.
 */
export async function chooseInstall(home: string, ownInstall: string): Promise<{ dir: string; why: string }> {
  const link = currentLink(home);
  let target: string;
  let linkedAt: number;
  try {
    linkedAt = (await lstat(link)).mtimeMs;
    target = resolve(home, await readlink(link));
  } catch {
    return { dir: ownInstall, why: 'no rack:update has run' };
  }
  const built = await stat(rackdScript(target)).catch(() => undefined);
  if (built === undefined) return { dir: ownInstall, why: `${link} points at ${target}, which has no build` };
  const own = await stat(rackdScript(ownInstall)).catch(() => undefined);
  if (resolve(target) !== resolve(ownInstall) && own !== undefined && own.mtimeMs > linkedAt) {
    await rm(link, { force: true });
    return { dir: ownInstall, why: `${ownInstall} was built after the last rack:update; it wins over ${target}` };
  }
  return { dir: target, why: `${link}` };
}

/** Points `current` at `dir` in one step (a new link renamed over the old): never absent, never half. */
export async function setCurrent(home: string, dir: string): Promise<void> {
  const link = currentLink(home);
  const temp = `${link}.tmp-${process.pid}`;
  await rm(temp, { force: true });
  await symlink(resolve(dir), temp);
  await rename(temp, link);
}
