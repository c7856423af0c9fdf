import { spawn, type ChildProcess } from 'node:child_process';
import type { Server } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../log.js';
import type { SummaryBucket } from './route-summaries.js';
import type { AccessEntry, AppRoute, Listeners } from './router.js';
import { routerNodeArgs } from './router-spawner.js';
import type { TableChange } from './table-changes.js';
import type { Upstream } from './upstream.js';

/**
 * A router process's workers: more router processes serving the same listening sockets, so the
 * router uses every core (Node runs a process's JavaScript on one). Node 20 has no SO_REUSEPORT, so
 * the listeners are passed to each worker over IPC, as a handoff passes them to a successor; all
 * accept on one socket and the kernel gives each connection to one of them.
 *
 * The router process that rackd spawned (the primary) stays the one control point: it owns the
 * lock, the pid file, the state file and the control socket, and applies every change to each
 * worker before it answers. Workers send it their access entries and their summaries, which it
 * merges into its own before they reach rackd. A worker that dies is started again; a worker
 * loses its listeners and ends when the primary goes (its IPC channel closes), so a router started
 * after a crashed one finds the ports free.
 *
 * The exchange on a worker's channel:
 *   worker → primary   {type: 'waiting'}
 *   primary → worker   {type: 'handle', which} + the server: 'http', then 'https'
 *   primary → worker   {type: 'init', routes, accessApps, challenges}     it serves from here
 *   worker → primary   {type: 'ready'}
 *   primary → worker   {type: 'call', id, call}  → worker {type: 'result', id, value}
 *   worker → primary   {type: 'access', entry} | {type: 'summaries', buckets}   unasked
 */
export const WORKER_SCRIPT = fileURLToPath(new URL('./router-worker.js', import.meta.url));

/** A worker that answers no call in this long is stuck: it is killed, and started again. */
const CALL_MS = 10_000;
/** A worker that dies this soon after its start waits longer each time before the next one. */
const QUICK_DEATH_MS = 5_000;
const MAX_BACKOFF_MS = 5_000;

export type WorkerCall =
  | { op: 'change'; change: TableChange }
  | { op: 'access'; apps: string[] }
  | { op: 'setChallenge'; token: string; host: string; keyAuthorization: string }
  | { op: 'removeChallenge'; token: string }
  | { op: 'reloadCertificates' }
  | { op: 'waitIdle'; upstreams: Upstream[]; timeoutMs: number }
  | { op: 'inFlight'; upstream: Upstream }
  /** Stops accepting and answers its summaries so far; its connections end as a handoff's do, then it exits. */
  | { op: 'handOff'; boundMs: number }
  /** Answers its summaries, closes every connection and exits. */
  | { op: 'stop' };

export interface Challenge {
  token: string;
  host: string;
  keyAuthorization: string;
}

export type ToWorker =
  | { type: 'handle'; which: 'http' | 'https' }
  | { type: 'init'; routes: AppRoute[]; accessApps: string[]; challenges: Challenge[] }
  | { type: 'call'; id: number; call: WorkerCall };

export type FromWorker =
  | { type: 'waiting' }
  | { type: 'ready' }
  | { type: 'result'; id: number; value: unknown }
  | { type: 'access'; entry: AccessEntry }
  | { type: 'summaries'; buckets: SummaryBucket[] };

export interface WorkerOptions {
  /** Workers besides the primary (RACK_ROUTER_PROCESSES less one). */
  count: number;
  listeners: Listeners;
  /** The table as the primary routes now: what a starting worker is given. */
  routes: () => AppRoute[];
  onAccess: (entry: AccessEntry) => void;
  onSummaries: (buckets: SummaryBucket[]) => void;
  logger: Logger;
  /** The worker entry point; another install's primary runs its own. */
  script?: string;
}

interface Worker {
  child: ChildProcess;
  startedAt: number;
  ready: boolean;
  calls: Map<number, { resolve: (value: unknown) => void; timer: NodeJS.Timeout }>;
  exited: Promise<void>;
}

export class RouterWorkers {
  readonly #opts: WorkerOptions;
  readonly #workers = new Set<Worker>();
  #accessApps: string[] = [];
  readonly #challenges = new Map<string, Challenge>();
  #nextId = 1;
  /** Stopping or handed off: a worker that exits is not replaced. */
  #ending = false;
  #quickDeaths = 0;

  constructor(opts: WorkerOptions) {
    this.#opts = opts;
  }

