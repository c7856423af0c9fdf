import { isIPv6 } from 'node:net';
import { RackError } from './rack-error.js';

const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
/**
 * A last label browsers read as a number (decimal, octal with a leading 0, or 0x hex, even a bare
 * `0x`): the WHATWG URL parser then takes the whole host as an IPv4 address, so `127.1`,
 * `0x7f.0.0.1` and `foo.0x10` all name an address, not a host.
 */
const NUMERIC_LABEL = /^(\d+|0x[0-9a-f]*)$/;

/** Whether a host is, or a browser would read it as, an IP address (v4 in any of its forms, or v6). */
export function isIpLiteral(host: string): boolean {
  const bare = host.toLowerCase().replace(/\.$/, '');
  if (bare.startsWith('[') || bare.includes(':')) return isIPv6(bare.replace(/^\[(.*)\]$/, '$1'));
  return NUMERIC_LABEL.test(bare.split('.').pop() ?? '');
}

/**
 * A DNS name of at least two labels, lower-cased, without the absolute-name dot. An IP address is
 * refused on its own line: it is nobody's to claim (and 127.0.0.1 reaches rack itself).
 */
export function parseHostName(raw: string): string {
  const host = raw.toLowerCase().replace(/\.$/, '');
  const shown = JSON.stringify(raw.slice(0, 60));
  if (isIpLiteral(host)) throw new RackError('domain_reserved', `${shown} is an IP address: give a host name, such as www.example.com`);
  const labels = host.split('.');
  if (host.length > 253 || labels.length < 2 || !labels.every((l) => LABEL.test(l))) {
    throw new RackError('bad_argument', `invalid host name ${shown}: expected something like www.example.com`);
  }
  return host;
}
