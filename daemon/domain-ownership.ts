import { parseHostName } from './host-name.js';
import { RackError } from './rack-error.js';

/**
 * Who holds which host names: rack's own host, RACK_DOMAIN (every app's default host is
 * APP.RACK_DOMAIN) and each app's custom domains.
 */
export interface HostHolders {
  domain: string;
  consoleHost: string;
  apps: readonly { name: string; domains?: readonly string[] }[];
}

/** `host` is `parent` or a name below it. */
export function isAtOrBelow(host: string, parent: string): boolean {
  return host === parent || host.endsWith(`.${parent}`);
}

/**
 * Where `host` stands to `other`: the same name, below it, above it, or apart. A host below
 * another can set cookies for it (`Domain=other`), and a host above it sets cookies every name
 * below receives: either way the two share cookies, so they must share an owner.
 */
function relation(host: string, other: string): 'equal' | 'below' | 'above' | undefined {
  if (host === other) return 'equal';
  if (isAtOrBelow(host, other)) return 'below';
  if (isAtOrBelow(other, host)) return 'above';
  return undefined;
}

const where = { equal: 'is', below: 'is under', above: 'is above' } as const;

/**
 * The one rule of who may add `host` (already a parsed host name) as a domain of `app`; throws
 * the refusal. A host belongs to one app, and hosts that share cookies (one at or below the
 * other) belong to the same app: an app may add names under its own hosts, never at, under or
 * above another app's, rack's own host (RACK_CONSOLE_HOST: the console's session cookie lives
 * there), or RACK_DOMAIN and its parents (every app's default host sits under them). Under
 * RACK_DOMAIN, an app may add only names under its own default host: the rest are other apps'
 * default hosts, now or once such an app is made.
 */
export function assertDomainClaim(host: string, app: string, holders: HostHolders): void {
  const { domain, consoleHost } = holders;
  const toConsole = relation(host, consoleHost);
  if (toConsole === 'equal') throw new RackError('domain_reserved', `${host} is rack's own host name (RACK_CONSOLE_HOST)`);
  if (isAtOrBelow(domain, host)) {
    throw new RackError('domain_reserved', `${host} ${host === domain ? 'is' : 'is above'} RACK_DOMAIN (${domain}), under which every app has its default host`);
  }
  if (toConsole !== undefined) {
    throw new RackError('domain_reserved', `${host} ${where[toConsole]} rack's own host name ${consoleHost} (RACK_CONSOLE_HOST): it would share the console's cookies`);
  }
  const own = `${app}.${domain}`;
  if (host === own) throw new RackError('bad_argument', `${host} is already ${app}'s default host`);
  if (isAtOrBelow(host, domain) && !isAtOrBelow(host, own)) {
    const label = host.slice(0, -domain.length - 1).split('.').pop()!;
    if (holders.apps.some((a) => a.name === label)) {
      throw new RackError('domain_taken', `${host} ${host === `${label}.${domain}` ? 'is' : 'is under'} the default host of app ${label}`);
    }
    throw new RackError('domain_reserved', `${host} is under RACK_DOMAIN (${domain}), whose names are apps' default hosts (or may become one): ${app} may add names under ${own} only`);
  }
  for (const other of holders.apps) {
    for (const held of other.domains ?? []) {
      const r = relation(host, held);
      if (r === undefined) continue;
      if (other.name === app) {
        if (r === 'equal') throw new RackError('bad_argument', `${host} is already a domain of ${app}`);
        continue;
      }
      if (r === 'equal') throw new RackError('domain_taken', `${host} already belongs to another app (${other.name})`);
      throw new RackError('domain_taken', `${host} ${where[r]} ${held}, a domain of another app (${other.name}): hosts that share cookies belong to one app`);
    }
  }
}

/**
 * Whether a new app may be called `app`: its default host APP.RACK_DOMAIN must not share cookies
 * with rack's own host (a RACK_CONSOLE_HOST under RACK_DOMAIN) or with another app's domain (one
 * added before domains under RACK_DOMAIN were refused).
 */
export function assertDefaultHostFree(app: string, holders: HostHolders): void {
  const host = `${app}.${holders.domain}`;
  const toConsole = relation(host, holders.consoleHost);
  if (toConsole !== undefined) {
    throw new RackError('domain_reserved', `an app called ${app} would answer on ${host}, which ${where[toConsole]} rack's own host name ${holders.consoleHost}; choose another name`);
  }
  for (const other of holders.apps) {
    if (other.name === app) continue;
    const held = (other.domains ?? []).find((d) => relation(host, d) !== undefined);
    if (held !== undefined) throw new RackError('domain_taken', `an app called ${app} would answer on ${host}, which shares cookies with ${held}, a domain of app ${other.name}; choose another name`);
  }
}

/**
 * Domains held against the rule, added before it: each with the refusal it would get today. They
 * keep serving (removing them is their owner's or the operator's call); rackd names them at start.
 */
export function domainsAgainstRule(holders: HostHolders): { app: string; host: string; reason: string }[] {
  const found: { app: string; host: string; reason: string }[] = [];
  for (const app of holders.apps) {
    for (const host of app.domains ?? []) {
      const others = holders.apps.map((a) => (a.name === app.name ? { ...a, domains: (a.domains ?? []).filter((d) => d !== host) } : a));
      try {
        assertDomainClaim(parseHostName(host), app.name, { ...holders, apps: others });
      } catch (err) {
        found.push({ app: app.name, host, reason: err instanceof Error ? err.message : String(err) });
      }
    }
  }
  return found;
}
