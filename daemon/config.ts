import { cpus, homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import type { ThrottleLimit } from './access/login-throttle.js';
import type { MaxStartups } from './ssh/login-gate.js';
import { DEFAULT_LOG_KEEP, parseLogKeep, type LogKeep } from './logs/log-keep.js';
import { RackError } from './rack-error.js';
import { parseSubnetRange } from './runtime/subnets.js';

/** Everything rackd reads from its environment, parsed once at start (12-factor). */
export interface RackConfig {
  home: string;
  sshPort: number;
  httpPort: number;
  /** RACK_HTTPS_PORT: the router's TLS listener (default 8443); undefined when set to `off`. */
  httpsPort: number | undefined;
  /** RACK_ACME_DIRECTORY: the ACME server certs:auto orders from (default Let's Encrypt). */
  acmeDirectory: string;
  /** RACK_ACME_EMAIL: the contact on the ACME account (expiry notices), if any. */
  acmeEmail: string | undefined;
  /** RACK_CONSOLE_ACME=on: also keep a certificate for RACK_CONSOLE_HOST. */
  consoleAcme: boolean;
  domain: string;
  /** RACK_CONSOLE_HOST: the host name the router forwards to rackd itself (API, git over HTTP, console). */
  consoleHost: string;
  /** RACK_SSH_HOST: the host name users reach rack's ssh endpoint by, shown in git remotes. */
  sshHost: string;
  bind: string;
  adminKeysFile: string | undefined;
  /** Folder holding `buildpacks/`, `stack/`, `hooks/`, `scripts/` (the installed rack). */
  installDir: string;
  buildTimeoutMs: number;
  /** RACK_LOG_KEEP (`7d,256m`): how long and how much of each app's output the log store keeps. */
  logKeep: LogKeep;
  keepReleases: number;
  /** An ssh connection not authenticated by then is closed (OpenSSH's LoginGraceTime). */
  sshLoginGraceMs: number;
  /** Unauthenticated ssh connections open at once: random early drop past start, all dropped at full (OpenSSH's MaxStartups). */
  sshMaxStartups: MaxStartups;
  /** Unauthenticated ssh connections from one address (OpenSSH's PerSourceMaxStartups). */
  sshPerSourceMaxStartups: number;
  /** RACK_SSH_KEEPALIVE: seconds of silence before a logged-in ssh client is asked whether it is there. */
  sshKeepaliveMs: number;
  /** Failed logins an address may have within a window before it is turned away for a while. */
  loginThrottle: ThrottleLimit;
  /** Processes an app may run in all, over every type (ps:scale refuses more). */
  maxProcesses: number;
  /** Keep app containers off the host's own ports with a firewall rule (runtime/host-guard.ts). */
  hostGuard: boolean;
  /** The IPv4 range app networks are sliced from, a /26 each. */
  appSubnets: string;
  /** RACK_MAX_PUSH: the largest pack a push may send, in bytes (git's receive.maxInputSize). */
  maxPushBytes: number;
  /** RACK_PUSH_IDLE_TIMEOUT: a push whose client sends nothing this long while git waits for its pack is ended. */
  pushIdleTimeoutMs: number;
  /** RACK_STOP_GRACE: on SIGTERM, how long pushes and rollouts under way may take to finish before rackd stops anyway. */
  stopGraceMs: number;
  /** Images a Dockerfile may start FROM besides the stack image (RACK_DOCKER_BASES). */
  dockerBases: string[];
  /**
   * RACK_DISK_LIMIT: the writable space of each process, `run`, release phase and build container
   * that names none (`ps:limit TYPE disk=`), in bytes (default 2g); undefined when set to `off`.
   */
  diskLimit: number | undefined;
  /** Memory limit of a build container or `docker build`, in bytes (RACK_BUILD_MEMORY). */
  buildMemory: number;
  /** Processes a build may run at once: a buildpack build's container, all of a `docker build`'s steps (RACK_BUILD_PIDS). */
  buildPids: number;
  /**
   * RACK_FETCH_ALLOW: host names a build may fetch buildpacks from although they resolve to a
   * loopback, link-local or private address (lower-case); every other such address is refused.
   */
  fetchAllow: string[];
  /** Builds running at once over all apps (RACK_BUILD_CONCURRENCY), one per app at most. */
  buildConcurrency: number;
  /** After this long a build moves to the long-build slots, freeing its slot (RACK_BUILD_LONG_AFTER). */
  buildLongAfterMs: number;
  /** RACK_BACKUP_DIR: where add-on backups are kept (default RACK_HOME/backups). */
  backupDir: string;
  /** RACK_BACKUP_INTERVAL: seconds between an add-on's scheduled backups (default a day). */
  backupIntervalMs: number;
  /** RACK_BACKUP_KEEP: scheduled backups kept per add-on (the rest are the user's to remove). */
  backupKeep: number;
  /** RACK_BACKUP_TIMEOUT: seconds one add-on backup, restore, import or export may run (default an hour). */
  backupDeadlineMs: number;
  /** RACK_CRON_TIMEOUT: seconds one run of a scheduled job may take before it is killed (default an hour). */
  cronTimeoutMs: number;
  /**
   * RACK_RUNTIME: `docker` (one machine, the default) or `swarm` (app processes as services on the
   * workers of the Swarm that rackd's engine manages; docs/SWARM.md).
   */
  runtime: 'docker' | 'swarm';
  /** RACK_REGISTRY_PORT: where the swarm runtime's image registry listens on the manager (default 5000). */
  registryPort: number;
}

type Env = Record<string, string | undefined>;

function runtimeKind(raw: string | undefined): RackConfig['runtime'] {
  if (raw === undefined || raw === '' || raw === 'docker') return 'docker';
  if (raw === 'swarm') return 'swarm';
  throw new RackError('bad_config', `RACK_RUNTIME must be docker or swarm, got "${raw.slice(0, 40)}"`);
}

const LETS_ENCRYPT = 'https://acme-v02.api.letsencrypt.org/directory';

function port(env: Env, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  // Port 0 lets tests ask the kernel for a free port.
  if (!/^\d{1,5}$/.test(raw) || Number(raw) > 65535) {
    throw new RackError('bad_config', `${name} must be a TCP port (0-65535), got "${raw}"`);
  }
  return Number(raw);
}

function positiveInt(env: Env, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!/^\d{1,9}$/.test(raw) || Number(raw) < 1) {
    throw new RackError('bad_config', `${name} must be a positive integer, got "${raw}"`);
  }
  return Number(raw);
}

