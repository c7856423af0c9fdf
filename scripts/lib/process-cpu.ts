/**
 * CPU time and resident memory of sets of processes, from /proc (Linux): the deployed router (one
 * process today, maybe one per core soon), rackd, nginx's master and worker.
 */
import { readdir, readFile } from 'node:fs/promises';

/** USER_HZ is 100 on Linux: a tick is 10 ms. */
const MS_PER_TICK = 10;

interface Stat {
  pgrp: number;
  /** utime + stime, ms. */
  cpuMs: number;
}

async function stat(pid: number): Promise<Stat | undefined> {
  const text = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  // After the command name (which may hold spaces and parentheses): state, ppid, pgrp, …, utime (14), stime (15).
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { pgrp: Number(fields[2]), cpuMs: (Number(fields[11]) + Number(fields[12])) * MS_PER_TICK };
}

async function pids(): Promise<number[]> {
  return (await readdir('/proc')).filter((e) => /^\d+$/.test(e)).map(Number);
}

/**
 * CPU time of each process: a set read before and after a round gives the round's CPU, with a
 * process that appeared meanwhile counted from zero (one that ended takes its time with it).
 */
export async function cpuByPid(set: readonly number[]): Promise<Map<number, number>> {
  const out = new Map<number, number>();
  for (const pid of set) {
    const s = await stat(pid);
    if (s !== undefined) out.set(pid, s.cpuMs);
  }
  return out;
}

/** CPU spent between two readings, ms. */
export function cpuSpentMs(before: Map<number, number>, after: Map<number, number>): number {
  let ms = 0;
  for (const [pid, t] of after) ms += t - (before.get(pid) ?? 0);
  return ms;
}

/** Every process in process group `pgid` (nginx is spawned as a group leader: master and worker). */
export async function groupPids(pgid: number): Promise<number[]> {
  const out: number[] = [];
  for (const pid of await pids()) if ((await stat(pid))?.pgrp === pgid) out.push(pid);
  return out;
}

/**
 * The router's processes for the rackd whose router socket is `socketPath`: those whose environment
 * names that socket (rackd gives it to the router it spawns, and any process the router starts
 * inherits it), and everything in their process groups (the router is spawned as a group leader;
 * a worker forked with another environment is still in its group). rackd itself is left out.
 */
export async function routerPids(socketPath: string, rackdPid: number): Promise<number[]> {
  const marker = `RACK_ROUTER_SOCKET=${socketPath}`;
  const groups = new Set<number>();
  const found = new Set<number>();
  const all = await pids();
  for (const pid of all) {
    if (pid === rackdPid) continue;
    const environ = await readFile(`/proc/${pid}/environ`, 'utf8').catch(() => '');
    if (!environ.split('\0').includes(marker)) continue;
    found.add(pid);
    const s = await stat(pid);
    if (s !== undefined) groups.add(s.pgrp);
  }
  for (const pid of all) {
    if (pid === rackdPid || found.has(pid)) continue;
    const s = await stat(pid);
    if (s !== undefined && groups.has(s.pgrp)) found.add(pid);
  }
  return [...found].sort((a, b) => a - b);
}

/** Resident memory of a set of processes, MB (those gone count nothing). */
export async function rssMb(set: readonly number[]): Promise<number> {
  let kb = 0;
  for (const pid of set) {
    const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
    kb += Number(/^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1] ?? 0);
  }
  return kb / 1024;
}

/**
 * Docker's userland proxy for a published port on the host, if the upstream is one: it sits in
 * the path of both proxies, so its CPU per request says how much of the pace is the container's way in.
 */
export async function dockerProxyPids(hostPort: number): Promise<number[]> {
  const out: number[] = [];
  for (const pid of await pids()) {
    const args = (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0');
    if (args[0]?.endsWith('docker-proxy') && args[args.indexOf('-host-port') + 1] === String(hostPort)) out.push(pid);
  }
  return out;
}
