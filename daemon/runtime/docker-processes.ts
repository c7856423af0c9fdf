import type Docker from 'dockerode';
import { randomBytes } from 'node:crypto';
import { statfs } from 'node:fs/promises';
import { createServer } from 'node:net';
import { dirname } from 'node:path';
import { PassThrough } from 'node:stream';
import { lineSplitter } from '../line-splitter.js';
import { removeContainer } from './containers.js';
import type { DiskLimit } from './disk-limit.js';
import { APP_USER, confinement, type ProcessLimits } from './isolation.js';
import { LABEL } from './labels.js';
import type { Owner } from './owner.js';
import { containerCommand, type Builder } from './process-command.js';

/** What the supervisor asks for: one process of one type of one release. */
export interface ProcessSpec {
  app: string;
  release: number;
  type: string;
  /** Its type and number (web.1), as Heroku names a dyno: a replacement takes the number of what it replaces. */
  dyno: string;
  image: string;
  builder?: Builder;
  command: string;
  env: Record<string, string>;
  /** Container port the process listens on (`PORT`), published on loopback; web processes only. */
  port?: number;
  /** The app's network (app-networks.ts): the only one the process joins. */
  network: string;
  limits: ProcessLimits;
}

export interface ProcessInfo {
  id: string;
  name: string;
  app: string;
  release: number;
  type: string;
  /** `TYPE.N` (web.1): the one name `ps`, the logs and `DYNO` use. */
  dyno: string;
  running: boolean;
  /** Docker is waiting to restart it after a crash (backoff). */
  restarting: boolean;
  /** Crash restarts so far. */
  restarts: number;
  /** The last exit was the kernel's OOM killer: the process went over its memory limit. */
  oomKilled: boolean;
  /** Its writable space (the disk limit) is used up: its writes fail with ENOSPC. Heroku has no code for it (its R16 is a detached one-off). */
  diskFull?: boolean;
  exitCode: number;
  /** Loopback address of the published `PORT`, when the process has one. */
  upstream: { host: string; port: number } | null;
  startedAt: string;
  /** The limits it runs under, read back from Docker. */
  limits: ProcessLimits;
  /** The Swarm node it runs on; absent on one machine. */
  node?: string;
  /** The PORT it was given and its host PID while running (one machine only): what a failed health check looks at. */
  inside?: { port: number; pid: number };
}

const LOOPBACK = '127.0.0.1';

export interface ProcessEvent {
  /** `start` and `destroy` let the supervisor follow which web processes can take requests. */
  kind: 'oom' | 'die' | 'start' | 'destroy';
  id: string;
  name: string;
  app: string;
  type: string;
  /** web.1, as `ps` names it. */
  dyno: string;
  exitCode: number;
}

const EVENT_KINDS = ['oom', 'die', 'start', 'destroy'] as const;

export const envList = (env: Record<string, string>) => Object.entries(env).map(([k, v]) => `${k}=${v}`);

/**
 * Buildpack images expect HOME=/app as on Heroku; without a passwd entry for the app user Docker
 * would say HOME=/. A HOME the app set itself wins.
 */
export function processEnv(builder: Builder | undefined, env: Record<string, string>): Record<string, string> {
  return builder === 'dockerfile' || Object.hasOwn(env, 'HOME') ? { ...env } : { HOME: '/app', ...env };
}

/**
 * Where app processes run: containers on this engine (DockerProcesses), or services on a Swarm's
 * workers (SwarmProcesses). The supervisor speaks only this.
 */
