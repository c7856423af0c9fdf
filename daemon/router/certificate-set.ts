import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createSecureContext, type SecureContext } from 'node:tls';
import type { Logger } from '../log.js';
import { splitPem } from '../pem-bundle.js';

/** `HOST.pem` in the certificate folder; rackd writes only names it has checked. */
const FILE = /^([a-z0-9.-]{1,253})\.pem$/;

/**
 * The router's certificates by host name, for SNI. rackd writes `HOST.pem` files (chain, then key)
 * into one folder and asks for a reload; the whole map is rebuilt and swapped, so a handshake sees
 * either the old set or the new one. Connections already open keep the context they began with:
 * a changed certificate takes effect without dropping anyone.
 */
export class CertificateSet {
  readonly #dir: string;
  readonly #logger: Logger;
  #contexts = new Map<string, SecureContext>();
  /** Each host's certificate chain as text: hosts given the same certificate share a connection. */
  #chains = new Map<string, string>();

  constructor(dir: string, logger: Logger) {
    this.#dir = dir;
    this.#logger = logger;
  }

  /** Reads the folder again; a file that does not load keeps its host's previous certificate, if any. */
  async reload(): Promise<string[]> {
    let names: string[];
    try {
      names = await readdir(this.#dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      names = [];
    }
    const next = new Map<string, SecureContext>();
    const chains = new Map<string, string>();
    for (const name of names) {
      const host = FILE.exec(name)?.[1];
      if (host === undefined) continue;
      try {
        const { certificates, key } = splitPem(await readFile(join(this.#dir, name), 'utf8'));
        if (certificates.length === 0 || key === undefined) throw new Error('no certificate or no key in the file');
        next.set(host, createSecureContext({ cert: certificates.join(''), key, minVersion: 'TLSv1.2' }));
        chains.set(host, certificates.join(''));
      } catch (err) {
        const kept = this.#contexts.get(host);
        const keptChain = this.#chains.get(host);
        if (kept !== undefined) next.set(host, kept);
        if (keptChain !== undefined) chains.set(host, keptChain);
        this.#logger.error({ host, err: err instanceof Error ? err.message : String(err), kept: kept !== undefined }, 'router: certificate not loaded');
      }
    }
    this.#contexts = next;
    this.#chains = chains;
    this.#logger.info({ hosts: [...next.keys()] }, 'router: certificates loaded');
    return [...next.keys()].sort();
  }

  get(host: string): SecureContext | undefined {
    return this.#contexts.get(host);
  }

  /** Both names are served the same certificate (and `b` is served at all). */
  sameCertificate(a: string, b: string): boolean {
    const chain = this.#chains.get(b);
    return chain !== undefined && chain === this.#chains.get(a);
  }

  has(host: string): boolean {
    return this.#contexts.has(host);
  }
}
