import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { RackError } from '../rack-error.js';
import { BRIDGE_PREFIX } from './app-networks.js';

const run = promisify(execFile);

/**
 * Containers reach the host through their bridge's gateway address, and with it every port the
 * host listens on (rack's SSH and router ports, databases bound to 0.0.0.0, ...). Docker has no
 * switch for that, so one firewall rule refuses new connections from any app bridge (`rk+`) to
 * the host itself. Replies to connections the host opened (the router to a web process) pass.
 */
const HOST_RULE = [
  'INPUT',
  '-i', `${BRIDGE_PREFIX}+`,
  '-m', 'conntrack', '--ctstate', 'NEW,INVALID',
  '-m', 'comment', '--comment', 'rack: apps may not reach the host',
  '-j', 'REJECT',
];

/**
 * Link-local addresses (169.254.0.0/16) are the host's, not the Internet's: a cloud's metadata
 * service (169.254.169.254) hands out the machine's credentials to whoever asks from it, and Docker
 * routes an app's packets there like any others. Refused in DOCKER-USER, the chain dockerd runs
 * first for forwarded packets and never rewrites. IPv6 needs no rule: dockerd turns IPv6 off in
 * containers on networks without it, as app networks are (runtime/app-networks.ts).
 */
const LINK_LOCAL_RULE = [
  'DOCKER-USER',
  '-i', `${BRIDGE_PREFIX}+`,
  '-d', '169.254.0.0/16',
  '-m', 'comment', '--comment', 'rack: apps may not reach link-local addresses',
  '-j', 'REJECT',
];

export async function installHostGuard(): Promise<void> {
  for (const rule of [HOST_RULE, LINK_LOCAL_RULE]) await install(rule);
}

async function install(rule: string[]): Promise<void> {
  try {
    await run('iptables', ['-w', '5', '-C', ...rule]);
    return; // already there (a previous rackd put it)
  } catch {
    // not there yet
  }
  try {
    await run('iptables', ['-w', '5', '-I', rule[0]!, '1', ...rule.slice(1)]);
  } catch (err) {
    const detail = ((err as { stderr?: string }).stderr ?? String(err)).trim().split('\n')[0];
    throw new RackError(
      'bad_config',
      `cannot install the firewall rules that keep apps off the host's ports and link-local addresses (${detail}); run rackd as root on the Docker host, or set RACK_HOST_GUARD=off to go without them`,
      { cause: err },
    );
  }
}
