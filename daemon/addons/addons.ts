import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { appEvents } from '../app-events.js';
import { AppLock } from '../app-lock.js';
import { isAppName } from '../app-name.js';
import type { Logger } from '../log.js';
import type { Pipeline } from '../pipeline.js';
import { RackError } from '../rack-error.js';
import type { DockerRuntime } from '../runtime/docker-runtime.js';
import { freePort } from '../runtime/docker-processes.js';
import { execOutput } from '../runtime/docker-services.js';
import type { AddonRecord, Attachment, ReleaseRecord } from '../store/records.js';
import type { Store } from '../store/store.js';
import type { UserOutput } from '../user-output.js';
import type { AddonImages } from './addon-images.js';
import { attachmentVars, KINDS, type KindSpec } from './addon-kinds.js';

/** How long a new service may take to accept connections (Postgres' initdb included). */
const READY_TIMEOUT_MS = 120_000;

export interface AttachedApp {
  app: string;
  alias: string;
  keys: string[];
}

/**
 * Backing services attached to apps as releases: create, attach, detach, destroy, and keeping each
 * service's container and networks as the records say (at start, and after every change). One
 * change at a time per add-on; attach and detach also take the app's deploy lock (in the pipeline).
 */
export class Addons {
  readonly lock = new AppLock();

  constructor(
    private readonly store: Store,
    private readonly runtime: DockerRuntime,
    private readonly pipeline: Pipeline,
    private readonly images: AddonImages,
    private readonly log: Logger,
  ) {}

  async require(name: string): Promise<AddonRecord> {
    const addon = isAppName(name) ? await this.store.addons.get(name) : undefined;
    if (!addon) throw new RackError('no_such_addon', `no add-on named ${JSON.stringify(name.slice(0, 40))} (addons lists them)`);
    return addon;
  }

  list(): Promise<AddonRecord[]> {
    return this.store.addons.list();
  }

  /** The apps the add-on is attached to now, from each app's current attachments. */
  async attachedApps(name: string): Promise<AttachedApp[]> {
    const out: AttachedApp[] = [];
    for (const app of await this.store.listApps()) {
      for (const a of await this.pipeline.currentAttachments(app.name)) {
        if (a.addon === name) out.push({ app: app.name, alias: a.alias, keys: a.keys });
      }
    }
    return out;
  }

  /** `addons:create`: a new service on a new volume, attached to `app` (a release). */
  async create(req: { kind: KindSpec; name: string | undefined; app: string; alias: string | undefined; createdBy: string }, out: UserOutput): Promise<AddonRecord> {
    const { kind } = req;
    await this.store.requireApp(req.app);
    const alias = req.alias ?? kind.defaultAlias;
    // Refused before anything is made; checked again inside the app's lock when attaching.
    await this.assertAliasFree(req.app, alias, kind);
    const name = req.name ?? (await this.freeName(`${req.app}-${kind.kind}`));
    const record: AddonRecord = {
      name,
      kind: kind.kind,
      version: kind.major,
      image: kind.image,
      createdFor: req.app,
      createdBy: req.createdBy,
      createdAt: new Date().toISOString(),
      ...(kind.kind === 'postgres' ? { user: 'app', database: 'app' } : {}),
      password: randomBytes(24).toString('hex'),
    };
    const swarm = this.runtime.swarmManager;
    // On a Swarm, processes on the workers reach it over the machines' network, with its password.
    if (swarm) record.published = { node: swarm.name, host: swarm.address, port: await freePort(swarm.address) };
    if (!(await this.store.addons.create(record))) throw new RackError('addon_exists', `an add-on named ${name} already exists; choose another with --as NAME`);
    return this.lock.run(name, async () => {
      try {
        out.header(`Creating ${name} (${kind.kind} ${kind.major}) for ${req.app}`);
        await this.images.ensure(kind, out);
        await this.startService(record, req.app, 'new', out);
        record.version = await this.serverVersion(name, kind);
        await this.store.addons.update(name, (r) => ({ ...r, version: record.version }));
      } catch (err) {
        // Nothing was attached and the volume is new and empty: the creation is undone whole. A
        // volume found there before (addon_exists) is not this creation's to remove.
        const foundVolume = err instanceof RackError && err.code === 'addon_exists';
        await this.runtime.services.removeService(name, { volume: !foundVolume }).catch(() => undefined);
        await this.store.addons.remove(name);
        throw err;
      }
      await this.store.addons.update(name, (r) => ({ ...r, ready: true }));
      try {
        await this.attachLocked(record, req.app, alias, req.createdBy, out);
      } catch (err) {
        const error = RackError.from(err);
        throw new RackError(error.code, `${name} was made but not attached: ${error.message}; addons:attach ${name} -a ${req.app} tries again`, { cause: err });
      }
      appEvents.emit({ kind: 'addon', app: req.app, action: 'create', actor: req.createdBy, data: { name, type: kind.kind, version: record.version, alias } });
      return record;
    });
  }

