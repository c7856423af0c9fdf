import { chmod, mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { isAppName } from '../app-name.js';
import type { RackConfig } from '../config.js';
import type { Logger } from '../log.js';
import type { LogHub } from '../logs/log-hub.js';
import { RackError } from '../rack-error.js';
import type { RouterClient } from '../router/router-client.js';
import { writeFileAtomic } from '../atomic-file.js';
import { CONTROL_PLANE_APP } from '../router/upstream.js';
import type { CertRecord } from '../store/records.js';
import type { Store } from '../store/store.js';
import type { CheckedBundle } from './certificate-check.js';
import { joinPem } from '../pem-bundle.js';

/**
 * The certificates rack serves: one PEM file per host in RACK_HOME/certs (mode 0600, folder 0700,
 * read by the router process) and a record per host in the store for `certs`. Every install and
 * removal ends with the router reloading the folder, so the change serves from the next handshake.
 */
export class Certificates {
  readonly #dir: string;

  constructor(
    private readonly config: RackConfig,
    private readonly store: Store,
    private readonly router: RouterClient,
    private readonly logs: LogHub,
    private readonly log: Logger,
    dir: string,
  ) {
    this.#dir = dir;
  }

  get dir(): string {
    return this.#dir;
  }

  /**
   * Makes the folder private, and drops what no record or no app accounts for: a file written just
   * before a crash (its record never made it), or the certificate of a host since removed.
   */
  async start(): Promise<void> {
    await mkdir(this.#dir, { recursive: true, mode: 0o700 });
    await chmod(this.#dir, 0o700);
    const records = new Map((await this.store.certs.list()).map((r) => [r.host, r]));
    for (const name of await readdir(this.#dir)) {
      const host = name.endsWith('.pem') ? name.slice(0, -4) : undefined;
      if (host !== undefined && records.get(host)?.certificate !== undefined) continue;
      await rm(join(this.#dir, name), { force: true });
    }
    for (const record of records.values()) {
      if ((await this.ownerOf(record.host)) === undefined) await this.remove(record.host, 'its host is no longer attached to an app');
    }
    await this.router.reloadCertificates();
  }

  /** The app a host is attached to: a domain, a default host, or rack's own host; undefined if none. */
  async ownerOf(host: string): Promise<string | undefined> {
    if (host === this.config.consoleHost) return CONTROL_PLANE_APP;
    const owner = await this.store.domainOwner(host);
    if (owner !== undefined) return owner;
    const suffix = `.${this.config.domain}`;
    if (!host.endsWith(suffix)) return undefined;
    const name = host.slice(0, -suffix.length);
    return isAppName(name) && (await this.store.getApp(name)) !== undefined ? name : undefined;
  }

  /** Like ownerOf, but a host no app serves is refused: rack never holds a certificate for one. */
  async requireOwner(host: string): Promise<string> {
    const owner = await this.ownerOf(host);
    if (owner === undefined) {
      throw new RackError('bad_argument', `${host} is not attached to any app (add it first: domains:add ${host} -a APP)`);
    }
    return owner;
  }

  /** The app's hosts, default first. */
  async hostsOf(app: string): Promise<string[]> {
    if (app === CONTROL_PLANE_APP) return [this.config.consoleHost];
    const record = await this.store.requireApp(app);
    return [`${app}.${this.config.domain}`, ...(record.domains ?? [])];
  }

  /** Writes the file, then the record, then has the router serve it. */
  async install(host: string, app: string, bundle: CheckedBundle, source: CertRecord['source']): Promise<CertRecord> {
    await mkdir(this.#dir, { recursive: true, mode: 0o700 });
    await writeFileAtomic(this.#file(host), joinPem(bundle), 0o600);
    const now = new Date().toISOString();
    const record: CertRecord = { host, app, source, certificate: bundle.info, updatedAt: now };
    if (source === 'acme') record.acme = { failures: 0, lastAttemptAt: now };
    await this.store.certs.put(record);
    await this.router.reloadCertificates();
    this.#note(app, `certificate for ${host} installed (${source}, expires ${bundle.info.notAfter})`);
    return record;
  }

  /** Forgets the host's certificate; the router stops serving it from the next handshake. */
  async remove(host: string, why: string): Promise<CertRecord | undefined> {
    const record = await this.store.certs.get(host);
    await this.store.certs.remove(host);
    await rm(this.#file(host), { force: true });
    await this.router.reloadCertificates();
    if (record !== undefined) this.#note(record.app, `certificate for ${host} removed: ${why}`);
    return record;
  }

  /** An app's line in its `logs`, and the operator's log. */
  #note(app: string, text: string): void {
    this.log.info({ app }, `certs: ${text}`);
    if (app !== CONTROL_PLANE_APP) this.logs.push({ time: new Date().toISOString(), app, source: 'rack[certs]', type: 'certs', text });
  }

  note(app: string, text: string): void {
    this.#note(app, text);
  }

  #file(host: string): string {
    // Host names are checked DNS names before they get here: no slash, no `..`.
    if (!/^[a-z0-9.-]{1,253}$/.test(host) || host.includes('..')) throw new RackError('bad_argument', `invalid host name ${JSON.stringify(host.slice(0, 60))}`);
    return join(this.#dir, `${host}.pem`);
  }
}
