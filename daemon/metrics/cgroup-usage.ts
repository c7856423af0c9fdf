import { readFile } from 'node:fs/promises';

/** A container's CPU time so far and memory in use now, read from its cgroup. */
export interface CgroupUsage {
  cpuNs: number;
  memoryBytes: number;
  /** The cgroup's memory limit; absent when it has none. */
  limitBytes?: number;
  /**
   * How many times so far its memory reached the limit and the kernel had to reclaim to keep it
   * under (v1 `memory.failcnt`, v2 `memory.events` max): rack allows no swap, so this is where a
   * process over its quota but not killed shows (memory-quota.ts).
   */
  limitHits?: number;
}

async function text(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
}

function statField(stat: string | undefined, name: string): number {
  const m = stat === undefined ? null : new RegExp(`^${name} (\\d+)$`, 'm').exec(stat);
  return m?.[1] === undefined ? 0 : Number(m[1]);
}

/** v1 writes "no limit" as a page-rounded 2^63 and v2 as `max`: past 2^60 bytes is no limit either way. */
function limitOf(limit: string | undefined, hits: string | undefined): Pick<CgroupUsage, 'limitBytes' | 'limitHits'> {
  const bytes = limit === undefined ? NaN : Number(limit.trim());
  if (!Number.isFinite(bytes) || bytes <= 0 || bytes >= 2 ** 60) return {};
  const count = hits === undefined ? NaN : Number(hits.trim());
  return { limitBytes: bytes, ...(Number.isFinite(count) ? { limitHits: count } : {}) };
}

/**
 * Reads a Docker container's usage from the cgroup files the engine made for it: a few small reads
 * instead of a stats call per container (which makes the engine sample for a second or two).
 * cgroup v1 (`cpuacct/docker/ID`, `memory/docker/ID`) and v2 under systemd
 * (`system.slice/docker-ID.scope`) or cgroupfs (`docker/ID`). Memory is counted as `docker stats`
 * does: in use less inactive page cache. Undefined when no layout has the container (another
 * machine of a Swarm, a rootless engine).
 */
export async function cgroupUsage(id: string, root = '/sys/fs/cgroup'): Promise<CgroupUsage | undefined> {
  if (!/^[0-9a-f]{64}$/.test(id)) return undefined;
  const v1cpu = await text(`${root}/cpuacct/docker/${id}/cpuacct.usage`);
  if (v1cpu !== undefined) {
    const usage = Number((await text(`${root}/memory/docker/${id}/memory.usage_in_bytes`)) ?? 0);
    const inactive = statField(await text(`${root}/memory/docker/${id}/memory.stat`), 'total_inactive_file');
    return { cpuNs: Number(v1cpu.trim()), memoryBytes: Math.max(0, usage - inactive), ...limitOf(await text(`${root}/memory/docker/${id}/memory.limit_in_bytes`), await text(`${root}/memory/docker/${id}/memory.failcnt`)) };
  }
  for (const dir of [`${root}/system.slice/docker-${id}.scope`, `${root}/docker/${id}`]) {
    const cpuStat = await text(`${dir}/cpu.stat`);
    if (cpuStat === undefined) continue;
    const current = Number((await text(`${dir}/memory.current`)) ?? 0);
    const inactive = statField(await text(`${dir}/memory.stat`), 'inactive_file');
    const events = await text(`${dir}/memory.events`);
    return { cpuNs: statField(cpuStat, 'usage_usec') * 1000, memoryBytes: Math.max(0, current - inactive), ...limitOf(await text(`${dir}/memory.max`), events === undefined ? undefined : String(statField(events, 'max'))) };
  }
  return undefined;
}
