/**
 * One process serving over HTTP, as the router dials it: an app's web process at an address, or
 * rackd's own listener on its Unix socket (the control plane, routed as the reserved app `rack`).
 */
export type Upstream = { host: string; port: number } | { socketPath: string };

/** Keys made so far: the table's upstreams live as long as their route, and each request asks twice. */
const keys = new WeakMap<Upstream, string>();

/** Stable identity of an upstream: pools and in-flight counts are keyed by it. */
export function upstreamKey(u: Upstream): string {
  let key = keys.get(u);
  if (key === undefined) {
    key = 'socketPath' in u ? `unix:${u.socketPath}` : `${u.host}:${u.port}`;
    keys.set(u, key);
  }
  return key;
}

/** A copy holding only an upstream's own fields. */
export function copyUpstream(u: Upstream): Upstream {
  return 'socketPath' in u ? { socketPath: u.socketPath } : { host: u.host, port: u.port };
}

/** The app name the control plane is routed under: reserved, so no app can take it. */
export const CONTROL_PLANE_APP = 'rack';
