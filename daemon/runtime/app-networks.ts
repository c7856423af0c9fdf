import { createHash } from 'node:crypto';
import type Docker from 'dockerode';
import PQueue from 'p-queue';
import { RackError } from '../rack-error.js';
import { freeSlice } from './subnets.js';
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
  private readonly creating = new PQueue({ concurrency: 1 });

  constructor(
    private readonly docker: Docker,
    private readonly owner: Owner,
    /** The range app subnets are sliced from (RACK_APP_SUBNETS). */
    private readonly pool: string,
  ) {}

  name(app: string): string {
    return `rack-${this.owner.instance}-${app}`;
  }

  /** The app's network, made on first use. Concurrent callers share one creation. */
  ensure(app: string): Promise<string> {
    return this.once(app, () => this.create(app));
  }

  /** One making of a network at a time per key; concurrent callers share it. */
  private once(key: string, make: () => Promise<string>): Promise<string> {
    let made = this.pending.get(key);
    if (!made) {
      made = make().finally(() => this.pending.delete(key));
      this.pending.set(key, made);
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
    // One creation at a time in this daemon; another daemon on the engine may still take the same
    // slice first, which Docker refuses as an overlap: then the next free slice is tried.
    return this.creating.add(async () => {
      const tried = new Set<string>();
      for (;;) {
        const used = (await this.docker.listNetworks()).flatMap((n) => (n.IPAM?.Config ?? []).map((c) => c.Subnet ?? ''));
        const subnet = freeSlice(this.pool, used, tried);
        if (subnet === undefined) {
          throw new RackError('internal', `no free subnet left in ${this.pool} for ${app}'s network (RACK_APP_SUBNETS)`);
        }
        tried.add(subnet);
        try {
          await this.docker.createNetwork({
            Name: name,
            Driver: 'bridge',
            CheckDuplicate: true,
            Labels: this.owner.labels({ [LABEL.app]: app, [LABEL.role]: 'network' }),
            // Linux caps interface names at 15 bytes: a hash keeps each app's bridge name unique and short.
            Options: { 'com.docker.network.bridge.name': BRIDGE_PREFIX + createHash('sha256').update(name).digest('hex').slice(0, 12) },
            IPAM: { Driver: 'default', Config: [{ Subnet: subnet }] },
          });
          return name;
        } catch (err) {
          const { statusCode, message } = err as { statusCode?: number; message?: string };
          if (statusCode === 409) return name; // made meanwhile by another call
          if (/overlap/i.test(message ?? '') && tried.size < 64) continue;
          throw err;
        }
      }
    }) as Promise<string>;
  }

  /**
   * On a Swarm, the app's processes share a swarm-scoped overlay network of their own instead:
   * tasks of two apps on one node are on different networks, and the node's docker_gwbridge they
   * also sit on (for egress and host-mode ports) has inter-container traffic off. rack never routes
   * through the overlay itself: the router reaches each task at its node's address.
   */
  ensureSwarm(app: string): Promise<string> {
    return this.once(`swarm:${app}`, () => this.createSwarm(app));
  }

  private async createSwarm(app: string): Promise<string> {
    const name = `${this.name(app)}-swarm`;
    try {
      await this.docker.getNetwork(name).inspect();
      return name;
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode !== 404) throw err;
    }
    try {
      await this.docker.createNetwork({
        Name: name,
        Driver: 'overlay',
        CheckDuplicate: true,
        Attachable: false,
        Labels: this.owner.labels({ [LABEL.app]: app, [LABEL.role]: 'network' }),
      });
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode !== 409) throw err;
    }
    return name;
  }

  /**
   * Removes the app's networks (after its containers and services are gone). Swarm stops a removed
   * service's tasks in the background: its overlay is in use until they have, so that one is tried
   * again for a while.
   */
  async remove(app: string): Promise<void> {
    for (const name of [this.name(app), `${this.name(app)}-swarm`]) {
      const deadline = Date.now() + 30_000;
      for (;;) {
        try {
          await this.docker.getNetwork(name).remove();
          break;
        } catch (err) {
          const { statusCode, message } = err as { statusCode?: number; message?: string };
          if (statusCode === 404) break;
          if (!/in use|active endpoints/i.test(message ?? '') || Date.now() > deadline) throw err;
          await new Promise((r) => setTimeout(r, 250));
        }
      }
    }
  }

  /** Apps that have a network of this rack. */
  async apps(): Promise<string[]> {
    const list = await this.docker.listNetworks({
      filters: { label: [`${LABEL.managed}=true`, `${LABEL.instance}=${this.owner.instance}`, `${LABEL.role}=network`] },
    });
    return [...new Set(list.map((n) => n.Labels?.[LABEL.app] ?? '').filter((a) => a !== ''))];
  }
}
