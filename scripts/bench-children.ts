/**
 * The child processes a benchmark runs (upstreams, the router, nginx, abusive clients): each leads
 * its own process group, so a kill reaches its workers too, and all are killed when the bench
 * exits, also on error or Ctrl-C.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ROOT } from '../test/support/rack-daemon.js';

export const children = new Set<ChildProcess>();

/** Signals the child's whole process group (it was spawned detached, as its leader). */
function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    /* the group is gone */
  }
}

export async function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) {
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    killGroup(child, signal);
    const timer = setTimeout(() => killGroup(child, 'SIGKILL'), 3_000);
    await exited;
    clearTimeout(timer);
  }
  // Whatever of the group outlived its leader (an nginx worker whose master was killed).
  killGroup(child, 'SIGKILL');
  children.delete(child);
}

export function stopChildren(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  return Promise.all([...children].map((c) => stopChild(c, signal))).then(() => undefined);
}

/** Kills every child at exit, and on a signal stops them, runs `cleanup`, and exits 130. */
export function killChildrenOnExit(cleanup: () => Promise<void> = () => Promise.resolve()): void {
  process.on('exit', () => {
    for (const child of children) killGroup(child, 'SIGKILL');
  });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      console.error(`\n${sig}: stopping the children`);
      // SIGTERM first so nginx's master reaps its worker; stopChild escalates to SIGKILL after 3 s.
      void stopChildren()
        .then(cleanup)
        .finally(() => process.exit(130));
    });
  }
}

export function track(child: ChildProcess, name: string): ChildProcess {
  children.add(child);
  child.on('exit', () => children.delete(child));
  child.on('error', (err) => console.error(`${name}: ${err.message}`));
  return child;
}

/**
 * A node child running an inline ES module that prints `{"port": N, ...}` as its first stdout line.
 * It exits when its stdin closes, i.e. when this process goes away however it goes. Later lines go
 * to `onLine`, or are read and dropped, so the pipe never fills.
 */
export function nodeChild(name: string, source: string, onLine?: (line: string) => void): Promise<{ child: ChildProcess; port: number; [key: string]: unknown }> {
  const script = `${source}\nprocess.stdin.on('end', () => process.exit(0)); process.stdin.resume();\n`;
  const child = track(spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['pipe', 'pipe', 'pipe'], detached: true }), name);
  let out = '';
  let err = '';
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  return new Promise((resolve, reject) => {
    let started = false;
    const timer = setTimeout(() => reject(new Error(`${name} did not start:\n${err}`)), 10_000);
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      for (let nl = out.indexOf('\n'); nl !== -1; nl = out.indexOf('\n')) {
        const line = out.slice(0, nl);
        out = out.slice(nl + 1);
        if (started) {
          onLine?.(line);
          continue;
        }
        started = true;
        clearTimeout(timer);
        try {
          resolve({ ...(JSON.parse(line) as { port: number }), child });
        } catch {
          reject(new Error(`${name} said ${line}`));
        }
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited with ${code}:\n${err}`));
    });
  });
}

/** Resident memory of a process in MB, read from /proc (Linux). */
export async function rssMb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  const kb = /^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1];
  return kb === undefined ? Number.NaN : Number(kb) / 1024;
}

/** CPU time (user + system, ms) of every process in a process group (nginx's master and worker), from /proc. */
export async function groupCpuMs(pgid: number): Promise<number> {
  const ticksPerMs = 100 / 1000; // USER_HZ is 100 on Linux
  let ticks = 0;
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    // Fields after the command name (which may hold spaces): state is field 3, pgrp 5, utime 14, stime 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(fields[2]) !== pgid) continue;
    ticks += Number(fields[11]) + Number(fields[12]);
  }
  return ticks / ticksPerMs;
}

/**
 * The real Router class in a child process of its own (as the router process runs it), serving
 * `apps` (name → host and upstream port) on a free port; `https` adds the TLS listener.
 */
export function routerChild(
  apps: { app: string; host: string; port: number }[],
  opts: { level: string; certDir?: string },
): Promise<{ child: ChildProcess; port: number; httpsPort: number }> {
  const routerJs = pathToFileURL(join(ROOT, 'dist', 'daemon', 'router', 'router.js')).href;
  const logJs = pathToFileURL(join(ROOT, 'dist', 'daemon', 'log.js')).href;
  const https = opts.certDir === undefined ? '' : `, https: { port: 0, certDir: ${JSON.stringify(opts.certDir)} }`;
  const routes = apps.map((a) => `router.setApp(${JSON.stringify(a.app)}, [${JSON.stringify(a.host)}], [{ host: '127.0.0.1', port: ${a.port} }]);`).join('\n');
  return nodeChild(
    'router',
    `const { Router } = await import(${JSON.stringify(routerJs)});
const { createLogger } = await import(${JSON.stringify(logJs)});
const router = new Router({ bind: '127.0.0.1', port: 0${https}, logger: createLogger(${JSON.stringify(opts.level)}) });
const port = await router.start();
${routes}
console.log(JSON.stringify({ port, httpsPort: router.httpsPort }));`,
  ) as Promise<{ child: ChildProcess; port: number; httpsPort: number }>;
}
