import { EventEmitter } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { OwnedContainer } from '../../daemon/runtime/containers.js';
import type { TaskSpec } from '../../daemon/runtime/docker-tasks.js';
import { DEFAULT_LIMITS } from '../../daemon/runtime/isolation.js';
import type { ImageStore, NetworkPlan, ProcessDriver, ProcessEvent, ProcessInfo, ProcessSpec, Runtime, TaskRunner } from '../../daemon/runtime/runtime.js';

interface FakeProcess {
  info: ProcessInfo;
  spec: ProcessSpec;
  /** A web process answers HTTP for real, on loopback, so the supervisor's health check runs as it does on Docker. */
  server: Server | undefined;
}

/** Failures a test injects; each applies until the test clears it. */
export interface FakeFailures {
  /** startAll() rejects (nothing is left started). */
  start?: Error;
  /** remove() of these process IDs (or of all, with `true`) throws. */
  remove?: Set<string> | true;
  /** New web processes answer 503: their health never comes. */
  unhealthy?: boolean;
}

function notFound(id: string): Error {
  return Object.assign(new Error(`no such container: ${id}`), { statusCode: 404 });
}

/**
 * App processes as in-memory records, behind the same ProcessDriver the supervisor drives Docker
 * through, with what Docker does to them on demand: `kill` (stopped for good, as `docker kill`),
 * `crash` (the restart policy brings it back), `destroy` (`docker rm -f`), each with its engine event.
 */
export class FakeProcesses implements ProcessDriver {
  readonly #processes = new Map<string, FakeProcess>();
  readonly #events = new EventEmitter();
  readonly #specs = new Map<string, ProcessSpec>();
  #next = 0;
  readonly failures: FakeFailures = {};
  /** Every process ever started, in order. */
  readonly started: ProcessInfo[] = [];
  /** What was asked, in order (`start web`, `remove ID`, `stop ID`), to check orderings against the router's. */
  constructor(readonly journal: string[] = []) {}

  async startAll(specs: ProcessSpec[]): Promise<ProcessInfo[]> {
    if (this.failures.start) throw this.failures.start;
    const out: ProcessInfo[] = [];
    for (const spec of specs) {
      const id = `fake${String(++this.#next).padStart(4, '0')}`;
      const server = spec.port === undefined ? undefined : await this.#serve(id, this.failures.unhealthy === true);
      const address = server?.address();
      const info: ProcessInfo = {
        id,
        name: `rack.${spec.app}.v${spec.release}.${spec.type}.${id}`,
        app: spec.app,
        release: spec.release,
        type: spec.type,
        dyno: spec.dyno,
        running: true,
        restarting: false,
        restarts: 0,
        oomKilled: false,
        exitCode: 0,
        upstream: address && typeof address === 'object' ? { host: '127.0.0.1', port: address.port } : null,
        startedAt: new Date().toISOString(),
        limits: { ...DEFAULT_LIMITS, ...spec.limits },
      };
      this.#processes.set(id, { info, spec, server });
      this.#specs.set(id, spec);
      this.started.push({ ...info });
      this.journal.push(`start ${spec.type} ${id}`);
      this.#emit('start', info);
      out.push({ ...info });
    }
    return out;
  }

  /** What a process was started with (kept after it is gone). */
  spec(id: string): ProcessSpec | undefined {
    return this.#specs.get(id);
  }

  async inspect(id: string): Promise<ProcessInfo> {
    const p = this.#processes.get(id);
    if (!p) throw notFound(id);
    return { ...p.info };
  }

