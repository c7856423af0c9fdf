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
const RULE = [
  'INPUT',
  '-i', `${BRIDGE_PREFIX}+`,
  '-m', 'conntrack', '--ctstate', 'NEW,INVALID',
  '-m', 'comment', '--comment', 'rack: apps may not reach the host',
  '-j', 'REJECT',
];

export async function installHostGuard(): Promise<void> {
  try {
    await run('iptables', ['-w', '5', '-C', ...RULE]);
    return; // already there (a previous rackd put it)
  } catch {
    // not there yet
  }
  try {
    await run('iptables', ['-w', '5', '-I', ...RULE.slice(0, 1), '1', ...RULE.slice(1)]);
  } catch (err) {
    const detail = ((err as { stderr?: string }).stderr ?? String(err)).trim().split('\n')[0];
    throw new RackError(
      'bad_config',
      `cannot install the firewall rule that keeps apps off the host's ports (${detail}); run rackd as root on the Docker host, or set RACK_HOST_GUARD=off to go without it`,
      { cause: err },
    );
  }
}
