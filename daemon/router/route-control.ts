import type { HttpsPolicy } from './route-table.js';
import type { Upstream } from './upstream.js';

/**
 * What the supervisor needs of a router: the `RouterClient` of the router process fits it. A table
 * change resolves once the router has saved and applied it and rejects (`router_failed`) when it
 * has not, so a deploy knows whether its switch happened. (The in-process `Router` is the table the
 * router process runs: its changes are synchronous and never fail, and it does not implement this.)
 */
export interface RouteControl {
  setApp(app: string, hosts: string[], upstreams: Upstream[], https?: HttpsPolicy): Promise<void>;
  removeApp(app: string): Promise<void>;
  waitIdle(upstreams: Upstream[], timeoutMs: number): Promise<boolean>;
  inFlight(upstream: Upstream): Promise<number>;
}
