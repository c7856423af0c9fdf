import { readFile } from 'node:fs/promises';

/**
 * The TCP ports a process listens on, read from its network namespace (`/proc/PID/net/tcp` and
 * `tcp6` show the sockets of the namespace PID lives in), so a failed health check can say "it
 * listens on 3000, not on PORT" instead of only "no answer". Undefined when they cannot be read
 * (the process is gone, or runs on another Swarm node).
 */
export async function listeningPorts(pid: number): Promise<number[] | undefined> {
  const tables = await Promise.all(['tcp', 'tcp6'].map((f) => readFile(`/proc/${pid}/net/${f}`, 'utf8').catch(() => undefined)));
  if (tables.every((t) => t === undefined)) return undefined;
  return parseListening(tables.filter((t): t is string => t !== undefined).join('\n'));
}

/** Docker's embedded DNS server (127.0.0.11, little-endian hex) listens inside every container on a user network. */
const DOCKER_DNS = '0B00007F';

/** LISTEN (state 0A) sockets' local ports in a /proc/net/tcp table, sorted and distinct; Docker's own left out. */
export function parseListening(table: string): number[] {
  const ports = new Set<number>();
  for (const line of table.split('\n')) {
    const fields = line.trim().split(/\s+/);
    // sl local_address rem_address st ...: local_address is HEXIP:HEXPORT.
    if (fields.length < 4 || fields[3] !== '0A') continue;
    const [address, hexPort] = fields[1]?.split(':') ?? [];
    if (address === DOCKER_DNS) continue;
    const port = Number.parseInt(hexPort ?? '', 16);
    if (Number.isInteger(port) && port > 0) ports.add(port);
  }
  return [...ports].sort((a, b) => a - b);
}
