import type Docker from 'dockerode';
import { randomBytes } from 'node:crypto';
import { Transform, Writable, type Duplex, type Readable, type TransformCallback } from 'node:stream';
import { RackError } from '../rack-error.js';
import { attachedOptions, runAttached } from './containers.js';
import { hostConfinement } from './isolation.js';
import { LABEL } from './labels.js';
import type { Owner } from './owner.js';

/** A backing service's container (an add-on): how rack asks Docker to run it. */
export interface ServiceSpec {
  name: string;
  image: string;
  env: Record<string, string>;
  /** The first app network it joins, reachable there as `name`. */
  network: string;
  /** Inside the container: answers 0 when the service takes connections. */
  healthCommand: string[];
  /** On a Swarm: `target` (the service's port) published at host:port for the workers' processes. */
  publish?: { host: string; port: number; target: number };
}

export interface ServiceState {
  id: string;
  running: boolean;
  /** Docker's health status: starting, healthy, unhealthy (none before the first check). */
  health: string;
  /** The app networks it is on, by network name. */
  networks: string[];
  startedAt: string;
  restartCount: number;
}

export interface ExecStreams {
  stdin?: Readable;
  /** Gets the command's stdout, with back-pressure: a slow reader slows the command. */
  stdout: Writable;
  stderr?: Writable;
  /** A terminal (`ssh -t`): one raw stream, resized to the client's. */
  tty?: { cols: number; rows: number } | null;
  /** Ends the command's output when fired (the client went away). */
  abort?: AbortSignal;
  /**
   * How long the command may run (default a minute; a terminal's has none): then it is killed
   * inside the container, and the exec fails with `addon_failed`.
   */
  deadlineMs?: number;
}

/** What a short exec (health, size, version) may take. */
const SHORT_EXEC_MS = 60_000;
/** SIGTERM at the deadline, SIGKILL this much later for a command that ignores it. */
const KILL_AFTER_S = 10;
/** coreutils' timeout exits with this when it stopped the command (137 when it had to SIGKILL it). */
const TIMED_OUT = new Set([124, 137]);
/** Past the deadline and the kill, rackd stops waiting on an engine that does not end the exec. */
const ENGINE_GRACE_MS = 30_000;

const SERVICE_MEMORY = 1024 * 1024 * 1024;
const SERVICE_PIDS = 512;
const ADDON_LABEL = 'rack.addon';

/**
 * The Docker driver's part for add-ons: one container per service on its own named volume. The
 * volume is made once and removed only by `removeService` (addons:destroy): nothing else in rack
 * removes volumes. The container runs as the image's own unprivileged user, without capabilities,
 * restarted by Docker after a crash or a Docker restart, never published on the host; it joins
 * exactly the networks of the apps attached to it.
 */
export class DockerServices {
  constructor(
    private readonly docker: Docker,
    private readonly owner: Owner,
  ) {}

  private containerName(name: string): string {
    return `rack-${this.owner.instance}-addon-${name}`;
  }

  volumeName(name: string): string {
    return `rack-${this.owner.instance}-addon-${name}`;
  }

  /** Makes the volume (`new`) or takes the one there (`existing`, after the container was lost) and the container, and starts it. */
  async create(spec: ServiceSpec, volume: 'new' | 'existing'): Promise<void> {
    const labels = this.owner.labels({ [LABEL.role]: 'addon', [ADDON_LABEL]: spec.name });
    const exists = await this.docker
      .getVolume(this.volumeName(spec.name))
      .inspect()
      .then(() => true)
      .catch((err: { statusCode?: number }) => {
        if (err.statusCode === 404) return false;
        throw err;
      });
    // A new add-on never takes over data left on the engine (its password would not match).
    if (volume === 'new' && exists) {
      throw new RackError('addon_exists', `a volume ${this.volumeName(spec.name)} is left from an earlier add-on; the operator may remove it with docker volume rm, or choose another name`);
    }
    if (volume === 'existing' && !exists) {
      throw new RackError('addon_unavailable', `the volume ${this.volumeName(spec.name)} of ${spec.name} is gone; rack makes no empty one in its place (restore a backup into a new add-on)`);
    }
    if (!exists) await this.docker.createVolume({ Name: this.volumeName(spec.name), Labels: labels });
    const container = await this.docker.createContainer({
      name: this.containerName(spec.name),
      Image: spec.image,
      Env: Object.entries(spec.env).map(([k, v]) => `${k}=${v}`),
      Labels: labels,
      Healthcheck: { Test: ['CMD', ...spec.healthCommand], Interval: 5e9, Timeout: 5e9, Retries: 3, StartPeriod: 120e9 },
      ...(spec.publish ? { ExposedPorts: { [`${spec.publish.target}/tcp`]: {} } } : {}),
      HostConfig: {
        ...(spec.publish ? { PortBindings: { [`${spec.publish.target}/tcp`]: [{ HostIp: spec.publish.host, HostPort: String(spec.publish.port) }] } } : {}),
        Mounts: [{ Type: 'volume', Source: this.volumeName(spec.name), Target: '/data' }],
        RestartPolicy: { Name: 'unless-stopped' },
        ...hostConfinement({ memoryBytes: SERVICE_MEMORY, pids: SERVICE_PIDS, cpuShares: 1024 }),
        LogConfig: { Type: 'json-file', Config: { 'max-size': '10m', 'max-file': '2' } },
        NetworkMode: spec.network,
      },
      NetworkingConfig: { EndpointsConfig: { [spec.network]: { Aliases: [spec.name] } } },
    });
    await container.start();
  }

