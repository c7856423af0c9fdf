import { readFile, rm } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { loadConfig } from '../config.js';
import { RotatingLogFile } from '../rotating-log-file.js';
import { writeFileAtomic } from '../atomic-file.js';
import { installedVersion } from './rack-version.js';
import { loadRoutes, pidFilePath } from './route-state-file.js';
import { Router } from './router.js';
import { RouterControlServer } from './router-control-server.js';
import { announceReady, HandoffError, isSuccessor, receiveHandles, startSuccessor, type Inherited, type Successor } from './router-handoff.js';
import { acquireRouterLock, inheritedLock } from './router-lock.js';
import { EXIT_LOCKED, EXIT_PORT_IN_USE, PROTOCOL_VERSION, type RouterIdentity } from './router-protocol.js';
import { TableChanges } from './table-changes.js';
import { RouterWorkers } from './router-workers.js';

/**
 * The router as its own long-lived process (`node dist/daemon/router/router-process.js`), so apps
 * keep answering while rackd is stopped, restarted or upgraded, as kamal-proxy does. rackd spawns it
 * detached and talks to it over a Unix socket (router-client.ts); it owns its table and keeps it in a
 * state file, so even a router that crashed comes back serving every route before rackd says a word.
 *
 * Environment:
 *   RACK_ROUTER_SOCKET  control socket path (mode 0600)                         required
 *   RACK_ROUTER_STATE   state file: the table, app → {hosts, upstreams}          required
 *   RACK_HTTP_PORT      HTTP port (0: any free one)                              default 8080
 *   RACK_HTTPS_PORT     HTTPS port (0: any free one; `off`: no TLS listener)     default 8443
 *   RACK_ROUTER_CERTS   folder of `HOST.pem` files (chain, then key) served by SNI; required with HTTPS
 *   RACK_BIND           address to listen on                                     default 0.0.0.0
 *   RACK_ROUTER_LOG     its JSON log, rotated by size (rotating-log-file.ts)     default stdout
 *   RACK_LOG_LEVEL      pino level of that log                                   default info
 *   RACK_ROUTER_PROCESSES  processes serving the listeners (this one and its workers,
 *                       router-workers.ts); 1: this one alone                     default 1
 *
 * Beside the state file it writes `RACK_ROUTER_STATE.pid`: {pid, httpPort, bind, socket, startedAt},
 * for operators and scripts; clients ask `ping` instead.
 *
 * Started by a router handing off (RACK_ROUTER_HANDOFF=1, with an IPC channel: router-handoff.ts), it
 * takes that router's listening sockets and lock instead of binding its own, and its table from the
 * state file, which the old router has flushed and stops writing.
 *
 * Exit codes: 0 stopped (SIGTERM, SIGINT, a `shutdown` request, or handed off), 1 failed, 3 another
 * router owns this socket (a lost spawning race: the client connects to the winner), 4 the HTTP port is taken.
 */
/** A stop that hangs (a stuck write) must still end the process, or the port stays taken. */
const STOP_DEADLINE_MS = 10_000;
/** After a handoff, open connections (tunnels, long requests) get this long to end on their own. */
const HANDED_OFF_DRAIN_MS = 30_000;

/** How often closed summary buckets are looked for: a bucket reaches rackd within this of its end. */
const SUMMARY_CHECK_MS = 1000;

const SCRIPT = fileURLToPath(import.meta.url);

/**
 * RACK_ROUTER_PROCESSES: a whole number from 1 to 64, or `cores`. One process is the default: on
 * the 2-core machine measured, a second one cost more CPU per request than it gained (the load
 * generator and the apps want those cores too, and each process wakes for fewer events at a time).
 */
function processCount(): number {
  const v = process.env['RACK_ROUTER_PROCESSES'];
  if (v === undefined || v === '') return 1;
  if (v === 'cores') return availableParallelism();
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 64) throw new Error(`RACK_ROUTER_PROCESSES must be a whole number from 1 to 64 or cores, not ${JSON.stringify(v.slice(0, 20))}`);
  return n;
}