/** `FAILURES/SECONDS`, e.g. `10/60`. */
function throttleLimit(env: Env, name: string, fallback: ThrottleLimit): ThrottleLimit {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const m = /^(\d{1,6})\/(\d{1,6})$/.exec(raw);
  if (!m || Number(m[1]) < 1 || Number(m[2]) < 1) {
    throw new RackError('bad_config', `${name} must be FAILURES/SECONDS like 10/60, got "${raw}"`);
  }
  return { failures: Number(m[1]), windowMs: Number(m[2]) * 1000 };
}

/** OpenSSH's MaxStartups: `N` (a hard cap) or `START:RATE:FULL`, e.g. `16:30:64`. */
function maxStartups(env: Env, name: string, fallback: MaxStartups): MaxStartups {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (/^\d{1,6}$/.test(raw) && Number(raw) >= 1) return { start: Number(raw), rate: 100, full: Number(raw) };
  const m = /^(\d{1,6}):(\d{1,3}):(\d{1,6})$/.exec(raw);
  const [start, rate, full] = m ? [Number(m[1]), Number(m[2]), Number(m[3])] : [0, 0, 0];
  if (!m || start < 1 || rate > 100 || full < start) {
    throw new RackError('bad_config', `${name} must be N or START:RATE:FULL like 16:30:64 (START <= FULL, RATE a percentage), got "${raw.slice(0, 40)}"`);
  }
  return { start, rate, full };
}