  /** Starts the workers; resolves once each serves (or has died, to be started again). */
  async start(): Promise<void> {
    const started: Promise<void>[] = [];
    for (let i = 0; i < this.#opts.count; i++) started.push(this.#spawn());
    await Promise.all(started);
  }

  /** The workers' pids, for operators and tests. */
  pids(): number[] {
    return [...this.#workers].map((w) => w.child.pid).filter((p): p is number => p !== undefined);
  }

  async change(change: TableChange): Promise<void> {
    await this.#callAll({ op: 'change', change });
  }

  async setAccessApps(apps: string[]): Promise<void> {
    this.#accessApps = apps;
    await this.#callAll({ op: 'access', apps });
  }

  async setChallenge(challenge: Challenge): Promise<void> {
    this.#challenges.set(challenge.token, challenge);
    await this.#callAll({ op: 'setChallenge', ...challenge });
  }

  async removeChallenge(token: string): Promise<void> {
    this.#challenges.delete(token);
    await this.#callAll({ op: 'removeChallenge', token });
  }

  async reloadCertificates(): Promise<void> {
    await this.#callAll({ op: 'reloadCertificates' });
  }

  /** True when every worker had no request in flight to these upstreams within the time. */
  async waitIdle(upstreams: Upstream[], timeoutMs: number): Promise<boolean> {
    const answers = await this.#callAll({ op: 'waitIdle', upstreams, timeoutMs }, timeoutMs + CALL_MS);
    return answers.every((a) => a !== false);
  }

  async inFlight(upstream: Upstream): Promise<number> {
    const answers = await this.#callAll({ op: 'inFlight', upstream });
    return answers.reduce<number>((sum, n) => sum + (typeof n === 'number' ? n : 0), 0);
  }

  /**
   * A successor serves the listeners: every worker stops accepting at once and hands over its
   * summaries; `drained` resolves once each has finished its connections and exited.
   */
  async handOff(boundMs: number): Promise<{ drained: Promise<void> }> {
    this.#ending = true;
    const exits = [...this.#workers].map((w) => w.exited);
    await this.#collect({ op: 'handOff', boundMs });
    return { drained: Promise.all(exits).then(() => undefined) };
  }

  /** Every worker closes its connections and exits; their summaries are handed over first. */
  async stop(): Promise<void> {
    this.#ending = true;
    const exits = [...this.#workers].map((w) => w.exited);
    await this.#collect({ op: 'stop' });
    await Promise.all(exits);
  }

  async #collect(call: WorkerCall): Promise<void> {
    const answers = await this.#callAll(call);
    for (const buckets of answers) if (Array.isArray(buckets)) this.#opts.onSummaries(buckets as SummaryBucket[]);
  }

  /** One call on every worker; a worker that dies meanwhile answers undefined (its successor starts from the table). */
  #callAll(call: WorkerCall, timeoutMs = CALL_MS): Promise<unknown[]> {
    return Promise.all([...this.#workers].map((w) => this.#call(w, call, timeoutMs)));
  }

  #call(worker: Worker, call: WorkerCall, timeoutMs: number): Promise<unknown> {
    const { child } = worker;
    if (!child.connected) return Promise.resolve(undefined);
    const id = this.#nextId++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#opts.logger.error({ worker: child.pid, op: call.op }, 'router: a worker did not answer; killing it');
        child.kill('SIGKILL');
      }, timeoutMs);
      worker.calls.set(id, { resolve, timer });
      child.send({ type: 'call', id, call } satisfies ToWorker, (err) => {
        if (err !== null) this.#settle(worker, id, undefined);
      });
    });
  }

  #settle(worker: Worker, id: number, value: unknown): void {
    const call = worker.calls.get(id);
    if (call === undefined) return;
    worker.calls.delete(id);
    clearTimeout(call.timer);
    call.resolve(value);
  }

  /** Starts one worker; resolves once it serves or has exited. */
  #spawn(): Promise<void> {
    const { logger } = this.#opts;
    const child = spawn(process.execPath, [...routerNodeArgs(), this.#opts.script ?? WORKER_SCRIPT], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    let exited!: () => void;
    const worker: Worker = { child, startedAt: Date.now(), ready: false, calls: new Map(), exited: new Promise((r) => (exited = r)) };
    this.#workers.add(worker);
    let markReady!: () => void;
    const ready = new Promise<void>((r) => (markReady = r));
    child.on('error', (err) => {
      logger.error({ err: err.message }, 'router: worker process error');
      // Never started: no exit will come, so nothing may wait for one.
      if (child.pid === undefined) {
        this.#workers.delete(worker);
        markReady();
        exited();
      }
    });
    child.on('message', (msg: FromWorker) => {
      switch (msg.type) {
        case 'waiting':
          this.#introduce(worker);
          break;
        case 'ready':
          worker.ready = true;
          this.#quickDeaths = 0;
          logger.info({ worker: child.pid }, 'router: worker serving');
          markReady();
          break;
        case 'result':
          this.#settle(worker, msg.id, msg.value);
          break;
        case 'access':
          this.#opts.onAccess(msg.entry);
          break;
        case 'summaries':
          this.#opts.onSummaries(msg.buckets);
          break;
      }
    });
    child.once('exit', (code, signal) => {
      this.#workers.delete(worker);
      for (const id of [...worker.calls.keys()]) this.#settle(worker, id, undefined);
      markReady();
      exited();
      if (this.#ending) return;
      logger.warn({ worker: child.pid, code, signal }, 'router: worker exited; starting another');
      const quick = Date.now() - worker.startedAt < QUICK_DEATH_MS;
      this.#quickDeaths = quick ? this.#quickDeaths + 1 : 0;
      const delay = quick ? Math.min(MAX_BACKOFF_MS, 100 * 2 ** this.#quickDeaths) : 0;
      setTimeout(() => {
        if (!this.#ending) void this.#spawn();
      }, delay).unref();
    });
    return ready;
  }

  /**
   * Hands a waiting worker the listeners and the table as it is now. It joins the workers that
   * calls go to at once, so every change after this snapshot reaches it too, in order.
   */
  #introduce(worker: Worker): void {
    const send = (msg: ToWorker, handle?: Server): void => {
      worker.child.send(msg, handle, (err) => {
        if (err !== null) this.#opts.logger.error({ worker: worker.child.pid, err: err.message }, 'router: cannot reach a starting worker');
      });
    };
    const { http, https } = this.#opts.listeners;
    send({ type: 'handle', which: 'http' }, http);
    if (https !== undefined) send({ type: 'handle', which: 'https' }, https);
    send({ type: 'init', routes: this.#opts.routes(), accessApps: this.#accessApps, challenges: [...this.#challenges.values()] });
  }
}
