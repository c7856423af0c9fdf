import type { IncomingMessage } from 'node:http';
import { isTokenShaped, tokenHash } from '../access/api-token.js';
import type { LoginThrottle } from '../access/login-throttle.js';
import { tokenPrincipal, type Caller } from '../access/principal.js';
import type { Logger } from '../log.js';
import { RackError } from '../rack-error.js';
import type { Store } from '../store/store.js';

/** Marking a token's last use costs a write: once a minute is enough to tell "in use" from "stale". */
const TOUCH_EVERY_MS = 60_000;

/**
 * Who sent an HTTP request: `Authorization: Bearer TOKEN`, or Basic with the token as the password
 * (any user name) as git and `~/.netrc` send it. Failures count against the address in the same
 * throttle as ssh logins. Tokens never reach a log: only their names do.
 */
export class TokenAuth {
  private readonly touched = new Map<string, number>();

  constructor(
    private readonly store: Store,
    private readonly throttle: LoginThrottle,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  /** The caller, or a RackError: `unauthorized` (401), `throttled` (429). */
  async authenticate(req: IncomingMessage): Promise<Caller> {
    return this.check(credential(req.headers.authorization), clientAddress(req));
  }

  /** A token as presented (undefined: none at all) from an address: the console's sign-in form too. */
  async check(presented: string | undefined, address: string): Promise<Caller> {
    if (this.throttle.blocked(address)) {
      const seconds = Math.ceil(this.throttle.retryAfterMs(address) / 1000);
      throw new RackError('throttled', `too many failed logins from ${address}; try again in ${seconds} s`);
    }
    // No credentials is a question, not a guess: git asks without them first.
    if (presented === undefined) throw new RackError('unauthorized', 'this needs a token: Authorization: Bearer TOKEN (make one with: ssh rack tokens:create NAME)');
    const token = isTokenShaped(presented) ? await this.store.tokens.byHash(tokenHash(presented)) : undefined;
    let refusal: string | undefined;
    if (!token) refusal = 'invalid token';
    else if (token.expiresAt !== null && Date.parse(token.expiresAt) <= this.now()) refusal = `token "${token.name}" expired at ${token.expiresAt}`;
    if (refusal !== undefined || !token) {
      if (this.throttle.fail(address)) this.log.warn({ address }, 'too many failed token logins: address throttled');
      throw new RackError('unauthorized', refusal ?? 'invalid token');
    }
    this.markUsed(token.name);
    return { principal: tokenPrincipal(token), via: 'http', address };
  }

  /** How long the request's address must wait (for Retry-After). */
  retryAfterMs(req: IncomingMessage): number {
    return this.throttle.retryAfterMs(clientAddress(req));
  }

  private markUsed(name: string): void {
    const now = this.now();
    if (now - (this.touched.get(name) ?? 0) < TOUCH_EVERY_MS) return;
    this.touched.set(name, now);
    this.store.tokens.touch(name, new Date(now).toISOString()).catch((err: unknown) => this.log.warn({ err: String(err), token: name }, 'could not mark token use'));
  }
}

/** Bearer, or Basic's password; undefined when the request carries neither. */
function credential(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const [scheme, value = ''] = header.trim().split(/\s+/, 2);
  if (/^bearer$/i.test(scheme ?? '')) return value;
  if (/^basic$/i.test(scheme ?? '')) {
    const decoded = Buffer.from(value, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    return colon === -1 ? decoded : decoded.slice(colon + 1);
  }
  return '';
}

/**
 * The client's address. rackd's HTTP listener is a Unix socket only the router reaches, and the
 * router appends the address it saw to X-Forwarded-For: the last entry is the one to trust (what
 * comes before it is whatever the client sent).
 */
export function clientAddress(req: IncomingMessage): string {
  const header = req.headers['x-forwarded-for'];
  const list = (Array.isArray(header) ? header.join(',') : (header ?? '')).split(',').map((s) => s.trim()).filter((s) => s !== '');
  return (list[list.length - 1] ?? req.socket.remoteAddress ?? 'local').slice(0, 64);
}
