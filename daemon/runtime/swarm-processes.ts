import type Docker from 'dockerode';
import { randomBytes } from 'node:crypto';
import { demuxToText, envList, followTimestampedLines, processEnv, type ProcessDriver, type ProcessEvent, type ProcessInfo, type ProcessSpec } from './docker-processes.js';
import { APP_USER, type ProcessLimits } from './isolation.js';
import { LABEL } from './labels.js';
import type { Owner } from './owner.js';
import { containerCommand } from './process-command.js';
import type { RegistryImages } from './registry-images.js';

/** How long startAll() waits for Swarm to place the tasks and their containers to run. */
const START_TIMEOUT_MS = 120_000;
const POLL_MS = 200;
/** How often ended tasks are looked for (crash notices in the app's logs). */
const EVENT_POLL_MS = 1000;
/** SIGTERM to SIGKILL when a service goes: the drain has already waited for its requests. */
const STOP_GRACE_NS = 10e9;

interface Task {
  ID: string;
  ServiceID: string;
  Slot?: number;
  NodeID?: string;
  CreatedAt?: string;
  DesiredState?: string;
  Status?: {
    State?: string;
    Err?: string;
    Timestamp?: string;
    ContainerStatus?: { ExitCode?: number };
    PortStatus?: { Ports?: { TargetPort?: number; PublishedPort?: number }[] };
  };
}

interface Service {
  ID: string;
  CreatedAt?: string;
  Spec?: {
    Name?: string;
    Labels?: Record<string, string>;
    Mode?: { Replicated?: { Replicas?: number } };
    TaskTemplate?: { Resources?: { Limits?: { MemoryBytes?: number; NanoCPUs?: number; Pids?: number } } };
  };
}

interface NodeAddr {
  name: string;
  addr: string;
  ready: boolean;
}

/** Resolves when the signal fires (at once if it has). */
function aborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
}

/** A process is one slot of a service: `SERVICE_ID/SLOT`, the same across Swarm's restarts of it. */
function processId(service: string, slot: number): string {
  return `${service}/${slot}`;
}

function parseId(id: string): { service: string; slot: number } {
  const slash = id.lastIndexOf('/');
  return slash === -1 ? { service: id, slot: 1 } : { service: id.slice(0, slash), slot: Number(id.slice(slash + 1)) };
}

/**
 * App processes on a Docker Swarm: one replicated service per release and process type, so Swarm
 * spreads a type's processes over the workers and restarts them (in their slot) when they or their
 * node fail, while rack keeps its own rollout: a new release's services start beside the old ones,
 * every slot is checked, the router switches, and the old services are drained and removed. A web
 * process publishes PORT in host mode on its node (no routing mesh, no overlay between nodes): the
 * router reaches it at the node's address and the port Swarm chose, which changes when the task is
 * replaced, so endpoints() is read again often (supervisor/endpoint-watch.ts).
 */
export class SwarmProcesses implements ProcessDriver {
  /** Slots drained so far, per service: the service goes once all of its slots have. */
  readonly #stopped = new Map<string, Set<number>>();

  constructor(
    private readonly docker: Docker,
    private readonly owner: Owner,
    private readonly streams: Docker,
    private readonly registry: RegistryImages,
  ) {}