  /** `addons:attach`: the add-on's variables under ALIAS in a new release of `app`. */
  attach(req: { name: string; app: string; alias: string | undefined; createdBy: string }, out: UserOutput): Promise<void> {
    return this.lock.run(req.name, async () => {
      const addon = await this.require(req.name);
      await this.store.requireApp(req.app);
      const alias = req.alias ?? KINDS[addon.kind].defaultAlias;
      await this.assertAliasFree(req.app, alias, KINDS[addon.kind], addon.name);
      await this.attachLocked(addon, req.app, alias, req.createdBy, out);
    });
  }

  private async attachLocked(addon: AddonRecord, app: string, alias: string, createdBy: string, out: UserOutput): Promise<void> {
    const vars = attachmentVars(addon, alias);
    const keys = Object.keys(vars);
    out.header(`Attaching ${addon.name} to ${app} as ${alias}: ${keys.join(', ')}`);
    // The new processes must reach it before they are health-checked: join the app's network first.
    await this.runtime.services.connect(addon.name, await this.runtime.networks.ensure(app));
    try {
      const release = await this.pipeline.changeConfig(
        {
          app,
          keyName: createdBy,
          description: `Attach ${addon.name} as ${alias}`,
          deploy: true,
          apply: (config, attached) => {
            assertNoClash(config, attached, keys, addon.name, alias);
            return { ...config, ...vars };
          },
          attachments: (attached) => [...attached, { addon: addon.name, alias, keys }],
        },
        out,
      );
      await this.tellRelease(app, release, `Attached ${addon.name} as ${alias}`, out);
    } finally {
      await this.syncNetworksLogged(addon.name);
    }
  }

  /** `addons:detach`: a release of `app` without the add-on's variables; then it leaves the app's network. */
  detach(req: { name: string; app: string; createdBy: string }, out: UserOutput): Promise<void> {
    return this.lock.run(req.name, async () => {
      const addon = await this.require(req.name);
      await this.store.requireApp(req.app);
      const attachment = (await this.pipeline.currentAttachments(req.app)).find((a) => a.addon === addon.name);
      if (!attachment) throw new RackError('bad_argument', `${addon.name} is not attached to ${req.app}`);
      out.header(`Detaching ${addon.name} from ${req.app}: ${attachment.keys.join(', ')}`);
      try {
        const release = await this.pipeline.changeConfig(
          {
            app: req.app,
            keyName: req.createdBy,
            description: `Detach ${addon.name}`,
            deploy: true,
            apply: (config, attached) => {
              const mine = attached.find((a) => a.addon === addon.name);
              if (!mine) throw new RackError('bad_argument', `${addon.name} is not attached to ${req.app}`);
              const next = new Map(Object.entries(config));
              for (const key of mine.keys) next.delete(key);
              return Object.fromEntries(next);
            },
            attachments: (attached) => attached.filter((a) => a.addon !== addon.name),
          },
          out,
        );
        await this.tellRelease(req.app, release, `Detached ${addon.name}`, out);
      } finally {
        await this.syncNetworksLogged(addon.name);
      }
    });
  }

  /** After a change, whatever its outcome: a failure here is logged, never put in the change's place. */
  private async syncNetworksLogged(name: string): Promise<void> {
    await this.syncNetworks(name).catch((err: unknown) => this.log.error({ addon: name, err: String(err) }, 'could not match the add-on networks to its attachments'));
  }

  /**
   * `addons:destroy`: refused while attached; `finalBackup` runs first (its failure stops the
   * destroy), then the container and the volume go. A crash in between finishes at the next start.
   */
  destroy(name: string, finalBackup: (addon: AddonRecord) => Promise<void>, out: UserOutput): Promise<void> {
    return this.lock.run(name, async () => {
      const addon = await this.require(name);
      const attached = await this.attachedApps(name);
      if (attached.length > 0) {
        const where = attached.map((a) => `${a.app} (as ${a.alias})`).join(', ');
        throw new RackError('bad_argument', `${name} is attached to ${where}; detach it first: addons:detach ${name} -a ${attached[0]!.app}`);
      }
      await finalBackup(addon);
      await this.store.addons.update(name, (r) => ({ ...r, destroying: true }));
      out.header(`Removing ${name}'s container and volume ${this.runtime.services.volumeName(name)}`);
      await this.runtime.services.removeService(name, { volume: true });
      await this.store.addons.remove(name);
      // Told to the app it was made for: a detached add-on belongs to no app any more.
      appEvents.emit({ kind: 'addon', app: addon.createdFor, action: 'destroy', data: { name, type: addon.kind } });
    });
  }

