import type Docker from 'dockerode';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, open, readdir, readFile, readlink, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { RackError } from '../rack-error.js';

const run = promisify(execFile);

/**
 * The writable space of a tenant's container (RACK_DISK_LIMIT, `ps:limit TYPE disk=1g`).
 *
 * Docker's own switch, `--storage-opt size=`, needs overlay2 on XFS with project quotas; on ext4
 * (this kind of host) it is refused. So each container's own overlay layer (the folder holding its
 * upper and work dirs, which overlayfs wants on one mount) gets a file system of its own between
 * create and start: a sparse file of the limit's size, made ext4 with the layer's few files copied
 * in (`mkfs.ext4 -d`), loop-mounted over that folder. The kernel then refuses a write past the
 * limit with ENOSPC, to the byte, wherever in the container it lands (/app, /tmp, HOME), and `df /`
 * inside shows the limit, not the host's disk. Nothing is sampled, so nothing overshoots.
 *
 * The file is unlinked as soon as it is mounted: removing the container (Docker unmounts the
 * layer before deleting it) detaches the loop device and frees the space, so nothing is left to
 * clean up after a crash of rackd either. Deleted files give their blocks back to the host
 * (`discard`). It costs a mkfs and a mount of a sparse file per container: about 10 ms on an idle
 * host, 50-130 ms on a loaded one (`npm run bench:limits`).
 *
 * Needs what a rackd on dockerd's host has: root, loop devices, and dockerd's mount namespace.
 * A container restarted by Docker after a crash keeps the mount; one restarted after a reboot of
 * the host (before rackd runs again) would run on the plain layer, without the limit.
 */
export class DiskLimit {
  constructor(
    /** Where the sparse files are made (RACK_HOME/tmp: same host, emptied at start). */
    private readonly dir: string,
    /** The limit of a container that names none (RACK_DISK_LIMIT), in bytes; also each build cache's. */
    readonly defaultBytes: number,
  ) {}

  /**
   * Fails rackd's start with one line when this host cannot enforce the limit, instead of running
   * tenants without one: the engine must use overlay2 with its layers on this machine, and a
   * trial file system must mount.
   */
  async check(docker: Docker): Promise<void> {
    // Three independent checks at once: they add to every start of rackd.
    await Promise.all([this.checkEngine(docker), checkNamespace(), this.checkMount()]);
  }

  private async checkEngine(docker: Docker): Promise<void> {
    const info = (await docker.info()) as { Driver?: string; DockerRootDir?: string };
    if (info.Driver !== 'overlay2') {
      throw new RackError('bad_config', `the disk limit needs Docker's overlay2 storage driver, this engine uses ${info.Driver ?? 'an unknown one'}; ${OFF}`);
    }
    const root = info.DockerRootDir ?? '/var/lib/docker';
    try {
      await stat(join(root, 'overlay2'));
    } catch (err) {
      throw new RackError('bad_config', `the disk limit needs Docker's layers on this host, and ${root}/overlay2 is not here (a remote engine?); ${OFF}`, { cause: err });
    }
  }

  private async checkMount(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    const target = join(this.dir, `disk-check-${randomBytes(4).toString('hex')}`);
    await mkdir(target);
    try {
      await this.mountOver(target, 16 * 1024 * 1024, undefined);
      await run('umount', [target]);
    } catch (err) {
      const detail = ((err as { stderr?: string }).stderr ?? (err as Error).message).trim().split('\n')[0];
      throw new RackError('bad_config', `cannot loop-mount a file system for the disk limit (${detail}); run rackd as root on the Docker host, ${OFF}`, { cause: err });
    } finally {
      await rm(target, { recursive: true, force: true });
    }
  }

  /**
   * Limits a created (not yet started) container's writable space to `bytes` (the default when
   * absent). Anything Docker put in the layer at create (the working directory) is carried over.
   */
  async apply(container: Docker.Container, bytes: number | undefined): Promise<void> {
    const info = await container.inspect();
    const data = info.GraphDriver?.Data as { UpperDir?: string; WorkDir?: string } | undefined;
    const layer = data?.UpperDir ? dirname(data.UpperDir) : undefined;
    if (info.GraphDriver?.Name !== 'overlay2' || !layer || !data?.WorkDir || dirname(data.WorkDir) !== layer) {
      throw new RackError('internal', `cannot limit the disk of container ${info.Id.slice(0, 12)}: its layer is not an overlay2 one`);
    }
    await this.mountOver(layer, bytes ?? this.defaultBytes, layer);
    // Docker's own mode for a layer folder, which mkfs does not copy.
    await chmod(layer, 0o710);
  }

