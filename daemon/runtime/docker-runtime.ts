import Docker from 'dockerode';
import { RackError } from '../rack-error.js';
import { AppNetworks } from './app-networks.js';
import { ownedContainers, removeContainer, type ContainerRole, type OwnedContainer } from './containers.js';
import type { DiskLimit } from './disk-limit.js';
import { DockerImages } from './docker-images.js';
import { DockerProcesses, type ProcessDriver, type ProcessInfo, type ProcessSpec } from './docker-processes.js';
import { DockerServices } from './docker-services.js';
import { DockerTasks } from './docker-tasks.js';
import { owner, type Owner } from './owner.js';
import { RegistryImages, type RegistryOptions } from './registry-images.js';
import type { Runtime } from './runtime.js';
import { SwarmNodes } from './swarm-nodes.js';
import { SwarmProcesses } from './swarm-processes.js';

export type { ProcessInfo, ProcessSpec } from './docker-processes.js';

/**
 * A Docker call that is not a stream (create, start, inspect, list, remove, stop...) gives up
 * after this long: a dockerd that accepts and never answers must not hold an app's lock forever.
 * Streams (attach, logs, wait, build, commit, archives) go through a client without it.
 */
const CALL_TIMEOUT_MS = 60_000;
const PING_TIMEOUT_MS = 10_000;
export const DEFAULT_APP_SUBNETS = '10.213.0.0/16';

/**
 * The Docker driver, composed of its parts: processes, one-off tasks, images, app networks,
 * add-on services and the Swarm's nodes.
 * It is the only code that imports dockerode; everything above speaks in processes, builds and
 * images, so a Swarm driver can slot in behind the same methods.
 */
export class DockerRuntime implements Runtime {
  private readonly calls: Docker;
  private readonly owner: Owner;
  readonly processes: ProcessDriver;
  readonly tasks: DockerTasks;
  readonly images: DockerImages;
  readonly networks: AppNetworks;
  readonly services: DockerServices;
  readonly nodes: SwarmNodes;
  /** The swarm runtime's registry; absent on one machine. */
  readonly registry: RegistryImages | undefined;

  /**
   * @param instance this daemon's ID (kept in RACK_HOME): two rackds on one engine never see,
   * adopt or remove each other's containers.
   * @param disk the writable-space limit of every tenant container here (none when absent:
   * RACK_DISK_LIMIT=off); a Swarm's workers are other engines, so its processes go without.
   */
  constructor(instance: string, subnets = DEFAULT_APP_SUBNETS, swarm?: RegistryOptions, readonly disk?: DiskLimit) {
    this.owner = owner(instance);
    this.calls = new Docker({ timeout: CALL_TIMEOUT_MS });
    const streams = new Docker();
    this.registry = swarm ? new RegistryImages(this.calls, streams, this.owner, swarm) : undefined;
    this.processes = this.registry
      ? new SwarmProcesses(this.calls, this.owner, streams, this.registry)
      : new DockerProcesses(this.calls, this.owner, streams, disk);
    this.tasks = new DockerTasks(streams, this.owner, disk);
    this.images = new DockerImages(this.calls, this.owner);
    this.networks = new AppNetworks(this.calls, this.owner, subnets);
    // Execs stream (backups), so they go through the client without the call timeout.
    this.services = new DockerServices(streams, this.owner);
    this.nodes = new SwarmNodes(this.calls, this.owner, this.registry);
  }

  get instance(): string {
    return this.owner.instance;
  }

  /** On a Swarm: the manager's (this engine's) host name and its address on the machines' network. */
  swarmManager: { name: string; address: string } | undefined;

  /** Whether app processes run as services on a Swarm's workers (RACK_RUNTIME=swarm). */
  get swarm(): boolean {
    return this.registry !== undefined;
  }

  /**
   * RACK_RUNTIME=swarm: the engine must manage an active Swarm; the registry its nodes pull from
   * is started (made on first use) at the manager's Swarm address.
   */
  async startSwarm(): Promise<void> {
    if (!this.registry) return;
    const info = (await this.calls.info()) as { Name?: string; Swarm?: { LocalNodeState?: string; ControlAvailable?: boolean; NodeAddr?: string } };
    if (info.Swarm?.LocalNodeState !== 'active' || info.Swarm.ControlAvailable !== true || !info.Swarm.NodeAddr) {
      throw new RackError('bad_config', 'RACK_RUNTIME=swarm needs a Docker engine that manages a Swarm: run `docker swarm init --advertise-addr ADDRESS` first (docs/SWARM.md)');
    }
    await this.registry.start(info.Swarm.NodeAddr);
    this.swarmManager = { name: info.Name ?? 'manager', address: info.Swarm.NodeAddr };
  }

  /**
   * `rack/APP:bN-INSTANCE`: the build number says which build, the instance whose it is, so two
   * rackds on one engine never tag (or run) each other's images.
   */
  imageName(app: string, build: number): { repo: string; tag: string } {
    return { repo: `rack/${app}`, tag: `b${build}-${this.owner.instance}` };
  }