  async state(name: string): Promise<ServiceState | undefined> {
    try {
      const info = await this.docker.getContainer(this.containerName(name)).inspect();
      const health = (info.State as { Health?: { Status?: string } }).Health?.Status ?? 'none';
      return {
        id: info.Id,
        running: info.State.Running && !info.State.Restarting,
        health,
        networks: Object.keys(info.NetworkSettings.Networks ?? {}),
        startedAt: info.State.StartedAt,
        restartCount: info.RestartCount,
      };
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) return undefined;
      throw err;
    }
  }

  /** `addons:connect`'s client, apart from the service (see runClient). */
  runClient(spec: ClientSpec): Promise<number> {
    return runClient(this.docker, this.owner, spec);
  }

  /** Starts a stopped service (after `docker stop` by hand, say); a running one is left alone. */
  async ensureRunning(name: string): Promise<void> {
    try {
      await this.docker.getContainer(this.containerName(name)).start();
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode !== 304) throw err;
    }
  }

  /** Joins an app network, reachable there by the service's name; already there is fine. */
  async connect(name: string, network: string): Promise<void> {
    try {
      await this.docker.getNetwork(network).connect({ Container: this.containerName(name), EndpointConfig: { Aliases: [name] } });
    } catch (err) {
      if (!/already exists|already attached/i.test((err as Error).message)) throw err;
    }
  }

  async disconnect(name: string, network: string): Promise<void> {
    try {
      await this.docker.getNetwork(network).disconnect({ Container: this.containerName(name), Force: true });
    } catch (err) {
      const code = (err as { statusCode?: number }).statusCode;
      if (code !== 404 && !/is not connected/i.test((err as Error).message)) throw err;
    }
  }

  /**
   * The container and (with `volume`) its volume, data included: only addons:destroy, and the
   * undoing of a creation that never finished, take the volume.
   */
  async removeService(name: string, opts: { volume: boolean }): Promise<void> {
    try {
      await this.docker.getContainer(this.containerName(name)).remove({ force: true });
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode !== 404) throw err;
    }
    if (!opts.volume) return;
    try {
      await this.docker.getVolume(this.volumeName(name)).remove();
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode !== 404) throw err;
    }
  }

  /**
   * Runs a command inside the service (backup, restore, a client), as the image's user. Without a
   * TTY the output is demultiplexed into stdout and stderr with back-pressure. Resolves with the
   * exit status; rejects when a stream fails (a vanished file, a client gone, Docker restarting)
   * or the deadline passes, and in every case closes the exec's connection, so the command inside
   * never waits on a reader.
   *
   * The deadline is kept inside the container, by coreutils' `timeout` around the command: closing
   * the exec's stream kills nothing there, and a pg_dump stuck on a lock would hold the add-on's
   * lock (and every backup after it) for ever. `timeout` signals its whole process group, so a
   * pipeline in a script goes with it.
   */
  async exec(name: string, cmd: string[], io: ExecStreams): Promise<number> {
    if (io.abort?.aborted) throw new RackError('addon_failed', 'the client went away');
    const container = this.docker.getContainer(this.containerName(name));
    const tty = io.tty ?? null;
    const deadlineMs = tty ? undefined : (io.deadlineMs ?? SHORT_EXEC_MS);
    const seconds = deadlineMs === undefined ? 0 : Math.max(1, Math.ceil(deadlineMs / 1000));
    const timed = deadlineMs === undefined ? cmd : ['timeout', `--kill-after=${KILL_AFTER_S}`, String(seconds), ...cmd];
    const started = Date.now();
    const overdue = () => new RackError('addon_failed', `${cmd[0]} in ${name} did not finish within ${seconds} s and was stopped`);
    let exec: Docker.Exec;
    try {
      exec = await container.exec({ Cmd: timed, AttachStdin: io.stdin !== undefined, AttachStdout: true, AttachStderr: true, Tty: tty !== null });
    } catch (err) {
      const code = (err as { statusCode?: number }).statusCode;
      if (code === 404 || code === 409) throw new RackError('addon_unavailable', `add-on ${name} is not running (addons:info ${name} tells why)`, { cause: err });
      throw err;
    }
    const raw = (await exec.start({ hijack: true, stdin: io.stdin !== undefined, Tty: tty !== null })) as unknown as Duplex;
    let failure: Error | undefined;
    const fail = (err: Error) => {
      failure ??= err;
      raw.destroy();
    };
    raw.on('error', (err: Error) => (failure ??= err));
    const stop = () => raw.destroy();
    io.abort?.addEventListener('abort', stop, { once: true });
    let late = false;
    const backstop =
      deadlineMs === undefined
        ? undefined
        : setTimeout(() => {
            late = true;
            fail(overdue());
          }, deadlineMs + KILL_AFTER_S * 1000 + ENGINE_GRACE_MS);
    io.stdout.on('error', fail);
    try {
      if (tty) await exec.resize({ h: tty.rows, w: tty.cols }).catch(() => undefined);
      if (io.stdin) {
        const stdin = io.stdin;
        stdin.on('error', fail);
        stdin.on('data', (c: Buffer) => {
          if (raw.destroyed) return;
          if (!raw.write(c)) {
            stdin.pause();
            raw.once('drain', () => stdin.resume());
          }
        });
        // EOF from the client closes the command's stdin; a terminal has none (Ctrl-D is a byte).
        if (!tty) stdin.once('end', () => raw.destroyed || raw.end());
      }
      const output: Readable = tty ? raw : raw.pipe(new Demux(io.stderr));
      // A connection cut short ends nothing by itself: the demultiplexer is ended with an error.
      if (!tty) raw.once('close', () => output.destroyed || (output as Demux).writableEnded || output.destroy(failure ?? new Error('the exec stream closed early')));
      await new Promise<void>((resolve, reject) => {
        output.once('error', reject);
        output.once('end', resolve);
        output.once('close', resolve);
        output.pipe(io.stdout, { end: false });
      }).catch((err: Error) => (failure ??= err));
      if (late) throw overdue();
      if (failure && !io.abort?.aborted) throw new RackError('addon_failed', `${cmd[0]} in ${name}: ${failure.message}`, { cause: failure });
      const result = await exec.inspect();
      const code = result.ExitCode ?? 1;
      // A tool's own 124, or a kill by the OOM killer (137), is not a deadline: the time says which.
      if (deadlineMs !== undefined && TIMED_OUT.has(code) && Date.now() - started >= deadlineMs) throw overdue();
      return code;
    } finally {
      clearTimeout(backstop);
      io.abort?.removeEventListener('abort', stop);
      io.stdout.off('error', fail);
      raw.destroy();
    }
  }
}

