import type Docker from 'dockerode';
import { RackError } from '../rack-error.js';
import { LABEL } from './labels.js';
import type { Owner } from './owner.js';
import type { RegistryImages } from './registry-images.js';

/** One machine rack can place processes on. */
export interface NodeInfo {
  id: string;
  name: string;
  /** The address other machines reach it at (Swarm's advertised address). */
  address: string;
  /** ready, down, unknown...: Swarm's word, or `ready` for the one machine of a single-machine rack. */
  state: string;
  /** active, drain, pause. */
  availability: string;
  /** manager or worker; `local` when rack runs on one machine. */
  role: string;
  /** rack's processes running there now. */
  processes: number;
  memoryBytes: number;
  /** The machine rackd itself runs on. */
  self: boolean;
}

/** How long nodes:drain and nodes:remove wait for a node's processes to be running elsewhere. */
const MOVE_TIMEOUT_MS = 120_000;
const POLL_MS = 250;
const NODE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

interface SwarmState {
  active: boolean;
  manager: boolean;
  nodeId: string;
}

/**
 * The machines of a rack. One machine needs nothing: it is the only node. When the engine rackd
 * drives is a Swarm manager, the Swarm's nodes are rack's nodes, and this is where rack joins,
 * drains and removes them. Swarm only places and restarts containers; what runs where stays rack's.
 */
export class SwarmNodes {
  /** `registry`: the swarm runtime's (RACK_RUNTIME=swarm); without it rack runs on one machine. */
  constructor(
    private readonly docker: Docker,
    private readonly owner: Owner,
    private readonly registry: RegistryImages | undefined,
  ) {}