export interface ProcessDriver {
  /**
   * Starts these processes (of one release) and resolves once each runs; on any failure, removes
   * every one it started and rejects.
   */
  startAll(specs: ProcessSpec[]): Promise<ProcessInfo[]>;
  inspect(id: string): Promise<ProcessInfo>;
  /** Every process of this rack (of one app), running or not. */
  list(app?: string): Promise<ProcessInfo[]>;
  /** SIGTERM, SIGKILL after `graceSeconds`, then gone. */
  stop(id: string, graceSeconds: number): Promise<void>;
  /** Gone at once (a process never switched to). */
  remove(id: string): Promise<void>;
  /** Resolves when the process's output ends (it stopped; the follower follows it again once it runs) or `signal` fires. */
  followLogs(id: string, tail: number, onLine: (time: string, text: string) => void, signal: AbortSignal): Promise<void>;
  events(onEvent: (e: ProcessEvent) => void, signal: AbortSignal): Promise<void>;
  logs(id: string, tail: number): Promise<string>;
  /**
   * Where web processes answer now, for a driver whose processes move (a Swarm task replaced on
   * another node); absent when an address holds for the process's life.
   */
  endpoints?(ids: string[]): Promise<Map<string, { host: string; port: number } | null>>;
}

/** The Docker driver's long-running part: app processes, their state and their output. */
export class DockerProcesses implements ProcessDriver {
  constructor(
    private readonly docker: Docker,
    private readonly owner: Owner,
    /** A client without the call timeout, for log streams that may stay quiet for hours. */
    private readonly streams: Docker,
    /** Absent: RACK_DISK_LIMIT=off. */
    private readonly disk: DiskLimit | undefined,
  ) {}

