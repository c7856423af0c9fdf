import type Docker from 'dockerode';
import { randomBytes } from 'node:crypto';
import { posix } from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { stripVTControlCharacters } from 'node:util';
import { extract } from 'tar-stream';
import { RackError } from '../rack-error.js';
import type { OutputFlow } from '../user-output.js';
import { BuildCgroup } from './build-cgroup.js';
import { attachedOptions, removeContainer, runAttached } from './containers.js';
import type { DiskLimit } from './disk-limit.js';
import { imageExists } from './docker-images.js';
import { envList, processEnv } from './docker-processes.js';
import { APP_USER, confinement, hostConfinement, type Confinement, type ProcessLimits } from './isolation.js';
import { LABEL } from './labels.js';
import type { Owner } from './owner.js';
import { containerCommand } from './process-command.js';
import type { Builder } from './process-command.js';

/** A container run to completion with its output captured: a build, or a release phase. */
export interface TaskSpec {
  app: string;
  role: 'build' | 'release';
  /** Build or release number, for the name and labels. */
  id: number;
  image: string;
  cmd: string[] | undefined;
  env: Record<string, string>;
  binds?: string[];
  /** The app's network: builds and release phases reach what the app reaches, nothing more. */
  network: string;
  /** Builds keep their own limits; release phases run as the app does (`forProcess`). */
  confine: Confinement;
  /** Tar streams unpacked into the container before it starts, each at `path`. */
  inputs?: { path: string; tar: Readable; ready?: Promise<void> }[];
  onOutput: (chunk: Buffer) => void;
  /** When the output's reader falls behind, the container's output is paused until it catches up. */
  flow?: OutputFlow;
  timeoutMs: number;
}

export interface InteractiveSpec {
  app: string;
  release: number;
  image: string;
  builder?: Builder;
  command: string;
  env: Record<string, string>;
  network: string;
  limits: ProcessLimits;
  /** The dyno type it is named with (`run.N`, as on Heroku; a scheduled job's `scheduler.N`). */
  dynoType?: string;
  /** Terminal size when the client asked for a TTY (`ssh -t`), else null. */
  tty: { cols: number; rows: number } | null;
  stdin: NodeJS.ReadableStream;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  abort: AbortSignal;
}

/**
 * The Docker driver's one-off part: containers that run to completion (builds, release phases,
 * `run`), `docker build` and `docker commit`. Every container and image it makes carries rack's
 * labels with this daemon's instance ID.
 */
export class DockerTasks {
  /** dockerd's cgroup driver, asked once: a build's cgroup parent is a path only with cgroupfs. */
  private cgroupDriver: Promise<string> | undefined;

  constructor(
    private readonly docker: Docker,
    private readonly owner: Owner,
    /** Absent: RACK_DISK_LIMIT=off. */
    private readonly disk: DiskLimit | undefined,
  ) {}

  /** One-off processes (`run`) of each app running now; they count toward its process quota. */
  private readonly oneOffs = new Map<string, number>();
  /** The last one-off number given, by app and dyno type (run.3). */
  private readonly oneOffNumbers = new Map<string, number>();

  /** How many `run` processes the app has now, counted from the moment each is asked for. */
  oneOffCount(app: string): number {
    return this.oneOffs.get(app) ?? 0;
  }

  private labels(extra: Record<string, string>): Record<string, string> {
    return this.owner.labels(extra);
  }

