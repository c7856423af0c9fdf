import type { AppRoute } from '../../daemon/router/router.js';
import { upstreamKey, type Upstream } from '../../daemon/router/upstream.js';
import type { RouterTable } from '../../daemon/supervisor/router-publisher.js';

/**
 * The router's table in memory: what the supervisor told it, in order, so a test can say where
 * the router pointed and when. `journal` is shared with the fake runtime for orderings.
 */
export class FakeRouter implements RouterTable {
  readonly table = new Map<string, AppRoute>();
  /** Each app's upstream sets as set, in order (`host:port` keys). */
  readonly history = new Map<string, string[][]>();
  /** setApp() rejects while set. */
  failSetApp: Error | undefined;

  constructor(readonly journal: string[] = []) {}

  async setApp(app: string, hosts: string[], upstreams: Upstream[]): Promise<void> {
    if (this.failSetApp) throw this.failSetApp;
    const keys = upstreams.map(upstreamKey);
    this.journal.push(`route ${app} [${keys.join(' ')}]`);
    this.table.set(app, { app, hosts: [...hosts], upstreams: [...upstreams] });
    this.history.set(app, [...(this.history.get(app) ?? []), keys]);
  }

  async removeApp(app: string): Promise<void> {
    this.journal.push(`unroute ${app}`);
    this.table.delete(app);
  }

  async routes(): Promise<AppRoute[]> {
    return [...this.table.values()];
  }

  async waitIdle(): Promise<boolean> {
    return true;
  }

  /** Where the app's requests go now (`host:port` keys). */
  upstreams(app: string): string[] {
    return (this.table.get(app)?.upstreams ?? []).map(upstreamKey);
  }
}
