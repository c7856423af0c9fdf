import type { Server } from 'node:net';
import { pino } from 'pino';
import { loadConfig } from '../config.js';
import type { SummaryBucket } from './route-summaries.js';
import { Router, type Listeners } from './router.js';
import { keepEarlyConnections } from './router-handoff.js';
import type { FromWorker, ToWorker, WorkerCall } from './router-workers.js';

/**
 * One worker of a router process (router-workers.ts): a Router on the listeners the primary
 * passed, with the table, access wants and challenges the primary gives it. It owns no file, no
 * lock and no control socket. It ends when told to, on SIGTERM (finishing its connections, as after
 * a handoff; the primary starts another), and when the primary goes: its listeners close at once,
 * so a router started next can bind the ports.
 *
 * Environment: the primary's (RACK_HTTP_PORT, RACK_HTTPS_PORT, RACK_ROUTER_CERTS, RACK_BIND,
 * RACK_LOG_LEVEL). It logs JSON lines to its stdout, the primary's, which is the router's log file.
 */
/** Open connections get this long to end once the worker stops accepting (as a handed-off router's do). */
const DRAIN_MS = 30_000;
/** How often closed summary buckets go to the primary. */
const SUMMARY_CHECK_MS = 1000;

const logger = pino({ level: process.env['RACK_LOG_LEVEL'] ?? 'info', base: { svc: 'rack-router', pid: process.pid, worker: true } });
const handles = new Map<'http' | 'https', Server>();
let router: Router | undefined;
let ending = false;

/** Messages on their way to the primary: the process exits only once they are written. */
let sending = 0;
let exitCode: number | undefined;

function send(msg: FromWorker): void {
  // Gone with the primary: nothing to tell.
  if (!process.connected || process.send === undefined) return;
  sending++;
  process.send(msg, undefined, undefined, () => {
    sending--;
    if (exitCode !== undefined && sending === 0) process.exit(exitCode);
  });
}

/** Exits once what was sent to the primary (the answer to a stop, its summaries) is written. */
function exitAfterSends(code: number): void {
  exitCode = code;
  if (sending === 0 || !process.connected) process.exit(code);
}

function sendSummaries(buckets: SummaryBucket[]): void {
  if (buckets.length > 0) send({ type: 'summaries', buckets });
}

function start(init: Extract<ToWorker, { type: 'init' }>): void {
  const http = handles.get('http');
  if (http === undefined) throw new Error('the primary sent no HTTP listener');
  const https = handles.get('https');
  const listeners: Listeners = https === undefined ? { http } : { http, https };
  const { httpPort: port, httpsPort, bind } = loadConfig(process.env, '');
  const certDir = process.env['RACK_ROUTER_CERTS'];
  const pid = process.pid;
  const r = new Router({
    bind,
    port,
    https: httpsPort === undefined || certDir === undefined || certDir === '' ? undefined : { port: httpsPort, certDir },
    inherited: listeners,
    logger,
    onAccess: (entry) => send({ type: 'access', entry: { ...entry, pid } }),
    accessLines: 'asked',
  });
  for (const route of init.routes) r.setApp(route.app, route.hosts, route.upstreams, route.https, route.timeoutMs);
  r.setAccessApps(init.accessApps);
  for (const c of init.challenges) r.setChallenge(c.token, c.host, c.keyAuthorization);
  router = r;
  r.start().then(
    () => send({ type: 'ready' }),
    (err: unknown) => {
      logger.error({ err: String(err) }, 'router worker: cannot serve the listeners');
      process.exit(1);
    },
  );
  setInterval(() => sendSummaries(r.summaries.take()), SUMMARY_CHECK_MS).unref();
}

/** Stops accepting now; exits once the connections have ended (or the bound cut them). */
function drainAndExit(why: string): SummaryBucket[] {
  if (ending) return [];
  ending = true;
  logger.info({ why }, 'router worker: stopping');
  const r = router;
  if (r === undefined) process.exit(0);
  const drained = r.handOff(DRAIN_MS);
  const buckets = r.summaries.closeAll();
  drained.then(
    () => setImmediate(() => exitAfterSends(0)),
    () => exitAfterSends(1),
  );
  return buckets;
}

/** Runs one of the primary's calls. Before `init` there is nothing to change: init brings the table as it is by then. */
async function answer(call: WorkerCall): Promise<unknown> {
  const r = router;
  switch (call.op) {
    case 'change':
      if (call.change.method === 'setApp') {
        const c = call.change.route;
        r?.setApp(c.app, c.hosts, c.upstreams, c.https, c.timeoutMs);
      } else {
        r?.removeApp(call.change.app);
      }
      return true;
    case 'access':
      r?.setAccessApps(call.apps);
      return true;
    case 'setChallenge':
      r?.setChallenge(call.token, call.host, call.keyAuthorization);
      return true;
    case 'removeChallenge':
      r?.removeChallenge(call.token);
      return true;
    case 'reloadCertificates':
      return r?.reloadCertificates();
    case 'waitIdle':
      return r === undefined ? true : r.waitIdle(call.upstreams, call.timeoutMs);
    case 'inFlight':
      return r?.inFlight(call.upstream) ?? 0;
    case 'handOff':
      return drainAndExit('the router handed off');
    case 'stop': {
      ending = true;
      const buckets = r?.summaries.closeAll() ?? [];
      // After the answer is on its way: the primary waits for this process's exit.
      setImmediate(() => {
        (r?.stop() ?? Promise.resolve()).then(
          () => exitAfterSends(0),
          () => exitAfterSends(1),
        );
      });
      return buckets;
    }
  }
}

process.on('message', (msg: ToWorker, handle: unknown) => {
  if (msg.type === 'handle') {
    const server = handle as Server;
    keepEarlyConnections(server);
    handles.set(msg.which, server);
  } else if (msg.type === 'init') {
    start(msg);
  } else if (msg.type === 'call') {
    answer(msg.call).then(
      (value) => send({ type: 'result', id: msg.id, value }),
      (err: unknown) => {
        logger.error({ err, op: msg.call.op }, 'router worker: call failed');
        send({ type: 'result', id: msg.id, value: undefined });
      },
    );
  }
});
// The primary is gone (stopped, crashed, killed): its successor needs the ports, so stop accepting.
process.on('disconnect', () => void drainAndExit('the primary router process is gone'));
process.on('SIGTERM', () => sendSummaries(drainAndExit('SIGTERM')));
process.on('SIGINT', () => sendSummaries(drainAndExit('SIGINT')));
process.on('SIGHUP', () => logger.info('router worker: SIGHUP ignored'));
process.on('uncaughtException', (err) => {
  logger.fatal({ err }, 'router worker: uncaught exception');
  process.exit(1);
});
send({ type: 'waiting' });
