import type { RackAnswer } from './rack-answers.js';

export const CHALLENGE_PREFIX = '/.well-known/acme-challenge/';
/** RFC 8555 §8.1: tokens are base64url; anything else in the path is not one of ours. */
const TOKEN = /^[A-Za-z0-9_-]{1,256}$/;

/**
 * http-01 answers the router gives on the plain port while rackd orders a certificate. Each is tied
 * to the one host it was ordered for: a request for that token under another Host gets nothing
 * from here. Kept in memory only: a router restarted mid-order fails that order, and rackd retries.
 */
export class AcmeChallenges {
  readonly #byToken = new Map<string, { host: string; keyAuthorization: string }>();

  set(token: string, host: string, keyAuthorization: string): void {
    this.#byToken.set(token, { host, keyAuthorization });
  }

  remove(token: string): void {
    this.#byToken.delete(token);
  }

  /** The answer when the request is a challenge rackd is waiting on for this host. */
  answer(method: string, url: string, host: string): RackAnswer | undefined {
    if (!url.startsWith(CHALLENGE_PREFIX) || (method !== 'GET' && method !== 'HEAD')) return undefined;
    const token = url.slice(CHALLENGE_PREFIX.length);
    if (!TOKEN.test(token)) return undefined;
    const found = this.#byToken.get(token);
    if (found === undefined || found.host !== host) return undefined;
    return { status: 200, headers: 'Content-Type: application/octet-stream\r\n', body: Buffer.from(found.keyAuthorization) };
  }
}

/** The acme-challenge path is answered on plain HTTP even when the app redirects to HTTPS. */
export function isChallengePath(url: string): boolean {
  return url.startsWith(CHALLENGE_PREFIX);
}
