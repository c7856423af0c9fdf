import type { KeyRecord, KeyRole, TokenRecord } from '../store/records.js';

/**
 * Who is asking: an SSH key or an API token. Both carry the same three roles and are judged by
 * the same policy (`access-policy.ts`); only the way they prove themselves differs.
 */
export interface Principal {
  /** `webhook`: a repository host's signed delivery (workflows/), which may only deploy its app. */
  kind: 'key' | 'token' | 'webhook';
  name: string;
  role: KeyRole;
  /** The apps an `app` or `deploy` role acts on; empty for admin. */
  apps: string[];
}

export function keyPrincipal(key: KeyRecord): Principal {
  return { kind: 'key', name: key.name, role: key.role, apps: key.apps };
}

export function tokenPrincipal(token: TokenRecord): Principal {
  return { kind: 'token', name: token.name, role: token.role, apps: token.apps };
}

/** How a principal is named to people: `key alice`, `token ci-deploy`. */
export function principalLabel(p: Pick<Principal, 'kind' | 'name'>): string {
  return `${p.kind} ${p.name}`;
}

/** What releases and builds record as their author: a key's name, or `token:NAME`. */
export function createdBy(p: Pick<Principal, 'kind' | 'name'>): string {
  return p.kind === 'key' ? p.name : `${p.kind}:${p.name}`;
}

/** Where a request came from, for the audit log and the login throttle. */
export interface Caller {
  principal: Principal;
  via: 'ssh' | 'http';
  /** The client's IP address as rack saw it (behind the router: the router's X-Forwarded-For). */
  address: string;
}