function onOff(env: Env, name: string, fallback: boolean): boolean {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (raw !== 'on' && raw !== 'off') throw new RackError('bad_config', `${name} must be on or off, got "${raw.slice(0, 20)}"`);
  return raw === 'on';
}

const SIZE_UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

/** A size such as `512m`, `1g`, `100k` or plain bytes. */
export function parseSize(name: string, raw: string): number {
  const match = /^(\d{1,12})([kmg]?)b?$/i.exec(raw.trim());
  const bytes = match ? Number(match[1]) * SIZE_UNITS[match[2]!.toLowerCase()]! : NaN;
  if (!Number.isSafeInteger(bytes) || bytes < 1) {
    throw new RackError('bad_config', `${name} must be a size such as 100m or 1g, got "${raw}"`);
  }
  return bytes;
}

/** A byte size as Docker writes it: `512m`, `2g`, `1073741824`. */
function byteSize(env: Env, name: string, fallback: string, min: number): number {
  const raw = env[name] === undefined || env[name] === '' ? fallback : env[name]!;
  const m = /^(\d{1,12})([bkmg]?)$/i.exec(raw.trim());
  const bytes = m ? Number(m[1]) * SIZE_UNITS[m[2]!.toLowerCase()]! : NaN;
  if (!(bytes >= min)) {
    throw new RackError('bad_config', `${name} must be a size of at least ${Math.round(min / 1024 ** 2)}m (e.g. 2g), got "${raw}"`);
  }
  return bytes;
}

/** A size for people: 1 MB, 512 MB, 1.5 GB. */
export function formatSize(bytes: number): string {
  for (const [unit, size] of [['GB', 1024 ** 3], ['MB', 1024 ** 2], ['KB', 1024]] as const) {
    if (bytes >= size) return `${Number((bytes / size).toFixed(1))} ${unit}`;
  }
  return `${bytes} bytes`;
}

/**
 * RACK_DOCKER_BASES: comma-separated image references (`debian:bookworm`, `node`, `registry:5000/x/y:1`).
 * rack's own app images (`rack/...`) can never be bases: that is what keeps one app's Dockerfile
 * from building on another app's image.
 */
export function parseDockerBases(raw: string | undefined): string[] {
  if (raw === undefined || raw.trim() === '') return [];
  const refs = raw.split(',').map((r) => r.trim()).filter((r) => r !== '');
  for (const ref of refs) {
    if (!IMAGE_REF.test(ref)) throw new RackError('bad_config', `RACK_DOCKER_BASES: "${ref}" is not an image reference`);
    if (/^(docker\.io\/|index\.docker\.io\/)?rack\//.test(ref)) {
      throw new RackError('bad_config', `RACK_DOCKER_BASES: "${ref}" is one of rack's own images; the stack image is always allowed`);
    }
  }
  return refs;
}

/** name[:tag][@digest], lower-case name components as Docker requires. */
export const IMAGE_REF =
  /^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*(?:\.[a-z0-9-]+)*(?::\d{1,5})?\/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$/;

/** A lower-case DNS name: dot-separated labels of letters, digits and inner hyphens. */
const DNS_NAME = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/;