  async startAll(specs: ProcessSpec[]): Promise<ProcessInfo[]> {
    const results = await Promise.allSettled(specs.map((spec) => this.start(spec)));
    const started = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed === undefined) return started;
    for (const p of started) await this.remove(p.id).catch(() => undefined);
    throw failed.reason;
  }

  async start(spec: ProcessSpec): Promise<ProcessInfo> {
    const name = `rack.${spec.app}.v${spec.release}.${spec.type}.${randomBytes(3).toString('hex')}`;
    const env = processEnv(spec.builder, spec.env);
    const exposed: Record<string, object> = {};
    const bindings: Record<string, { HostIp: string; HostPort: string }[]> = {};
    if (spec.port !== undefined) {
      env['PORT'] = String(spec.port);
      exposed[`${spec.port}/tcp`] = {};
      // Published on loopback only: the router on this host is the one way in. The host port is
      // chosen here, not by Docker, so a process restarted after a crash keeps its address.
      bindings[`${spec.port}/tcp`] = [{ HostIp: LOOPBACK, HostPort: String(await freePort()) }];
    }
    const diskMb = this.disk ? (spec.limits.diskMb ?? Math.round(this.disk.defaultBytes / 1024 ** 2)) : undefined;
    const container = await this.docker.createContainer({
      name,
      Image: spec.image,
      Cmd: containerCommand(spec.builder, spec.command),
      Env: envList(env),
      User: APP_USER,
      ExposedPorts: exposed,
      Labels: this.owner.labels({
        [LABEL.role]: 'process',
        [LABEL.app]: spec.app,
        [LABEL.release]: String(spec.release),
        [LABEL.type]: spec.type,
        [LABEL.dyno]: spec.dyno,
        ...(diskMb === undefined ? {} : { [LABEL.disk]: String(diskMb) }),
      }),
      HostConfig: {
        Init: true,
        PortBindings: bindings,
        NetworkMode: spec.network,
        ...confinement(spec.limits),
        // Crash recovery is Docker's: restarts with exponential backoff (100 ms doubling, capped),
        // also while rackd is down; `docker stop` (a drain) is never undone by it.
        RestartPolicy: { Name: 'unless-stopped' },
        LogConfig: { Type: 'json-file', Config: { 'max-size': '10m', 'max-file': '2' } },
      },
    });
    try {
      if (this.disk && diskMb !== undefined) await this.disk.apply(container, diskMb * 1024 ** 2);
      await container.start();
      return await this.inspect(container.id);
    } catch (err) {
      await container.remove({ force: true }).catch(() => undefined);
      throw err;
    }
  }

  async inspect(id: string): Promise<ProcessInfo> {
    const info = await this.docker.getContainer(id).inspect();
    const labels = info.Config.Labels ?? {};
    let upstream: ProcessInfo['upstream'] = null;
    // The configured binding, not the live one: it holds while the process restarts.
    let port = 0;
    for (const [key, binding] of Object.entries(info.HostConfig.PortBindings ?? {}) as [string, { HostPort?: string }[]][]) {
      const hostPort = binding?.[0]?.HostPort;
      if (hostPort) {
        upstream = { host: LOOPBACK, port: Number(hostPort) };
        port = Number.parseInt(key, 10);
      }
    }
    const host = info.HostConfig as { Memory?: number; NanoCpus?: number; PidsLimit?: number };
    return {
      id: info.Id,
      name: info.Name.replace(/^\//, ''),
      app: labels[LABEL.app] ?? '',
      release: Number(labels[LABEL.release] ?? 0),
      type: labels[LABEL.type] ?? '',
      dyno: labels[LABEL.dyno] ?? dynoFromEnv(info.Config.Env, labels[LABEL.type] ?? ''),
      running: info.State.Running && !info.State.Restarting,
      restarting: info.State.Restarting,
      restarts: info.RestartCount,
      oomKilled: info.State.OOMKilled,
      ...(labels[LABEL.disk] && info.State.Running ? { diskFull: await layerFull((info.GraphDriver?.Data as { UpperDir?: string } | undefined)?.UpperDir) } : {}),
      exitCode: info.State.ExitCode,
      upstream,
      startedAt: info.State.StartedAt,
      ...(port > 0 && info.State.Running && info.State.Pid > 0 ? { inside: { port, pid: info.State.Pid } } : {}),
      limits: {
        memoryMb: Math.round((host.Memory ?? 0) / (1024 * 1024)),
        ...(host.NanoCpus ? { cpu: host.NanoCpus / 1e9 } : {}),
        pids: host.PidsLimit ?? 0,
        ...(labels[LABEL.disk] ? { diskMb: Number(labels[LABEL.disk]) } : {}),
      },
    };
  }

  /** Every process container rack owns, running or not. Containers without rack's labels are never listed. */
  async list(app?: string): Promise<ProcessInfo[]> {
    const label = this.owner.filter(`${LABEL.role}=process`);
    if (app !== undefined) label.push(`${LABEL.app}=${app}`);
    const list = await this.docker.listContainers({ all: true, filters: { label } });
    const out: ProcessInfo[] = [];
    for (const c of list) {
      try {
        out.push(await this.inspect(c.Id));
      } catch (err) {
        if ((err as { statusCode?: number }).statusCode !== 404) throw err; // removed meanwhile
      }
    }
    return out;
  }

  /** SIGTERM, SIGKILL after `graceSeconds`, then remove. */
  async stop(id: string, graceSeconds: number): Promise<void> {
    const container = this.docker.getContainer(id);
    try {
      await container.stop({ t: graceSeconds });
    } catch (err) {
      const code = (err as { statusCode?: number }).statusCode;
      if (code !== 304 && code !== 404) throw err; // 304: already stopped
    }
    try {
      await container.remove({ force: true, v: true });
    } catch (err) {
      const code = (err as { statusCode?: number }).statusCode;
      if (code !== 404 && code !== 409) throw err;
    }
  }

  async remove(id: string): Promise<void> {
    await removeContainer(this.docker, id);
  }

  /**
   * Follows a container's output from `tail` lines back until it stops or `signal` fires, one
   * callback per line with Docker's timestamp.
   */
  async followLogs(id: string, tail: number, onLine: (time: string, text: string) => void, signal: AbortSignal): Promise<void> {
    await followTimestampedLines(this.streams, (opts) => this.streams.getContainer(id).logs(opts), tail, onLine, signal);
  }

  /**
   * Streams the engine's `oom`, `die`, `start` and `destroy` events of this rack's processes until `signal` fires;
   * resolves when the stream ends (the caller decides whether to follow again).
   */
  async events(onEvent: (e: ProcessEvent) => void, signal: AbortSignal): Promise<void> {
    const stream = (await this.streams.getEvents({
      filters: { type: ['container'], event: [...EVENT_KINDS], label: this.owner.filter(`${LABEL.role}=process`) },
      abortSignal: signal,
    } as object)) as unknown as NodeJS.ReadableStream & { destroy(): void };
    const lines = lineSplitter((line) => {
      try {
        const e = JSON.parse(line) as { Action?: string; Actor?: { ID?: string; Attributes?: Record<string, string> } };
        const attrs = e.Actor?.Attributes ?? {};
        const kind = EVENT_KINDS.find((k) => k === e.Action);
        if (kind === undefined) return;
        onEvent({
          kind,
          id: e.Actor?.ID ?? '',
          name: attrs['name'] ?? '',
          app: attrs[LABEL.app] ?? '',
          type: attrs[LABEL.type] ?? '',
          dyno: attrs[LABEL.dyno] ?? `${attrs[LABEL.type] ?? ''}.${(attrs['name'] ?? '').split('.').pop() ?? ''}`,
          exitCode: Number(attrs['exitCode'] ?? 0),
        });
      } catch {
        // not an event line
      }
    });
    stream.on('data', (chunk: Buffer) => lines.push(chunk));
    await new Promise<void>((resolve) => {
      stream.on('error', () => resolve());
      stream.on('end', resolve);
      stream.on('close', resolve);
      signal.addEventListener('abort', () => {
        stream.destroy();
        resolve();
      });
    });
  }

  async logs(id: string, tail: number): Promise<string> {
    try {
      const buf = (await this.docker.getContainer(id).logs({ stdout: true, stderr: true, tail })) as unknown as Buffer;
      return demuxToText(buf);
    } catch {
      return '';
    }
  }
}