  /** Runs a container to completion, streaming its output. The caller removes the container. */
  async runTask(spec: TaskSpec): Promise<{ container: string; exitCode: number }> {
    const tag = spec.role === 'build' ? `b${spec.id}` : `v${spec.id}`;
    const container = await this.docker.createContainer({
      name: `rack.${spec.app}.${tag}.${spec.role}.${randomBytes(3).toString('hex')}`,
      Image: spec.image,
      Cmd: spec.cmd,
      Env: envList(spec.env),
      Tty: false,
      ...(spec.confine.user ? { User: spec.confine.user } : {}),
      Labels: this.labels({
        [LABEL.role]: spec.role,
        [LABEL.app]: spec.app,
        [spec.role === 'build' ? LABEL.build : LABEL.release]: String(spec.id),
      }),
      HostConfig: {
        Binds: spec.binds ?? [],
        Init: true,
        NetworkMode: spec.network,
        ...hostConfinement(spec.confine),
      },
    });
    try {
      // Before anything is unpacked into it: the inputs count against the limit too.
      await this.disk?.apply(container, spec.confine.diskBytes);
      for (const input of spec.inputs ?? []) {
        await container.putArchive(input.tar, { path: input.path });
        await input.ready;
      }
    } catch (err) {
      await this.removeContainer(container.id);
      throw err;
    }
    const stream = await container.attach({ stream: true, stdout: true, stderr: true });
    const out = new PassThrough();
    let paused = false;
    let received = 0;
    out.on('data', (chunk: Buffer) => {
      received += chunk.length;
      spec.onOutput(chunk);
      const flow = spec.flow;
      if (flow && !paused && flow.full()) {
        // Reading no more from dockerd makes the container's writes block: memory stays flat.
        paused = true;
        stream.pause();
        void flow.drained().then(() => {
          paused = false;
          stream.resume();
        });
      }
    });
    out.on('error', () => undefined);
    stream.on('error', () => undefined);
    container.modem.demuxStream(stream, out, out);
    const ended = new Promise<void>((resolve) => stream.on('end', resolve));
    await container.start();
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), spec.timeoutMs);
    });
    try {
      const result = await Promise.race([container.wait(), timedOut]);
      if (result === 'timeout') {
        await this.removeContainer(container.id);
        const code = spec.role === 'build' ? 'build_failed' : 'deploy_failed';
        throw new RackError(code, `${spec.role} timed out after ${Math.round(spec.timeoutMs / 1000)} s`);
      }
      // Output may still be in flight after the exit (or held back while its reader catches up):
      // read on until the stream ends, or nothing more has come for 2 s while nothing held it back.
      let done = false;
      void ended.then(() => (done = true));
      for (let seen = -1; !done && (paused || received !== seen); ) {
        seen = received;
        await Promise.race([ended, new Promise((r) => setTimeout(r, 2000))]);
      }
      return { container: container.id, exitCode: (result as { StatusCode: number }).StatusCode };
    } finally {
      clearTimeout(timer);
      out.end();
    }
  }

  /**
   * A one-off process (`run`): the release's image and config, the client's stdin/stdout/stderr
   * attached, a TTY when asked. The container is removed afterwards in every case, and killed
   * when `abort` fires (the client went away).
   */
  async runInteractive(spec: InteractiveSpec): Promise<number> {
    // Counted before the first await, so that a check of the count just before this call holds
    // against any number of `run`s asked for at once.
    this.oneOffs.set(spec.app, this.oneOffCount(spec.app) + 1);
    // Numbers only grow while rackd runs, and a restarted rackd removes the one-offs it finds:
    // no two running one-offs of an app share a name.
    // A caller that names its one-off (the scheduler's scheduler.N) keeps its name.
    const named = spec.env['DYNO'];
    const type = spec.dynoType ?? 'run';
    const key = `${spec.app}\n${type}`;
    const number = (this.oneOffNumbers.get(key) ?? 0) + 1;
    if (named === undefined) this.oneOffNumbers.set(key, number);
    try {
      return await this.runOneOff(spec, named ?? `${type}.${number}`);
    } finally {
      const left = this.oneOffCount(spec.app) - 1;
      if (left > 0) this.oneOffs.set(spec.app, left);
      else this.oneOffs.delete(spec.app);
    }
  }

  private async runOneOff(spec: InteractiveSpec, dyno: string): Promise<number> {
    const container = await this.docker.createContainer({
      name: `rack.${spec.app}.v${spec.release}.${dyno}.${randomBytes(3).toString('hex')}`,
      Image: spec.image,
      // The whole command line goes to a shell in the container (rack-launch's bash, or the
      // image's /bin/sh): quotes, pipes and `;` mean there what the user wrote. None on the host.
      Cmd: containerCommand(spec.builder, spec.command),
      Env: envList(processEnv(spec.builder, { ...spec.env, DYNO: dyno })),
      User: APP_USER,
      ...attachedOptions(spec.tty),
      Labels: this.labels({ [LABEL.role]: 'run', [LABEL.app]: spec.app, [LABEL.release]: String(spec.release), [LABEL.dyno]: dyno }),
      HostConfig: { Init: true, NetworkMode: spec.network, ...confinement(spec.limits) },
    });
    try {
      await this.disk?.apply(container, spec.limits.diskMb === undefined ? undefined : spec.limits.diskMb * 1024 ** 2);
      return await runAttached(container, spec);
    } finally {
      await this.removeContainer(container.id);
    }
  }

  /**
   * `docker build` of a tar context (a Dockerfile app). Proxy settings go in as build args, which
   * Docker does not keep in the image. Output lines are streamed; a failed step throws.
   */
  async buildImage(spec: {
    context: Readable;
    tag: string;
    labels: Record<string, string>;
    buildArgs: Record<string, string>;
    noCache: boolean;
    /** The app's network: RUN steps reach what the app reaches, and not the host. */
    network: string;
    onLine: (line: string) => void;
    timeoutMs: number;
    /**
     * Its memory and CPU weight apply to each RUN step, its process limit to all steps together (a
     * cgroup parent). The classic builder takes nothing else of it: the steps run as the image's
     * user with Docker's default capabilities.
     */
    confine: Confinement;
    /**
     * Each `Step I/N : TEXT` the engine announces, before it runs that step: a reason returned
     * stops the build there and fails it (the engine read the Dockerfile otherwise than rack did).
     */
    checkStep?: (index: number, total: number, text: string) => string | undefined;
  }): Promise<void> {
    this.cgroupDriver ??= this.docker.info().then((i: { CgroupDriver?: string }) => i.CgroupDriver ?? 'unknown');
    const cgroup = await BuildCgroup.open(await this.cgroupDriver, spec.confine.pids);
    try {
      await this.build(spec, cgroup.parent);
    } finally {
      await cgroup.close();
    }
  }

  private async build(spec: Parameters<DockerTasks['buildImage']>[0], cgroupParent: string): Promise<void> {
    const abort = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      abort.abort();
    }, spec.timeoutMs);
    // A failed step does not fail the stream: it arrives as an event with `error`/`errorDetail`.
    let failure: string | undefined;
    let refused: string | undefined;
    const labels = this.labels(spec.labels);
    // The classic builder adds one `LABEL` step per build label after the Dockerfile's own.
    const added = Object.keys(labels).length;
    const step = (line: string) => {
      const m = /^Step (\d+)\/(\d+) : (.*)$/.exec(line);
      if (!m || !spec.checkStep) return;
      const [index, total, text] = [Number(m[1]), Number(m[2]) - added, m[3]!];
      const why = index > total && /^LABEL /i.test(text) ? undefined : spec.checkStep(index, total, text);
      if (why && refused === undefined) {
        refused = why;
        abort.abort();
      }
    };
    try {
      // `cgroupparent` is a build option of the engine's API that dockerode's types leave out.
      const options: Docker.ImageBuildOptions & { cgroupparent: string } = {
        t: spec.tag,
        labels,
        buildargs: spec.buildArgs,
        nocache: spec.noCache,
        networkmode: spec.network,
        rm: true,
        forcerm: true,
        abortSignal: abort.signal,
        memory: spec.confine.memoryBytes,
        memswap: spec.confine.memoryBytes,
        cpushares: spec.confine.cpuShares,
        ...(spec.confine.cpu ? { cpuperiod: 100_000, cpuquota: Math.round(spec.confine.cpu * 100_000) } : {}),
        cgroupparent: cgroupParent,
      };
      const stream = await this.docker.buildImage(spec.context as unknown as NodeJS.ReadableStream, options);
      await new Promise<void>((resolve, reject) => {
        this.docker.modem.followProgress(
          stream,
          (err: Error | null) => (err ? reject(err) : resolve()),
          (event: { stream?: string; error?: string; errorDetail?: { message?: string }; status?: string }) => {
            // Docker wraps a step's stderr in colour codes (ESC[91m … ESC[0m), which arrive as
            // lines of their own: they are no text of the user's.
            for (const line of stripVTControlCharacters(event.stream ?? event.status ?? '').split('\n')) {
              if (line.trim() === '') continue;
              step(line);
              if (refused === undefined) spec.onLine(line);
            }
            const error = event.error ?? event.errorDetail?.message;
            if (error) {
              failure ??= error.trim();
              spec.onLine(error.trim());
            }
          },
        );
      });
    } catch (err) {
      if (refused !== undefined) throw new RackError('build_failed', refused, { cause: err });
      if (timedOut) {
        throw new RackError('build_failed', `build timed out after ${Math.round(spec.timeoutMs / 1000)} s`);
      }
      throw new RackError('build_failed', `docker build failed: ${(err as Error).message}`, { cause: err });
    } finally {
      clearTimeout(timer);
    }
    if (refused !== undefined) throw new RackError('build_failed', refused);
    if (failure !== undefined) throw new RackError('build_failed', `docker build failed: ${failure.split('\n')[0]!.slice(0, 300)}`);
    try {
      await this.docker.getImage(spec.tag).inspect();
    } catch (err) {
      throw new RackError('build_failed', `docker build made no image ${spec.tag}`, { cause: err });
    }
  }

  /**
   * The small files of one folder of a container, by name (subfolders left out), in one archive
   * call; empty when the folder is not there.
   */
  async readFiles(containerId: string, dir: string): Promise<Map<string, Buffer>> {
    const files = new Map<string, Buffer>();
    let archive: NodeJS.ReadableStream;
    try {
      archive = await this.docker.getContainer(containerId).getArchive({ path: dir });
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) return files;
      throw err;
    }
    return new Promise((resolve, reject) => {
      const ex = extract();
      ex.on('entry', (header, body, next) => {
        const chunks: Buffer[] = [];
        body.on('data', (c: unknown) => chunks.push(c as Buffer));
        body.on('end', () => {
          // Entries are named `DIR/NAME`; only the folder's own files count.
          const parts = header.name.split('/').filter((p) => p !== '');
          if (header.type === 'file' && parts.length === 2) files.set(parts[1]!, Buffer.concat(chunks));
          next();
        });
        body.resume();
      });
      ex.on('finish', () => resolve(files));
      ex.on('error', reject);
      archive.on('error', reject);
      archive.pipe(ex);
    });
  }

  /**
   * The app image of a buildpack build: `paths` of the finished build container (its /app)
   * copied onto a fresh container of the run image, then committed. Compilers, caches and
   * whatever else the build left outside those paths stay behind. The copy keeps owners and modes.
   *
   * With a `layer` (the dependencies the runner moved aside, and the launcher: stack/build), the
   * app goes on top of an image of the run image plus those, made once per key and reused while
   * the key holds: a rebuild with unchanged node_modules copies only the app's own files (each
   * archive call on a stopped container mounts it, about 80 ms even for one small file).
   */
  async commitOnto(
    buildContainerId: string,
    runImage: string,
    paths: readonly string[],
    ref: { repo: string; tag: string },
    labels: Record<string, string>,
    layer?: { copies: readonly { path: string; into: string }[]; ref: { repo: string; tag: string } },
  ): Promise<string> {
    let base = runImage;
    if (layer) {
      base = `${layer.ref.repo}:${layer.ref.tag}`;
      if (!(await imageExists(this.docker, base))) await this.copyOnto(buildContainerId, runImage, layer.copies, layer.ref, { ...labels, [LABEL.role]: 'layer' });
    }
    return this.copyOnto(buildContainerId, base, paths.map((path) => ({ path, into: posix.dirname(path) })), ref, labels);
  }

  private async copyOnto(
    buildContainerId: string,
    baseImage: string,
    copies: readonly { path: string; into: string }[],
    ref: { repo: string; tag: string },
    labels: Record<string, string>,
  ): Promise<string> {
    const config = { Labels: this.labels(labels), WorkingDir: '/app', Cmd: ['rack-launch', 'true'] };
    const target = await this.docker.createContainer({ Image: baseImage, ...config });
    try {
      for (const { path, into } of copies) {
        const tar = (await this.docker.getContainer(buildContainerId).getArchive({ path })) as NodeJS.ReadableStream;
        await target.putArchive(tar, { path: into });
      }
      await target.commit({ _query: { container: target.id, repo: ref.repo, tag: ref.tag }, _body: config });
    } catch (err) {
      await removeContainer(this.docker, target.id);
      throw err;
    }
    // Committed: its removal (a few hundred ms for a big /app) need not hold the build. Left
    // behind by a crash, it carries rack's labels and goes in the clean-up at the next start.
    removeContainer(this.docker, target.id).catch(() => undefined);
    return `${ref.repo}:${ref.tag}`;
  }

  removeContainer(id: string): Promise<void> {
    return removeContainer(this.docker, id);
  }
}