export function loadConfig(env: Env, installDir: string): RackConfig {
  const home = env['RACK_HOME'] && env['RACK_HOME'] !== '' ? env['RACK_HOME'] : join(homedir(), '.rack');
  const domain = (env['RACK_DOMAIN'] ?? 'localhost').toLowerCase();
  if (!DNS_NAME.test(domain)) {
    throw new RackError('bad_config', `RACK_DOMAIN must be a DNS name, got "${domain}"`);
  }
  const consoleHost = (env['RACK_CONSOLE_HOST'] || `rack.${domain}`).toLowerCase();
  if (!DNS_NAME.test(consoleHost)) {
    throw new RackError('bad_config', `RACK_CONSOLE_HOST must be a DNS name, got "${consoleHost.slice(0, 60)}"`);
  }
  const sshHost = (env['RACK_SSH_HOST'] || domain).toLowerCase();
  if (!DNS_NAME.test(sshHost) && !/^[0-9a-f.:]+$/.test(sshHost)) {
    throw new RackError('bad_config', `RACK_SSH_HOST must be a DNS name or an IP address, got "${sshHost.slice(0, 60)}"`);
  }
  const bind = env['RACK_BIND'] ?? '0.0.0.0';
  if (!/^[0-9a-fA-F.:]+$/.test(bind) && bind !== 'localhost') {
    throw new RackError('bad_config', `RACK_BIND must be an IP address, got "${bind}"`);
  }
  const keys = env['RACK_ADMIN_KEYS'];
  const acmeDirectory = env['RACK_ACME_DIRECTORY'] || LETS_ENCRYPT;
  if (!/^https:\/\/[^\s/]+\/\S*$/.test(acmeDirectory) && !/^http:\/\/(127\.0\.0\.1|localhost)[:/]\S*$/.test(acmeDirectory)) {
    throw new RackError('bad_config', `RACK_ACME_DIRECTORY must be an https:// URL, got "${acmeDirectory.slice(0, 80)}"`);
  }
  const acmeEmail = env['RACK_ACME_EMAIL'] || undefined;
  if (acmeEmail !== undefined && !/^[^\s@:,]{1,64}@[a-zA-Z0-9.-]{1,253}$/.test(acmeEmail)) {
    throw new RackError('bad_config', `RACK_ACME_EMAIL must be an email address, got "${acmeEmail.slice(0, 80)}"`);
  }
  return {
    home: isAbsolute(home) ? home : resolve(home),
    sshPort: port(env, 'RACK_SSH_PORT', 2222),
    httpPort: port(env, 'RACK_HTTP_PORT', 8080),
    httpsPort: env['RACK_HTTPS_PORT'] === 'off' ? undefined : port(env, 'RACK_HTTPS_PORT', 8443),
    acmeDirectory,
    acmeEmail,
    consoleAcme: onOff(env, 'RACK_CONSOLE_ACME', false),
    domain,
    consoleHost,
    sshHost,
    bind,
    adminKeysFile: keys === undefined || keys === '' ? undefined : resolve(keys),
    installDir,
    buildTimeoutMs: positiveInt(env, 'RACK_BUILD_TIMEOUT', 15 * 60) * 1000,
    logKeep: parseLogKeep(env['RACK_LOG_KEEP'] || DEFAULT_LOG_KEEP),
    keepReleases: positiveInt(env, 'RACK_KEEP_RELEASES', 10),
    sshLoginGraceMs: positiveInt(env, 'RACK_SSH_LOGIN_GRACE', 20) * 1000,
    sshMaxStartups: maxStartups(env, 'RACK_SSH_MAX_STARTUPS', { start: 16, rate: 30, full: 64 }),
    sshPerSourceMaxStartups: positiveInt(env, 'RACK_SSH_PER_SOURCE_MAX_STARTUPS', 8),
    sshKeepaliveMs: positiveInt(env, 'RACK_SSH_KEEPALIVE', 15) * 1000,
    loginThrottle: throttleLimit(env, 'RACK_LOGIN_THROTTLE', { failures: 10, windowMs: 60_000 }),
    maxProcesses: positiveInt(env, 'RACK_MAX_PROCESSES', 30),
    hostGuard: onOff(env, 'RACK_HOST_GUARD', true),
    appSubnets: parseSubnetRange(env['RACK_APP_SUBNETS'] || '10.213.0.0/16'),
    maxPushBytes: env['RACK_MAX_PUSH'] === undefined || env['RACK_MAX_PUSH'] === '' ? 512 * 1024 ** 2 : parseSize('RACK_MAX_PUSH', env['RACK_MAX_PUSH']),
    pushIdleTimeoutMs: positiveInt(env, 'RACK_PUSH_IDLE_TIMEOUT', 60) * 1000,
    stopGraceMs: positiveInt(env, 'RACK_STOP_GRACE', 60) * 1000,
    dockerBases: parseDockerBases(env['RACK_DOCKER_BASES']),
    diskLimit: env['RACK_DISK_LIMIT'] === 'off' ? undefined : byteSize(env, 'RACK_DISK_LIMIT', '2g', 16 * 1024 ** 2),
    buildMemory: byteSize(env, 'RACK_BUILD_MEMORY', '2g', 64 * 1024 ** 2),
    buildPids: positiveInt(env, 'RACK_BUILD_PIDS', 4096),
    fetchAllow: (env['RACK_FETCH_ALLOW'] ?? '').split(',').map((h) => h.trim().toLowerCase()).filter((h) => h !== ''),
    buildConcurrency: positiveInt(env, 'RACK_BUILD_CONCURRENCY', Math.max(2, cpus().length)),
    buildLongAfterMs: positiveInt(env, 'RACK_BUILD_LONG_AFTER', 20) * 1000,
    backupDir: env['RACK_BACKUP_DIR'] ? resolve(env['RACK_BACKUP_DIR']) : join(isAbsolute(home) ? home : resolve(home), 'backups'),
    backupIntervalMs: positiveInt(env, 'RACK_BACKUP_INTERVAL', 24 * 3600) * 1000,
    backupKeep: positiveInt(env, 'RACK_BACKUP_KEEP', 7),
    backupDeadlineMs: positiveInt(env, 'RACK_BACKUP_TIMEOUT', 3600) * 1000,
    cronTimeoutMs: positiveInt(env, 'RACK_CRON_TIMEOUT', 3600) * 1000,
    runtime: runtimeKind(env['RACK_RUNTIME']),
    registryPort: port(env, 'RACK_REGISTRY_PORT', 5000),
  };
}

