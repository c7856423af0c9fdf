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
   * tree). The steps' own cgroups are gone by then: the builder removes each step's container.
   */
  async close(): Promise<void> {
    const dirs = [join(ROOT, this.parent)];
    for (const entry of await readdir(ROOT).catch(() => [] as string[])) dirs.push(join(ROOT, entry, this.parent));
    await Promise.all(dirs.map((d) => rmdir(d).catch(() => undefined)));
  }
}
