import { connect, type Socket } from 'node:net';
import type { Logger } from '../log.js';
import { RackError } from '../rack-error.js';
import { installedVersion } from './rack-version.js';
import type { RouteControl } from './route-control.js';
import type { SummaryBucket } from './route-summaries.js';
import type { Maintenance } from './maintenance-page.js';
import type { AccessEntry, AppRoute, HttpsPolicy } from './router.js';
import { NoAnswer, RouterCalls } from './router-calls.js';
import { routerMismatch } from './router-match.js';
import { EXIT_LOCKED, PROTOCOL_VERSION, type Method, type MethodTypes, type RouterIdentity } from './router-protocol.js';
import { ROUTER_PROCESS_SCRIPT, signalRouter, spawnRouterProcess, waitForExit, whyExited, type SpawnedRouter, type SpawnOptions } from './router-spawner.js';
import { copyUpstream, type Upstream } from './upstream.js';

/**
 * The router process's settings (a wanted port of 0 accepts a running router on any port; otherwise
 * a router on another port is replaced), and where its events go.
 */
export interface RouterClientOptions extends SpawnOptions {
  logger: Logger;
  /** Access entries streamed from the router process (only while connected), of the apps given to setAccessApps. */
  onAccess?: (entry: AccessEntry) => void;
  /** The router's 10 s summaries of every app's requests (held by the router while nobody is connected). */
  onSummary?: (bucket: SummaryBucket) => void;
}

const START_TIMEOUT_MS = 15_000;
const PING_TIMEOUT_MS = 3_000;
const QUERY_TIMEOUT_MS = 10_000;
/** A table change not saved and applied by then has failed: a deploy must not wait on a stuck router. */
export const CHANGE_TIMEOUT_MS = 10_000;
/** waitIdle is answered by the router after its own timeout; this much more means it is not coming. */
const WAIT_IDLE_GRACE_MS = 10_000;
const STOP_FLUSH_MS = 5_000;
const EXIT_WAIT_MS = 15_000;
/** A successor has HANDOFF_READY_MS (20 s) to start; the answer then follows at once. */
const HANDOFF_TIMEOUT_MS = 30_000;
/** After losing a spawning race, give the winner this long to answer before trying again. */
const RESPAWN_GAP_MS = 1000;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const message = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/**
 * rackd's handle on the router process (router-process.ts). Table changes are ordered, and each
 * one's promise says whether the router saved and applied it; a failed change fails only its own
 * promise. Every call has a deadline and fails with a `router_failed` RackError; until then it stays
 * queued, and is sent again on the next connection if one drops first (all requests are
 * idempotent). A dropped connection is re-made at once, starting a new router process if none
 * answers, so a crashed router comes back with its persisted table while rackd runs.
 */
export class RouterClient implements RouteControl {
  readonly #opts: RouterClientOptions;
  readonly #log: Logger;
  /** running and flushing (inside stop) re-connect and spawn; closing (inside shutdown) does neither. */
  #phase: 'new' | 'running' | 'flushing' | 'closing' | 'stopped' = 'new';
  /** The connection calls go out on, once its ping has been answered. */
  #socket: Socket | undefined;
  #identity: RouterIdentity | undefined;
  readonly #calls: RouterCalls;
  readonly #changes = new Set<Promise<unknown>>();
  #reconnecting = false;
  /** The apps whose access lines are wanted, told to every router connected to (a successor starts with none). */
  #accessApps: string[] = [];
  /** Called on each new connection: replace() waits for the one to its successor. */
  readonly #onActivate = new Set<(identity: RouterIdentity) => void>();
  /** The connection is expected to close: the router we asked to hand off is going. */
  #handingOff = false;
  /** Read once: a router of another version (an update in place) is handed off from as well. */
  readonly #version = installedVersion();

