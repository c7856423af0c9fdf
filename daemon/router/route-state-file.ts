import { readFile, rename } from 'node:fs/promises';
import type { Logger } from '../log.js';
import type { AppRoute } from './router.js';
import { checkAppRoute } from './router-protocol.js';

/**
 * The router process's persisted table, so a restarted router serves at once without waiting for
 * rackd. The file is `{"version": 1, "apps": {"APP": {"hosts": [...], "upstreams": [{host, port}]}}}`
 * and is only ever replaced whole (temp file, fsync, rename): a crash leaves the old or the new
 * table, never half of one.
 */
const VERSION = 1;

/** Where the router process writes {pid, httpPort, bind, socket, startedAt}: beside its state file. */
export function pidFilePath(statePath: string): string {
  return `${statePath}.pid`;
}

export function serializeRoutes(routes: readonly AppRoute[]): string {
  const apps: Record<string, Omit<AppRoute, 'app'>> = {};
  for (const r of routes) {
    const entry: Omit<AppRoute, 'app'> = { hosts: r.hosts, upstreams: r.upstreams };
    if (r.https !== undefined) entry.https = r.https;
    if (r.timeoutMs !== undefined) entry.timeoutMs = r.timeoutMs;
    // A router that restarts on its own keeps the app down for work until rackd says otherwise.
    if (r.maintenance !== undefined) entry.maintenance = r.maintenance;
    apps[r.app] = entry;
  }
  return `${JSON.stringify({ version: VERSION, apps }, null, 1)}\n`;
}

/**
 * Reads the table back. No file means an empty table (first start). A file that does not parse is
 * moved aside to `PATH.corrupt` for the operator and the router starts empty: rackd re-sends every
 * route when it adopts its apps, so serving nothing for a moment beats not starting at all.
 */
export async function loadRoutes(path: string, logger: Logger): Promise<AppRoute[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  try {
    const doc = JSON.parse(text) as unknown;
    if (typeof doc !== 'object' || doc === null) throw new Error('not an object');
    const { version, apps } = doc as { version?: unknown; apps?: unknown };
    if (version !== VERSION) throw new Error(`unknown version ${JSON.stringify(version)}`);
    if (typeof apps !== 'object' || apps === null) throw new Error('apps is not an object');
    return Object.entries(apps).map(([app, route]) => checkAppRoute({ ...(route as object), app }));
  } catch (err) {
    logger.error({ err: String(err), path }, 'router: state file unreadable; moved aside, starting with an empty table');
    await rename(path, `${path}.corrupt`).catch(() => undefined);
    return [];
  }
}
