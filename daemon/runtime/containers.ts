import type Docker from 'dockerode';
import type { Duplex } from 'node:stream';
import { LABEL } from './labels.js';
import type { Owner } from './owner.js';

export type ContainerRole = 'build' | 'release' | 'run' | 'process' | 'addon' | 'registry';

export interface OwnedContainer {
  id: string;
  name: string;
  app: string;
  role: ContainerRole;
}

/** Removes a container whatever its state; gone already is fine. */
export async function removeContainer(docker: Docker, id: string): Promise<void> {
  try {
    await docker.getContainer(id).remove({ force: true, v: true });
  } catch (err) {
    const code = (err as { statusCode?: number }).statusCode;
    if (code !== 404 && code !== 409) throw err; // gone already, or removal already under way
  }
}

/** Every container this rack made (of one app, or of some roles), found by its labels alone. */
export async function ownedContainers(docker: Docker, owner: Owner, opts: { app?: string; roles?: ContainerRole[] } = {}): Promise<OwnedContainer[]> {
  const label = owner.filter();
  if (opts.app !== undefined) label.push(`${LABEL.app}=${opts.app}`);
  const list = await docker.listContainers({ all: true, filters: { label } });
  return list
    .map((c) => ({
      id: c.Id,
      name: (c.Names?.[0] ?? '').replace(/^\//, ''),
      app: c.Labels?.[LABEL.app] ?? '',
      role: (c.Labels?.[LABEL.role] ?? 'process') as ContainerRole,
    }))
    .filter((c) => !opts.roles || opts.roles.includes(c.role));
}

/** A one-off's client ends: `run`, `addons:connect`. */
export interface AttachedIo {
  /** Terminal size when the client asked for one (`ssh -t`), else null. */
  tty: { cols: number; rows: number } | null;
  stdin: NodeJS.ReadableStream;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  /** Kills the container when fired (the client went away). */
  abort: AbortSignal;
}

/** The create options of a container runAttached drives: stdin kept open until the client's EOF, a TTY when asked. */
export function attachedOptions(tty: AttachedIo['tty']) {
  return { Tty: tty !== null, OpenStdin: true, StdinOnce: true, AttachStdin: true, AttachStdout: true, AttachStderr: true };
}

/**
 * Starts a created container (attachedOptions) with the client's streams attached and waits
 * for it to exit; resolves with its exit status. The caller removes the container.
 */
export async function runAttached(container: Docker.Container, io: AttachedIo): Promise<number> {
  const kill = () => void container.kill().catch(() => undefined);
  try {
    const stream = (await container.attach({ stream: true, stdin: true, stdout: true, stderr: true, hijack: true })) as unknown as Duplex;
    stream.on('error', () => undefined);
    const ended = new Promise<void>((resolve) => stream.once('close', () => resolve()));
    if (io.tty) stream.on('data', (c: Buffer) => io.stdout.write(c));
    else container.modem.demuxStream(stream, io.stdout, io.stderr);
    io.stdin.on('data', (c: Buffer) => stream.destroyed || stream.write(c));
    // EOF from the client closes the process's stdin (StdinOnce), as `docker run -i` does. A
    // terminal has no EOF (Ctrl-D is a byte), and half-closing a TTY attach cuts its output.
    if (!io.tty) io.stdin.once('end', () => stream.destroyed || stream.end());
    io.abort.addEventListener('abort', kill, { once: true });
    await container.start();
    if (io.tty) await container.resize({ h: io.tty.rows, w: io.tty.cols }).catch(() => undefined);
    const result = (await container.wait()) as { StatusCode: number };
    await Promise.race([ended, new Promise((r) => setTimeout(r, 1000))]);
    return result.StatusCode;
  } finally {
    io.abort.removeEventListener('abort', kill);
  }
}
