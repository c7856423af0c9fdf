import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** The repo root (tests run from dist/test/...). */
export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const FIXTURES = join(ROOT, 'test', 'fixtures');

export interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a program with an argument array and never throws on a non-zero exit. */
export function exec(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string } = {}): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
    child.stdin.on('error', () => undefined); // a program that exits before reading its input
    child.stdin.end(opts.input ?? '');
  });
}

export async function keypair(dir: string, name: string): Promise<{ priv: string; pub: string }> {
  const priv = join(dir, name);
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', name, '-f', priv]);
  return { priv, pub: `${priv}.pub` };
}

/**
 * A real rackd (the built `dist/daemon/main.js`) in a temp RACK_HOME on free ports, driven with the
 * real `ssh` and `git` clients.
 */
export class RackDaemon {
  child: ChildProcess | undefined;
  sshPort = 0;
  httpPort = 0;
  httpsPort = 0;
  output = '';

  private constructor(
    private readonly base: string,
    readonly home: string,
    readonly work: string,
    readonly adminKey: { priv: string; pub: string },
  ) {}

  /** Started through `bin/rackd` (the launcher, which rack:update switches versions with) rather than rackd itself. */
  launcher = false;

  /**
   * @param opts.home RACK_HOME somewhere of the test's own (a small disk it mounted), left there by destroy().
   * @param opts.launcher run `bin/rackd`: `child` is then the launcher, and rackd its child.
   */
  static async create(extraEnv: Record<string, string> = {}, opts: { home?: string; launcher?: boolean } = {}): Promise<RackDaemon> {
    const base = await mkdtemp(join(tmpdir(), 'rack-test-'));
    const work = join(base, 'work');
    await run('mkdir', ['-p', work]);
    const key = await keypair(base, 'admin');
    const adminKeys = join(base, 'admin_keys');
    await writeFile(adminKeys, await readFile(key.pub));
    const daemon = new RackDaemon(base, opts.home ?? join(base, 'home'), work, key);
    daemon.launcher = opts.launcher === true;
    await daemon.start({ RACK_ADMIN_KEYS: adminKeys, ...extraEnv });
    return daemon;
  }

