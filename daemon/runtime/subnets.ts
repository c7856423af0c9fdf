import { RackError } from '../rack-error.js';

/**
 * App networks take their subnets from one range of rack's (RACK_APP_SUBNETS), in small slices:
 * Docker's default pools hold about thirty networks, far fewer than a host runs apps.
 */
export const SLICE_BITS = 26; // 62 addresses: an app's processes, builds and one-off runs

interface Range {
  start: number;
  end: number; // inclusive
}

function toInt(ip: string): number {
  const parts = ip.split('.').map(Number);
  return parts.reduce((n, p) => n * 256 + p, 0);
}

function toIp(n: number): string {
  return [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');
}

/** An IPv4 CIDR as a range; undefined for anything else (IPv6 subnets are ignored). */
export function cidrRange(cidr: string): Range | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(cidr);
  if (!m || m.slice(1, 5).some((p) => Number(p) > 255) || Number(m[5]) > 32) return undefined;
  const bits = Number(m[5]);
  const size = 2 ** (32 - bits);
  const start = Math.floor(toInt(`${m[1]}.${m[2]}.${m[3]}.${m[4]}`) / size) * size;
  return { start, end: start + size - 1 };
}

export function parseSubnetRange(raw: string): string {
  const r = cidrRange(raw);
  if (!r || Number(raw.split('/')[1]) > SLICE_BITS) {
    throw new RackError('bad_config', `RACK_APP_SUBNETS must be an IPv4 range of /${SLICE_BITS} or larger, like 10.213.0.0/16, got "${raw}"`);
  }
  return raw;
}

/** The first /26 of `pool` that overlaps none of `used`; undefined when the pool is full. */
export function freeSlice(pool: string, used: string[], skip = new Set<string>()): string | undefined {
  const range = cidrRange(pool)!;
  const taken = used.map(cidrRange).filter((r): r is Range => r !== undefined);
  const size = 2 ** (32 - SLICE_BITS);
  for (let start = range.start; start + size - 1 <= range.end; start += size) {
    const slice = `${toIp(start)}/${SLICE_BITS}`;
    if (skip.has(slice)) continue;
    if (!taken.some((t) => t.start <= start + size - 1 && start <= t.end)) return slice;
  }
  return undefined;
}