/**
 * A container started before the dyno label existed still has the `DYNO` it was given; one with
 * neither is named by its type alone.
 */
function dynoFromEnv(env: string[] | null | undefined, type: string): string {
  const dyno = env?.find((e) => e.startsWith('DYNO='))?.slice('DYNO='.length);
  return dyno !== undefined && /^[^.]+\.\d+$/.test(dyno) ? dyno : `${type}.0`;
}

/**
 * Whether the file system of a process's writable layer (disk-limit.ts) has less than 1% left:
 * what ext4 keeps back then is too little for any write of size.
 */
async function layerFull(upperDir: string | undefined): Promise<boolean> {
  if (!upperDir) return false;
  try {
    const fs = await statfs(dirname(upperDir));
    return fs.bavail < fs.blocks / 100;
  } catch {
    return false; // removed meanwhile, or the layer is not on this host
  }
}

/** A port free on `host` now; the kernel hands out ephemeral ports in sequence, so reuse is unlikely. */
export function freePort(host = LOOPBACK): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Docker multiplexes stdout/stderr in 8-byte-framed chunks when there is no TTY. */
export function demuxToText(buf: Buffer): string {
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

type LogStream = NodeJS.ReadableStream & { destroy(): void };

/**
 * Follows Docker logs (multiplexed, each line led by its timestamp) from `tail` lines back, line by
 * line, until they end or `signal` fires: `open` asks for a container's logs here, a service's on
 * a Swarm, with the same options.
 */
export async function followTimestampedLines(
  docker: Docker,
  open: (opts: { follow: true; stdout: true; stderr: true; timestamps: true; tail: number; abortSignal: AbortSignal }) => Promise<unknown>,
  tail: number,
  onLine: (time: string, text: string) => void,
  signal: AbortSignal,
): Promise<void> {
  const stream = (await open({ follow: true, stdout: true, stderr: true, timestamps: true, tail, abortSignal: signal })) as LogStream;
  const out = new PassThrough();
  const lines = lineSplitter((line) => {
    const space = line.indexOf(' ');
    if (space > 0) onLine(line.slice(0, space), line.slice(space + 1));
  });
  out.on('data', (chunk: Buffer) => lines.push(chunk));
  stream.on('error', () => undefined);
  docker.modem.demuxStream(stream, out, out);
  await new Promise<void>((resolve) => {
    stream.on('end', resolve);
    stream.on('close', resolve);
    signal.addEventListener('abort', () => {
      stream.destroy();
      resolve();
    });
  });
}
