import type { AccessEntry, AppRoute } from './router.js';
import type { SummaryBucket } from './route-summaries.js';
import { MAX_MAINTENANCE_PAGE_BYTES } from './maintenance-page.js';
import { MAX_TIMEOUT_MS, MIN_TIMEOUT_MS } from './route-table.js';
import type { Upstream } from './upstream.js';

/**
 * The router process's control protocol, spoken on its Unix socket as JSON lines.
 *
 *   request   {"id": 7, "method": "setApp", "params": {...}}
 *   response  {"id": 7, "result": ...}  or  {"id": 7, "error": {"code": "...", "message": "..."}}
 *   event     {"event": "summary", "data": {at, span, routes: [{app, upstream, requests, bytesIn, bytesOut, latency}]}}
 *   event     {"event": "access", "data": {app, method, path, host, status, ms, ip}}
 *
 * Events go to the connections that sent `subscribe`: a summary per 10 s bucket in which an app had
 * requests (held while nobody subscribes), and an access line per request only for the apps named
 * by the last `access` request (protocol 4; a router of protocol 3 sent a line per request of every app).
 *
 * Responses may come out of order (a waitIdle can outlast later requests); table changes are
 * saved to the state file, then applied, in the order they arrive, and acknowledged once applied.
 * Error codes: `bad_request` (the request is wrong), `save_failed` (the state file could not be
 * written, say on a full disk: the change was not applied), `handoff_failed`, `internal`.
 * Every request is idempotent, so a client may send again whatever was not answered before a
 * connection dropped.
 */
export const PROTOCOL_VERSION = 4;

/** The first protocol whose routers answer `handoff`: an older one can only be shut down and replaced. */
export const HANDOFF_PROTOCOL = 3;

/** router-process.js exits with this when another router owns the socket: it lost a spawning race. */
export const EXIT_LOCKED = 3;
/** …and with this when something else holds the HTTP port. */
export const EXIT_PORT_IN_USE = 4;

/** A line longer than this is not a request of ours; the connection is dropped rather than buffered. */
export const MAX_LINE_BYTES = 1024 * 1024;

/** What `ping` answers: enough for a client to know whom it talks to and where it serves. */
export interface RouterIdentity {
  pid: number;
  httpPort: number;
  /** 0 when the router has no HTTPS listener. */
  httpsPort: number;
  bind: string;
  protocol: number;
  startedAt: string;
  /** rack's version (package.json beside the dist folder it runs from; 'unknown' without one). */
  version?: string;
  /** The router-process.js it runs: a router of another install keeps its code until handed off. */
  script?: string;
}

export interface MethodTypes {
  ping: { params: Record<string, never>; result: RouterIdentity };
  setApp: { params: AppRoute; result: true };
  removeApp: { params: { app: string }; result: true };
  waitIdle: { params: { upstreams: Upstream[]; timeoutMs: number }; result: boolean };
  inFlight: { params: { upstream: Upstream }; result: number };
  routes: { params: Record<string, never>; result: AppRoute[] };
  subscribe: { params: Record<string, never>; result: true };
  /** The apps whose per-request access lines subscribers want, replacing the set given before. */
  access: { params: { apps: string[] }; result: true };
  /** Reads the certificate folder again; answers the hosts it now has certificates for. */
  reloadCertificates: { params: Record<string, never>; result: string[] };
  setChallenge: { params: { token: string; host: string; keyAuthorization: string }; result: true };
  removeChallenge: { params: { token: string }; result: true };
  shutdown: { params: Record<string, never>; result: true };
  /**
   * Starts `script` (a router-process.js, maybe another version's) as this router's successor on
   * the same listening sockets; answers the successor's identity once it serves and this router
   * has stopped accepting. This router then closes its control connections, lets its client
   * connections finish, and exits. Error code `handoff_failed`: this router serves on.
   */
  handoff: { params: { script: string }; result: RouterIdentity };
}

export type Method = keyof MethodTypes;

export interface RequestMessage {
  id: number;
  method: string;
  params?: unknown;
}

export interface ResponseMessage {
  id: number;
  result?: unknown;
  error?: { code: string; message: string };
}

export type EventMessage = { event: 'access'; data: AccessEntry } | { event: 'summary'; data: SummaryBucket };

/** Thrown by the checks below; the server answers it as `{error: {code: 'bad_request'}}`. */
export class ProtocolError extends Error {
  readonly code = 'bad_request';
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function field(params: unknown, name: string): unknown {
  if (!isObject(params)) throw new ProtocolError('params must be an object');
  return params[name];
}

function nonEmptyString(v: unknown, what: string): string {
  if (typeof v !== 'string' || v === '' || v.length > 1024) throw new ProtocolError(`${what} must be a non-empty string`);
  return v;
}

export function checkUpstream(v: unknown): Upstream {
  if (!isObject(v)) throw new ProtocolError('an upstream must be {host, port} or {socketPath}');
  if ('socketPath' in v) {
    const socketPath = nonEmptyString(v['socketPath'], 'upstream socketPath');
    if (!socketPath.startsWith('/')) throw new ProtocolError('upstream socketPath must be absolute');
    return { socketPath };
  }
  const host = nonEmptyString(v['host'], 'upstream host');
  const port = v['port'];
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new ProtocolError('upstream port must be an integer 1-65535');
  }
  return { host, port };
}

