import { RackError } from '../rack-error.js';
import type { ProcessLimits } from '../store/records.js';

export type { ProcessLimits };

export const DEFAULT_LIMITS: ProcessLimits = { memoryMb: 512, cpu: 1, pids: 256 };

type LimitKey = keyof ProcessLimits;
const MAX: Record<LimitKey, number> = { memoryMb: 16 * 1024, cpu: 16, pids: 4096, diskMb: 1024 * 1024 };
const MIN: Record<LimitKey, number> = { memoryMb: 32, cpu: 0.05, pids: 16, diskMb: 16 };
const WORD: Record<LimitKey, string> = { memoryMb: 'memory', cpu: 'cpu', pids: 'pids', diskMb: 'disk' };

/**
 * How far a key that is not an admin's may raise a process's limits when an admin has set no
 * ceiling for the app (`apps:limits`): one process of an app key must not take the machine.
 */
export const DEFAULT_CEILINGS: Required<ProcessLimits> = { memoryMb: 2048, cpu: 2, pids: 1024, diskMb: 4096 };

/** The user app processes run as: not root, not in the image's passwd (none is needed). */
export const APP_USER = '1000:1000';

/**
 * Parses `memory=512m cpu=0.5 pids=128 disk=1g` words (ps:limit, apps:limits); refuses anything
 * else with one line.
 */
export function parseLimitWords(words: string[]): Partial<ProcessLimits> {
  const out: Partial<ProcessLimits> = {};
  for (const word of words) {
    const m = /^(memory|cpu|pids|disk)=(.{1,20})$/.exec(word);
    if (!m) throw new RackError('bad_argument', `expected memory=SIZE, cpu=N, pids=N or disk=SIZE, got ${JSON.stringify(word.slice(0, 40))}`);
    const [, name, value] = m as unknown as [string, 'memory' | 'cpu' | 'pids' | 'disk', string];
    if (name === 'memory') out.memoryMb = checked('memoryMb', parseMegabytes(value), value);
    else if (name === 'disk') out.diskMb = checked('diskMb', parseMegabytes(value), value);
    // `cpu=shared` takes a cap off again (0: no quota, only the equal weight).
    else if (name === 'cpu') out.cpu = value === 'shared' ? 0 : checked('cpu', /^\d{1,2}(\.\d{1,2})?$/.test(value) ? Number(value) : NaN, value);
    else out.pids = checked('pids', /^\d{1,5}$/.test(value) ? Number(value) : NaN, value);
  }
  return out;
}

function parseMegabytes(value: string): number {
  const m = /^(\d{1,7})([mg])?b?$/i.exec(value);
  if (!m) return NaN;
  return Number(m[1]) * (m[2]?.toLowerCase() === 'g' ? 1024 : 1);
}

function checked(key: LimitKey, n: number, raw: string): number {
  if (!Number.isFinite(n) || n < MIN[key] || n > MAX[key]) {
    const unit = key === 'memoryMb' || key === 'diskMb' ? ' MiB' : '';
    throw new RackError('bad_argument', `${WORD[key]}=${raw.slice(0, 20)} is out of range (${MIN[key]}${unit} to ${MAX[key]}${unit})`);
  }
  return n;
}

/**
 * Refuses limits past the app's ceilings (an admin's `apps:limits`, else DEFAULT_CEILINGS), for
 * a key that is not an admin's. `cpu=shared` (no cap) is past any CPU ceiling.
 */
export function checkCeilings(limits: Partial<ProcessLimits>, ceilings: Partial<ProcessLimits> | undefined): void {
  const ceiling = { ...DEFAULT_CEILINGS, ...ceilings };
  for (const key of Object.keys(WORD) as LimitKey[]) {
    const wanted = limits[key];
    if (wanted === undefined) continue;
    const over = key === 'cpu' && wanted === 0 ? true : wanted > ceiling[key];
    if (over) {
      const asked = key === 'cpu' && wanted === 0 ? 'cpu=shared' : `${WORD[key]}=${formatValue(key, wanted)}`;
      throw new RackError('forbidden', `${asked} is over ${WORD[key]}=${formatValue(key, ceiling[key])}, this app's ceiling per process (an admin may raise it with apps:limits)`);
    }
  }
}

