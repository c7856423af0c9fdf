import Docker from 'dockerode';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { PassThrough, type Readable } from 'node:stream';
import { extract } from 'tar-stream';
import { RackError } from '../rack-error.js';
import { LABEL } from './labels.js';
import { containerCommand, type Builder } from './process-command.js';

/** What the supervisor asks for: one process of one type of one release. */
export interface ProcessSpec {
  app: string;
  release: number;
  type: string;
  image: string;
  builder?: Builder;
  command: string;
  env: Record<string, string>;
  /** Container port the process listens on (`PORT`), published on loopback; web processes only. */
  port?: number;
}

export interface ProcessInfo {
  id: string;
  name: string;
  app: string;
  release: number;
  type: string;
  running: boolean;
  /** Docker is waiting to restart it after a crash (backoff). */
  restarting: boolean;
  /** Crash restarts so far. */
  restarts: number;
  /** Loopback address of the published `PORT`, when the process has one. */
  upstream: { host: string; port: number } | null;
  startedAt: string;
}

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
  /** Tar streams unpacked into the container before it starts, each at `path`. */
  inputs?: { path: string; tar: Readable; ready?: Promise<void> }[];
  onOutput: (chunk: Buffer) => void;
  timeoutMs: number;
}

export interface InteractiveSpec {
  app: string;
  release: number;
  image: string;
  builder?: Builder;
  command: string;
  env: Record<string, string>;
  /** Terminal size when the client asked for a TTY (`ssh -t`), else null. */
  tty: { cols: number; rows: number } | null;
  stdin: NodeJS.ReadableStream;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  abort: AbortSignal;
}

const LOOPBACK = '127.0.0.1';

const envList = (env: Record<string, string>) => Object.entries(env).map(([k, v]) => `${k}=${v}`);

/**
 * The Docker driver: the only file that talks to the engine. Everything above it speaks in
 * processes, builds and images, so a Swarm driver can slot in later.
 */
export class DockerRuntime {
  private readonly docker: Docker;

  /**
   * @param instance this daemon's ID (kept in RACK_HOME): two rackds on one engine never see,
   * adopt or remove each other's containers.
   */
  constructor(
    private readonly instance: string,
    docker = new Docker(),
  ) {
    this.docker = docker;
  }

  private labels(extra: Record<string, string>): Record<string, string> {
    return { [LABEL.managed]: 'true', [LABEL.instance]: this.instance, ...extra };
  }

  async ping(): Promise<void> {
    try {
      await this.docker.ping();
    } catch (err) {
      throw new RackError('docker_unavailable', 'no Docker engine answers (is dockerd running? is DOCKER_HOST right?)', {
        cause: err,
      });
    }
  }