  async start(extraEnv: Record<string, string> = {}): Promise<void> {
    await rm(join(this.home, 'ports.json'), { force: true });
    const entry = this.launcher ? join(ROOT, 'bin', 'rackd') : join(ROOT, 'dist', 'daemon', 'main.js');
    const child = spawn(process.execPath, [entry], {
      env: {
        ...process.env,
        RACK_HOME: this.home,
        RACK_SSH_PORT: '0',
        RACK_HTTP_PORT: '0',
        RACK_HTTPS_PORT: '0',
        RACK_BIND: '127.0.0.1',
        RACK_LOG_LEVEL: 'info',
        ...extraEnv,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    child.stdout!.on('data', (c: Buffer) => (this.output += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (this.output += c.toString()));
    const deadline = Date.now() + 5 * 60_000; // the first start may build the stack image
    for (;;) {
      try {
        const ports = JSON.parse(await readFile(join(this.home, 'ports.json'), 'utf8')) as { ssh: number; http: number; https: number };
        this.sshPort = ports.ssh;
        this.httpPort = ports.http;
        this.httpsPort = ports.https;
        return;
      } catch {
        if (child.exitCode !== null) throw new Error(`rackd exited with ${child.exitCode}:\n${this.output}`);
        if (Date.now() > deadline) throw new Error(`rackd did not start:\n${this.output}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const child = this.child;
    // A process killed by a signal has no exit code, only a signal code.
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill(signal);
    await exited;
  }

  /** The router runs as its own process and outlives rackd by design; tests end it themselves. */
  async stopRouter(): Promise<void> {
    let pid: number;
    try {
      pid = (JSON.parse(await readFile(join(this.home, 'router.json.pid'), 'utf8')) as { pid: number }).pid;
    } catch {
      return;
    }
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      return; // already gone
    }
    for (let i = 0; i < 100; i++) {
      try {
        process.kill(pid, 0);
      } catch {
        return;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    process.kill(pid, 'SIGKILL');
  }

  /** Stops the daemon and its router and removes every container it ran, then its temp dir. */
  async destroy(): Promise<void> {
    await this.stop();
    await this.stopRouter();
    const id = (await readFile(join(this.home, 'instance-id'), 'utf8').catch(() => '')).trim();
    if (id) {
      // On a Swarm, app processes are services; their tasks stop with them.
      const services = await exec('docker', ['service', 'ls', '-q', '--filter', `label=rack.instance=${id}`]);
      const serviceIds = services.code === 0 ? services.stdout.split('\n').filter(Boolean) : [];
      if (serviceIds.length) await exec('docker', ['service', 'rm', ...serviceIds]);
      const { stdout } = await exec('docker', ['ps', '-aq', '--filter', `label=rack.instance=${id}`]);
      const ids = stdout.split('\n').filter(Boolean);
      if (ids.length) await exec('docker', ['rm', '-f', ...ids]);
      // Rounds: an image another one stands on (a dependency layer) goes once its children have.
      for (let round = 0; round < 3; round++) {
        const images = await exec('docker', ['images', '-q', '--filter', `label=rack.instance=${id}`]);
        const imageIds = [...new Set(images.stdout.split('\n').filter(Boolean))];
        if (imageIds.length === 0) break;
        await exec('docker', ['rmi', '-f', ...imageIds]);
      }
      const networks = await exec('docker', ['network', 'ls', '-q', '--filter', `label=rack.instance=${id}`]);
      const networkIds = networks.stdout.split('\n').filter(Boolean);
      if (networkIds.length) await exec('docker', ['network', 'rm', ...networkIds]);
      // Add-on volumes: rack removes one only on addons:destroy; a test's go with the test.
      const volumes = await exec('docker', ['volume', 'ls', '-q', '--filter', `label=rack.instance=${id}`]);
      const volumeNames = volumes.stdout.split('\n').filter(Boolean);
      if (volumeNames.length) await exec('docker', ['volume', 'rm', '-f', ...volumeNames]);
    }
    await rm(this.base, { recursive: true, force: true });
  }

  sshArgs(key = this.adminKey.priv, user = 'git'): string[] {
    return [
      '-p', String(this.sshPort),
      '-i', key,
      '-o', 'IdentitiesOnly=yes',
      '-o', 'StrictHostKeyChecking=no',
      '-o', 'UserKnownHostsFile=/dev/null',
      '-o', 'LogLevel=ERROR',
      '-o', 'BatchMode=yes',
      `${user}@127.0.0.1`,
    ];
  }

  /** `ssh rack ARGS...` with the admin key (or another). */
  ssh(args: string[], opts: { key?: string; user?: string; extra?: string[]; input?: string } = {}): Promise<Result> {
    return exec('ssh', [...(opts.extra ?? []), ...this.sshArgs(opts.key, opts.user), '--', ...args], { input: opts.input });
  }

  /** Options that make many ssh calls share one connection (much faster for long lists of commands). */
  multiplexed(): string[] {
    return ['-o', 'ControlMaster=auto', '-o', `ControlPath=${join(this.work, 'ssh-%r@%h:%p')}`, '-o', 'ControlPersist=120'];
  }

  gitEnv(key = this.adminKey.priv): NodeJS.ProcessEnv {
    return {
      ...process.env,
      GIT_SSH_COMMAND: `ssh -i ${key} -o IdentitiesOnly=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o BatchMode=yes`,
      GIT_TERMINAL_PROMPT: '0',
    };
  }

  remote(app: string): string {
    return `ssh://git@127.0.0.1:${this.sshPort}/${app}`;
  }

  /** A fresh git working copy of a fixture app, committed on main, with `rack` as its remote. */
  async appRepo(fixture: string, app: string): Promise<string> {
    const dir = join(this.work, app);
    await cp(join(FIXTURES, fixture), dir, { recursive: true });
    const git = (args: string[]) => run('git', args, { cwd: dir });
    await git(['init', '-q', '-b', 'main']);
    await git(['config', 'user.email', 'dev@example.com']);
    await git(['config', 'user.name', 'Dev']);
    await git(['add', '-A']);
    await git(['commit', '-qm', 'first']);
    await git(['remote', 'add', 'rack', this.remote(app)]);
    return dir;
  }

  push(dir: string, refspec = 'main', opts: { key?: string } = {}): Promise<Result> {
    return exec('git', ['push', 'rack', refspec], { cwd: dir, env: this.gitEnv(opts.key) });
  }

  /**
   * The app's git-over-HTTP URL through the router (rack's host, `rack.localhost`, which libcurl and
   * so git resolve to the loopback address themselves), with the token as Basic password if given.
   */
  httpGitUrl(app: string, token?: string): string {
    return `http://${token === undefined ? '' : `x:${token}@`}rack.localhost:${this.httpPort}/${app}.git`;
  }

  /** `ssh rack tokens:create NAME FLAGS...` with the admin key; the token it shows once. */
  async createToken(name: string, flags: string[] = []): Promise<string> {
    const r = await this.ssh(['tokens:create', name, ...flags]);
    const token = /rack_[A-Za-z0-9_-]{43}/.exec(r.stdout)?.[0];
    if (r.code !== 0 || !token) throw new Error(`tokens:create ${name} failed: ${r.stderr}${r.stdout}`);
    return token;
  }

  /**
   * Waits until no process of the app is draining: a rollout returns at the switch and the old
   * processes stop in the background, so a test counting containers waits for that first.
   */
  async drained(app: string, timeoutMs = 45_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const r = await this.ssh(['ps', '--json', '-a', app]);
      const rows = r.code === 0 ? (JSON.parse(r.stdout) as { state: string }[]) : [];
      if (!rows.some((p) => p.state === 'draining')) return;
      if (Date.now() > deadline) throw new Error(`${app} still has draining processes after ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  /** The commit of the release serving `app` now, from rack's own records. */
  async servingCommit(app: string): Promise<string> {
    const releases = JSON.parse((await this.ssh(['releases', '-a', app, '--json'])).stdout) as { build: number; current: boolean }[];
    const current = releases.find((r) => r.current);
    if (!current) throw new Error(`${app} has no current release`);
    const builds = JSON.parse((await this.ssh(['builds', '-a', app, '--json'])).stdout) as { id: number; commit: string }[];
    return builds.find((b) => b.id === current.build)!.commit;
  }

  /** GET through the router with `Host: APP.localhost`. */
  get(app: string, path = '/'): Promise<{ status: number; body: string }> {
    return this.getHost(`${app}.localhost`, path);
  }

  /** POST (no body) through the router with `Host: APP.localhost`. */
  post(app: string, path: string): Promise<{ status: number; body: string }> {
    return this.getHost(`${app}.localhost`, path, 'POST');
  }

  /** GET through the router with any Host (`rack.localhost`: rackd's own pages). */
  getHost(host: string, path = '/', method = 'GET'): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: this.httpPort, path, method, headers: { host }, agent: false }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      req.end();
    });
  }
}

/** Commits a change in a working copy. */
export async function commitFile(dir: string, file: string, content: string, message: string): Promise<void> {
  await writeFile(join(dir, file), content);
  await run('git', ['add', '-A'], { cwd: dir });
  await run('git', ['commit', '-qm', message], { cwd: dir });
}

export async function headOf(dir: string, ref = 'HEAD'): Promise<string> {
  return (await run('git', ['rev-parse', ref], { cwd: dir })).stdout.trim();
}
