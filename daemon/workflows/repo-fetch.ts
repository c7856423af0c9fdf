import { execFile } from 'node:child_process';
import { chmod, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import ssh2 from 'ssh2';
import { gitConfigEnv } from '../git/push-receiver.js';
import { spawnTiedGit } from '../git/tied-git.js';
import { RackError } from '../rack-error.js';
import type { RepoLink } from '../store/records.js';
import { checkRepoUrl, parseRepoUrl } from './repo-url.js';

const run = promisify(execFile);

/** Where a fetch lands in the app's bare repo: not a branch, so nothing serves or clones it by accident. */
export const UPSTREAM_REF = 'refs/rack/upstream';
/** A fetch that takes longer is stopped (a host that accepts and never answers). */
const FETCH_DEADLINE_MS = 5 * 60_000;
const STDERR_KEPT = 4096;

/** Only these transports, whatever a URL or a submodule says (`ext::` would run a command). */
const PROTOCOLS = ['-c', 'protocol.allow=never', '-c', 'protocol.https.allow=always', '-c', 'protocol.http.allow=always', '-c', 'protocol.ssh.allow=always'];

export interface RepoFetchOptions {
  /** RACK_HOME/repo-keys: each app's deploy key and known_hosts, in a folder of its own. */
  keysDir: string;
  /** The install's hooks/ folder, which holds the GIT_SSH wrapper `git-ssh`. */
  hooksDir: string;
  fetchAllow: readonly string[];
}

export function keyDir(keysDir: string, app: string): string {
  return join(keysDir, app);
}

/**
 * The app's ed25519 deploy key: made on first use (OpenSSH's own private key format, 0600) and
 * kept across reconnects, so a key already added at the host keeps working. Returns its public half.
 */
export async function ensureDeployKey(keysDir: string, app: string): Promise<string> {
  const dir = keyDir(keysDir, app);
  try {
    return (await readFile(join(dir, 'id_ed25519.pub'), 'utf8')).trim();
  } catch {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const pair = wellFormedPair(`rack-deploy-${app}`);
    await writeFile(join(dir, 'id_ed25519'), pair.private, { mode: 0o600 });
    await chmod(join(dir, 'id_ed25519'), 0o600);
    await writeFile(join(dir, 'id_ed25519.pub'), `${pair.public.trim()}\n`);
    return pair.public.trim();
  }
}

/**
 * An ed25519 pair as OpenSSH writes it. ssh2's generator drops a leading zero byte of the 32-byte
 * public key (about 1 pair in 250): OpenSSH and ssh2 itself then refuse the key as malformed. Such
 * a pair is thrown away and another made.
 */
export function wellFormedPair(comment: string): { private: string; public: string } {
  for (let i = 0; i < 20; i++) {
    const pair = ssh2.utils.generateKeyPairSync('ed25519', { comment });
    const pub = ssh2.utils.parseKey(pair.public.trim());
    const priv = ssh2.utils.parseKey(pair.private);
    if (!(pub instanceof Error) && !Array.isArray(pub) && !(priv instanceof Error) && !Array.isArray(priv)) return pair;
  }
  throw new RackError('internal', 'could not make a well-formed ed25519 key');
}

export async function removeDeployKey(keysDir: string, app: string): Promise<void> {
  await rm(keyDir(keysDir, app), { recursive: true, force: true });
}

/**
 * Fetches the link's branch (or `ref`, a pull request's head) into `repo` (the app's bare repo)
 * as UPSTREAM_REF and returns the commit it points at. git runs with an argument array; the token goes in git's config through
 * the environment (`http.extraHeader`), so it is in no URL, argument or log; ssh runs through
 * the fixed wrapper with the app's key and its own known_hosts.
 */
export async function fetchBranch(link: RepoLink, repo: string, opts: RepoFetchOptions, ref = `refs/heads/${link.branch}`): Promise<string> {
  const destination = await checkRepoUrl(parseRepoUrl(link.url), opts.fetchAllow);
  const env: NodeJS.ProcessEnv = {
    PATH: process.env['PATH'],
    HOME: process.env['HOME'],
    GIT_TERMINAL_PROMPT: '0',
    // Neither the host's nor the operator's git config: an `insteadOf` there would send a
    // tenant's fetch somewhere the checks above never looked at.
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: '/dev/null',
  };
  const config: Record<string, string> = { 'credential.helper': '' };
  if (link.token !== undefined) {
    const user = new URL(link.url).username || 'x-access-token';
    config['http.extraHeader'] = `Authorization: Basic ${Buffer.from(`${decodeURIComponent(user)}:${link.token}`).toString('base64')}`;
  }
  Object.assign(env, gitConfigEnv(config));
  if (link.transport === 'ssh') {
    const dir = keyDir(opts.keysDir, link.app);
    Object.assign(env, {
      GIT_SSH: join(opts.hooksDir, 'git-ssh'),
      GIT_SSH_VARIANT: 'ssh',
      RACK_SSH_KEY: join(dir, 'id_ed25519'),
      RACK_SSH_KNOWN_HOSTS: join(dir, 'known_hosts'),
      RACK_SSH_HOST_ALIAS: destination.hostKeyAlias ?? '',
    });
  }
  const args = [...PROTOCOLS, ...destination.gitConfig, '--git-dir', repo, 'fetch', '--quiet', '--no-tags', '--no-recurse-submodules', '--no-write-fetch-head', '--', destination.url, `+${ref}:${UPSTREAM_REF}`];
  const child = spawnTiedGit(args, env);
  let stderr = '';
  child.stdout.resume();
  child.stderr.on('data', (c: Buffer) => {
    if (stderr.length < STDERR_KEPT) stderr += c.toString('utf8');
  });
  child.stdin.on('error', () => undefined);
  child.stdin.end();
  const timer = setTimeout(() => child.kill('SIGTERM'), FETCH_DEADLINE_MS);
  try {
    const code = await new Promise<number | null>((resolve, reject) => {
      child.on('error', reject);
      child.on('close', (c) => resolve(c));
    });
    if (code !== 0) {
      const why = stderr.trim().split('\n').filter((l) => l.trim() !== '').pop() ?? `git exited with ${code ?? 'a signal'}`;
      throw new RackError('build_failed', `could not fetch ${ref.replace(/^refs\/heads\//, '')} from ${link.url}: ${why.slice(0, 300)}`);
    }
  } finally {
    clearTimeout(timer);
  }
  const { stdout } = await run('git', ['--git-dir', repo, 'rev-parse', '--verify', `${UPSTREAM_REF}^{commit}`], { env: { PATH: process.env['PATH'] } });
  return stdout.trim();
}