  /**
   * Before an app is destroyed: its add-ons leave its network and are kept, detached (the app's
   * releases, which held the attachments, go with it). Returns the add-ons it had.
   */
  async forgetApp(app: string): Promise<{ name: string; stillAttached: string[] }[]> {
    const mine = (await this.pipeline.currentAttachments(app)).map((a) => a.addon);
    // No add-on locks here: the caller holds the app's deploy lock, which an attach or detach
    // takes inside its add-on's lock. Leaving a network is harmless to repeat.
    for (const addon of await this.list()) {
      await this.runtime.services.disconnect(addon.name, this.runtime.networks.name(app));
      // A later app of the same name is someone else's: the add-on is no longer its to take.
      if (addon.createdFor === app) await this.store.addons.update(addon.name, (r) => ({ ...r, createdFor: '' }));
    }
    const out: { name: string; stillAttached: string[] }[] = [];
    for (const name of mine) out.push({ name, stillAttached: (await this.attachedApps(name)).map((a) => a.app).filter((a) => a !== app) });
    return out;
  }

  /**
   * apps:rename, before the app's processes start under its new name: the add-ons its releases
   * (now under that name) attach join its new network; they stay on the old one for the processes
   * still serving there. Joining twice is skipped, so a rename finished at start may run it again.
   */
  async joinRenamed(app: string): Promise<void> {
    for (const { addon } of await this.pipeline.currentAttachments(app)) {
      const state = await this.runtime.services.state(addon);
      const network = await this.runtime.networks.ensure(app);
      if (state && !state.networks.includes(network)) await this.runtime.services.connect(addon, network);
    }
  }

  /** apps:rename, once the old name's processes are gone: every add-on leaves its network (harmless to repeat). */
  async leaveRenamed(oldName: string): Promise<void> {
    for (const addon of await this.list()) await this.runtime.services.disconnect(addon.name, this.runtime.networks.name(oldName));
  }

  /**
   * At start, before the supervisor adopts the apps: every add-on's container runs (made again on
   * its volume if it was removed by hand), on exactly the networks of the apps attached; a destroy
   * cut short is finished.
   */
  async reconcile(): Promise<void> {
    for (const addon of await this.list()) {
      try {
        await this.lock.run(addon.name, async () => {
          // A destroy cut short is finished; a creation cut short (never ready, so never attached)
          // is undone, its volume new and empty.
          if (addon.destroying || !addon.ready) {
            await this.runtime.services.removeService(addon.name, { volume: true });
            await this.store.addons.remove(addon.name);
            this.log.warn({ addon: addon.name }, addon.destroying ? 'finished a destroy cut short' : 'undid a creation cut short');
            return;
          }
          const state = await this.runtime.services.state(addon.name);
          if (!state) {
            const attached = await this.attachedApps(addon.name);
            const app = attached[0]?.app ?? (addon.createdFor || undefined);
            if (app === undefined) throw new RackError('addon_unavailable', `${addon.name}'s container is gone and no app is there to run it on`);
            // On its kept volume only: a volume gone too is reported, never replaced by an empty one.
            this.log.warn({ addon: addon.name }, 'add-on container missing: making it again on its volume');
            await this.startService(addon, app, 'existing', undefined);
          } else if (!state.running) {
            await this.runtime.services.ensureRunning(addon.name);
          }
          await this.syncNetworks(addon.name);
        });
      } catch (err) {
        this.log.error({ addon: addon.name, err: String(err) }, 'could not check the add-on');
      }
    }
  }

  /** Joins the networks of the apps attached and leaves every other. Runs under the add-on's lock. */
  async syncNetworks(name: string): Promise<void> {
    const state = await this.runtime.services.state(name);
    if (!state) return;
    const wanted = new Set<string>();
    for (const a of await this.attachedApps(name)) wanted.add(await this.runtime.networks.ensure(a.app));
    for (const network of state.networks) if (!wanted.has(network)) await this.runtime.services.disconnect(name, network);
    for (const network of wanted) if (!state.networks.includes(network)) await this.runtime.services.connect(name, network);
  }

