import { HANDOFF_PROTOCOL, PROTOCOL_VERSION, type RouterIdentity } from './router-protocol.js';
import { ROUTER_PROCESS_SCRIPT, type SpawnOptions } from './router-spawner.js';

/**
 * How a router found running at start differs from the one wanted:
 * - `sockets`: another port or bind, or a router too old to hand off: it is shut down and one is spawned;
 * - `code`: another rack's router (another script, version or protocol) on the right sockets: it hands off to ours;
 * - `none`: it is ours.
 * A wanted port of 0 takes whatever port the running router has.
 */
export function routerMismatch(identity: RouterIdentity, wanted: Pick<SpawnOptions, 'port' | 'bind' | 'https'>, version: string): 'sockets' | 'code' | 'none' {
  const { port, bind, https } = wanted;
  const httpsMismatch = https === undefined ? identity.httpsPort !== 0 : https.port === 0 ? identity.httpsPort === 0 : identity.httpsPort !== https.port;
  if (identity.protocol < HANDOFF_PROTOCOL || identity.bind !== bind || (port !== 0 && identity.httpPort !== port) || httpsMismatch) return 'sockets';
  const ours = identity.protocol === PROTOCOL_VERSION && identity.script === ROUTER_PROCESS_SCRIPT && identity.version === version;
  return ours ? 'none' : 'code';
}
