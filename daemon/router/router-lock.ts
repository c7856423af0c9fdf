import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:net';
import { resolve } from 'node:path';

/**
 * One router process per control socket path, even when two rackd start at once and each spawns
 * one. The lock is a Linux abstract Unix socket named after the control socket's path: binding it
 * is atomic, and the kernel releases it the moment its holder dies, kill -9 included, so a crashed
 * router never leaves a stale lock behind (a lock file would). Elsewhere the HTTP port's bind is
 * the only arbiter, which works for fixed ports but not for port 0.
 */
export interface RouterLock {
  release(): Promise<void>;
  /** The abstract socket held (Linux only), which a handoff passes to the successor. */
  readonly server?: Server;
}

function lockName(socketPath: string): string {
  const digest = createHash('sha256').update(resolve(socketPath)).digest('hex').slice(0, 32);
  return `\0rack-router-lock-${digest}`;
}

/** The lock, or undefined when a live router already holds it. */
export async function acquireRouterLock(socketPath: string): Promise<RouterLock | undefined> {
  if (process.platform !== 'linux') return { release: () => Promise.resolve() };
  const server: Server = createServer((socket) => socket.destroy());
  const held = await new Promise<boolean>((done, fail) => {
    server.once('error', (err: NodeJS.ErrnoException) => (err.code === 'EADDRINUSE' ? done(false) : fail(err)));
    server.listen(lockName(socketPath), () => done(true));
  });
  if (!held) return undefined;
  // The lock is only ever closed on purpose; it must not keep a stopping process alive either.
  server.unref();
  return { server, release: () => new Promise<void>((done) => server.close(() => done())) };
}

/** A lock handed over by the router this one succeeds: held while its socket stays open. */
export function inheritedLock(server: Server): RouterLock {
  server.on('connection', (socket) => socket.destroy());
  server.on('error', () => {});
  server.unref();
  return { server, release: () => new Promise<void>((done) => server.close(() => done())) };
}
