import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { isInternalAddress, pinFetch } from '../build/fetch-destination.js';
import { RackError } from '../rack-error.js';

/** A repository URL as rack reads it: https/http, `ssh://`, or scp-like `user@host:path`. */
export interface RepoUrl {
  transport: 'http' | 'ssh';
  /** The URL as shown to people and kept: never with a password in it. */
  url: string;
  /** ssh: the parts the address is swapped into. */
  ssh?: { user: string; host: string; port: number | undefined; path: string; scp: boolean };
}

/** Where a fetch goes, checked: the URL for git (its host replaced by the checked address for ssh) and git's `-c` pins. */
export interface RepoDestination {
  url: string;
  gitConfig: string[];
  /** ssh: the name known_hosts records the host key under (the URL holds the address). */
  hostKeyAlias?: string;
}

const SCP = /^([A-Za-z0-9._-]+)@(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(?!\/\/)(.+)$/;
const SAFE_PATH = /^[A-Za-z0-9._~/@+-]+$/;
const USER = /^[A-Za-z0-9._-]{1,64}$/;

/** The one answer to a URL rack will not fetch, so a refused address and an unreachable one read the same. */
function refused(raw: string): RackError {
  return new RackError('bad_argument', `rack cannot fetch ${raw.slice(0, 200)}: use a public https or ssh address (an operator may allow a private host with RACK_FETCH_ALLOW)`);
}

/**
 * Parses a repository URL; throws one line for anything else (another scheme, a password in the
 * URL, a host or path git or ssh could read as an option).
 */
export function parseRepoUrl(raw: string): RepoUrl {
  const text = raw.trim();
  if (text.length === 0 || text.length > 500 || /[\s\0]/.test(text)) throw new RackError('bad_argument', 'expected a repository URL like https://host/owner/repo.git or git@host:owner/repo.git');
  const scp = SCP.exec(text);
  if (scp && !text.includes('://')) {
    const [, user, host, path] = scp as unknown as [string, string, string, string];
    if (path.startsWith('-') || !SAFE_PATH.test(path)) throw new RackError('bad_argument', `the path in ${text.slice(0, 200)} has characters rack does not pass to ssh`);
    return { transport: 'ssh', url: text, ssh: { user, host: host.replace(/^\[(.*)\]$/, '$1'), port: undefined, path, scp: true } };
  }
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new RackError('bad_argument', `not a URL: ${text.slice(0, 200)} (expected https://host/owner/repo.git or git@host:owner/repo.git)`);
  }
  if (url.hostname === '' || url.hostname.startsWith('-')) throw refused(text);
  if (url.search !== '' || url.hash !== '') throw new RackError('bad_argument', 'a repository URL takes no query or fragment');
  if (url.protocol === 'https:' || url.protocol === 'http:') {
    if (url.password !== '') throw new RackError('bad_argument', 'keep the token out of the URL (it would show in logs and `ps`): give it on stdin with --token-stdin');
    return { transport: 'http', url: url.href };
  }
  if (url.protocol === 'ssh:') {
    if (url.password !== '') throw new RackError('bad_argument', 'an ssh URL takes no password: rack uses the deploy key it makes');
    const path = decodeURIComponent(url.pathname);
    if (!SAFE_PATH.test(path) || path === '/') throw new RackError('bad_argument', `the path in ${text.slice(0, 200)} has characters rack does not pass to ssh`);
    const user = decodeURIComponent(url.username) || 'git';
    if (!USER.test(user)) throw new RackError('bad_argument', `the user in ${text.slice(0, 200)} has characters rack does not pass to ssh`);
    return { transport: 'ssh', url: url.href, ssh: { user, host: url.hostname.replace(/^\[(.*)\]$/, '$1'), port: url.port === '' ? undefined : Number(url.port), path, scp: false } };
  }
  throw new RackError('bad_argument', `rack fetches over https or ssh, not ${url.protocol.replace(/:$/, '')}`);
}

/**
 * Resolves and checks where a fetch goes under the tenant rules (build/fetch-destination.ts): every
 * address of the host public, or the host named in RACK_FETCH_ALLOW; git then connects to the
 * address checked, so a second lookup cannot send it elsewhere. Run at connect and before every fetch.
 */
export async function checkRepoUrl(repo: RepoUrl, allow: readonly string[]): Promise<RepoDestination> {
  if (repo.transport === 'http') {
    try {
      return await pinFetch(repo.url, allow, () => refused(repo.url));
    } catch (err) {
      throw new RackError('bad_argument', refused(repo.url).message, { cause: err });
    }
  }
  const ssh = repo.ssh!;
  let addresses: string[];
  try {
    addresses = (await lookup(ssh.host, { all: true })).map((a) => a.address);
  } catch (err) {
    throw new RackError('bad_argument', refused(repo.url).message, { cause: err });
  }
  if (addresses.length === 0) throw refused(repo.url);
  if (!allow.includes(ssh.host.toLowerCase()) && addresses.some(isInternalAddress)) throw refused(repo.url);
  const address = addresses.find((a) => isIP(a) === 4) ?? addresses[0]!;
  const literal = isIP(address) === 6 ? `[${address}]` : address;
  const url = ssh.scp
    ? `${ssh.user}@${literal}:${ssh.path}`
    : `ssh://${ssh.user}@${literal}${ssh.port === undefined ? '' : `:${ssh.port}`}${ssh.path}`;
  return { url, gitConfig: [], hostKeyAlias: ssh.host };
}

const BRANCH = /^(?!-)(?!.*\.\.)(?!.*\/\/)(?!.*@\{)[A-Za-z0-9._/-]{1,100}(?<![./])(?<!\.lock)$/;

/** A branch name git accepts and no command line could read as an option. */
export function parseBranch(raw: string): string {
  if (!BRANCH.test(raw) || raw.startsWith('/')) throw new RackError('bad_argument', `not a branch name: ${JSON.stringify(raw.slice(0, 100))}`);
  return raw;
}
