import bcrypt from 'bcryptjs';
import type Docker from 'dockerode';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { access, chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Agent } from 'undici';
import type { Logger } from '../log.js';
import { RackError } from '../rack-error.js';
import { runScript } from '../run-script.js';
import { imageExists } from './docker-images.js';
import { LABEL } from './labels.js';
import type { Owner } from './owner.js';

const run = promisify(execFile);
const REGISTRY_IMAGE = 'rack/registry:latest';
const LOOPBACK = '127.0.0.1';

export interface RegistryOptions {
  /** RACK_HOME/registry: the CA, the registry's certificate and key. */
  dir: string;
  port: number;
  installDir: string;
  log: Logger;
}

/** The registry's one account: rackd pushes and deletes with it, Swarm pulls with it for the nodes. */
export interface RegistryAuth {
  username: string;
  password: string;
  serveraddress: string;
}

/**
 * The swarm runtime's image registry: rack/registry (Debian's docker-registry, made on first use)
 * on the manager, with TLS from a CA rack makes, so that nodes pull app images by digest and every
 * node runs the same bytes. The manager's engine pushes over loopback (Docker allows a loopback
 * registry without trusting its certificate); nodes pull at the manager's Swarm address, trusting
 * the CA in /etc/docker/certs.d (nodes:join-command installs it).
 *
 * Every request needs rack's password (htpasswd, bcrypt): the address is reachable from the
 * workers, so from tenants' processes too, which must neither read another app's image nor delete
 * one. Swarm hands the password to a node only to pull a service's image (`X-Registry-Auth`).
 */
/** `rack/app:b3` → [`rack/app`, `b3`]; a name without a tag is `latest`. */
function splitReference(image: string): [string, string] {
  const colon = image.lastIndexOf(':');
  return colon > image.lastIndexOf('/') ? [image.slice(0, colon), image.slice(colon + 1)] : [image, 'latest'];
}

/**
 * What the registry holds of one local name: its loopback tag and its manifest's digest in its own
 * repository only. The same image can stand under another app's name too (a promotion tags it
 * there): forgetting this app's name must leave that app's manifest, which its tasks pull.
 */
export function registryRefsOf(image: string, local: string, info: { RepoTags?: string[] | null; RepoDigests?: string[] | null }): { tags: string[]; digests: string[] } {
  const [repo, tag] = splitReference(image);
  return {
    tags: (info.RepoTags ?? []).filter((t) => t === `${local}/${repo}:${tag}`),
    digests: (info.RepoDigests ?? []).filter((d) => d.startsWith(`${local}/${repo}@`)),
  };
}

export class RegistryImages {
  #address = '';
  #login: { username: string; password: string } | undefined;
  /** Trusts rack's CA; made on the first request, kept for every later one. */
  #dispatcher: Agent | undefined;
  readonly #pushed = new Map<string, Promise<string>>();

  constructor(
    private readonly docker: Docker,
    private readonly streams: Docker,
    private readonly owner: Owner,
    private readonly opts: RegistryOptions,
  ) {}

  /** `ADDRESS:PORT`, as nodes reach the registry. */
  get host(): string {
    return `${this.#address}:${this.opts.port}`;
  }