  async #swarm(): Promise<SwarmState> {
    if (this.registry === undefined) return { active: false, manager: false, nodeId: '' };
    const info = (await this.docker.info()) as { Swarm?: { LocalNodeState?: string; ControlAvailable?: boolean; NodeID?: string } };
    const swarm = info.Swarm ?? {};
    return { active: swarm.LocalNodeState === 'active', manager: swarm.ControlAvailable === true, nodeId: swarm.NodeID ?? '' };
  }

  async list(): Promise<NodeInfo[]> {
    return this.#list(await this.#swarm());
  }

  async #list(swarm: SwarmState): Promise<NodeInfo[]> {
    if (!swarm.active) return [await this.#localNode()];
    this.#mustManage(swarm);
    const [nodes, running] = await Promise.all([this.docker.listNodes() as Promise<SwarmNode[]>, this.#running()]);
    return nodes
      .map((n) => ({
        id: n.ID,
        name: n.Description?.Hostname ?? n.ID,
        address: n.ManagerStatus?.Addr?.replace(/:\d+$/, '') ?? n.Status?.Addr ?? '',
        state: n.Status?.State ?? 'unknown',
        availability: n.Spec?.Availability ?? 'active',
        role: n.Spec?.Role ?? 'worker',
        processes: running.get(n.ID) ?? 0,
        memoryBytes: n.Description?.Resources?.MemoryBytes ?? 0,
        self: n.ID === swarm.nodeId,
      }))
      .sort((a, b) => Number(b.self) - Number(a.self) || a.name.localeCompare(b.name));
  }

  /** The command a new machine runs to join: `docker swarm join --token ... ADDR:PORT`. */
  async joinCommand(): Promise<string> {
    const swarm = await this.#swarm();
    if (!swarm.active) {
      throw new RackError(
        'not_a_swarm',
        'this rack runs on one machine: start rackd with RACK_RUNTIME=swarm on an engine that manages a Swarm (docs/SWARM.md)',
      );
    }
    this.#mustManage(swarm);
    const [inspect, self] = await Promise.all([
      this.docker.swarmInspect() as Promise<{ JoinTokens?: { Worker?: string } }>,
      this.docker.getNode(swarm.nodeId).inspect() as Promise<SwarmNode>,
    ]);
    const token = inspect.JoinTokens?.Worker;
    const addr = self.ManagerStatus?.Addr;
    if (!token || !addr) throw new RackError('not_a_swarm', 'the Swarm gave no worker join token or manager address');
    // The node trusts the registry's CA first: it pulls app images from there. A PEM holds no
    // quote or backslash; %b turns its \n back into lines.
    const host = this.registry!.host;
    const pem = (await this.registry!.ca()).trim().replace(/\n/g, '\\n');
    return `mkdir -p /etc/docker/certs.d/${host} && printf '%b\\n' '${pem}' > /etc/docker/certs.d/${host}/ca.crt && docker swarm join --token ${token} ${addr}`;
  }

  /**
   * Stops placing processes on a node and waits until none of rack's runs there any more (Swarm
   * starts their replacements on the other nodes). `say` gets a line while it waits.
   */
  async drain(name: string, say: (line: string) => void): Promise<NodeInfo> {
    const node = await this.#find(name);
    await this.#setAvailability(node.id, 'drain');
    const deadline = Date.now() + MOVE_TIMEOUT_MS;
    let shown = -1;
    for (;;) {
      const left = (await this.#running(node.id)).get(node.id) ?? 0;
      if (left === 0) return { ...node, availability: 'drain', processes: 0 };
      if (left !== shown) say(`${left} process${left === 1 ? '' : 'es'} still on ${node.name}`);
      shown = left;
      if (Date.now() > deadline) {
        throw new RackError('timed_out', `${left} process${left === 1 ? ' is' : 'es are'} still on ${node.name} after ${MOVE_TIMEOUT_MS / 1000} s; it stays drained`);
      }
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  }

  /**
   * Places nothing new on a node, and leaves what runs there running: rack then moves its
   * processes off with its own rollouts (new ones healthy elsewhere before old ones drain).
   */
  async pause(name: string): Promise<NodeInfo> {
    const node = await this.#find(name);
    await this.#setAvailability(node.id, 'pause');
    return { ...node, availability: 'pause' };
  }

  /** Takes a drained node back into placement. */
  async activate(name: string): Promise<NodeInfo> {
    const node = await this.#find(name);
    await this.#setAvailability(node.id, 'active');
    return { ...node, availability: 'active' };
  }

  /** Takes a node out of the Swarm (drained first: nodes:remove moves its processes off). */
  async remove(name: string): Promise<void> {
    const node = await this.#find(name);
    await this.docker.getNode(node.id).remove({ force: true });
  }

  /** This rack's running processes per node ID (one node's when given). */
  async #running(node?: string): Promise<Map<string, number>> {
    const filters: Record<string, string[]> = { 'desired-state': ['running'] };
    if (node !== undefined) filters['node'] = [node];
    const tasks = (await this.docker.listTasks({ filters: JSON.stringify(filters) })) as SwarmTask[];
    const running = new Map<string, number>();
    for (const task of tasks) {
      if (task.Status?.State !== 'running' || task.Spec?.ContainerSpec?.Labels?.[LABEL.instance] !== this.owner.instance) continue;
      running.set(task.NodeID ?? '', (running.get(task.NodeID ?? '') ?? 0) + 1);
    }
    return running;
  }

  async #find(name: string): Promise<NodeInfo> {
    if (!NODE_NAME.test(name)) throw new RackError('bad_argument', `invalid node name ${JSON.stringify(name.slice(0, 70))}: give a name or ID from \`nodes\``);
    const swarm = await this.#swarm();
    if (!swarm.active) throw new RackError('not_a_swarm', 'this rack runs on one machine: there is no other node to drain or remove');
    const nodes = await this.#list(swarm);
    const matches = nodes.filter((n) => n.name === name || n.id === name);
    if (matches.length === 0) throw new RackError('no_such_node', `no node ${name}: \`nodes\` lists them`);
    if (matches.length > 1) throw new RackError('bad_argument', `${matches.length} nodes are named ${name}: give the ID from \`nodes --json\``);
    const node = matches[0]!;
    if (node.self) throw new RackError('bad_argument', `${node.name} is the machine rackd runs on (the Swarm's manager); it cannot be drained or removed from here`);
    return node;
  }

  async #setAvailability(id: string, availability: 'active' | 'pause' | 'drain'): Promise<void> {
    const handle = this.docker.getNode(id);
    const node = (await handle.inspect()) as SwarmNode;
    if (node.Spec?.Availability === availability) return;
    await handle.update({ _query: { version: node.Version?.Index }, _body: { ...node.Spec, Availability: availability } });
  }

  #mustManage(swarm: SwarmState): void {
    if (!swarm.manager) throw new RackError('not_a_swarm', "rackd's Docker engine is a Swarm worker; run rackd on the manager");
  }

  async #localNode(): Promise<NodeInfo> {
    const [info, containers] = await Promise.all([
      this.docker.info() as Promise<{ Name?: string; MemTotal?: number }>,
      this.docker.listContainers({ filters: JSON.stringify({ label: this.owner.filter(`${LABEL.role}=process`), status: ['running'] }) }),
    ]);
    return {
      id: 'local',
      name: info.Name ?? 'local',
      address: '-',
      state: 'ready',
      availability: 'active',
      role: 'local',
      processes: containers.length,
      memoryBytes: info.MemTotal ?? 0,
      self: true,
    };
  }
}

interface SwarmNode {
  ID: string;
  Version?: { Index?: number };
  Spec?: { Availability?: string; Role?: string; Labels?: Record<string, string>; Name?: string };
  Description?: { Hostname?: string; Resources?: { MemoryBytes?: number } };
  Status?: { State?: string; Addr?: string };
  ManagerStatus?: { Addr?: string };
}

interface SwarmTask {
  NodeID?: string;
  Status?: { State?: string };
  Spec?: { ContainerSpec?: { Labels?: Record<string, string> } };
}
