import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { isInternalAddress } from '../build/fetch-destination.js';
import { RackError } from '../rack-error.js';

/**
 * Where rackd sends an app's logs or events: a URL a tenant gave. The connection leaves from the
 * host, so the tenant rules of remote buildpacks hold (build/fetch-destination.ts): every address
 * the name has must be public unless the host is named in RACK_FETCH_ALLOW, and the connection goes
 * to the address checked, resolved again for each connection (a name may move) but never twice for
 * one (DNS rebinding).
 *
 * Schemes: `https://` and, as Heroku accepts them, `http://` (the receiver's choice; the log lines
 * then cross the network in clear), `syslog+tls://HOST:PORT` and `syslog://HOST:PORT`.
 */
export type DrainScheme = 'https' | 'http' | 'syslog+tls' | 'syslog';

export interface Destination {
  scheme: DrainScheme;
  url: URL;
  /** The host name as written (no brackets), for SNI, the certificate check and `Host`. */
  host: string;
  port: number;
}

const SCHEMES: Record<string, DrainScheme> = { 'https:': 'https', 'http:': 'http', 'syslog+tls:': 'syslog+tls', 'syslog:': 'syslog' };
const DEFAULT_PORT: Partial<Record<DrainScheme, number>> = { https: 443, http: 80 };

/** The checks that need no network: scheme, host, port, length. `schemes` narrows (webhooks: HTTP only). */
export function parseDestination(raw: string, schemes: readonly DrainScheme[] = ['https', 'http', 'syslog+tls', 'syslog']): Destination {
  const shown = JSON.stringify(raw.slice(0, 80));
  if (raw.length > 2048) throw new RackError('bad_argument', 'the URL is over 2048 characters');
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new RackError('bad_argument', `${shown} is not a URL; try https://HOST/PATH or syslog+tls://HOST:PORT`);
  }
  const scheme = SCHEMES[url.protocol];
  if (scheme === undefined || !schemes.includes(scheme)) {
    throw new RackError('bad_argument', `${shown}: the scheme must be ${schemes.map((s) => `${s}://`).join(', ')}`);
  }
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  if (host === '') throw new RackError('bad_argument', `${shown} names no host`);
  const port = url.port === '' ? DEFAULT_PORT[scheme] : Number(url.port);
  if (port === undefined) throw new RackError('bad_argument', `${shown}: a syslog drain needs a port (syslog+tls://HOST:PORT)`);
  if (scheme.startsWith('syslog') && (url.pathname !== '' || url.search !== '' || url.username !== '')) {
    throw new RackError('bad_argument', `${shown}: a syslog drain is only HOST:PORT`);
  }
  return { scheme, url, host, port };
}

/** The address to connect to, checked against the tenant rules; throws a RackError saying why not. */
export async function resolveDestination(dest: Pick<Destination, 'host'>, allow: readonly string[]): Promise<string> {
  let addresses: string[];
  try {
    addresses = isIP(dest.host) !== 0 ? [dest.host] : (await lookup(dest.host, { all: true })).map((a) => a.address);
  } catch (err) {
    throw new RackError('bad_argument', `${dest.host} does not resolve`, { cause: err });
  }
  if (addresses.length === 0) throw new RackError('bad_argument', `${dest.host} does not resolve`);
  if (!allow.includes(dest.host.toLowerCase()) && addresses.some(isInternalAddress)) {
    throw new RackError('forbidden', `${dest.host} is a loopback, private or reserved address, which rack sends nothing to (RACK_FETCH_ALLOW lists exceptions)`);
  }
  return addresses.find((a) => isIP(a) === 4) ?? addresses[0]!;
}

/** The URL as `drains` and `webhooks` show it: a password in it is not shown again. */
export function shownUrl(raw: string): string {
  try {
    const url = new URL(raw);
    if (url.password !== '') url.password = '***';
    return url.href;
  } catch {
    return raw;
  }
}