  /**
   * A build's cache folder (bound at /cache) under the same limit as the build: a build writes
   * there too, and the app's cache outlives the build. `keep`: the app's own cache, kept in an
   * image file beside the folder (`APP.img`), made on first use; else a throwaway one
   * (--no-cache). Mounted for the build only (resolves with the unmount), so that nothing of
   * rack's stays mounted in RACK_HOME while no build runs.
   */
  async mountCache(dir: string, keep: boolean): Promise<() => Promise<void>> {
    const unmount = async () => {
      // The build's container may still be being removed, its mount namespace holding this file
      // system alive past the umount: what the build wrote must be in the image file now.
      await run('sync', ['-f', dir]);
      await run('umount', [dir]);
    };
    if (!keep) {
      await this.mountOver(dir, this.defaultBytes, undefined);
      return unmount;
    }
    if (!(await isMountPoint(dir))) {
      const file = `${dir}.img`;
      const size = await stat(file).then(
        (s) => s.size,
        () => -1,
      );
      // A cache may always be lost: one made under another limit, or from before there was one
      // (a plain folder), starts again empty.
      if (size !== this.defaultBytes) {
        await rm(dir, { recursive: true, force: true });
        await mkdir(dir, { recursive: true });
        await rm(file, { force: true });
        await makeFileSystem(file, this.defaultBytes, undefined);
      }
      await run('mount', ['-o', 'loop,discard', file, dir]);
    }
    return unmount;
  }

  /** A fresh ext4 of `bytes` (holding a copy of `content`) mounted at `target`; its file already unlinked. */
  private async mountOver(target: string, bytes: number, content: string | undefined): Promise<void> {
    const file = join(this.dir, `disk-${randomBytes(6).toString('hex')}.img`);
    try {
      await makeFileSystem(file, bytes, content);
      await run('mount', ['-o', 'loop,discard', file, target]);
    } finally {
      await rm(file, { force: true });
    }
  }
}

/** A sparse file of `bytes` made an ext4 (holding a copy of the folder `content`). */
async function makeFileSystem(file: string, bytes: number, content: string | undefined): Promise<void> {
  const handle = await open(file, 'wx', 0o600);
  try {
    await handle.truncate(bytes);
  } finally {
    await handle.close();
  }
  // No journal: what a container writes is thrown away with it, crash or not (a cache may be
  // lost). No reserved blocks: the limit is the tenant's to the last one.
  await run('mkfs.ext4', ['-q', '-F', '-O', '^has_journal', '-m', '0', '-E', 'nodiscard', ...(content ? ['-d', content] : []), file]);
}

/**
 * An app's build cache gone: its folder, and its file system when it has one (unmounted first,
 * as a mount point cannot be removed). Works whether or not the disk limit is on.
 */
export async function removeCache(dir: string): Promise<void> {
  if (await isMountPoint(dir)) await run('umount', [dir]);
  await rm(dir, { recursive: true, force: true });
  await rm(`${dir}.img`, { force: true });
}

async function isMountPoint(dir: string): Promise<boolean> {
  try {
    const [own, parent] = await Promise.all([stat(dir), stat(dirname(dir))]);
    return own.dev !== parent.dev;
  } catch {
    return false;
  }
}

/**
 * Unmounts whatever is mounted below `root`: the build caches a crash of rackd left mounted, in
 * RACK_HOME/cache and (--no-cache) in RACK_HOME/tmp, which is emptied at start.
 */
export async function unmountUnder(root: string): Promise<void> {
  const prefix = `${root}/`;
  const mountinfo = await readFile('/proc/self/mountinfo', 'utf8');
  // Field 5 is the mount point, with spaces and the like written as octal escapes.
  const points = mountinfo
    .split('\n')
    .map((line) => line.split(' ')[4]?.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))))
    .filter((p): p is string => p !== undefined && p.startsWith(prefix));
  for (const point of points.reverse()) await run('umount', [point]);
}

const OFF = 'or set RACK_DISK_LIMIT=off to run without disk limits';

/**
 * A mount made in another mount namespace (rackd under systemd's PrivateTmp, or in a container)
 * is one dockerd never sees: the overlay would quietly use the unlimited layer beneath it.
 */
async function checkNamespace(): Promise<void> {
  const ours = await readlink('/proc/self/ns/mnt');
  const theirs = await dockerdMountNamespaces();
  if (theirs.length === 0) throw new RackError('bad_config', `the disk limit needs dockerd on this host, and no dockerd process is here; ${OFF}`);
  if (!theirs.includes(ours)) {
    throw new RackError('bad_config', `the disk limit needs rackd in dockerd's mount namespace (no PrivateTmp, ProtectSystem or MountFlags in its unit); ${OFF}`);
  }
}

/** The mount namespaces of the dockerd processes on this host (by their `comm`), as `mnt:[N]`. */
async function dockerdMountNamespaces(): Promise<string[]> {
  // Docker's pid file first; a look through /proc (tens of ms on a busy host) only without one.
  try {
    const pid = (await readFile('/var/run/docker.pid', 'utf8')).trim();
    if ((await readFile(`/proc/${pid}/comm`, 'utf8')).trim() === 'dockerd') return [await readlink(`/proc/${pid}/ns/mnt`)];
  } catch {
    // no pid file, or a stale one
  }
  const out: string[] = [];
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      if ((await readFile(`/proc/${pid}/comm`, 'utf8')).trim() === 'dockerd') out.push(await readlink(`/proc/${pid}/ns/mnt`));
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return out;
}