  async list(app?: string): Promise<ProcessInfo[]> {
    return [...this.#processes.values()].filter((p) => app === undefined || p.info.app === app).map((p) => ({ ...p.info }));
  }

  async stop(id: string): Promise<void> {
    this.journal.push(`stop ${id}`);
    await this.#drop(id);
  }

  async remove(id: string): Promise<void> {
    this.journal.push(`remove ${id}`);
    const fails = this.failures.remove;
    if (fails === true || fails?.has(id)) throw new Error(`injected: could not remove ${id}`);
    await this.#drop(id);
  }

  async followLogs(_id: string, _tail: number, _onLine: (time: string, text: string) => void, signal: AbortSignal): Promise<void> {
    if (signal.aborted) return;
    await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
  }

  async events(onEvent: (e: ProcessEvent) => void, signal: AbortSignal): Promise<void> {
    if (signal.aborted) return;
    this.#events.on('event', onEvent);
    try {
      await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
    } finally {
      this.#events.off('event', onEvent);
    }
  }

  async logs(): Promise<string> {
    return '';
  }

  /** As `docker kill`: stopped, and the restart policy leaves it so. */
  async kill(id: string): Promise<void> {
    const p = this.#require(id);
    await this.#close(p);
    p.info = { ...p.info, running: false, restarting: false, exitCode: 137 };
    this.#emit('die', p.info);
  }

  /** A crash the restart policy undoes: down (restarting) until `restart(id)`. */
  async crash(id: string): Promise<void> {
    const p = this.#require(id);
    await this.#close(p);
    p.info = { ...p.info, running: false, restarting: true, exitCode: 1, restarts: p.info.restarts + 1 };
    this.#emit('die', p.info);
  }

  /** The restart policy's restart after `crash`, at the same address. */
  async restart(id: string): Promise<void> {
    const p = this.#require(id);
    const port = p.info.upstream?.port;
    if (p.spec.port !== undefined) p.server = await this.#serve(id, false, port);
    p.info = { ...p.info, running: true, restarting: false };
    this.#emit('start', p.info);
  }

  /** As `docker rm -f`: gone from every list. */
  async destroy(id: string): Promise<void> {
    const p = this.#require(id);
    await this.#drop(id);
    this.#emit('die', p.info);
    this.#emit('destroy', p.info);
  }

  /** Closes every web process's listener (end of a test). */
  async close(): Promise<void> {
    for (const p of this.#processes.values()) await this.#close(p);
    this.#processes.clear();
  }

  #require(id: string): FakeProcess {
    const p = this.#processes.get(id);
    if (!p) throw notFound(id);
    return p;
  }

  async #drop(id: string): Promise<void> {
    const p = this.#processes.get(id);
    if (!p) return;
    this.#processes.delete(id);
    await this.#close(p);
  }

  async #close(p: FakeProcess): Promise<void> {
    const server = p.server;
    p.server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  #emit(kind: ProcessEvent['kind'], p: ProcessInfo): void {
    this.#events.emit('event', { kind, id: p.id, name: p.name, app: p.app, type: p.type, dyno: p.dyno, exitCode: p.exitCode } satisfies ProcessEvent);
  }

  async #serve(id: string, unhealthy: boolean, port = 0): Promise<Server> {
    const server = createServer((_req, res) => {
      res.writeHead(unhealthy ? 503 : 200, { 'content-type': 'text/plain' });
      res.end(id);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    server.on('error', () => undefined);
    return server;
  }
}

/** Release phases as canned results: `exitCode` for each run, its spec kept. */
export class FakeTasks implements TaskRunner {
  exitCode = 0;
  readonly runs: TaskSpec[] = [];

  async runTask(spec: TaskSpec): Promise<{ container: string; exitCode: number }> {
    this.runs.push(spec);
    return { container: `task${this.runs.length}`, exitCode: this.exitCode };
  }
}

export class FakeNetworks implements NetworkPlan {
  readonly made = new Set<string>();

  async ensure(app: string): Promise<string> {
    this.made.add(app);
    return `rack-${app}`;
  }

  async apps(): Promise<string[]> {
    return [...this.made];
  }

  async remove(app: string): Promise<void> {
    this.made.delete(app);
  }
}

/** Images by reference: every one exists unless a test removes it (a pruned release). */
export class FakeImages implements ImageStore {
  readonly missing = new Set<string>();

  async exists(ref: string): Promise<boolean> {
    return !this.missing.has(ref);
  }
}

/**
 * The whole runtime in memory (Convox's mock provider is the model): the supervisor's failure
 * paths (a start that fails, a removal that throws, a process that dies, health that never comes)
 * are tested in milliseconds, without an engine.
 */
export class FakeRuntime implements Runtime {
  readonly processes: FakeProcesses;
  readonly tasks = new FakeTasks();
  readonly networks = new FakeNetworks();
  readonly images = new FakeImages();
  readonly swarm = false;

  constructor(readonly journal: string[] = []) {
    this.processes = new FakeProcesses(journal);
  }

  processNetwork(app: string): Promise<string> {
    return this.networks.ensure(app);
  }

  async ownedContainers(opts: { app?: string } = {}): Promise<OwnedContainer[]> {
    return (await this.processes.list(opts.app)).map((p) => ({ id: p.id, name: p.name, app: p.app, role: 'process' as const }));
  }

  removeContainer(id: string): Promise<void> {
    return this.processes.remove(id);
  }
}