  constructor(opts: RouterClientOptions) {
    this.#opts = opts;
    this.#log = opts.logger;
    this.#calls = new RouterCalls(opts.logger, (event) => {
      if (event.event === 'access') opts.onAccess?.(event.data);
      else opts.onSummary?.(event.data);
    });
  }

  /** Connects to the running router process, or starts one; resolves to the port it serves HTTP on. */
  async start(): Promise<number> {
    if (this.#phase !== 'new') throw new Error('router client already started');
    this.#phase = 'running';
    try {
      return (await this.#connect(true)).httpPort;
    } catch (err) {
      this.#close();
      throw new RackError('router_failed', `the router could not start: ${message(err)} (router log: ${this.#opts.logPath})`, { cause: err });
    }
  }

  /** Disconnects after the table changes made so far are acknowledged; the router keeps serving. */
  async stop(): Promise<void> {
    if (this.#phase === 'new') this.#close();
    if (this.#phase !== 'running') return;
    this.#phase = 'flushing';
    let timer: NodeJS.Timeout | undefined;
    const gaveUp = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), STOP_FLUSH_MS)));
    const flushed = await Promise.race([this.flush().then(() => true, () => true), gaveUp]);
    clearTimeout(timer);
    if (!flushed) this.#log.warn({ changes: this.#changes.size }, 'router: stopping with table changes not acknowledged');
    this.#close();
  }

  /** Asks the router process to exit and waits until it has; works whether or not start() was called. */
  async shutdown(): Promise<void> {
    this.#phase = 'closing';
    try {
      let socket = this.#socket;
      let pid = this.#identity?.pid;
      if (socket === undefined) {
        const opened = await this.#open().catch(() => undefined);
        if (opened === undefined) return; // nothing answers: no router to stop
        ({ socket } = opened);
        pid = opened.identity.pid;
      }
      await this.#askShutdown(socket, pid);
      socket.destroy();
    } finally {
      this.#close();
    }
  }

  /**
   * Has the running router hand its listening sockets to a new router process running `script`
   * (by default this rack's own router-process.js), without a failed request, and connects to that
   * one; resolves to its identity. On failure (`router_failed`) the old router serves on.
   */
  async replace(script: string = ROUTER_PROCESS_SCRIPT): Promise<RouterIdentity> {
    if (!this.#mayConnect()) throw new RackError('router_failed', 'the router client is not running');
    let successor: RouterIdentity;
    try {
      this.#handingOff = true;
      successor = await this.#call('handoff', { script }, HANDOFF_TIMEOUT_MS);
    } catch (err) {
      this.#handingOff = false;
      throw new RackError('router_failed', `the router could not hand off to ${script}: ${this.#reason(err)}`, { cause: err });
    }
    if (this.#identity?.pid === successor.pid && this.#socket !== undefined) return successor;
    // The old router closes our connection once it has answered; we reconnect to the path, now the successor's.
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#onActivate.delete(activated);
        reject(new RackError('router_failed', `the router handed off to pid ${successor.pid}, but no connection to it came up within ${START_TIMEOUT_MS / 1000} s`));
      }, START_TIMEOUT_MS);
      const activated = (identity: RouterIdentity): void => {
        if (identity.pid !== successor.pid) return;
        clearTimeout(timer);
        this.#onActivate.delete(activated);
        resolve();
      };
      this.#onActivate.add(activated);
    });
    return successor;
  }

  /**
   * Resolves once the router has saved and applied this route; rejects (`router_failed`) when it
   * answers that it could not, or gives no answer within CHANGE_TIMEOUT_MS. After a timeout the
   * change may still land later, if it was sent; a change made after it is applied after it.
   */
  setApp(app: string, hosts: string[], upstreams: Upstream[], https?: HttpsPolicy, timeoutMs?: number, maintenance?: Maintenance): Promise<void> {
    const route: AppRoute = { app, hosts: [...hosts], upstreams: upstreams.map(copyUpstream) };
    if (https !== undefined && (https.redirect || https.hsts)) route.https = { redirect: https.redirect, hsts: https.hsts };
    if (timeoutMs !== undefined) route.timeoutMs = timeoutMs;
    if (maintenance !== undefined) route.maintenance = maintenance.page === undefined ? {} : { page: maintenance.page };
    return this.#change('setApp', route);
  }

  removeApp(app: string): Promise<void> {
    return this.#change('removeApp', { app });
  }

  /** Resolves once every change made before it has been answered or has failed (stop waits for this). */
  async flush(): Promise<void> {
    await Promise.allSettled([...this.#changes]);
  }

  /** True once no request to these upstreams is in flight; false on timeout or when the router is unreachable. */
  async waitIdle(upstreams: Upstream[], timeoutMs: number): Promise<boolean> {
    try {
      return await this.#call('waitIdle', { upstreams, timeoutMs }, timeoutMs + WAIT_IDLE_GRACE_MS);
    } catch (err) {
      this.#log.warn({ err: message(err) }, 'router: waitIdle failed');
      return false;
    }
  }

  inFlight(upstream: Upstream): Promise<number> {
    return this.#query('inFlight', { upstream });
  }

  /** The router's table as it routes now (after a restart: what it loaded from its state file). */
  routes(): Promise<AppRoute[]> {
    return this.#query('routes', {});
  }

  ping(): Promise<RouterIdentity> {
    return this.#query('ping', {});
  }

  /** Has the router serve the certificate folder as it is now; resolves to the hosts it has certificates for. */
  reloadCertificates(): Promise<string[]> {
    return this.#query('reloadCertificates', {});
  }

  /** The http-01 answer for `token`, given only for `host`, until removeChallenge. */
  setChallenge(token: string, host: string, keyAuthorization: string): Promise<true> {
    return this.#query('setChallenge', { token, host, keyAuthorization });
  }

  removeChallenge(token: string): Promise<true> {
    return this.#query('removeChallenge', { token });
  }

  #change(method: 'setApp' | 'removeApp', params: MethodTypes['setApp' | 'removeApp']['params']): Promise<void> {
    const what = method === 'setApp' ? `route change for app "${params.app}"` : `removal of app "${params.app}"`;
    const done = this.#call(method, params, CHANGE_TIMEOUT_MS).then(
      () => undefined,
      (err: unknown) => {
        throw new RackError('router_failed', `the router did not apply the ${what}: ${this.#reason(err)}`, { cause: err });
      },
    );
    this.#changes.add(done);
    // Also marks the failure handled: a caller that does not wait must not bring rackd down.
    done.then(
      () => this.#changes.delete(done),
      (err: unknown) => {
        this.#changes.delete(done);
        this.#log.error({ err: message(err), method, app: params.app }, 'router: table change failed');
      },
    );
    return done;
  }

  async #query<M extends 'inFlight' | 'routes' | 'ping' | 'reloadCertificates' | 'setChallenge' | 'removeChallenge'>(method: M, params: MethodTypes[M]['params']): Promise<MethodTypes[M]['result']> {
    try {
      return await this.#call(method, params, QUERY_TIMEOUT_MS);
    } catch (err) {
      throw new RackError('router_failed', `the router did not answer ${method}: ${this.#reason(err)}`, { cause: err });
    }
  }

  /** Why a call failed, in words for the operator. */
  #reason(err: unknown): string {
    if (err instanceof NoAnswer) return `${err.message}; it may be stuck or unable to start (router log: ${this.#opts.logPath})`;
    return message(err);
  }

  /** Queues a call until a connection is up; it stays queued (and is re-sent) until answered or `timeoutMs` passes. */
  #call<M extends Method>(method: M, params: MethodTypes[M]['params'], timeoutMs: number): Promise<MethodTypes[M]['result']> {
    if (this.#phase === 'stopped' || this.#phase === 'closing') return Promise.reject(new Error('the router client is stopped'));
    return this.#send(undefined, method, params, timeoutMs) as Promise<MethodTypes[M]['result']>;
  }

  #send(socket: Socket | undefined, method: Method, params: unknown, timeoutMs: number): Promise<unknown> {
    return this.#calls.send(socket, this.#socket, method, params, timeoutMs);
  }

  /** Connects (spawning a router process when `spawn` and none answers) and makes it the connection. */
  async #connect(spawn: boolean): Promise<RouterIdentity> {
    const deadline = Date.now() + START_TIMEOUT_MS;
    // Only when rackd starts: a router it finds may have been started with other settings.
    let checkSettings = this.#phase === 'running' && this.#identity === undefined;
    let child: SpawnedRouter | undefined;
    let spawnedAt = 0;
    let lastError: unknown;
    /** A router we spawned exited as the loser of the lock: one runs for this socket. */
    let lockHeld = false;
    for (let attempt = 0; ; attempt++) {
      if (!this.#mayConnect()) throw new Error('the router client is stopped');
      const opened = await this.#open().catch((err: unknown) => void (lastError = err));
      if (opened !== undefined) {
        const { socket, identity } = opened;
        if (!this.#mayConnect()) {
          socket.destroy();
          throw new Error('the router client is stopped');
        }
        const mismatch = checkSettings ? routerMismatch(identity, this.#opts, this.#version) : 'none';
        if (mismatch === 'none') {
          this.#activate(socket, identity);
          return identity;
        }
        checkSettings = false; // once: whatever answers next is the one we started or handed off to
        if (mismatch === 'code') {
          // Another rack's router on the right sockets: it hands them to ours, no request fails.
          this.#log.info({ running: identity, script: ROUTER_PROCESS_SCRIPT }, 'router: handing off from a router process of another rack');
          const handedOff = await this.#send(socket, 'handoff', { script: ROUTER_PROCESS_SCRIPT }, HANDOFF_TIMEOUT_MS).then(
            () => true,
            (err: unknown) => {
              this.#log.error({ err: message(err), routerPid: identity.pid }, 'router: the running router could not hand off to ours');
              return false;
            },
          );
          if (!handedOff && identity.protocol === PROTOCOL_VERSION && !socket.destroyed) {
            // It speaks our protocol and serves: better its code than a gap (ours may fail the same way).
            this.#activate(socket, identity);
            return identity;
          }
          if (!handedOff) await this.#askShutdown(socket, identity.pid);
          socket.destroy();
          continue;
        }
        // rackd was restarted with another port or bind: the sockets cannot be kept, that router must go.
        this.#log.warn({ running: identity, wanted: { port: this.#opts.port, bind: this.#opts.bind } }, 'router: replacing a router process with other settings');
        await this.#askShutdown(socket, identity.pid);
        continue;
      }
      if (!spawn) throw lastError;
      if (child?.exitCode === EXIT_LOCKED) lockHeld = true;
      if (child?.exitCode !== undefined && child.exitCode !== EXIT_LOCKED) throw new Error(await whyExited(child, this.#opts));
      if (Date.now() > deadline) {
        // Ours exited as the loser of the lock: a router runs for this socket but does not answer.
        // (Not just the last one spawned: at the deadline it may be one still starting.)
        const what = lockHeld
          ? `the router process already running for ${this.#opts.socketPath} did not answer`
          : `no router process answered on ${this.#opts.socketPath}`;
        // rackd gives up on it: one still starting would otherwise take the socket later, unmanaged.
        if (child?.exitCode === undefined && child?.pid !== undefined) signalRouter(child.pid, 'SIGTERM');
        throw new Error(`${what} within ${START_TIMEOUT_MS / 1000} s (${message(lastError)})`);
      }
      if (child?.exitCode === undefined && child !== undefined) {
        // Ours is still starting up.
      } else if (Date.now() - spawnedAt >= RESPAWN_GAP_MS) {
        child = await spawnRouterProcess(this.#opts);
        spawnedAt = Date.now();
        this.#log.info({ routerPid: child.pid, log: this.#opts.logPath }, 'router: started a router process');
      }
      await sleep(Math.min(10 * 2 ** attempt, 200));
    }
  }

  #mayConnect(): boolean {
    return this.#phase === 'running' || this.#phase === 'flushing';
  }

  /** One connection, handshaken with a ping; not yet the one calls go out on. */
  #open(): Promise<{ socket: Socket; identity: RouterIdentity }> {
    return new Promise((resolve, reject) => {
      const socket = connect(this.#opts.socketPath);
      const fail = (err: Error): void => {
        socket.destroy();
        reject(err);
      };
      socket.once('error', fail);
      socket.once('connect', () => {
        socket.off('error', fail);
        this.#attach(socket);
        this.#send(socket, 'ping', {}, PING_TIMEOUT_MS).then(
          (identity) => resolve({ socket, identity: identity as RouterIdentity }),
          (err: unknown) => {
            socket.destroy();
            reject(err);
          },
        );
      });
    });
  }

  #attach(socket: Socket): void {
    this.#calls.attach(socket, () => this.#onClose(socket));
  }

  /** Makes `socket` the connection: subscribes, then sends every call still unanswered, in order. */
  #activate(socket: Socket, identity: RouterIdentity): void {
    const first = this.#identity === undefined;
    this.#identity = identity;
    this.#socket = socket;
    if (this.#opts.onAccess !== undefined || this.#opts.onSummary !== undefined) {
      this.#send(socket, 'subscribe', {}, PING_TIMEOUT_MS).catch((err: unknown) => this.#log.warn({ err: message(err) }, 'router: subscribe failed'));
    }
    if (this.#accessApps.length > 0) this.#sendAccessApps(socket);
    this.#calls.resend(socket);
    this.#log.info({ routerPid: identity.pid, httpPort: identity.httpPort }, first ? 'router: connected' : 'router: reconnected');
    for (const activated of [...this.#onActivate]) activated(identity);
  }

  /**
   * The apps whose per-request lines the router should send from now on (all others: none, only
   * summaries). Not queued like table changes: the set is sent whole on every new connection.
   */
  setAccessApps(apps: string[]): void {
    this.#accessApps = [...new Set(apps)].sort();
    if (this.#socket !== undefined) this.#sendAccessApps(this.#socket);
  }

  #sendAccessApps(socket: Socket): void {
    this.#send(socket, 'access', { apps: this.#accessApps }, PING_TIMEOUT_MS).catch((err: unknown) => this.#log.warn({ err: message(err) }, 'router: setting the apps that want access lines failed'));
  }

  #onClose(socket: Socket): void {
    if (socket !== this.#socket) return;
    this.#socket = undefined;
    if (!this.#mayConnect()) return;
    if (this.#handingOff) this.#log.info({ routerPid: this.#identity?.pid }, 'router: the router process handed off; connecting to its successor');
    else this.#log.warn({ routerPid: this.#identity?.pid }, 'router: connection to the router process lost; reconnecting');
    this.#handingOff = false;
    void this.#reconnect();
  }

  /** Keeps trying (spawning a router when none answers) until connected or stopped. */
  async #reconnect(): Promise<void> {
    if (this.#reconnecting) return;
    this.#reconnecting = true;
    try {
      while (this.#mayConnect() && this.#socket === undefined) {
        try {
          await this.#connect(true);
        } catch (err) {
          if (this.#mayConnect()) this.#log.error({ err: message(err) }, 'router: cannot reach or start the router process; retrying');
          await sleep(1000);
        }
      }
    } finally {
      this.#reconnecting = false;
    }
  }

  /** Sends `shutdown` and waits for the process to be gone, so its port is free when this resolves. */
  async #askShutdown(socket: Socket, pid: number | undefined): Promise<void> {
    await this.#send(socket, 'shutdown', {}, PING_TIMEOUT_MS).catch(() => undefined); // the answer may lose to the close
    if (pid === undefined || (await waitForExit(pid, EXIT_WAIT_MS))) return;
    this.#log.error({ routerPid: pid }, 'router: router process did not exit after shutdown; killing it');
    signalRouter(pid, 'SIGKILL');
  }

  #close(): void {
    this.#phase = 'stopped';
    const socket = this.#socket;
    this.#socket = undefined;
    socket?.destroy();
    this.#calls.rejectAll('the router client is stopped');
  }
}
