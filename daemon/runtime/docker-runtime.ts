import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { PassThrough } from 'node:stream';
import { RackError } from '../rack-error.js';
import { LABEL } from './labels.js';
import { DockerTasks, envList } from './docker-tasks.js';
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

const LOOPBACK = '127.0.0.1';

/**
 * The Docker driver, long-running side: processes, their logs, images. With `docker-tasks.ts`
 * (containers run to completion) it is the only code that talks to the engine; everything above
 * speaks in processes, builds and images, so a Swarm driver can slot in later.
 */
export class DockerRuntime extends DockerTasks {
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
