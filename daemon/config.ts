import { cpus, homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { RackError } from './rack-error.js';

/** Everything rackd reads from its environment, parsed once at start (12-factor). */
export interface RackConfig {
  home: string;
  sshPort: number;
  httpPort: number;
  domain: string;
  bind: string;
  adminKeysFile: string | undefined;
  /** Folder holding `buildpacks/`, `stack/`, `hooks/`, `scripts/` (the installed rack). */
  installDir: string;
  buildTimeoutMs: number;
  keepReleases: number;
  /** Images a Dockerfile may start FROM besides the stack image (RACK_DOCKER_BASES). */
  dockerBases: string[];
  /** Memory limit of a build container or `docker build`, in bytes (RACK_BUILD_MEMORY). */
  buildMemory: number;
  /** Builds running at once over all apps (RACK_BUILD_CONCURRENCY), one per app at most. */
  buildConcurrency: number;
  /** After this long a build moves to the long-build slots, freeing its slot (RACK_BUILD_LONG_AFTER). */
  buildLongAfterMs: number;
}

type Env = Record<string, string | undefined>;

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

const SIZE_UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

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

export function loadConfig(env: Env, installDir: string): RackConfig {
  const home = env['RACK_HOME'] && env['RACK_HOME'] !== '' ? env['RACK_HOME'] : join(homedir(), '.rack');
  const domain = (env['RACK_DOMAIN'] ?? 'localhost').toLowerCase();
  if (!/^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/.test(domain)) {
    throw new RackError('bad_config', `RACK_DOMAIN must be a DNS name, got "${domain}"`);
  }
  const bind = env['RACK_BIND'] ?? '0.0.0.0';
  if (!/^[0-9a-fA-F.:]+$/.test(bind) && bind !== 'localhost') {
    throw new RackError('bad_config', `RACK_BIND must be an IP address, got "${bind}"`);
  }
  const keys = env['RACK_ADMIN_KEYS'];
  return {
    home: isAbsolute(home) ? home : resolve(home),
    sshPort: port(env, 'RACK_SSH_PORT', 2222),
    httpPort: port(env, 'RACK_HTTP_PORT', 8080),
    domain,
    bind,
    adminKeysFile: keys === undefined || keys === '' ? undefined : resolve(keys),
    installDir,
    buildTimeoutMs: positiveInt(env, 'RACK_BUILD_TIMEOUT', 15 * 60) * 1000,
    keepReleases: positiveInt(env, 'RACK_KEEP_RELEASES', 10),
    dockerBases: parseDockerBases(env['RACK_DOCKER_BASES']),
    buildMemory: byteSize(env, 'RACK_BUILD_MEMORY', '2g', 64 * 1024 ** 2),
    buildConcurrency: positiveInt(env, 'RACK_BUILD_CONCURRENCY', Math.max(2, cpus().length)),
    buildLongAfterMs: positiveInt(env, 'RACK_BUILD_LONG_AFTER', 20) * 1000,
  };
}

export const paths = {
  db: (c: RackConfig) => join(c.home, 'db'),
  repos: (c: RackConfig) => join(c.home, 'repos'),
  cache: (c: RackConfig) => join(c.home, 'cache'),
  logs: (c: RackConfig) => join(c.home, 'logs'),
  hostKey: (c: RackConfig) => join(c.home, 'ssh_host_ed25519_key'),
  controlSocket: (c: RackConfig) => join(c.home, 'control.sock'),
  ports: (c: RackConfig) => join(c.home, 'ports.json'),
  routerSocket: (c: RackConfig) => join(c.home, 'router.sock'),
  routerState: (c: RackConfig) => join(c.home, 'router.json'),
  routerLog: (c: RackConfig) => join(c.home, 'logs', 'router.log'),
};
