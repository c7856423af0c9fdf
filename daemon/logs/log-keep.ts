import { RackError } from '../rack-error.js';

/** How much of each app's output the log store keeps: lines older than `maxAgeMs` or past `maxBytes` go. */
export interface LogKeep {
  maxAgeMs: number;
  maxBytes: number;
}

export const DEFAULT_LOG_KEEP = '7d,256m';

const DURATION_UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 };
const SIZE_UNITS: Record<string, number> = { k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

/** `30s`, `30m`, `2h`, `1d`, `2w` in milliseconds; undefined for anything else. */
export function parseDuration(raw: string): number | undefined {
  const m = /^([1-9][0-9]{0,6})([smhdw])$/.exec(raw.trim());
  return m ? Number(m[1]) * DURATION_UNITS[m[2]!]! : undefined;
}

/**
 * RACK_LOG_KEEP: `AGE,SIZE`, the age first (`7d`, `12h`) and the size per app second (`256m`,
 * `1g`): both are needed, since `m` is minutes in one place and megabytes in the other.
 */
export function parseLogKeep(raw: string): LogKeep {
  const [age, size, extra] = raw.split(',').map((p) => p.trim());
  const maxAgeMs = age === undefined ? undefined : parseDuration(age);
  const sizeMatch = size === undefined ? null : /^([1-9][0-9]{0,6})([kmg])$/i.exec(size);
  const maxBytes = sizeMatch ? Number(sizeMatch[1]) * SIZE_UNITS[sizeMatch[2]!.toLowerCase()]! : undefined;
  if (extra !== undefined || maxAgeMs === undefined || maxBytes === undefined || maxBytes < 64 * 1024) {
    throw new RackError('bad_config', `RACK_LOG_KEEP must be an age and a size per app, such as ${DEFAULT_LOG_KEEP} (at least 64k), got "${raw.slice(0, 40)}"`);
  }
  return { maxAgeMs, maxBytes };
}
