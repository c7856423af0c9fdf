import { spawn, type ChildProcess } from 'node:child_process';
import { access } from 'node:fs/promises';
import type { Server, Socket } from 'node:net';
import type { Logger } from '../log.js';
import type { Listeners } from './router.js';
import type { RouterIdentity } from './router-protocol.js';

/**
 * One router process handing its listening sockets to its successor, which may run another rack
 * version's router-process.js. Node 20 cannot have two processes bind one port (no reusePort), so
 * the running router spawns the successor with an IPC channel and passes it the listening servers
 * themselves (handle passing: the child gets its own descriptor of each socket), and the lock, so
 * no moment exists where the port or the lock is free. The exchange on the channel:
 *
 *   successor → old   {type: 'waiting'}              its listener is set; handles sent before are lost
 *   old → successor   {type: 'handle', which}        + the server: 'http', 'https' or 'lock'
 *   old → successor   {type: 'handles-sent'}
 *   successor → old   {type: 'ready', identity}      it serves, and owns the control socket
 *
 * Until `ready`, both accept on the shared sockets, so no connection waits on the switch.
 */
export const HANDOFF_ENV = 'RACK_ROUTER_HANDOFF';

/** A successor not ready by then is killed and the old router serves on as before. */
export const HANDOFF_READY_MS = 20_000;

type Which = 'http' | 'https' | 'lock';

type ToSuccessor = { type: 'handle'; which: Which } | { type: 'handles-sent' };
type ToPredecessor = { type: 'waiting' } | { type: 'ready'; identity: RouterIdentity };

/** What the successor is handed: the router's listeners and the single-instance lock (Linux only). */
export interface Inherited {
  listeners: Listeners;
  lock: Server | undefined;
}

/** A successor started and ready; `release` lets it run on without us. */
export interface Successor {
  identity: RouterIdentity;
  release(): void;
}

export class HandoffError extends Error {
  readonly code = 'handoff_failed';
}

/**
 * Starts `script` as this router's successor, hands it `inherited`, and resolves once it says it
 * serves. It inherits our environment and our stdout/stderr (the router log file rackd opened),
 * and is detached into its own session as a spawned router is. Rejects with a HandoffError,
 * having killed the successor, if it exits or is not ready within HANDOFF_READY_MS.
 */
export async function startSuccessor(script: string, inherited: Inherited, logger: Logger): Promise<Successor> {
  try {
    await access(script);
  } catch {
    throw new HandoffError(`the router script ${script} cannot be read`);
  }
  const child = spawn(process.execPath, [script], {
    detached: true,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, [HANDOFF_ENV]: '1' },
  });
  // Past the handoff too: a send to a successor that has gone must not bring this router down.
  child.on('error', (err) => logger.debug({ err: err.message }, 'router: successor process error'));
  logger.info({ successor: child.pid, script }, 'router: handing off to a successor');
  try {
    const identity = await handOver(child, inherited);
    return {
      identity,
      release: () => {
        child.removeAllListeners('message');
        child.disconnect();
        child.unref();
      },
    };
  } catch (err) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    throw err;
  }
}

function handOver(child: ChildProcess, inherited: Inherited): Promise<RouterIdentity> {
  return new Promise((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    const finish = (err: Error | undefined, identity?: RouterIdentity): void => {
      clearTimeout(timer);
      child.off('exit', onExit);
      child.off('error', onError);
      if (err === undefined && identity !== undefined) resolve(identity);
      else reject(err);
    };
    const onExit = (code: number | null, signal: NodeJS.Signals | null): void =>
      finish(new HandoffError(`the successor router process exited (${signal ?? `code ${code}`}) before it was ready`));
    const onError = (err: Error): void => finish(new HandoffError(`the successor router process could not run: ${err.message}`));
    timer = setTimeout(() => finish(new HandoffError(`the successor router process was not ready within ${HANDOFF_READY_MS / 1000} s`)), HANDOFF_READY_MS);
    child.on('exit', onExit);
    child.on('error', onError);
    child.on('message', (msg: ToPredecessor) => {
      if (msg.type === 'waiting') {
        const send = (m: ToSuccessor, handle?: Server): void => {
          child.send(m, handle, (err) => {
            if (err !== null) finish(new HandoffError(`cannot pass the listeners to the successor: ${err.message}`));
          });
        };
        send({ type: 'handle', which: 'http' }, inherited.listeners.http);
        if (inherited.listeners.https !== undefined) send({ type: 'handle', which: 'https' }, inherited.listeners.https);
        if (inherited.lock !== undefined) send({ type: 'handle', which: 'lock' }, inherited.lock);
        send({ type: 'handles-sent' });
      } else if (msg.type === 'ready') {
        finish(undefined, msg.identity);
      }
    });
  });
}

/**
 * Node starts accepting on a passed server the moment it arrives, well before the router listens
 * on it: what it accepts meanwhile goes to the passed Server object, and is kept here (unread, the
 * bytes wait in the socket) for the router to take over (`takeEarlyConnections`).
 */
const early = new WeakMap<Server, Socket[]>();

/** The connections accepted on a passed listener before the router listened on it; once. */
export function takeEarlyConnections(server: Server): Socket[] {
  const sockets = early.get(server) ?? [];
  early.delete(server);
  return sockets;
}

/** On a listener just passed to this process: keeps what it accepts until the router takes it over. */
export function keepEarlyConnections(server: Server): void {
  const sockets: Socket[] = [];
  early.set(server, sockets);
  server.on('connection', (socket: Socket) => {
    socket.on('error', () => {});
    sockets.push(socket);
  });
  server.on('error', () => {});
}

/** In a successor: true when it was started by a router handing off (and so must not bind or lock). */
export function isSuccessor(): boolean {
  return process.env[HANDOFF_ENV] === '1' && process.send !== undefined;
}

/** In a successor: waits for the predecessor's handles. */
export function receiveHandles(): Promise<Inherited> {
  return new Promise((resolve, reject) => {
    const got = new Map<Which, Server>();
    const onMessage = (msg: ToSuccessor, handle: unknown): void => {
      if (msg.type === 'handle') {
        const server = handle as Server;
        keepEarlyConnections(server);
        got.set(msg.which, server);
        return;
      }
      process.off('message', onMessage);
      process.off('disconnect', onDisconnect);
      const http = got.get('http');
      if (http === undefined) {
        reject(new Error('the predecessor sent no HTTP listener'));
        return;
      }
      const https = got.get('https');
      resolve({ listeners: https === undefined ? { http } : { http, https }, lock: got.get('lock') });
    };
    const onDisconnect = (): void => reject(new Error('the predecessor went away before handing its listeners over'));
    process.on('message', onMessage);
    process.once('disconnect', onDisconnect);
    process.send?.({ type: 'waiting' } satisfies ToPredecessor);
  });
}

/** In a successor: tells the predecessor it serves; the channel then only waits for it to go. */
export function announceReady(identity: RouterIdentity): void {
  process.send?.({ type: 'ready', identity } satisfies ToPredecessor);
  // The predecessor disconnects once it stops accepting; the channel must not keep us from exiting.
  process.channel?.unref();
}