  /** Makes the CA, the certificate and the image when missing, and runs the registry. */
  async start(address: string): Promise<void> {
    this.#address = address;
    await this.#certificates(address);
    await this.#credentials();
    if (!(await imageExists(this.docker, REGISTRY_IMAGE))) {
      this.opts.log.info('making the rack/registry image (first use of the swarm runtime)');
      const code = await runScript(join(this.opts.installDir, 'scripts', 'make-registry-image.sh'), [], (line) => this.opts.log.info({ line }, 'make-registry-image'));
      if (code !== 0) throw new RackError('internal', `making ${REGISTRY_IMAGE} failed (status ${code}); the log has its output`);
    }
    const name = `rack-registry-${this.owner.instance}`;
    const container = this.docker.getContainer(name);
    let running = false;
    try {
      const info = await container.inspect();
      const bound = (info.HostConfig.PortBindings as Record<string, { HostIp?: string }[]> | undefined)?.['5000/tcp'] ?? [];
      if (bound.some((b) => b.HostIp === address)) {
        if (!info.State.Running) await container.start();
        running = true;
      } else {
        // The manager's address changed: the registry is published again at the new one.
        await container.remove({ force: true });
      }
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode !== 404) throw err;
    }
    if (!running) {
      // The images live on (labelled) when the container is made again.
      await this.docker.createVolume({ Name: name, Labels: this.owner.labels({ [LABEL.role]: 'registry' }) });
      const made = await this.docker.createContainer({
        name,
        Image: REGISTRY_IMAGE,
        Labels: this.owner.labels({ [LABEL.role]: 'registry' }),
        ExposedPorts: { '5000/tcp': {} },
        Env: ['REGISTRY_AUTH=htpasswd', 'REGISTRY_AUTH_HTPASSWD_REALM=rack', 'REGISTRY_AUTH_HTPASSWD_PATH=/auth/htpasswd'],
        HostConfig: {
          Binds: [
            `${join(this.opts.dir, 'registry.crt')}:/certs/registry.crt:ro`,
            `${join(this.opts.dir, 'registry.key')}:/certs/registry.key:ro`,
            `${join(this.opts.dir, 'htpasswd')}:/auth/htpasswd:ro`,
            `${name}:/var/lib/registry`,
          ],
          PortBindings: { '5000/tcp': [{ HostIp: address, HostPort: String(this.opts.port) }, { HostIp: LOOPBACK, HostPort: String(this.opts.port) }] },
          RestartPolicy: { Name: 'unless-stopped' },
        },
      });
      await made.start();
    }
    await this.#waitAnswering();
  }

  /**
   * Pushes an image ahead of need, in the background: the run stack's layers are under every app
   * image, so the first deploy then pushes only the app's own (seconds instead of tens of seconds).
   */
  warm(image: string): void {
    const started = Date.now();
    this.publish(image).then(
      () => this.opts.log.info({ image, ms: Date.now() - started }, 'pushed to the registry ahead of the first deploy'),
      (err: unknown) => this.opts.log.warn({ image, err: String(err) }, 'could not push to the registry ahead of time'),
    );
  }

  /** The account, as the nodes' engines name the registry (`X-Registry-Auth` of a service). */
  get auth(): RegistryAuth {
    return { ...this.#account(), serveraddress: this.host };
  }

  #account(): { username: string; password: string } {
    if (this.#login === undefined) throw new Error('the registry has not started');
    return this.#login;
  }

  #basic(): string {
    const { username, password } = this.#account();
    return `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
  }

  /** rack's account, made once: the password in a 0600 file, its bcrypt hash in the registry's htpasswd. */
  async #credentials(): Promise<void> {
    const file = join(this.opts.dir, 'account.json');
    try {
      this.#login = JSON.parse(await readFile(file, 'utf8')) as { username: string; password: string };
      return;
    } catch {
      // made below
    }
    const login = { username: 'rack', password: randomBytes(24).toString('hex') };
    await writeFile(join(this.opts.dir, 'htpasswd'), `${login.username}:${await bcrypt.hash(login.password, 10)}\n`, { mode: 0o644 });
    await writeFile(file, JSON.stringify(login), { mode: 0o600 });
    this.#login = login;
  }

  /** The CA nodes must trust, PEM. */
  ca(): Promise<string> {
    return readFile(join(this.opts.dir, 'ca.crt'), 'utf8');
  }

  /**
   * Pushes a local image (once) and names it by digest at the registry's node-facing address:
   * what a service runs, so a tag moved later changes nothing that runs.
   */
  publish(image: string): Promise<string> {
    let pushed = this.#pushed.get(image);
    if (!pushed) {
      pushed = this.#push(image);
      pushed.catch(() => this.#pushed.delete(image));
      this.#pushed.set(image, pushed);
    }
    return pushed;
  }

  async #push(image: string): Promise<string> {
    const [repo, tag] = splitReference(image);
    const local = `${this.#local}/${repo}`;
    await this.docker.getImage(image).tag({ repo: local, tag });
    const stream = await this.streams.getImage(`${local}:${tag}`).push({ authconfig: { ...this.#account(), serveraddress: this.#local } } as object);
    const digest = await new Promise<string>((resolve, reject) => {
      let found = '';
      this.streams.modem.followProgress(
        stream,
        (err: Error | null) => {
          if (err) reject(err);
          else if (!found) reject(new Error(`pushing ${image} gave no digest`));
          else resolve(found);
        },
        (event: { error?: string; aux?: { Digest?: string } }) => {
          if (event.error) reject(new Error(event.error));
          if (event.aux?.Digest) found = event.aux.Digest;
        },
      );
    });
    return `${this.host}/${repo}@${digest}`;
  }

  /**
   * An image retention or apps:destroy removes: its manifests leave the registry (no node can
   * pull it any more) and its loopback tag goes, so the local image can go too. The registry's
   * blobs stay until `docker-registry garbage-collect` runs (docs/SWARM.md).
   */
  async forget(image: string): Promise<void> {
    this.#pushed.delete(image);
    let digests: string[];
    try {
      const info = await this.docker.getImage(image).inspect();
      const own = registryRefsOf(image, this.#local, info);
      digests = own.digests;
      for (const tag of own.tags) await this.docker.getImage(tag).remove().catch(() => undefined);
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) return;
      throw err;
    }
    for (const ref of digests) {
      const [name, digest] = ref.slice(`${this.#local}/`.length).split('@') as [string, string];
      const status = await this.#request(`${name}/manifests/${digest}`, 'DELETE');
      if (status !== 202 && status !== 404) throw new Error(`the registry answered ${status} to deleting ${ref}`);
    }
  }

  /** The registry's loopback name, as the manager's engine pushes to it. */
  get #local(): string {
    return `${LOOPBACK}:${this.opts.port}`;
  }

  /** One request to the registry API over loopback, with rack's account; its status. */
  async #request(path: string, method: 'GET' | 'DELETE', timeoutMs = 10_000): Promise<number> {
    this.#dispatcher ??= new Agent({ connect: { ca: await this.ca() } });
    const res = await fetch(`https://${this.#local}/v2/${path}`, {
      method,
      headers: { authorization: this.#basic() },
      dispatcher: this.#dispatcher,
      signal: AbortSignal.timeout(timeoutMs),
    } as RequestInit);
    await res.body?.cancel();
    return res.status;
  }

  async #certificates(address: string): Promise<void> {
    const dir = this.opts.dir;
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const file = (name: string) => join(dir, name);
    if (!(await present(file('ca.crt')))) {
      await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '3650',
        '-subj', `/CN=rack registry CA ${this.owner.instance}`, '-keyout', file('ca.key'), '-out', file('ca.crt')]);
    }
    // The certificate names the address; a new address (the manager moved) gets a new one.
    const named = await readFile(file('registry.address'), 'utf8').catch(() => '');
    if (named === address && (await present(file('registry.crt')))) return;
    await writeFile(file('registry.ext'), `subjectAltName=IP:${address},IP:${LOOPBACK}\nextendedKeyUsage=serverAuth\n`);
    await run('openssl', ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', '/CN=rack registry',
      '-keyout', file('registry.key'), '-out', file('registry.csr')]);
    await run('openssl', ['x509', '-req', '-in', file('registry.csr'), '-CA', file('ca.crt'), '-CAkey', file('ca.key'), '-CAcreateserial',
      '-days', '825', '-extfile', file('registry.ext'), '-out', file('registry.crt')]);
    // Read by the registry's own user inside its container; the folder keeps it from anyone else here.
    await chmod(file('registry.key'), 0o644);
    await writeFile(file('registry.address'), address);
  }

  async #waitAnswering(): Promise<void> {
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        if ((await this.#request('', 'GET', 2000)) === 200) return;
      } catch {
        // not up yet
      }
      if (Date.now() > deadline) throw new RackError('internal', `the image registry did not answer on ${this.#local} within 30 s`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

async function present(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}