function upstreamList(v: unknown): Upstream[] {
  if (!Array.isArray(v)) throw new ProtocolError('upstreams must be an array');
  return v.map(checkUpstream);
}

/** One app's route as a request or the state file carries it; also used to read that file back. */
export function checkAppRoute(v: unknown): AppRoute {
  const app = nonEmptyString(field(v, 'app'), 'app');
  const hosts = field(v, 'hosts');
  if (!Array.isArray(hosts) || !hosts.every((h): h is string => typeof h === 'string')) {
    throw new ProtocolError('hosts must be an array of strings');
  }
  const route: AppRoute = { app, hosts, upstreams: upstreamList(field(v, 'upstreams')) };
  const https = field(v, 'https');
  if (https !== undefined) {
    if (!isObject(https) || typeof https['redirect'] !== 'boolean' || typeof https['hsts'] !== 'boolean') {
      throw new ProtocolError('https must be {redirect: boolean, hsts: boolean}');
    }
    route.https = { redirect: https['redirect'], hsts: https['hsts'] };
  }
  const timeoutMs = field(v, 'timeoutMs');
  if (timeoutMs !== undefined) {
    if (typeof timeoutMs !== 'number' || !Number.isInteger(timeoutMs) || timeoutMs < MIN_TIMEOUT_MS || timeoutMs > MAX_TIMEOUT_MS) {
      throw new ProtocolError(`timeoutMs must be an integer ${MIN_TIMEOUT_MS}-${MAX_TIMEOUT_MS}`);
    }
    route.timeoutMs = timeoutMs;
  }
  const maintenance = field(v, 'maintenance');
  if (maintenance !== undefined) {
    const page = isObject(maintenance) ? maintenance['page'] : null;
    if (page !== undefined && (typeof page !== 'string' || Buffer.byteLength(page) > MAX_MAINTENANCE_PAGE_BYTES)) {
      throw new ProtocolError(`maintenance must be {page?: string of at most ${MAX_MAINTENANCE_PAGE_BYTES} bytes}`);
    }
    route.maintenance = page === undefined ? {} : { page };
  }
  return route;
}

export function checkChallenge(v: unknown): { token: string; host: string; keyAuthorization: string } {
  const token = nonEmptyString(field(v, 'token'), 'token');
  if (!/^[A-Za-z0-9_-]+$/.test(token)) throw new ProtocolError('token must be base64url');
  return { token, host: nonEmptyString(field(v, 'host'), 'host'), keyAuthorization: nonEmptyString(field(v, 'keyAuthorization'), 'keyAuthorization') };
}

export function checkToken(v: unknown): { token: string } {
  return { token: nonEmptyString(field(v, 'token'), 'token') };
}

export function checkRemoveApp(v: unknown): { app: string } {
  return { app: nonEmptyString(field(v, 'app'), 'app') };
}

export function checkWaitIdle(v: unknown): { upstreams: Upstream[]; timeoutMs: number } {
  const timeoutMs = field(v, 'timeoutMs');
  if (typeof timeoutMs !== 'number' || !Number.isFinite(timeoutMs) || timeoutMs < 0) {
    throw new ProtocolError('timeoutMs must be a number >= 0');
  }
  return { upstreams: upstreamList(field(v, 'upstreams')), timeoutMs };
}

export function checkHandoff(v: unknown): { script: string } {
  const script = nonEmptyString(field(v, 'script'), 'script');
  if (!script.startsWith('/') || !script.endsWith('.js')) throw new ProtocolError('script must be an absolute path to a .js file');
  return { script };
}

/** At most this many apps in one `access` set: more is not a set of people following logs. */
const MAX_ACCESS_APPS = 10_000;

export function checkAccessApps(v: unknown): { apps: string[] } {
  const apps = field(v, 'apps');
  if (!Array.isArray(apps) || apps.length > MAX_ACCESS_APPS) throw new ProtocolError(`apps must be an array of at most ${MAX_ACCESS_APPS} names`);
  return { apps: apps.map((a) => nonEmptyString(a, 'app')) };
}

export function checkInFlight(v: unknown): { upstream: Upstream } {
  return { upstream: checkUpstream(field(v, 'upstream')) };
}

/** Parses one line from the socket; undefined for anything that is not one of the three messages. */
export function parseMessage(line: string): RequestMessage | ResponseMessage | EventMessage | undefined {
  let msg: unknown;
  try {
    msg = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (!isObject(msg)) return undefined;
  if ((msg['event'] === 'access' || msg['event'] === 'summary') && isObject(msg['data'])) return msg as unknown as EventMessage;
  if (typeof msg['id'] !== 'number') return undefined;
  if (typeof msg['method'] === 'string') return msg as unknown as RequestMessage;
  return msg as unknown as ResponseMessage;
}

export function encode(msg: RequestMessage | ResponseMessage | EventMessage): string {
  return `${JSON.stringify(msg)}\n`;
}
