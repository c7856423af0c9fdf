import { chmod, rm } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from '../log.js';
import { RackError } from '../rack-error.js';
import { lineSplitter } from '../line-splitter.js';
import { type OutputFlow } from '../user-output.js';

/**
 * The control socket: a Unix socket in RACK_HOME (mode 0600) through which git hooks and local tools
 * reach the daemon, since only the daemon may open the database. The protocol is JSON lines: one
 * request `{type, ...}`, then any number of `{out: "line"}` answers and a final `{exit: N}`.
 */
export type ControlHandler = (request: Record<string, unknown>, say: (line: string) => void, flow: OutputFlow) => Promise<number>;

/** Past this much unsent output, producers that can wait (a build's output) do. */
const BACKLOG_BYTES = 256 * 1024;

const MAX_REQUEST_BYTES = 1024 * 1024;

export class ControlServer {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private readonly handlers = new Map<string, ControlHandler>();

  constructor(
    private readonly path: string,
    private readonly log: Logger,
  ) {}

  handle(type: string, handler: ControlHandler): void {
    this.handlers.set(type, handler);
  }

  async start(): Promise<void> {
    await rm(this.path, { force: true }); // a socket left by a killed daemon
    const server = createServer((socket) => this.accept(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.path, () => resolve());
    });
    server.on('error', (err) => this.log.error({ err }, 'control socket error'));
    await chmod(this.path, 0o600);
    this.server = server;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    await rm(this.path, { force: true });
  }

  private accept(socket: Socket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    let received = 0;
    let handled = false;
    const lines = lineSplitter((line) => {
      if (handled) return;
      handled = true;
      void this.serve(socket, line);
    });
    socket.on('data', (chunk: Buffer) => {
      received += chunk.length;
      if (received > MAX_REQUEST_BYTES) socket.destroy();
      else lines.push(chunk);
    });
  }

  private async serve(socket: Socket, line: string): Promise<void> {
    const send = (msg: object) => {
      if (!socket.destroyed) socket.write(`${JSON.stringify(msg)}\n`);
    };
    let exit = 1;
    try {
      const request = JSON.parse(line) as unknown;
      if (typeof request !== 'object' || request === null) throw new RackError('bad_command', 'control request must be an object');
      const type = (request as { type?: unknown }).type;
      const handler = typeof type === 'string' ? this.handlers.get(type) : undefined;
      if (!handler) throw new RackError('bad_command', `unknown control request ${JSON.stringify(type)}`);
      const flow: OutputFlow = {
        full: () => !socket.destroyed && socket.writableLength > BACKLOG_BYTES,
        drained: () =>
          new Promise<void>((resolve) => {
            if (socket.destroyed || socket.writableLength <= BACKLOG_BYTES) return resolve();
            socket.once('drain', resolve);
            socket.once('close', resolve);
          }),
      };
      exit = await handler(request as Record<string, unknown>, (out) => send({ out }), flow);
    } catch (err) {
      const error = RackError.from(err);
      if (error.code === 'internal') this.log.error({ err }, 'control request failed');
      send({ out: ` !     ${error.message}` });
      exit = error.exitCode;
    } finally {
      send({ exit });
      socket.end();
    }
  }
}
