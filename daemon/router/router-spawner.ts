import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { mkdir, open, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { paths, type RackConfig } from '../config.js';
import { EXIT_PORT_IN_USE } from './router-protocol.js';

/** The built entry point beside this file, wherever rack is installed and whatever the cwd. */
export const ROUTER_PROCESS_SCRIPT = fileURLToPath(new URL('./router-process.js', import.meta.url));

export interface SpawnOptions {
  socketPath: string;
  statePath: string;
  logPath: string;
  bind: string;
  port: number;
  https?: { port: number; certDir: string };
  /**
   * rackd's ports.json: a port of 0 takes the one rackd last served on, so a router started again
   * (by rackd or by the launcher, whichever finds it dead first) serves where the one before did.
   */
  portsFile?: string;
}

/** The router's settings as rack's configuration gives them: one place for rackd and the launcher. */
export function routerSettings(config: RackConfig): SpawnOptions {
  return {
    socketPath: paths.routerSocket(config),
    statePath: paths.routerState(config),
    logPath: paths.routerLog(config),
    bind: config.bind,
    port: config.httpPort,
    ...(config.httpsPort === undefined ? {} : { https: { port: config.httpsPort, certDir: paths.certs(config) } }),
    portsFile: paths.ports(config),
  };
}

/**
 * Extra node options for router processes, from RACK_ROUTER_NODE_ARGS (the operator's, split on
 * spaces): `--cpu-prof --cpu-prof-dir=DIR` profiles the deployed router, which NODE_OPTIONS refuses.
 */
export function routerNodeArgs(env: NodeJS.ProcessEnv = process.env): string[] {
  return (env['RACK_ROUTER_NODE_ARGS'] ?? '').split(' ').filter((a) => a !== '');
}

/** A router process we started: only its exit matters to us, the rest is learnt over the socket. */
export interface SpawnedRouter {
  pid: number | undefined;
  /** The ports it was asked to bind (0: any; https undefined: no TLS listener). */
  port: number;
  httpsPort: number | undefined;
  /** undefined while it runs; its exit code (or -1 when killed by a signal or never started) after. */
  exitCode: number | undefined;
}

/**
 * Starts a router process that outlives us: detached into its own session (a Ctrl-C or hang-up
 * aimed at rackd does not reach it), its output appended to a log file rather than a pipe to us
 * (a pipe would break when rackd exits), and unref'd (rackd may exit while it runs). It writes its
 * own log to that file, rotating it; stdout and stderr catch only what comes before its logger.
 */
export async function spawnRouterProcess(opts: SpawnOptions): Promise<SpawnedRouter> {
  for (const p of new Set([opts.socketPath, opts.statePath, opts.logPath])) {
    await mkdir(dirname(p), { recursive: true, mode: 0o700 });
  }
  const last = opts.portsFile === undefined ? undefined : await lastPorts(opts.portsFile);
  const port = opts.port === 0 ? (last?.http ?? 0) : opts.port;
  const httpsPort = opts.https === undefined ? undefined : opts.https.port === 0 ? (last?.https ?? 0) : opts.https.port;
  const fd = openSync(opts.logPath, 'a', 0o600);
  const spawned: SpawnedRouter = { pid: undefined, port, httpsPort, exitCode: undefined };
  try {
    const child = spawn(process.execPath, [...routerNodeArgs(), ROUTER_PROCESS_SCRIPT], {
      detached: true,
      stdio: ['ignore', fd, fd],
      env: {
        ...process.env,
        RACK_ROUTER_SOCKET: opts.socketPath,
        RACK_ROUTER_STATE: opts.statePath,
        RACK_ROUTER_LOG: opts.logPath,
        RACK_HTTP_PORT: String(port),
        RACK_HTTPS_PORT: httpsPort === undefined ? 'off' : String(httpsPort),
        RACK_ROUTER_CERTS: opts.https?.certDir ?? '',
        RACK_BIND: opts.bind,
      },
    });
    spawned.pid = child.pid;
    child.on('error', () => (spawned.exitCode = -1));
    child.on('exit', (code) => (spawned.exitCode = code ?? -1));
    child.unref();
  } finally {
    // The child has its own copy of the descriptor.
    closeSync(fd);
  }
  return spawned;
}

async function lastPorts(file: string): Promise<{ http?: number; https?: number } | undefined> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as { http?: number; https?: number };
  } catch {
    return undefined;
  }
}

/** Why a router process we started exited before it answered, in one line, from its exit code and log. */
export async function whyExited(child: SpawnedRouter, opts: Pick<SpawnOptions, 'bind' | 'logPath'>): Promise<string> {
  const tail = await logTail(opts.logPath);
  if (child.exitCode === EXIT_PORT_IN_USE) {
    const which = /router: (HTTPS? port) already in use/.exec(tail)?.[1];
    const port =
      which === 'HTTPS port' ? `HTTPS port ${child.httpsPort}` : which === 'HTTP port' || child.httpsPort === undefined ? `HTTP port ${child.port}` : `HTTP port ${child.port} or HTTPS port ${child.httpsPort}`;
    return `${port} on ${opts.bind} is already in use by another program`;
  }
  const why = lastLogMessage(tail);
  return `the router process exited with code ${child.exitCode}${why === '' ? '' : `: ${why}`}`;
}

/** The last log line's message (the router logs JSON lines), to say in one line why it would not start. */
export function lastLogMessage(tail: string): string {
  const line = tail.split('\n').filter((l) => l.trim() !== '').at(-1) ?? '';
  try {
    const entry = JSON.parse(line) as { msg?: unknown; err?: unknown };
    const err = typeof entry.err === 'string' ? entry.err : (entry.err as { message?: unknown } | undefined)?.message;
    return [entry.msg, err].filter((x): x is string => typeof x === 'string' && x !== '').join(': ');
  } catch {
    return line.slice(0, 300);
  }
}

/** The end of the router's log, to say why a router process would not start. */
export async function logTail(logPath: string, bytes = 2000): Promise<string> {
  try {
    const fh = await open(logPath, 'r');
    try {
      const { size } = await fh.stat();
      const start = Math.max(0, size - bytes);
      const buf = Buffer.alloc(size - start);
      await fh.read(buf, 0, buf.length, start);
      return buf.toString('utf8').trim();
    } finally {
      await fh.close();
    }
  } catch {
    return '';
  }
}

/** Sends `signal` to a router process that may have exited meanwhile. */
export function signalRouter(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // it exited just now
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Waits for a router process to be gone, so its port and lock are free. It is usually not our
 * child (another rackd started it), so there is no exit event to wait for: the pid is polled.
 */
export async function waitForExit(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (alive(pid)) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
  return true;
}
