import { randomBytes } from 'node:crypto';
import { access, mkdir, readdir, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { RackError } from '../rack-error.js';

const ROOT = '/sys/fs/cgroup';

/**
 * The cgroup every RUN step of one Dockerfile build runs under. The classic builder takes memory
 * and CPU limits for its step containers but no process limit (nor capabilities or a user): its
 * `cgroupparent` option is the one way to bound them, so rack makes a parent cgroup whose
 * `pids.max` caps all of the build's steps together, and the engine puts each step below it.
 * Needs dockerd's cgroupfs driver (the parent is a path, not a systemd slice) and rackd as root.
 */
export class BuildCgroup {
  private constructor(
    /** The `cgroupparent` to give the build: an absolute path in the cgroup hierarchy. */
    readonly parent: string,
  ) {}

  static async open(driver: string, pids: number): Promise<BuildCgroup> {
    if (driver !== 'cgroupfs') {
      throw new RackError('build_failed', `Dockerfile builds need dockerd's cgroupfs cgroup driver to limit their processes (this engine uses ${driver})`);
    }
    const name = `rack-build-${randomBytes(6).toString('hex')}`;
    // cgroup v1 has a pids hierarchy of its own; v2 (unified) has one tree for every controller.
    const v1 = await access(join(ROOT, 'pids', 'cgroup.procs')).then(() => true, () => false);
    const dir = v1 ? join(ROOT, 'pids', name) : join(ROOT, name);
    try {
      await mkdir(dir);
      await writeFile(join(dir, 'pids.max'), `${pids}\n`);
    } catch (err) {
      await rmdir(dir).catch(() => undefined);
      throw new RackError('build_failed', `cannot make the cgroup that limits the build's processes (${(err as Error).message}); rackd must run as root`, { cause: err });
    }
    return new BuildCgroup(`/${name}`);
  }

  /**
   * Removes the cgroup from every hierarchy the engine made it in (each v1 controller, the unified
   * tree). After a finished build the steps' own cgroups are gone (the builder removes each step's
   * container); after a stopped one the engine may still be removing the last step, so what is
   * still busy is tried again in the background for a while. A cgroup is never removed while
   * anything runs in it (the kernel refuses), so its limit holds to the end.
   */
  async close(): Promise<void> {
    const dirs = [join(ROOT, this.parent)];
    for (const entry of await readdir(ROOT).catch(() => [] as string[])) dirs.push(join(ROOT, entry, this.parent));
    const busy = await removeAll(dirs);
    if (busy.length > 0) retry(busy, Date.now() + 120_000).catch(() => undefined);
  }
}

/** The directories that could not be removed yet (gone or never made count as removed). */
async function removeAll(dirs: string[]): Promise<string[]> {
  const left = await Promise.all(dirs.map((d) => rmdir(d).then(() => undefined, (err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? undefined : d))));
  return left.filter((d): d is string => d !== undefined);
}

async function retry(dirs: string[], until: number): Promise<void> {
  for (let left = dirs; left.length > 0 && Date.now() < until; left = await removeAll(left)) {
    await new Promise((r) => setTimeout(r, 1000).unref());
  }
}
