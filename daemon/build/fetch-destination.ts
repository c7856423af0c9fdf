import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';
import { RackError } from '../rack-error.js';

/**
 * Where the host may fetch on a tenant's behalf (a buildpack's git URL). The fetch runs from the
 * host's own network, so an address only the host can reach (its loopback, a link-local metadata
 * service, the private networks it sits on) would hand a tenant a request from the host, and the
 * different errors of a closed and an open port a scan of them. The name is resolved once, every
 * address it has must be public (or the host named in RACK_FETCH_ALLOW), and git is pinned to the
 * address checked: no second lookup (DNS rebinding), no redirects.
 */

// One list per family: a BlockList checks an IPv4 address against IPv6 rules too, as ::ffff:a.b.c.d.
const INTERNAL_V4 = new BlockList();
const INTERNAL_V6 = new BlockList();
for (const [net, bits] of [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12],
  ['192.0.0.0', 24], ['192.0.2.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['198.51.100.0', 24], ['203.0.113.0', 24],
  ['224.0.0.0', 4], ['240.0.0.0', 4],
] as const) INTERNAL_V4.addSubnet(net, bits, 'ipv4');
for (const [net, bits] of [
  ['::', 128], ['::1', 128], ['::ffff:0:0', 96], ['64:ff9b::', 96], ['100::', 64], ['2001:db8::', 32], ['2002::', 16],
  ['fc00::', 7], ['fe80::', 10], ['fec0::', 10], ['ff00::', 8],
] as const) INTERNAL_V6.addSubnet(net, bits, 'ipv6');

/** True for an address only the host (or its networks) can reach: loopback, link-local, private, reserved. */
export function isInternalAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 0) return true;
  return family === 4 ? INTERNAL_V4.check(address, 'ipv4') : INTERNAL_V6.check(address, 'ipv6');
}

export interface PinnedFetch {
  /** The URL to hand git: normalised, so git's reading of the host is the one checked here. */
  url: string;
  /** git `-c` settings that pin the connection to the checked address and refuse redirects. */
  gitConfig: string[];
}

const DEFAULT_PORT: Record<string, number> = { 'http:': 80, 'https:': 443, 'git:': 9418 };

/**
 * Resolves and checks a remote buildpack URL. `refused` is the one error for every failure, so a
 * refused address and an unreachable one look the same to the tenant.
 */
export async function pinFetch(raw: string, allow: readonly string[], refused: () => RackError): Promise<PinnedFetch> {
  let url: URL;
  try {
    url = new URL(raw);
  } catch (err) {
    throw new RackError('build_failed', refused().message, { cause: err });
  }
  const port = url.port === '' ? DEFAULT_PORT[url.protocol] : Number(url.port);
  if (port === undefined || url.hostname === '') throw refused();
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  let addresses: string[];
  try {
    addresses = (await lookup(host, { all: true })).map((a) => a.address);
  } catch (err) {
    throw new RackError('build_failed', refused().message, { cause: err });
  }
  if (addresses.length === 0) throw refused();
  if (!allow.includes(host.toLowerCase()) && addresses.some(isInternalAddress)) {
    throw new RackError('build_failed', refused().message, { cause: new Error(`${host} resolves to an internal address (${addresses.join(', ')})`) });
  }
  const address = addresses.find((a) => isIP(a) === 4) ?? addresses[0]!;
  const literal = isIP(address) === 6 ? `[${address}]` : address;
  const config = ['-c', 'http.followRedirects=false'];
  if (url.protocol === 'git:') {
    // git's own protocol has no resolve option: it is given the address itself.
    url.hostname = literal;
    return { url: url.href, gitConfig: config };
  }
  if (isIP(host) !== 0) return { url: url.href, gitConfig: config };
  return { url: url.href, gitConfig: [...config, '-c', `http.curloptResolve=${url.hostname}:${port}:${literal}`] };
}
