import { randomBytes } from 'node:crypto';
import type { RackConfig } from '../config.js';
import { parseDestination, resolveDestination } from '../drains/drain-destination.js';
import { RackError } from '../rack-error.js';
import type { RepoLink } from '../store/records.js';
import type { Store } from '../store/store.js';
import { ensureDeployKey, removeDeployKey } from './repo-fetch.js';
import { checkRepoUrl, parseBranch, parseRepoUrl } from './repo-url.js';
import { HOOKS_PREFIX } from './webhook-receiver.js';

export interface Connected {
  link: RepoLink;
  /** Shown once, here: the secret to enter at the host. */
  secret: string;
  webhookUrl: string;
}

/**
 * The connected repository of each app: `repo:connect`, `repo:info`, `repo:disconnect`. The
 * secret is made here (32 random bytes) and shown once; ssh links get the app's deploy key.
 */
export class RepoLinks {
  constructor(
    private readonly store: Store,
    private readonly config: Pick<RackConfig, 'consoleHost' | 'consoleAcme' | 'httpPort' | 'httpsPort' | 'fetchAllow'>,
    private readonly keysDir: string,
  ) {}

  /** Connects (or reconnects: a new secret, the same deploy key). The URL is checked under the tenant rules first. */
  async connect(req: { app: string; url: string; branch: string; token?: string; statusApi?: string; createdBy: string }): Promise<Connected> {
    const repo = parseRepoUrl(req.url);
    const branch = parseBranch(req.branch);
    if (req.token !== undefined && repo.transport !== 'http') throw new RackError('bad_argument', 'a token is for https URLs; ssh URLs use the deploy key rack makes');
    if (req.token !== undefined && !/^[\x21-\x7e]{1,512}$/.test(req.token)) throw new RackError('bad_argument', 'the token must be one line of printable characters');
    await checkRepoUrl(repo, this.config.fetchAllow);
    if (req.statusApi !== undefined) {
      if (req.token === undefined) throw new RackError('bad_argument', '--status-api needs the token (--token-stdin) the statuses are posted with');
      // The token goes there: it is checked as every address rack sends to on a tenant's behalf.
      const api = parseDestination(req.statusApi, ['https', 'http']);
      if (api.url.username !== '' || api.url.search !== '') throw new RackError('bad_argument', '--status-api is the API base only (https://HOST/PATH): the token is the credential');
      await resolveDestination(api, this.config.fetchAllow);
    }
    const secret = randomBytes(32).toString('hex');
    const link: RepoLink = {
      app: req.app,
      url: repo.url,
      transport: repo.transport,
      branch,
      secret,
      ...(req.token === undefined ? {} : { token: req.token }),
      ...(req.statusApi === undefined ? {} : { statusApi: req.statusApi.replace(/\/+$/, '') }),
      createdAt: new Date().toISOString(),
      createdBy: req.createdBy,
    };
    if (repo.transport === 'ssh') link.deployKey = await ensureDeployKey(this.keysDir, req.app);
    await this.store.repos.put(link);
    return { link, secret, webhookUrl: this.webhookUrl(req.app) };
  }

  async disconnect(app: string): Promise<void> {
    if (!(await this.store.repos.remove(app))) throw new RackError('not_found', `${app} has no connected repository`);
    await removeDeployKey(this.keysDir, app);
  }

  async require(app: string): Promise<RepoLink> {
    const link = await this.store.repos.get(app);
    if (!link) throw new RackError('not_found', `${app} has no connected repository; connect one with: repo:connect URL -a ${app}`);
    return link;
  }

  /** Where the host posts: rack's own host, https when rack keeps a certificate for it. */
  webhookUrl(app: string): string {
    const { consoleHost, consoleAcme, httpPort, httpsPort } = this.config;
    if (consoleAcme && httpsPort !== undefined) return `https://${consoleHost}${httpsPort === 443 ? '' : `:${httpsPort}`}${HOOKS_PREFIX}${app}`;
    return `http://${consoleHost}${httpPort === 80 ? '' : `:${httpPort}`}${HOOKS_PREFIX}${app}`;
  }
}
