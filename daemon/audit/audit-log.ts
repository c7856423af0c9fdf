import type { Caller } from '../access/principal.js';
import type { Logger } from '../log.js';
import { RackError } from '../rack-error.js';
import type { AuditEntry } from '../store/records.js';
import type { Store } from '../store/store.js';

export type AuditChange = Pick<AuditEntry, 'app' | 'action' | 'detail' | 'outcome'>;

/**
 * Records every change, from ssh or HTTP, with who made it and from where. Recording happens after
 * the change: a change already made is never undone because its record could not be written (that
 * is logged for the operator instead).
 */
export class AuditLog {
  constructor(
    private readonly store: Store,
    private readonly log: Logger,
  ) {}

  async record(caller: Caller, change: AuditChange): Promise<void> {
    try {
      await this.store.audit.append({
        time: new Date().toISOString(),
        actor: { kind: caller.principal.kind, name: caller.principal.name },
        via: caller.via,
        address: caller.address,
        ...change,
        app: change.app === null ? null : change.app.slice(0, 64),
        detail: change.detail.slice(0, 500),
      });
    } catch (err) {
      // A store that refuses changes was said once already; not again for each change it refuses.
      if (err instanceof RackError && err.code === 'store_failed') return;
      this.log.error({ err: String(err), action: change.action, app: change.app }, 'audit entry not written');
    }
  }

  /** What rack did of its own accord (a scheduled job's run that failed): `rack NAME` as the actor. */
  async recordByRack(name: string, change: AuditChange): Promise<void> {
    try {
      await this.store.audit.append({
        time: new Date().toISOString(),
        actor: { kind: 'rack', name },
        via: 'rack',
        address: '',
        ...change,
        detail: change.detail.slice(0, 500),
      });
    } catch (err) {
      if (err instanceof RackError && err.code === 'store_failed') return;
      this.log.error({ err: String(err), action: change.action, app: change.app }, 'audit entry not written');
    }
  }

  list(opts: { app?: string; limit: number }): Promise<AuditEntry[]> {
    return this.store.audit.list(opts);
  }
}
