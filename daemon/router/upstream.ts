/** One process serving an app over HTTP, as the router dials it. */
export interface Upstream {
  host: string;
  port: number;
}

/** Stable identity of an upstream: pools and in-flight counts are keyed by it. */
export function upstreamKey(u: Upstream): string {
  return `${u.host}:${u.port}`;
}

/** The origin undici wants; IPv6 literals need brackets there. */
export function upstreamOrigin(u: Upstream): string {
  const host = u.host.includes(':') && !u.host.startsWith('[') ? `[${u.host}]` : u.host;
  return `http://${host}:${u.port}`;
}