  async startAll(specs: ProcessSpec[]): Promise<ProcessInfo[]> {
    const byType = new Map<string, ProcessSpec[]>();
    for (const spec of specs) byType.set(spec.type, [...(byType.get(spec.type) ?? []), spec]);
    const groups = [...byType.values()];
    const made: string[] = [];
    try {
      for (const group of groups) made.push(await this.#createService(group[0]!, group.length));
      const running = await Promise.all(made.map((service, i) => this.#waitRunning(service, groups[i]!.length, groups[i]![0]!.port !== undefined)));
      return running.flat();
    } catch (err) {
      for (const service of made) await this.#removeService(service).catch(() => undefined);
      throw err;
    }
  }

  async #createService(spec: ProcessSpec, replicas: number): Promise<string> {
    const image = await this.registry.publish(spec.image);
    // Swarm fills in each task's slot: web.1, web.2... as on one machine.
    const env: Record<string, string> = { ...processEnv(spec.builder, spec.env), DYNO: `${spec.type}.{{.Task.Slot}}` };
    if (spec.port !== undefined) env['PORT'] = String(spec.port);
    const args = containerCommand(spec.builder, spec.command);
    const labels = this.owner.labels({
      [LABEL.role]: 'process',
      [LABEL.app]: spec.app,
      [LABEL.release]: String(spec.release),
      [LABEL.type]: spec.type,
    });
    const limits = spec.limits;
    // The registry's account goes with the service: Swarm gives it to the node that pulls the image.
    const created = (await this.docker.createService(this.registry.auth, {
      Name: `rack-${spec.app}-v${spec.release}-${spec.type}-${randomBytes(3).toString('hex')}`,
      Labels: labels,
      TaskTemplate: {
        ContainerSpec: {
          Image: image,
          ...(args ? { Args: args } : {}),
          Env: envList(env),
          User: APP_USER,
          Labels: labels,
          Init: true,
          StopGracePeriod: STOP_GRACE_NS,
          // As on one machine: no capabilities kept, no privilege gained.
          CapabilityDrop: ['ALL'],
          Privileges: { NoNewPrivileges: true },
        },
        Resources: {
          Limits: {
            MemoryBytes: limits.memoryMb * 1024 * 1024,
            Pids: limits.pids,
            ...(limits.cpu ? { NanoCPUs: Math.round(limits.cpu * 1e9) } : {}),
          },
        },
        // Crashes are Swarm's to restart, as Docker's restart policy does on one machine.
        RestartPolicy: { Condition: 'any', Delay: 1e9, MaxAttempts: 0 },
        // Host-mode ports bind every interface of their node: apps run on workers only.
        Placement: { Constraints: ['node.role==worker'] },
        Networks: [{ Target: spec.network }],
        LogDriver: { Name: 'json-file', Options: { 'max-size': '10m', 'max-file': '2' } },
      },
      Mode: { Replicated: { Replicas: replicas } },
      EndpointSpec: {
        Mode: 'dnsrr',
        Ports: spec.port !== undefined ? [{ Protocol: 'tcp', TargetPort: spec.port, PublishMode: 'host' }] : [],
      },
    } as Docker.CreateServiceOptions)) as { id?: string; ID?: string };
    return created.id ?? created.ID ?? '';
  }

  async inspect(id: string): Promise<ProcessInfo> {
    const { service, slot } = parseId(id);
    const [info, tasks, nodes] = await Promise.all([
      this.docker.getService(service).inspect() as Promise<Service>,
      this.#tasks({ service: [service] }),
      this.#nodes(),
    ]);
    return this.#info(info, slot, tasks, nodes);
  }

  /** Every process of this rack (of one app): each slot of each process service, with its task's state. */
  async list(app?: string): Promise<ProcessInfo[]> {
    const label = this.owner.filter(`${LABEL.role}=process`);
    if (app !== undefined) label.push(`${LABEL.app}=${app}`);
    const [services, tasks, nodes] = await Promise.all([
      this.docker.listServices({ filters: JSON.stringify({ label }) }) as Promise<Service[]>,
      this.#tasks({ label }),
      this.#nodes(),
    ]);
    return services.flatMap((s) => {
      const own = tasks.filter((t) => t.ServiceID === s.ID);
      return slotsOf(s).map((slot) => this.#info(s, slot, own, nodes));
    });
  }

  /** Where each web process answers now: process ID → node address and port, null when nowhere. */
  async endpoints(ids: string[]): Promise<Map<string, { host: string; port: number } | null>> {
    const [tasks, nodes] = await Promise.all([this.#tasks({ label: this.owner.filter(`${LABEL.role}=process`) }), this.#nodes()]);
    const out = new Map<string, { host: string; port: number } | null>();
    for (const id of ids) {
      const { service, slot } = parseId(id);
      out.set(id, endpointOf(tasks.filter((t) => t.ServiceID === service && t.Slot === slot), nodes));
    }
    return out;
  }

  /**
   * A drained process: its slot is done. Swarm stops tasks by service, so the service goes (and
   * Swarm stops its tasks, SIGTERM then SIGKILL) once every slot of it has been drained.
   */
  async stop(id: string, _graceSeconds: number): Promise<void> {
    const { service, slot } = parseId(id);
    const stopped = this.#stopped.get(service) ?? new Set<number>();
    stopped.add(slot);
    this.#stopped.set(service, stopped);
    let replicas = 0;
    try {
      replicas = slotsOf((await this.docker.getService(service).inspect()) as Service).length;
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode !== 404) throw err;
    }
    if (stopped.size >= replicas) await this.#removeService(service);
  }

  /** Removes the process's whole service: its callers (a failed rollout, leftovers) remove every slot. */
  async remove(id: string): Promise<void> {
    await this.#removeService(parseId(id).service);
  }

  async #removeService(service: string): Promise<void> {
    this.#stopped.delete(service);
    try {
      await this.docker.getService(service).remove();
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode !== 404) throw err;
    }
  }

  /**
   * The service's output, followed once for all its slots (from slot 1's process): Swarm merges
   * the tasks' logs, so every line comes once. The other slots' follows wait for their abort: one
   * that returned at once would read as an ended stream (a died process) and be followed again
   * every second, three engine calls each time, for as long as the process runs.
   */
  async followLogs(id: string, tail: number, onLine: (time: string, text: string) => void, signal: AbortSignal): Promise<void> {
    const { service, slot } = parseId(id);
    if (slot !== 1) return aborted(signal);
    // A service removed meanwhile has no logs to follow: nothing to tell.
    await followTimestampedLines(this.streams, (opts) => this.streams.getService(service).logs(opts), tail, onLine, signal).catch(() => undefined);
  }

  /**
   * A task's exit is no engine event on the manager, so the tasks are read every second and each
   * one newly ended on its own (failed or complete: a crash or an exit, not rack's own stop) is
   * told once. Tasks that had ended before the first read are history, not news. An exit by
   * SIGKILL (137) may be a memory kill; Swarm does not say which, so it is told as an exit.
   */
  async events(onEvent: (e: ProcessEvent) => void, signal: AbortSignal): Promise<void> {
    const told = new Set<string>();
    let first = true;
    while (!signal.aborted) {
      const [tasks, services] = await Promise.all([
        this.#tasks({ label: this.owner.filter(`${LABEL.role}=process`) }),
        this.docker.listServices({ filters: JSON.stringify({ label: this.owner.filter(`${LABEL.role}=process`) }) }) as Promise<Service[]>,
      ]);
      const byId = new Map(services.map((s) => [s.ID, s]));
      for (const task of tasks) {
        const state = task.Status?.State;
        if ((state !== 'failed' && state !== 'complete') || told.has(task.ID)) continue;
        told.add(task.ID);
        const service = byId.get(task.ServiceID);
        if (first || !service) continue;
        const labels = service.Spec?.Labels ?? {};
        onEvent({
          kind: 'die',
          id: processId(service.ID, task.Slot ?? 1),
          name: `${service.Spec?.Name ?? service.ID}.${task.Slot ?? 1}`,
          app: labels[LABEL.app] ?? '',
          type: labels[LABEL.type] ?? '',
          dyno: `${labels[LABEL.type] ?? ''}.${task.Slot ?? 1}`,
          exitCode: task.Status?.ContainerStatus?.ExitCode ?? 0,
        });
      }
      first = false;
      // Only tasks Swarm still lists can come back: the rest are forgotten, so this stays small.
      const listed = new Set(tasks.map((t) => t.ID));
      for (const id of told) if (!listed.has(id)) told.delete(id);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, EVENT_POLL_MS);
        signal.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
      });
    }
  }

  async logs(id: string, tail: number): Promise<string> {
    try {
      const buf = (await this.docker.getService(parseId(id).service).logs({ stdout: true, stderr: true, tail } as object)) as unknown as Buffer;
      return demuxToText(buf);
    } catch {
      return '';
    }
  }

  async #waitRunning(service: string, count: number, web: boolean): Promise<ProcessInfo[]> {
    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      const [info, tasks, nodes] = await Promise.all([
        this.docker.getService(service).inspect() as Promise<Service>,
        this.#tasks({ service: [service] }),
        this.#nodes(),
      ]);
      const all = slotsOf(info).map((slot) => this.#info(info, slot, tasks, nodes));
      if (all.length === count && all.every((p) => p.running && (!web || p.upstream !== null))) return all;
      const failed = tasks.find((t) => t.Status?.State === 'rejected' || t.Status?.State === 'failed');
      if (failed) throw new Error(`Swarm could not run it: ${failed.Status?.Err ?? failed.Status?.State}`);
      if (Date.now() > deadline) throw new Error(`Swarm did not run all ${count} within ${START_TIMEOUT_MS / 1000} s`);
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  }

  #tasks(filters: Record<string, string[]>): Promise<Task[]> {
    return this.docker.listTasks({ filters: JSON.stringify(filters) }) as Promise<Task[]>;
  }

  async #nodes(): Promise<Map<string, NodeAddr>> {
    const nodes = (await this.docker.listNodes()) as { ID: string; Description?: { Hostname?: string }; Status?: { State?: string; Addr?: string } }[];
    return new Map(nodes.map((n) => [n.ID, { name: n.Description?.Hostname ?? n.ID, addr: n.Status?.Addr ?? '', ready: n.Status?.State === 'ready' }]));
  }

  #info(service: Service, slot: number, serviceTasks: Task[], nodes: Map<string, NodeAddr>): ProcessInfo {
    const labels = service.Spec?.Labels ?? {};
    const tasks = serviceTasks.filter((t) => t.Slot === slot);
    const current = currentTask(tasks);
    const limits = service.Spec?.TaskTemplate?.Resources?.Limits ?? {};
    const running = current?.Status?.State === 'running' && nodes.get(current.NodeID ?? '')?.ready === true;
    // Every task of the slot after the first is a restart: a crash, a lost node, a failed start.
    const restarts = Math.max(0, tasks.length - 1);
    const ended = tasks.filter((t) => t !== current).sort(byCreated).at(-1);
    const limitsOut: ProcessLimits = {
      memoryMb: Math.round((limits.MemoryBytes ?? 0) / (1024 * 1024)),
      ...(limits.NanoCPUs ? { cpu: limits.NanoCPUs / 1e9 } : {}),
      pids: limits.Pids ?? 0,
    };
    return {
      id: processId(service.ID, slot),
      name: `${service.Spec?.Name ?? service.ID}.${slot}`,
      app: labels[LABEL.app] ?? '',
      release: Number(labels[LABEL.release] ?? 0),
      type: labels[LABEL.type] ?? '',
      // Swarm keeps a task's slot across its restarts and moves: the slot is the dyno's number.
      dyno: `${labels[LABEL.type] ?? ''}.${slot}`,
      running,
      restarting: !running && current !== undefined,
      restarts,
      oomKilled: /oom/i.test(ended?.Status?.Err ?? ''),
      exitCode: ended?.Status?.ContainerStatus?.ExitCode ?? 0,
      upstream: endpointOf(tasks, nodes),
      startedAt: current?.Status?.Timestamp ?? service.CreatedAt ?? '',
      limits: limitsOut,
      node: nodes.get(current?.NodeID ?? '')?.name ?? '',
    };
  }
}

function slotsOf(service: Service): number[] {
  return Array.from({ length: service.Spec?.Mode?.Replicated?.Replicas ?? 0 }, (_, i) => i + 1);
}

const byCreated = (a: Task, b: Task) => (a.CreatedAt ?? '').localeCompare(b.CreatedAt ?? '');

/** The task Swarm wants running now in a slot (the newest of them). */
function currentTask(tasks: Task[]): Task | undefined {
  return tasks.filter((t) => t.DesiredState === 'running').sort(byCreated).at(-1);
}

/** The running task's published port at its node's address, when its node is ready. */
function endpointOf(tasks: Task[], nodes: Map<string, NodeAddr>): { host: string; port: number } | null {
  const task = currentTask(tasks);
  if (task?.Status?.State !== 'running') return null;
  const node = nodes.get(task.NodeID ?? '');
  const port = task.Status.PortStatus?.Ports?.find((p) => p.PublishedPort)?.PublishedPort;
  if (!node?.ready || !node.addr || !port) return null;
  return { host: node.addr, port };
}