/** `addons:connect`: the service's client in a one-off container of its image, on an app's network. */
export interface ClientSpec {
  addon: string;
  image: string;
  /** The attached app whose network the client joins: it reaches what that app reaches. */
  app: string;
  network: string;
  env: Record<string, string>;
  args: string[];
  tty: { cols: number; rows: number } | null;
  stdin: Readable;
  stdout: Writable;
  stderr: Writable;
  abort: AbortSignal;
}

/**
 * The client runs apart from the service: a shell escape in it (psql's \!) lands in a container
 * on one app's network, which the caller may reach anyway (`run`), not in the service, which sits
 * on every attached app's network. Unprivileged, no capabilities, removed afterwards in every case.
 */
export async function runClient(docker: Docker, owner: Owner, spec: ClientSpec): Promise<number> {
  if (spec.abort.aborted) throw new RackError('addon_failed', 'the client went away');
  const container = await docker.createContainer({
    name: `rack.${spec.app}.addon-${spec.addon}.connect.${randomBytes(3).toString('hex')}`,
    Image: spec.image,
    Cmd: ['rack-addon-connect', ...spec.args],
    Env: Object.entries(spec.env).map(([k, v]) => `${k}=${v}`),
    ...attachedOptions(spec.tty),
    Labels: owner.labels({ [LABEL.role]: 'run', [LABEL.app]: spec.app }),
    HostConfig: { Init: true, NetworkMode: spec.network, ...hostConfinement({ memoryBytes: 256 * 1024 * 1024, pids: 64, cpuShares: 1024 }) },
  });
  try {
    return await runAttached(container, spec);
  } finally {
    // v: the image declares /data a volume; the client's empty one goes with it.
    await container.remove({ force: true, v: true }).catch(() => undefined);
  }
}

/** A short command's whole stdout (a version, a size), trimmed; null when it fails. */
export async function execOutput(services: DockerServices, name: string, cmd: string[]): Promise<string | null> {
  const chunks: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      chunks.push(chunk);
      done();
    },
  });
  const code = await services.exec(name, cmd, { stdout: sink }).catch(() => -1);
  return code === 0 ? Buffer.concat(chunks).toString('utf8').trim() : null;
}

/**
 * Docker's multiplexed exec stream (8-byte frame headers: stream, 0, 0, 0, size) → stdout as this
 * stream's output, stderr frames to `stderr`. A Transform, so the reader's pace reaches Docker.
 */
class Demux extends Transform {
  private pending: Buffer = Buffer.alloc(0);

  constructor(private readonly stderr: Writable | undefined) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    let buf = this.pending.length > 0 ? Buffer.concat([this.pending, chunk]) : chunk;
    while (buf.length >= 8) {
      const size = buf.readUInt32BE(4);
      if (buf.length < 8 + size) break;
      const frame = buf.subarray(8, 8 + size);
      if (buf[0] === 2) this.stderr?.write(frame);
      else this.push(frame);
      buf = buf.subarray(8 + size);
    }
    this.pending = buf;
    done();
  }
}
