import type { Upstream } from './upstream.js';

/**
 * What the supervisor needs of a router: the in-process `Router` and the `RouterClient` of the
 * router process both fit, so the deploy code can be typed against this and tests may use either.
 */
export interface RouteControl {
  setApp(app: string, hosts: string[], upstreams: Upstream[]): void;
  removeApp(app: string): void;
  waitIdle(upstreams: Upstream[], timeoutMs: number): Promise<boolean>;
  inFlight(upstream: Upstream): number | Promise<number>;
}
