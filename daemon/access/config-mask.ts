import type { ConfigVars } from '../release/config-vars.js';
import type { Principal } from './principal.js';

/** What a deploy-only key sees in place of a config value. */
export const MASKED = '•••';
/** Shorter values ("1", "true", "dev") are too common to hide without hiding ordinary words of a log too. */
const MIN_REDACTED = 6;

/**
 * Whether the key may read config values. A deploy-only key reads an app's history (releases,
 * builds, their logs) but never the values of its config: key names only. That hides secrets
 * from the key, not from the code it pushes, which reads its config at run time (as on Heroku).
 */
export function seesConfigValues(key: Pick<Principal, 'role'>): boolean {
  return key.role !== 'deploy';
}

/** The same keys, every value masked. */
export function maskConfig(config: ConfigVars): ConfigVars {
  return Object.fromEntries(Object.keys(config).map((k) => [k, MASKED]));
}

/** Free text (a build log, an error) with every occurrence of the given values masked. */
export function redactValues(text: string, values: Iterable<string>): string {
  // Longest first, so a value that contains another is masked whole.
  const hidden = [...new Set(values)].filter((v) => v.length >= MIN_REDACTED).sort((a, b) => b.length - a.length);
  let out = text;
  for (const value of hidden) out = out.split(value).join(MASKED);
  return out;
}
