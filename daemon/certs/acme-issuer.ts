import { createHash, generateKeyPairSync } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import acme from 'acme-client';
import { writeFileAtomic } from '../atomic-file.js';

/** Where the CA fetches http-01 answers: the router's plain port, for the one host being ordered. */
export interface ChallengeResponder {
  set(token: string, host: string, keyAuthorization: string): Promise<unknown>;
  remove(token: string): Promise<unknown>;
}

export interface IssuedCertificate {
  /** The chain as the CA sent it, leaf first. */
  chainPem: string;
  keyPem: string;
}

/** The one thing rack asks of a CA; the ACME details stay behind it. */
export interface CertificateIssuer {
  issue(host: string, challenges: ChallengeResponder): Promise<IssuedCertificate>;
}

/** A CA that answers slowly must not hold an order (and the queue behind it) for good. */
const REQUEST_TIMEOUT_MS = 30_000;

// acme-client waits out any Retry-After it is given, an hour under a rate limit: the hang its users
// report. rack retries on its own schedule instead, with the error in plain sight meanwhile.
acme.axios.defaults.timeout = REQUEST_TIMEOUT_MS;
(acme.axios.defaults as { acmeSettings?: { retryMaxAttempts: number } }).acmeSettings!.retryMaxAttempts = 0;

/**
 * Orders certificates from an ACME server (RFC 8555) with acme-client: one account per directory
 * URL, its key kept in RACK_HOME/acme (mode 0600); a fresh P-256 key per certificate; http-01 only,
 * answered by rack's router (the CA's own fetch is the check: rack does not pre-fetch it itself,
 * which would need this machine to resolve the name as the world does).
 */
export class AcmeIssuer implements CertificateIssuer {
  readonly #directoryUrl: string;
  readonly #email: string | undefined;
  readonly #dir: string;
  #client: acme.Client | undefined;

  constructor(opts: { directoryUrl: string; email: string | undefined; dir: string }) {
    this.#directoryUrl = opts.directoryUrl;
    this.#email = opts.email;
    this.#dir = opts.dir;
  }

  async issue(host: string, challenges: ChallengeResponder): Promise<IssuedCertificate> {
    const client = await this.#accountClient();
    const [key, csr] = await acme.crypto.createCsr({ commonName: host, altNames: [host] }, await acme.crypto.createPrivateEcdsaKey());
    const chainPem = await client.auto({
      csr,
      email: this.#email,
      termsOfServiceAgreed: true,
      challengePriority: ['http-01'],
      skipChallengeVerification: true,
      challengeCreateFn: async (authz, challenge, keyAuthorization) => {
        if (challenge.type !== 'http-01') throw new Error(`unexpected ${challenge.type} challenge`);
        await challenges.set(challenge.token, authz.identifier.value, keyAuthorization);
      },
      challengeRemoveFn: async (_authz, challenge) => {
        await challenges.remove(challenge.token);
      },
    });
    return { chainPem, keyPem: key.toString() };
  }

  async #accountClient(): Promise<acme.Client> {
    if (this.#client !== undefined) return this.#client;
    const tag = createHash('sha256').update(this.#directoryUrl).digest('hex').slice(0, 16);
    const path = join(this.#dir, `account-${tag}.pem`);
    let accountKey = await readFile(path, 'utf8').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw err;
    });
    if (accountKey === undefined) {
      await mkdir(this.#dir, { recursive: true, mode: 0o700 });
      accountKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
      await writeFileAtomic(path, accountKey, 0o600);
    }
    this.#client = new acme.Client({ directoryUrl: this.#directoryUrl, accountKey });
    return this.#client;
  }
}
