import { RackError } from '../rack-error.js';

/**
 * Key → value. Keys are the user's words, so they are looked up as own data only
 * (`Object.hasOwn`, `configValue`): `constructor` or `__proto__` is a config key like any other.
 */
export type ConfigVars = Record<string, string>;

export const MAX_VALUE_BYTES = 32 * 1024;
/**
 * All of an app's config together (as KEY=VALUE strings). Every process gets it as its environment,
 * and execve fails past a couple of MiB with arguments included; Heroku allows 32 KiB in all.
 */
export const MAX_CONFIG_BYTES = 128 * 1024;
const KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;
const MAX_KEY_LENGTH = 256;
/** With the u flag a surrogate pair is one code point, so only a lone half matches. */
const LONE_SURROGATE = /\p{Cs}/u;
/** Set by rack itself; a user value would be overwritten or would break the process. */
const RESERVED = new Set(['PORT']);

export function assertConfigKey(key: string): string {
  if (key.length > MAX_KEY_LENGTH || !KEY.test(key)) {
    const shown = JSON.stringify(key.length > 40 ? `${key.slice(0, 40)}...` : key);
    throw new RackError('bad_argument', `invalid config key ${shown}: use letters, digits and _, not starting with a digit`);
  }
  if (RESERVED.has(key)) throw new RackError('bad_argument', `${key} is set by rack and cannot be changed`);
  return key;
}

/** The value of `key` when the config has it as its own; never something inherited from Object. */
export function configValue(config: ConfigVars, key: string): string | undefined {
  return Object.hasOwn(config, key) ? config[key] : undefined;
}

/**
 * The one check of a config value, whichever way it came (ssh, the API, the Console): an
 * environment entry is a C string, so a NUL would reach Docker and fail every rollout after it; a
 * lone UTF-16 surrogate (JSON allows `"\ud800"`) cannot be written as UTF-8 and would change silently.
 */
export function assertConfigValue(key: string, value: string): string {
  if (value.includes('\0')) throw new RackError('bad_argument', `value of ${key} contains a NUL byte, which an environment variable cannot hold`);
  if (LONE_SURROGATE.test(value)) throw new RackError('bad_argument', `value of ${key} is not valid Unicode (a lone surrogate)`);
  if (Buffer.byteLength(value) > MAX_VALUE_BYTES) throw new RackError('bad_argument', `value of ${key} is over ${MAX_VALUE_BYTES / 1024} KiB`);
  return value;
}

/** Bytes the config takes as a process's environment (`KEY=VALUE` and its NUL, each). */
export function configBytes(config: ConfigVars): number {
  let bytes = 0;
  for (const [k, v] of Object.entries(config)) bytes += Buffer.byteLength(k) + Buffer.byteLength(v) + 2;
  return bytes;
}

/** Refuses a change that makes the config too large to pass as an environment; shrinking always goes. */
export function assertConfigFits(before: ConfigVars, after: ConfigVars): ConfigVars {
  const size = configBytes(after);
  if (size > MAX_CONFIG_BYTES && size > configBytes(before)) {
    throw new RackError('bad_argument', `config vars would take ${Math.ceil(size / 1024)} KiB; at most ${MAX_CONFIG_BYTES / 1024} KiB in all`);
  }
  return after;
}

/** `KEY=VALUE` words → pairs. Values keep every byte after the first `=`; nothing is partly applied. */
export function parseAssignments(words: string[]): ConfigVars {
  // A Map, then fromEntries: assigning obj["__proto__"] would set the prototype, not a key.
  const out = new Map<string, string>();
  for (const word of words) {
    const eq = word.indexOf('=');
    if (eq <= 0) throw new RackError('bad_argument', `expected KEY=VALUE, got ${JSON.stringify(word.slice(0, 40))}`);
    const key = assertConfigKey(word.slice(0, eq));
    out.set(key, assertConfigValue(key, word.slice(eq + 1)));
  }
  return Object.fromEntries(out);
}

export interface ConfigDiff {
  added: string[];
  changed: string[];
  removed: string[];
}

export function diffConfig(before: ConfigVars, after: ConfigVars): ConfigDiff {
  const has = Object.hasOwn;
  const added = Object.keys(after).filter((k) => !has(before, k));
  const changed = Object.keys(after).filter((k) => has(before, k) && before[k] !== after[k]);
  const removed = Object.keys(before).filter((k) => !has(after, k));
  return { added: added.sort(), changed: changed.sort(), removed: removed.sort() };
}

export function isEmptyDiff(d: ConfigDiff): boolean {
  return d.added.length + d.changed.length + d.removed.length === 0;
}

/** Shows enough of a value to recognise it, never a whole secret. */
export function abbreviate(value: string): string {
  const flat = value.replace(/\n/g, '\\n');
  if (flat.length <= 8) return '*'.repeat(Math.max(3, flat.length));
  return `${flat.slice(0, 4)}...(${Buffer.byteLength(value)} bytes)`;
}
