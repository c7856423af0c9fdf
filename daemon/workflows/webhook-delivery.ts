import { createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { RackError } from '../rack-error.js';

export type RepoHost = 'github' | 'gitlab' | 'gitea';

/** A delivery whose signature held: who sent it, which event, and for a push, what moved. */
export interface VerifiedDelivery {
  host: RepoHost;
  /** The host's own event name: `push`, `ping`, `Push Hook`, `pull_request`, ... */
  event: string;
  id: string;
  /** Present for a push of a branch (not a tag, not a deletion). */
  push?: { branch: string; commit: string };
  /** Present for a pull (merge) request opened, updated or closed: what review apps act on. */
  pullRequest?: PullRequestChange;
}

export interface PullRequestChange {
  number: number;
  action: 'open' | 'update' | 'close';
  /** The head commit of the request. */
  commit: string;
  /** The ref the host keeps the request's head under (`refs/pull/N/head`, GitLab's `refs/merge-requests/N/head`). */
  ref: string;
}

const DELIVERY_ID = /^[A-Za-z0-9._:-]{1,128}$/;
const SHA = /^[0-9a-f]{40}([0-9a-f]{24})?$/;
const ZERO = /^0+$/;

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return typeof value === 'string' ? value : undefined;
}

/** Compares in constant time; strings of another length are unequal without a comparison. */
function sameBytes(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

function hmacHex(secret: string, body: Buffer): string {
  return createHmac('sha256', secret).update(body).digest('hex');
}

const refused = () => new RackError('unauthorized', 'the webhook signature does not match this app\'s secret');

/**
 * Checks a delivery as its host documents, over the raw body, and reads it. Which host sent it is
 * told by the header that carries its proof, Gitea's first: Gitea (and Forgejo) also send
 * `X-GitHub-Event`, but sign with their own header.
 * - GitHub: `X-Hub-Signature-256: sha256=HEX(HMAC-SHA256(secret, body))`, `X-GitHub-Event`, `X-GitHub-Delivery`.
 * - Gitea/Forgejo: `X-Gitea-Signature` (or `X-Forgejo-Signature`): the bare hex HMAC; `X-Gitea-Event`, `X-Gitea-Delivery`.
 * - GitLab: `X-Gitlab-Token`: the secret itself; `X-Gitlab-Event`; `Idempotency-Key` (17.4+, the same
 *   on a retry) or else `X-Gitlab-Event-UUID`.
 * Throws `unauthorized` for a missing or wrong proof, `bad_argument` for a body that is not the JSON a host sends.
 */
export function verifyDelivery(headers: IncomingHttpHeaders, body: Buffer, secret: string): VerifiedDelivery {
  let host: RepoHost;
  let event: string | undefined;
  let id: string | undefined;
  const gitea = header(headers, 'x-gitea-signature') ?? header(headers, 'x-forgejo-signature');
  const gitlab = header(headers, 'x-gitlab-token');
  const github = header(headers, 'x-hub-signature-256');
  if (gitea !== undefined) {
    if (!sameBytes(gitea.toLowerCase(), hmacHex(secret, body))) throw refused();
    host = 'gitea';
    event = header(headers, 'x-gitea-event') ?? header(headers, 'x-forgejo-event');
    id = header(headers, 'x-gitea-delivery') ?? header(headers, 'x-forgejo-delivery');
  } else if (gitlab !== undefined) {
    if (!sameBytes(gitlab, secret)) throw refused();
    host = 'gitlab';
    event = header(headers, 'x-gitlab-event');
    id = header(headers, 'idempotency-key') ?? header(headers, 'x-gitlab-event-uuid');
  } else if (github !== undefined) {
    if (!sameBytes(github.toLowerCase(), `sha256=${hmacHex(secret, body)}`)) throw refused();
    host = 'github';
    event = header(headers, 'x-github-event');
    id = header(headers, 'x-github-delivery');
  } else {
    throw new RackError('unauthorized', 'no webhook signature: set the secret rack gave at repo:connect in the host\'s webhook settings');
  }
  if (event === undefined || event === '' || event.length > 100) throw new RackError('bad_argument', `the ${host} delivery names no event`);
  if (id === undefined || !DELIVERY_ID.test(id)) throw new RackError('bad_argument', `the ${host} delivery has no usable delivery ID`);
  const delivery: VerifiedDelivery = { host, event, id };
  if (isPush(host, event)) {
    const push = pushOf(jsonOf(body, header(headers, 'content-type')));
    if (push) delivery.push = push;
  }
  if (event === 'pull_request' || event === 'Merge Request Hook') {
    const change = pullRequestOf(host, jsonOf(body, header(headers, 'content-type')));
    if (change) delivery.pullRequest = change;
  }
  return delivery;
}

function isPush(host: RepoHost, event: string): boolean {
  return host === 'gitlab' ? event === 'Push Hook' : event === 'push';
}

/** GitHub may send the JSON as the `payload` field of a form; the signature still covers the raw body. */
function jsonOf(body: Buffer, contentType: string | undefined): Buffer {
  if ((contentType ?? '').split(';')[0]!.trim().toLowerCase() !== 'application/x-www-form-urlencoded') return body;
  return Buffer.from(new URLSearchParams(body.toString('utf8')).get('payload') ?? '');
}

/**
 * The branch and commit of a push body (`ref`, `after`: the same fields at all three hosts);
 * undefined for a tag or a branch deleted (`after` all zeros).
 */
export function pushOf(body: Buffer): { branch: string; commit: string } | undefined {
  let payload: unknown;
  try {
    payload = JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw new RackError('bad_argument', 'the push body is not JSON', { cause: err });
  }
  if (typeof payload !== 'object' || payload === null) throw new RackError('bad_argument', 'the push body is not a JSON object');
  const { ref, after } = payload as { ref?: unknown; after?: unknown };
  if (typeof ref !== 'string' || typeof after !== 'string') throw new RackError('bad_argument', 'the push body has no ref and after');
  if (!ref.startsWith('refs/heads/') || !SHA.test(after) || ZERO.test(after)) return undefined;
  return { branch: ref.slice('refs/heads/'.length), commit: after };
}

// The actions each host names, as review apps read them; any other (labeled, edited, ...) is ignored.
const PR_ACTIONS: Record<RepoHost, Record<string, PullRequestChange['action']>> = {
  github: { opened: 'open', reopened: 'open', synchronize: 'update', closed: 'close' },
  gitea: { opened: 'open', reopened: 'open', synchronized: 'update', closed: 'close' },
  gitlab: { open: 'open', reopen: 'open', update: 'update', close: 'close', merge: 'close' },
};

/**
 * A pull request's number, action and head: GitHub and Gitea send `action`, `number` and
 * `pull_request.head.sha`; GitLab `object_attributes.{action, iid, last_commit.id}`.
 */
export function pullRequestOf(host: RepoHost, body: Buffer): PullRequestChange | undefined {
  let payload: Record<string, unknown>;
  try {
    payload = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
  } catch (err) {
    throw new RackError('bad_argument', 'the pull request body is not JSON', { cause: err });
  }
  if (typeof payload !== 'object' || payload === null) return undefined;
  let action: unknown;
  let number: unknown;
  let commit: unknown;
  if (host === 'gitlab') {
    const attributes = (payload['object_attributes'] ?? {}) as Record<string, unknown>;
    action = attributes['action'];
    number = attributes['iid'];
    commit = ((attributes['last_commit'] ?? {}) as Record<string, unknown>)['id'];
  } else {
    action = payload['action'];
    number = payload['number'];
    commit = (((payload['pull_request'] ?? {}) as Record<string, unknown>)['head'] as Record<string, unknown> | undefined)?.['sha'];
  }
  const change = typeof action === 'string' && Object.hasOwn(PR_ACTIONS[host], action) ? PR_ACTIONS[host][action] : undefined;
  if (!change || typeof number !== 'number' || !Number.isInteger(number) || number < 1 || number > 999_999 || typeof commit !== 'string' || !SHA.test(commit)) return undefined;
  const ref = host === 'gitlab' ? `refs/merge-requests/${number}/head` : `refs/pull/${number}/head`;
  return { number, action: change, commit, ref };
}

/** What a host would send, for tests and for trying a hook by hand: the signature headers of `body`. */
export function signDelivery(host: RepoHost, secret: string, body: Buffer | string): Record<string, string> {
  const bytes = Buffer.from(body);
  if (host === 'github') return { 'X-Hub-Signature-256': `sha256=${hmacHex(secret, bytes)}` };
  if (host === 'gitea') return { 'X-Gitea-Signature': hmacHex(secret, bytes) };
  return { 'X-Gitlab-Token': secret };
}