function formatValue(key: LimitKey, n: number): string {
  if (key !== 'memoryMb' && key !== 'diskMb') return String(n);
  return n % 1024 === 0 ? `${n / 1024}g` : `${n}m`;
}

/** The app's limits for one process type: what ps:limit set for it over the defaults. */
export function limitsFor(type: string, set: Record<string, Partial<ProcessLimits>> | undefined): ProcessLimits {
  const own = set !== undefined && Object.hasOwn(set, type) ? set[type] : undefined;
  return { ...DEFAULT_LIMITS, ...own };
}

export function formatLimits(l: ProcessLimits): string {
  const disk = l.diskMb === undefined ? '' : ` disk=${formatValue('diskMb', l.diskMb)}`;
  return `memory=${formatValue('memoryMb', l.memoryMb)} cpu=${l.cpu || 'shared'} pids=${l.pids}${disk}`;
}

/** An app's ceilings as `memory=2g cpu=2 pids=1024 disk=4g`, the defaults filled in. */
export function formatCeilings(ceilings: Partial<ProcessLimits> | undefined): string {
  const c = { ...DEFAULT_CEILINGS, ...ceilings };
  return (Object.keys(WORD) as LimitKey[]).map((key) => `${WORD[key]}=${formatValue(key, c[key])}`).join(' ');
}

/**
 * How any container rack runs for a tenant is confined: app processes, `run` and release phases
 * (`forProcess`), and builds, which run as root with a few capabilities kept and their own limits.
 */
export interface Confinement {
  memoryBytes: number;
  pids: number;
  /** Relative CPU weight (Docker's default is 1024). */
  cpuShares: number;
  /** A hard cap in CPU cores; none when absent or 0. */
  cpu?: number;
  /** Capabilities kept; every other one is dropped. */
  capabilities?: string[];
  /** The user it runs as; the image's when absent. */
  user?: string;
  /** Writable space in bytes (`disk-limit.ts`); the rack's RACK_DISK_LIMIT when absent. */
  diskBytes?: number;
}

/** App processes, one-off runs and release phases: the app user, no capabilities, the type's limits. */
export function forProcess(l: ProcessLimits): Confinement {
  return {
    memoryBytes: l.memoryMb * 1024 * 1024,
    pids: l.pids,
    cpuShares: 1024,
    ...(l.cpu ? { cpu: l.cpu } : {}),
    user: APP_USER,
    ...(l.diskMb ? { diskBytes: l.diskMb * 1024 * 1024 } : {}),
  };
}

/** The part of Docker's HostConfig that enforces a confinement (no swap beyond the memory). */
export function hostConfinement(c: Confinement): {
  Memory: number;
  MemorySwap: number;
  CpuShares: number;
  NanoCpus?: number;
  PidsLimit: number;
  CapDrop: string[];
  CapAdd?: string[];
  SecurityOpt: string[];
} {
  return {
    Memory: c.memoryBytes,
    MemorySwap: c.memoryBytes,
    CpuShares: c.cpuShares,
    ...(c.cpu ? { NanoCpus: Math.round(c.cpu * 1e9) } : {}),
    PidsLimit: c.pids,
    CapDrop: ['ALL'],
    ...(c.capabilities?.length ? { CapAdd: c.capabilities } : {}),
    SecurityOpt: ['no-new-privileges:true'],
  };
}

/** The HostConfig part for a process under these limits. */
export function confinement(l: ProcessLimits): ReturnType<typeof hostConfinement> {
  return hostConfinement(forProcess(l));
}
