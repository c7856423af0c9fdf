import { createHash, randomBytes } from 'node:crypto';
import { RackError } from '../rack-error.js';

/**
 * API tokens look like `rack_` + 43 base64url characters (32 random bytes). The fixed prefix lets
 * secret scanners (GitHub's, gitleaks) find one pasted where it should not be.
 */
export const TOKEN_PREFIX = 'rack_';
const TOKEN = /^rack_[A-Za-z0-9_-]{43}$/;

export function newToken(): string {
  return TOKEN_PREFIX + randomBytes(32).toString('base64url');
}

export function isTokenShaped(text: string): boolean {
  return TOKEN.test(text);
}

export function tokenHash(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

const DURATION = /^([1-9][0-9]{0,4})([mhdw])$/;
const UNIT_MS: Record<string, number> = { m: 60_000, h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 };

/** `30d`, `12h`, `2w`, `90m` → milliseconds (at most about 10 years). */
export function parseDuration(text: string): number {
  const m = DURATION.exec(text);
  const ms = m ? Number(m[1]) * UNIT_MS[m[2]!]! : NaN;
  if (!(ms > 0) || ms > 3650 * UNIT_MS['d']!) {
    throw new RackError('bad_argument', `expected a duration such as 30d, 12h, 2w or 90m, got ${JSON.stringify(text.slice(0, 20))}`);
  }
  return ms;
}