  /**
   * `rack/APP:pSOURCE-vN-INSTANCE`: another app's release image, promoted to this one. Under the
   * target's own name, so its retention keeps it and the source's pruning only untags its own name.
   */
  promotedImageName(app: string, source: string, release: number): { repo: string; tag: string } {
    return { repo: `rack/${app}`, tag: `p${source}-v${release}-${this.owner.instance}` };
  }

  /** `rack/APP:deps-KEY-INSTANCE`: an app's dependencies on the run image, reused while KEY holds. */
  layerImageName(app: string, key: string): { repo: string; tag: string } {
    return { repo: `rack/${app}`, tag: `deps-${key.slice(0, 16)}-${this.owner.instance}` };
  }

  /**
   * A build's cache folder under the disk limit, for the build's length (disk-limit.ts); as it is
   * without one. Resolves with the unmount.
   */
  async mountBuildCache(dir: string, keep: boolean): Promise<() => Promise<void>> {
    return this.disk ? this.disk.mountCache(dir, keep) : async () => undefined;
  }

  /** Fails when this engine's containers cannot get the disk limit (disk-limit.ts). */
  async checkDiskLimit(): Promise<void> {
    await this.disk?.check(this.calls);
  }

  async ping(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${PING_TIMEOUT_MS / 1000} s`)), PING_TIMEOUT_MS);
    });
    try {
      await Promise.race([this.calls.ping(), timeout]);
    } catch (err) {
      throw new RackError('docker_unavailable', `no Docker engine answers (is dockerd running? is DOCKER_HOST right?): ${(err as Error).message}`, {
        cause: err,
      });
    } finally {
      clearTimeout(timer);
    }
  }

  // The methods the rest of rack calls, each handed to the part that holds it.
  imageExists = (ref: string) => this.images.exists(ref);
  listAppImages = (app: string) => this.images.listWithParents(app);
  imageAncestry = (ref: string) => this.images.ancestry(ref);
  imageIds = (ref: string) => this.images.idsOf(ref);
  tagImage = (ref: string, name: { repo: string; tag: string }) => this.images.tag(ref, name.repo, name.tag);
  removeImage = async (ref: string, force?: boolean) => {
    await this.registry?.forget(ref);
    return this.images.remove(ref, force);
  };

  startProcesses = (specs: ProcessSpec[]) => this.processes.startAll(specs);
  inspectProcess = (id: string) => this.processes.inspect(id);
  listProcesses = (app?: string): Promise<ProcessInfo[]> => this.processes.list(app);
  stopProcess = (id: string, graceSeconds: number) => this.processes.stop(id, graceSeconds);
  removeProcess = (id: string) => this.processes.remove(id);
  /** The network an app's processes join: its bridge here, its overlay on a Swarm. */
  processNetwork = (app: string) => (this.swarm ? this.networks.ensureSwarm(app) : this.networks.ensure(app));
  /** Where web processes answer now, for a driver whose processes move (a Swarm's); absent here. */
  get endpoints(): ((ids: string[]) => Promise<Map<string, { host: string; port: number } | null>>) | undefined {
    const driver = this.processes;
    return driver.endpoints ? (ids) => driver.endpoints!(ids) : undefined;
  }
  followLogs: DockerProcesses['followLogs'] = (...args) => this.processes.followLogs(...args);
  processLogs = (id: string, tail: number) => this.processes.logs(id, tail);

  runTask: DockerTasks['runTask'] = (spec) => this.tasks.runTask(spec);
  runInteractive: DockerTasks['runInteractive'] = (spec) => this.tasks.runInteractive(spec);
  buildImage: DockerTasks['buildImage'] = (spec) => this.tasks.buildImage(spec);
  readFiles: DockerTasks['readFiles'] = (id, dir) => this.tasks.readFiles(id, dir);
  commitOnto: DockerTasks['commitOnto'] = (...args) => this.tasks.commitOnto(...args);

  removeContainer = (id: string) => removeContainer(this.calls, id);

  /**
   * Everything of one app on the engine, found by label: its processes and one-off, build and
   * release-phase containers, its images (even those a leftover container still uses) and its
   * network. A recreated app of the same name then starts from nothing of the old one's.
   */
  async removeApp(app: string): Promise<void> {
    for (const p of await this.processes.list(app)) await this.processes.remove(p.id);
    for (const c of await this.ownedContainers({ app })) await this.removeContainer(c.id);
    // Children first: a dependency layer goes once no app image stands on it any more.
    const images = await this.images.listWithParents(app);
    const parents = new Set(images.map((i) => i.parent));
    const ordered = [...images.filter((i) => !parents.has(i.id)), ...images.filter((i) => parents.has(i.id))];
    for (const image of ordered) {
      await this.registry?.forget(image.tag);
      await this.images.remove(image.tag, true);
    }
    await this.networks.remove(app);
  }

  /** Containers this rack made, by label: what clean-up at start and apps:destroy work from. */
  ownedContainers(opts: { app?: string; roles?: ContainerRole[] } = {}): Promise<OwnedContainer[]> {
    return ownedContainers(this.calls, this.owner, opts);
  }
}