function required(name: string): string {
  const v = process.env[name];
  if (v === undefined || v === '') throw new Error(`${name} must be set`);
  return resolve(v);
}

async function main(): Promise<void> {
  const socketPath = required('RACK_ROUTER_SOCKET');
  const statePath = required('RACK_ROUTER_STATE');
  const pidPath = pidFilePath(statePath);
  const { httpPort: port, httpsPort, bind } = loadConfig(process.env, '');
  const certDir = httpsPort === undefined ? undefined : required('RACK_ROUTER_CERTS');
  const logPath = process.env['RACK_ROUTER_LOG'];
  const processes = processCount();
  // It runs for months: its log must rotate, which its stdout (a file rackd opened for it) cannot.
  const logger = pino(
    { level: process.env['RACK_LOG_LEVEL'] ?? 'info', base: { svc: 'rack-router', pid: process.pid } },
    logPath === undefined || logPath === '' ? undefined : new RotatingLogFile(resolve(logPath)),
  );
  process.on('uncaughtException', (err) => {
    logger.fatal({ err }, 'router: uncaught exception');
    process.exit(1);
  });

  // A successor is handed the lock with the listeners: the port and the lock are never free.
  const inherited: Inherited | undefined = isSuccessor() ? await receiveHandles() : undefined;
  const lock = inherited?.lock !== undefined ? inheritedLock(inherited.lock) : await acquireRouterLock(socketPath);
  if (lock === undefined) {
    logger.info({ socket: socketPath }, 'router: another router process owns this socket; exiting');
    process.exit(EXIT_LOCKED);
  }

  // The table goes in before the port opens: the first request after a restart already routes.
  const loaded = await loadRoutes(statePath, logger);
  let control: RouterControlServer | undefined;
  const router = new Router({
    bind,
    port,
    https: httpsPort === undefined || certDir === undefined ? undefined : { port: httpsPort, certDir },
    inherited: inherited?.listeners,
    logger,
    onAccess: (entry) => control?.broadcast(processes > 1 ? { ...entry, pid: process.pid } : entry),
    accessLines: 'asked',
  });
  for (const r of loaded) router.setApp(r.app, r.hosts, r.upstreams, r.https, r.timeoutMs, r.maintenance);
  let httpPort: number;
  try {
    httpPort = await router.start();
  } catch (err) {
    const inUse = (err as NodeJS.ErrnoException).code === 'EADDRINUSE';
    const which = (err as { port?: number }).port === httpsPort && httpsPort !== port ? 'HTTPS' : 'HTTP';
    logger.error({ err: String(err), bind, port, httpsPort }, inUse ? `router: ${which} port already in use` : 'router: cannot listen');
    process.exit(inUse ? EXIT_PORT_IN_USE : 1);
  }
  // Started once this process serves: they are handed its listeners.
  const listening = router.listeners();
  const workers =
    processes > 1 && listening !== undefined
      ? new RouterWorkers({
          count: processes - 1,
          listeners: listening,
          routes: () => router.routes(),
          onAccess: (entry) => control?.broadcast(entry),
          onSummaries: (buckets) => {
            for (const bucket of buckets) router.summaries.add(bucket);
          },
          logger,
        })
      : undefined;
  await workers?.start();
  const identity: RouterIdentity = {
    pid: process.pid,
    httpPort,
    httpsPort: router.httpsPort,
    bind,
    protocol: PROTOCOL_VERSION,
    startedAt: new Date().toISOString(),
    version: installedVersion(),
    script: SCRIPT,
  };

  const changes = new TableChanges(statePath, router);
  let stopping: Promise<void> | undefined;
  const stop = (why: string): Promise<void> =>
    (stopping ??= (async () => {
      logger.info({ why }, 'router: stopping');
      setTimeout(() => process.exit(1), STOP_DEADLINE_MS).unref();
      try {
        // The workers' summaries are merged into this process's first; then the bucket under way
        // goes too: its requests are counted nowhere else.
        await workers?.stop();
        sendAllSummaries();
        await control?.stop();
        await router.stop();
        await changes.idle();
        // Only our own pid file: a successor may already have written its own.
        const owner = await readFile(pidPath, 'utf8').then((t) => (JSON.parse(t) as { pid?: unknown }).pid, () => undefined);
        if (owner === process.pid) await rm(pidPath, { force: true });
        await lock.release();
        logger.info('router: stopped');
        process.exit(0);
      } catch (err) {
        logger.error({ err }, 'router: error while stopping');
        process.exit(1);
      }
    })());

  let successor: Successor | undefined;
  const handoff = async (script: string): Promise<RouterIdentity> => {
    if (stopping !== undefined) throw new HandoffError('the router is stopping');
    const listeners = router.listeners();
    if (listeners === undefined) throw new HandoffError('the router is not listening');
    await changes.hold();
    try {
      successor = await startSuccessor(script, { listeners, lock: lock.server }, logger);
    } catch (err) {
      logger.error({ err: String(err), script }, 'router: handoff failed; serving on');
      changes.resume();
      throw err;
    }
    // Stops accepting now; the wait for open connections is handedOff's.
    const own = router.handOff(HANDED_OFF_DRAIN_MS);
    const theirs = await workers?.handOff(HANDED_OFF_DRAIN_MS);
    drained = Promise.all([own, theirs?.drained]).then(() => undefined);
    return successor.identity;
  };
  let drained: Promise<void> | undefined;
  const handedOff = (): void =>
    void (stopping ??= (async () => {
      logger.info({ successor: successor?.identity.pid }, 'router: handed off; finishing open connections');
      setTimeout(() => process.exit(1), HANDED_OFF_DRAIN_MS + STOP_DEADLINE_MS).unref();
      try {
        // Clients reconnect to the successor and send again what this router left unanswered. The
        // summaries so far go first (the successor counts from its start); requests this router
        // still finishes after this are not counted.
        sendAllSummaries();
        await control?.stop();
        successor?.release();
        await drained;
        logger.info('router: handed off and stopped');
        process.exit(0);
      } catch (err) {
        logger.error({ err }, 'router: error while stopping after a handoff');
        process.exit(1);
      }
    })());

  const sendSummaries = (): void => {
    if (control === undefined || !control.subscribed) return;
    // Workers send theirs within SUMMARY_CHECK_MS of a bucket's end (and the IPC adds a little).
    for (const bucket of router.summaries.take(workers === undefined ? 0 : 3 * SUMMARY_CHECK_MS)) control.send({ event: 'summary', data: bucket });
  };
  const sendAllSummaries = (): void => {
    for (const bucket of router.summaries.closeAll()) control?.send({ event: 'summary', data: bucket });
  };
  const summaryTimer = setInterval(sendSummaries, SUMMARY_CHECK_MS);
  summaryTimer.unref();

  control = new RouterControlServer(socketPath, {
    router,
    identity: () => identity,
    // Saved and applied here, then applied by every worker, before the change is answered.
    change: async (c) => {
      await changes.apply(c);
      await workers?.change(c);
    },
    workers,
    shutdown: () => void stop('shutdown request'),
    handoff,
    handedOff,
    subscribed: () => setImmediate(sendSummaries),
    logger,
  });
  await control.start();
  await writeFileAtomic(pidPath, `${JSON.stringify({ pid: process.pid, httpPort, httpsPort: router.httpsPort, bind, socket: socketPath, startedAt: identity.startedAt })}\n`);

  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
  // Detached from rackd's session, a hang-up is not ours to act on; without a handler it would kill us.
  process.on('SIGHUP', () => logger.info('router: SIGHUP ignored'));
  logger.info({ httpPort, httpsPort: router.httpsPort, bind, socket: socketPath, apps: loaded.length, inherited: inherited !== undefined, version: identity.version }, 'router: process ready');
  if (inherited !== undefined) announceReady(identity);
}

main().catch((err: unknown) => {
  process.stderr.write(`rack router: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
