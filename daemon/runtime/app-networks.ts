import { createHash } from 'node:crypto';
import type Docker from 'dockerode';
import { LABEL } from './labels.js';
import type { Owner } from './owner.js';

/** Bridge interfaces of app networks all start with this; the host guard matches `rk+`. */
export const BRIDGE_PREFIX = 'rk';

/**
 * One Docker network per app: its processes, one-off runs, release phase and builds join it and
 * nothing else. Docker drops traffic between two user-defined bridges, so app A cannot reach app
 * B's containers; the host guard (host-guard.ts) keeps them off the host's own ports.
 */
export class AppNetworks {
  private readonly pending = new Map<string, Promise<string>>();

  constructor(
    private readonly docker: Docker,
    private readonly owner: Owner,
  ) {}

  name(app: string): string {
    return `rack-${this.owner.instance}-${app}`;
  }

  /** The app's network, made on first use. Concurrent callers share one creation. */
  ensure(app: string): Promise<string> {
    let made = this.pending.get(app);
    if (!made) {
      made = this.create(app).finally(() => this.pending.delete(app));
      this.pending.set(app, made);
    }
    return made;
  }

  private async create(app: string): Promise<string> {
    const name = this.name(app);
    try {
      await this.docker.getNetwork(name).inspect();
      return name;
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode !== 404) throw err;
    }
    // Linux caps interface names at 15 bytes: a hash keeps each app's bridge name unique and short.
    const bridge = BRIDGE_PREFIX + createHash('sha256').update(name).digest('hex').slice(0, 12);
    try {
      await this.docker.createNetwork({
        Name: name,
        Driver: 'bridge',
        CheckDuplicate: true,
        Labels: this.owner.labels({ [LABEL.app]: app, [LABEL.role]: 'network' }),
        Options: { 'com.docker.network.bridge.name': bridge },
      });
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode !== 409) throw err; // made meanwhile by another call
    }
    return name;
  }

  /** Removes the app's network (after its containers are gone). */
  async remove(app: string): Promise<void> {
    try {
      await this.docker.getNetwork(this.name(app)).remove();
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode !== 404) throw err;
    }
  }

  /** Apps that have a network of this rack. */
  async apps(): Promise<string[]> {
    const list = await this.docker.listNetworks({
      filters: { label: [`${LABEL.managed}=true`, `${LABEL.instance}=${this.owner.instance}`, `${LABEL.role}=network`] },
    });
    return list.map((n) => n.Labels?.[LABEL.app] ?? '').filter((a) => a !== '');
  }
}