  /** The container of `addon` on its volume, waited for until it takes connections. */
  private async startService(addon: AddonRecord, app: string, volume: 'new' | 'existing', out: UserOutput | undefined): Promise<void> {
    const network = await this.runtime.networks.ensure(app);
    const env: Record<string, string> = { RACK_ADDON_PASSWORD: addon.password };
    if (addon.user) env['RACK_ADDON_USER'] = addon.user;
    if (addon.database) env['RACK_ADDON_DATABASE'] = addon.database;
    const started = Date.now();
    const where = addon.published
      ? `published on ${addon.published.host}:${addon.published.port} for the Swarm's workers, password required`
      : 'never published on the host';
    out?.header(`Starting ${addon.kind} on volume ${this.runtime.services.volumeName(addon.name)} (${where})`);
    const publish = addon.published ? { host: addon.published.host, port: addon.published.port, target: KINDS[addon.kind].port } : undefined;
    await this.runtime.services.create({ name: addon.name, image: addon.image, env, network, healthCommand: ['rack-addon-health'], ...(publish ? { publish } : {}) }, volume);
    await this.waitReady(addon.name);
    out?.detail(`accepting connections after ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }

  /** Polls the service's own health command: faster than Docker's healthcheck interval. */
  async waitReady(name: string, timeoutMs = READY_TIMEOUT_MS): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const code = await this.runtime.services.exec(name, ['rack-addon-health'], { stdout: discard() }).catch(() => -1);
      if (code === 0) return;
      const state = await this.runtime.services.state(name);
      if (state && !state.running && state.restartCount > 2) {
        throw new RackError('addon_failed', `${name} keeps exiting; the operator's docker logs of it say why`);
      }
      if (Date.now() > deadline) throw new RackError('addon_failed', `${name} did not accept connections within ${timeoutMs / 1000} s`);
      await sleep(200);
    }
  }

  private async serverVersion(name: string, kind: KindSpec): Promise<string> {
    const version = await execOutput(this.runtime.services, name, ['rack-addon-version']);
    return version !== null && /^[0-9][0-9.]{0,20}$/.test(version) ? version : kind.major;
  }

  private async assertAliasFree(app: string, alias: string, kind: KindSpec, addon?: string): Promise<void> {
    const attached = await this.pipeline.currentAttachments(app);
    if (addon !== undefined && attached.some((a) => a.addon === addon)) {
      throw new RackError('bad_argument', `${addon} is already attached to ${app}`);
    }
    const keys = Object.keys(attachmentVars({ kind: kind.kind, name: 'x', password: '', user: '', database: '' } as AddonRecord, alias));
    assertNoClash(await this.pipeline.currentConfig(app), attached, keys, addon ?? 'the new add-on', alias);
  }

  /** `APP-postgres`, or `APP-postgres-2`, ... when taken; always a valid name. */
  private async freeName(base: string): Promise<string> {
    const trimmed = base.slice(0, 27).replace(/-+$/, '');
    for (let n = 1; n < 100; n++) {
      const name = n === 1 ? trimmed : `${trimmed}-${n}`;
      if (isAppName(name) && !(await this.store.addons.get(name))) return name;
    }
    throw new RackError('addon_exists', `no free add-on name like ${trimmed}; name it with --as NAME`);
  }

  private async tellRelease(app: string, release: ReleaseRecord | null, words: string, out: UserOutput): Promise<void> {
    if (!release) return out.header(`${words}: kept for ${app}'s first deploy`);
    const final = (await this.store.getRelease(app, release.version)) ?? release;
    out.header(`${words}: released v${final.version}`);
  }
}

/** Refuses an alias whose keys the app's config already has, from an add-on or set by hand. */
function assertNoClash(config: Record<string, string>, attached: Attachment[], keys: string[], addon: string, alias: string): void {
  for (const a of attached) {
    if (a.alias === alias) throw new RackError('bad_argument', `${alias} is already the alias of add-on ${a.addon}; attach ${addon} with --as ANOTHER_NAME`);
  }
  for (const key of keys) {
    const owner = attached.find((a) => a.keys.includes(key));
    if (owner) throw new RackError('bad_argument', `${key} is already set by add-on ${owner.addon}; attach ${addon} with --as ANOTHER_NAME`);
    if (Object.hasOwn(config, key)) {
      throw new RackError('bad_argument', `${key} is already in the config (set by hand); unset it first or attach ${addon} with --as ANOTHER_NAME`);
    }
  }
}

function discard(): Writable {
  return new Writable({ write: (_chunk, _enc, done) => done() });
}
