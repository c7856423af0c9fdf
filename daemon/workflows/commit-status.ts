import { parseDestination, resolveDestination } from '../drains/drain-destination.js';
import { postTo } from '../drains/https-post.js';
import type { Logger } from '../log.js';
import { RackError } from '../rack-error.js';
import type { RepoLink } from '../store/records.js';
import type { RepoHost } from './webhook-delivery.js';

/** The states rack posts, in GitHub's words; GitLab's are mapped (`failed`). */
export type StatusState = 'pending' | 'success' | 'failure' | 'error';

export interface CommitStatus {
  state: StatusState;
  /** The review app's URL: the link the host shows beside the commit. */
  targetUrl: string;
  description: string;
}

export interface StatusRequest {
  url: string;
  headers: Record<string, string>;
  body: string;
}

/** One name for rack's statuses, so each new one replaces the last at the host (GitHub's context, GitLab's name). */
export const STATUS_CONTEXT = 'rack/review-app';
const TIMEOUT_MS = 10_000;

/**
 * The API base of a repository's host: github.com's own API host, else the host's usual path
 * (GitHub Enterprise `/api/v3`, GitLab `/api/v4`, Gitea and Forgejo `/api/v1`) on the
 * repository's scheme and port. `repo:connect --status-api URL` overrides it.
 */
export function statusApiBase(repoUrl: string, host: RepoHost): string {
  const url = new URL(repoUrl);
  if (host === 'github' && url.hostname.toLowerCase() === 'github.com') return 'https://api.github.com';
  const path = host === 'github' ? '/api/v3' : host === 'gitlab' ? '/api/v4' : '/api/v1';
  return `${url.protocol}//${url.host}${path}`;
}

/** `owner/repo` (GitLab: `group/subgroup/project`) from the repository's https URL. */
export function repoPath(repoUrl: string): string {
  const path = decodeURIComponent(new URL(repoUrl).pathname).replace(/^\/+|\/+$/g, '').replace(/\.git$/, '');
  if (!/^[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+)+$/.test(path)) {
    throw new RackError('bad_argument', `cannot tell the owner and repository from ${JSON.stringify(path.slice(0, 80))}`);
  }
  return path;
}

/**
 * The request of one status as each host documents it: GitHub and Gitea `POST
 * /repos/{owner}/{repo}/statuses/{sha}` with `context`, GitLab `POST
 * /projects/{url-encoded path}/statuses/{sha}` with `name` and its own word for a failure.
 */
export function statusRequest(host: RepoHost, base: string, path: string, sha: string, token: string, status: CommitStatus): StatusRequest {
  const root = base.replace(/\/+$/, '');
  const description = status.description.slice(0, 140);
  if (host === 'gitlab') {
    return {
      url: `${root}/projects/${encodeURIComponent(path)}/statuses/${sha}`,
      headers: { 'PRIVATE-TOKEN': token },
      body: JSON.stringify({ state: status.state === 'failure' || status.state === 'error' ? 'failed' : status.state, target_url: status.targetUrl, name: STATUS_CONTEXT, description }),
    };
  }
  const [owner, ...rest] = path.split('/');
  return {
    url: `${root}/repos/${encodeURIComponent(owner!)}/${encodeURIComponent(rest.join('/'))}/statuses/${sha}`,
    headers: host === 'github' ? { Authorization: `Bearer ${token}`, Accept: 'application/vnd.github+json', 'X-GitHub-Api-Version': '2022-11-28' } : { Authorization: `token ${token}` },
    body: JSON.stringify({ state: status.state, target_url: status.targetUrl, description, context: STATUS_CONTEXT }),
  };
}

/**
 * Posts review apps' states back to the repository's host as commit statuses, when the link has a
 * token. Posts are queued one after another per app (so `success` never overtakes `pending`) and
 * never wait on nor fail a deploy: an error is logged. The API's address is checked under the
 * tenant rules of every fetch rack makes (RACK_FETCH_ALLOW) and the connection pinned to it.
 */
export class CommitStatuses {
  private readonly queues = new Map<string, Promise<void>>();

  constructor(
    private readonly fetchAllow: readonly string[],
    private readonly log: Logger,
  ) {}

  post(link: RepoLink, host: RepoHost, sha: string, status: CommitStatus): void {
    if (link.token === undefined) return;
    const token = link.token;
    const previous = this.queues.get(link.app) ?? Promise.resolve();
    const next = previous.then(() => this.send(link, host, sha, token, status));
    this.queues.set(link.app, next);
    void next.finally(() => {
      if (this.queues.get(link.app) === next) this.queues.delete(link.app);
    });
  }

  /** Resolves once every status asked for has been sent or given up on. */
  async idle(): Promise<void> {
    while (this.queues.size > 0) await Promise.allSettled([...this.queues.values()]);
  }

  private async send(link: RepoLink, host: RepoHost, sha: string, token: string, status: CommitStatus): Promise<void> {
    const where = { app: link.app, host, sha, state: status.state };
    try {
      const base = link.statusApi ?? statusApiBase(link.url, host);
      const req = statusRequest(host, base, repoPath(link.url), sha, token, status);
      const dest = parseDestination(req.url, ['https', 'http']);
      const address = await resolveDestination(dest, this.fetchAllow);
      const answer = await postTo(dest, address, Buffer.from(req.body), { 'Content-Type': 'application/json', 'User-Agent': 'rack-review-apps/1', ...req.headers }, { timeoutMs: TIMEOUT_MS });
      if (answer.status < 200 || answer.status > 299) {
        this.log.warn({ ...where, status: answer.status, answer: answer.body.slice(0, 200) }, 'the host refused the commit status');
      } else {
        this.log.info(where, 'commit status posted');
      }
    } catch (err) {
      // The message never holds the token: it goes in a header, and errors name the URL only.
      this.log.warn({ ...where, err: RackError.from(err).message }, 'could not post the commit status');
    }
  }
}