export const paths = {
  db: (c: RackConfig) => join(c.home, 'db'),
  repos: (c: RackConfig) => join(c.home, 'repos'),
  cache: (c: RackConfig) => join(c.home, 'cache'),
  logs: (c: RackConfig) => join(c.home, 'logs'),
  /** Scratch space of builds (clones of buildpacks, --no-cache caches); emptied at every start. */
  tmp: (c: RackConfig) => join(c.home, 'tmp'),
  hostKey: (c: RackConfig) => join(c.home, 'ssh_host_ed25519_key'),
  controlSocket: (c: RackConfig) => join(c.home, 'control.sock'),
  apiSocket: (c: RackConfig) => join(c.home, 'api.sock'),
  ports: (c: RackConfig) => join(c.home, 'ports.json'),
  /** The swarm runtime's registry: its CA and its TLS certificate and key. */
  registry: (c: RackConfig) => join(c.home, 'registry'),
  /** `HOST.pem`: chain then key, mode 0600, read by the router process. */
  certs: (c: RackConfig) => join(c.home, 'certs'),
  /** The ACME account key, one per directory URL. */
  acme: (c: RackConfig) => join(c.home, 'acme'),
  routerSocket: (c: RackConfig) => join(c.home, 'router.sock'),
  routerState: (c: RackConfig) => join(c.home, 'router.json'),
  routerLog: (c: RackConfig) => join(c.home, 'logs', 'router.log'),
  rackdLog: (c: RackConfig) => join(c.home, 'logs', 'rackd.log'),
  /** The apps' kept output: a folder of segments per app. */
  appLogs: (c: RackConfig) => join(c.home, 'logs', 'apps'),
};