  async imageExists(ref: string): Promise<boolean> {
    try {
      await this.docker.getImage(ref).inspect();
      return true;
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) return false;
      throw err;
    }
  }

  // ---- processes

  async startProcess(spec: ProcessSpec): Promise<ProcessInfo> {
    const name = `rack.${spec.app}.v${spec.release}.${spec.type}.${randomBytes(3).toString('hex')}`;
    const env = { ...spec.env };
    const exposed: Record<string, object> = {};
    const bindings: Record<string, { HostIp: string; HostPort: string }[]> = {};
    if (spec.port !== undefined) {
      env['PORT'] = String(spec.port);
      exposed[`${spec.port}/tcp`] = {};
      // Published on loopback only: the router on this host is the one way in. The host port is
      // chosen here, not by Docker, so a process restarted after a crash keeps its address.
      bindings[`${spec.port}/tcp`] = [{ HostIp: LOOPBACK, HostPort: String(await freePort()) }];
    }
    const container = await this.docker.createContainer({
      name,
      Image: spec.image,
      Cmd: containerCommand(spec.builder, spec.command),
      Env: envList(env),
      ExposedPorts: exposed,
      Labels: this.labels({
        [LABEL.role]: 'process',
        [LABEL.app]: spec.app,
        [LABEL.release]: String(spec.release),
        [LABEL.type]: spec.type,
      }),
      HostConfig: {
        Init: true,
        PortBindings: bindings,
        // Crash recovery is Docker's: restarts with exponential backoff (100 ms doubling, capped),
        // also while rackd is down; `docker stop` (a drain) is never undone by it.
        RestartPolicy: { Name: 'unless-stopped' },
        LogConfig: { Type: 'json-file', Config: { 'max-size': '10m' } },
      },
    });
    try {
      await container.start();
      return await this.inspectProcess(container.id);
    } catch (err) {
      await this.removeContainer(container.id);
      throw err;
    }
  }

  async inspectProcess(id: string): Promise<ProcessInfo> {
    const info = await this.docker.getContainer(id).inspect();
    const labels = info.Config.Labels ?? {};
    let upstream: ProcessInfo['upstream'] = null;
    // The configured binding, not the live one: it holds while the process restarts.
    for (const binding of Object.values(info.HostConfig.PortBindings ?? {}) as { HostPort?: string }[][]) {
      const hostPort = binding?.[0]?.HostPort;
      if (hostPort) upstream = { host: LOOPBACK, port: Number(hostPort) };
    }
    return {
      id: info.Id,
      name: info.Name.replace(/^\//, ''),
      app: labels[LABEL.app] ?? '',
      release: Number(labels[LABEL.release] ?? 0),
      type: labels[LABEL.type] ?? '',
      running: info.State.Running && !info.State.Restarting,
      restarting: info.State.Restarting,
      restarts: info.RestartCount,
      upstream,
      startedAt: info.State.StartedAt,
    };
  }

  /** Every process container rack owns, running or not. Containers without rack's labels are never listed. */
  async listProcesses(app?: string): Promise<ProcessInfo[]> {
    const label = [`${LABEL.managed}=true`, `${LABEL.instance}=${this.instance}`, `${LABEL.role}=process`];
    if (app !== undefined) label.push(`${LABEL.app}=${app}`);
    const list = await this.docker.listContainers({ all: true, filters: { label } });
    const out: ProcessInfo[] = [];
    for (const c of list) {
      try {
        out.push(await this.inspectProcess(c.Id));
      } catch (err) {
        if ((err as { statusCode?: number }).statusCode !== 404) throw err; // removed meanwhile
      }
    }
    return out;
  }

  /** SIGTERM, SIGKILL after `graceSeconds`, then remove. */
  async stopProcess(id: string, graceSeconds: number): Promise<void> {
    const container = this.docker.getContainer(id);
    try {
      await container.stop({ t: graceSeconds });
    } catch (err) {
      const code = (err as { statusCode?: number }).statusCode;
      if (code !== 304 && code !== 404) throw err; // 304: already stopped
    }
    await this.removeContainer(id);
  }

  /**
   * Follows a container's output from `tail` lines back until it stops or `signal` fires, one
   * callback per line with Docker's timestamp.
   */
  async followLogs(id: string, tail: number, onLine: (time: string, text: string) => void, signal: AbortSignal): Promise<void> {
    const stream = (await this.docker.getContainer(id).logs({
      follow: true,
      stdout: true,
      stderr: true,
      timestamps: true,
      tail,
      abortSignal: signal,
    })) as unknown as NodeJS.ReadableStream & { destroy(): void };
    const out = new PassThrough();
    let rest = '';
    out.on('data', (chunk: Buffer) => {
      rest += chunk.toString('utf8');
      const lines = rest.split('\n');
      rest = lines.pop() ?? '';
      for (const line of lines) {
        const space = line.indexOf(' ');
        if (space > 0) onLine(line.slice(0, space), line.slice(space + 1).replace(/\r$/, ''));
      }
    });
    stream.on('error', () => undefined);
    this.docker.modem.demuxStream(stream, out, out);
    await new Promise<void>((resolve) => {
      stream.on('end', resolve);
      stream.on('close', resolve);
      signal.addEventListener('abort', () => {
        stream.destroy();
        resolve();
      });
    });
  }

  async processLogs(id: string, tail: number): Promise<string> {
    try {
      const buf = (await this.docker.getContainer(id).logs({ stdout: true, stderr: true, tail })) as unknown as Buffer;
      return demuxToText(buf);
    } catch {
      return '';
    }
  }

  // ---- builds

  /** Runs a container to completion, streaming its output. The caller removes the container. */
  async runTask(spec: TaskSpec): Promise<{ container: string; exitCode: number }> {
    const tag = spec.role === 'build' ? `b${spec.id}` : `v${spec.id}`;
    const container = await this.docker.createContainer({
      name: `rack.${spec.app}.${tag}.${spec.role}.${randomBytes(3).toString('hex')}`,
      Image: spec.image,
      Cmd: spec.cmd,
      Env: envList(spec.env),
      Tty: false,
      Labels: this.labels({
        [LABEL.role]: spec.role,
        [LABEL.app]: spec.app,
        [spec.role === 'build' ? LABEL.build : LABEL.release]: String(spec.id),
      }),
      HostConfig: { Binds: spec.binds ?? [], Init: true },
    });
    try {
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
    out.on('data', spec.onOutput);
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
      // Output may still be in flight after the exit; give the attach stream a moment to drain.
      await Promise.race([ended, new Promise((r) => setTimeout(r, 2000))]);
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
    const container = await this.docker.createContainer({
      name: `rack.${spec.app}.v${spec.release}.run.${randomBytes(3).toString('hex')}`,
      Image: spec.image,
      Cmd: containerCommand(spec.builder, spec.command),
      Env: envList(spec.env),
      Tty: spec.tty !== null,
      OpenStdin: true,
      StdinOnce: true,
      AttachStdin: true,
      AttachStdout: true,
      AttachStderr: true,
      Labels: this.labels({ [LABEL.role]: 'run', [LABEL.app]: spec.app, [LABEL.release]: String(spec.release) }),
      HostConfig: { Init: true },
    });
    const kill = () => void container.kill().catch(() => undefined);
    try {
      const stream = await container.attach({ stream: true, stdin: true, stdout: true, stderr: true, hijack: true });
      stream.on('error', () => undefined);
      const ended = new Promise<void>((resolve) => stream.on('end', resolve));
      if (spec.tty) stream.on('data', (c: Buffer) => spec.stdout.write(c));
      else container.modem.demuxStream(stream, spec.stdout, spec.stderr);
      spec.stdin.on('data', (c: Buffer) => stream.write(c));
      // EOF from the client closes the process's stdin (StdinOnce), as `docker run -i` does. A
      // terminal has no EOF (Ctrl-D is a byte), and half-closing a TTY attach cuts its output.
      if (!spec.tty) spec.stdin.once('end', () => (stream as unknown as { end(): void }).end());
      spec.abort.addEventListener('abort', kill, { once: true });
      await container.start();
      if (spec.tty) await container.resize({ h: spec.tty.rows, w: spec.tty.cols }).catch(() => undefined);
      const result = (await container.wait()) as { StatusCode: number };
      await Promise.race([ended, new Promise((r) => setTimeout(r, 1000))]);
      return result.StatusCode;
    } finally {
      spec.abort.removeEventListener('abort', kill);
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
    onLine: (line: string) => void;
    timeoutMs: number;
  }): Promise<void> {
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), spec.timeoutMs);
    try {
      const stream = await this.docker.buildImage(spec.context as unknown as NodeJS.ReadableStream, {
        t: spec.tag,
        labels: this.labels(spec.labels),
        buildargs: spec.buildArgs,
        nocache: spec.noCache,
        rm: true,
        forcerm: true,
        abortSignal: abort.signal,
      });
      await new Promise<void>((resolve, reject) => {
        this.docker.modem.followProgress(
          stream,
          (err: Error | null) => (err ? reject(err) : resolve()),
          (event: { stream?: string; error?: string; status?: string }) => {
            for (const line of (event.stream ?? event.status ?? '').split('\n')) if (line.trim() !== '') spec.onLine(line);
            if (event.error) spec.onLine(event.error);
          },
        );
      });
    } catch (err) {
      if (abort.signal.aborted) {
        throw new RackError('build_failed', `build timed out after ${Math.round(spec.timeoutMs / 1000)} s`);
      }
      throw new RackError('build_failed', `docker build failed: ${(err as Error).message}`, { cause: err });
    } finally {
      clearTimeout(timer);
    }
  }

  /** One small file out of a container, or undefined when it is not there. */
  async readFile(containerId: string, path: string): Promise<Buffer | undefined> {
    let archive: NodeJS.ReadableStream;
    try {
      archive = await this.docker.getContainer(containerId).getArchive({ path });
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) return undefined;
      throw err;
    }
    return new Promise((resolve, reject) => {
      const ex = extract();
      let found: Buffer | undefined;
      ex.on('entry', (header, body, next) => {
        const chunks: Buffer[] = [];
        body.on('data', (c: unknown) => chunks.push(c as Buffer));
        body.on('end', () => {
          if (header.type === 'file' && found === undefined) found = Buffer.concat(chunks);
          next();
        });
        body.resume();
      });
      ex.on('finish', () => resolve(found));
      ex.on('error', reject);
      archive.on('error', reject);
      archive.pipe(ex);
    });
  }

  async commit(containerId: string, ref: { repo: string; tag: string }, labels: Record<string, string>): Promise<string> {
    await this.docker.getContainer(containerId).commit({
      _query: { container: containerId, repo: ref.repo, tag: ref.tag },
      _body: { Labels: this.labels(labels), WorkingDir: '/app', Cmd: ['rack-launch', 'true'] },
    });
    return `${ref.repo}:${ref.tag}`;
  }

  /** Tags (`rack/APP:bN`) of the app images this rack made. */
  async listAppImages(app: string): Promise<string[]> {
    const images = await this.docker.listImages({
      filters: { label: [`${LABEL.managed}=true`, `${LABEL.instance}=${this.instance}`, `${LABEL.app}=${app}`] },
    });
    return images.flatMap((i) => i.RepoTags ?? []).filter((tag) => tag.startsWith(`rack/${app}:`));
  }

  /** False when the image is still used by a container (it is kept then). */
  async removeImage(ref: string): Promise<boolean> {
    try {
      await this.docker.getImage(ref).remove();
      return true;
    } catch (err) {
      const code = (err as { statusCode?: number }).statusCode;
      if (code === 404) return true;
      if (code === 409) return false;
      throw err;
    }
  }

  async removeContainer(id: string): Promise<void> {
    try {
      await this.docker.getContainer(id).remove({ force: true, v: true });
    } catch (err) {
      const code = (err as { statusCode?: number }).statusCode;
      if (code !== 404 && code !== 409) throw err; // gone already, or removal already under way
    }
  }
}

/** A port free on loopback now; the kernel hands out ephemeral ports in sequence, so reuse is unlikely. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, LOOPBACK, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Docker multiplexes stdout/stderr in 8-byte-framed chunks when there is no TTY. */
function demuxToText(buf: Buffer): string {
  if (!Buffer.isBuffer(buf)) return String(buf);
  const parts: Buffer[] = [];
  let i = 0;
  while (i + 8 <= buf.length) {
    const size = buf.readUInt32BE(i + 4);
    parts.push(buf.subarray(i + 8, i + 8 + size));
    i += 8 + size;
  }
  return Buffer.concat(parts).toString('utf8');
}
