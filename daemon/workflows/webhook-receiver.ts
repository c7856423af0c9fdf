import type { IncomingMessage, ServerResponse } from 'node:http';
import { assertAppName } from '../app-name.js';
import { answerError, answerJson } from '../http/json-answer.js';
import { clientAddress } from '../http/token-auth.js';
import type { Logger } from '../log.js';
import { RackError } from '../rack-error.js';
import type { Store } from '../store/store.js';
import type { RepoDeploys } from './repo-deploys.js';
import { reviewAppName } from './review-apps.js';
import { verifyDelivery } from './webhook-delivery.js';

/** GitHub caps a delivery at 25 MB; a push's body past this is not one rack needs to read. */
export const MAX_DELIVERY_BYTES = 25 * 1024 * 1024;
export const HOOKS_PREFIX = '/hooks/';

/**
 * `POST /hooks/APP`: a repository host's webhook. Public (no token): the signature over the body,
 * made with the app's secret, is the proof. A push of the connected branch is answered 202 at once
 * and deployed in the background (RepoDeploys); everything else is answered and ignored.
 */
export class WebhookReceiver {
  constructor(
    private readonly store: Store,
    private readonly deploys: RepoDeploys,
    private readonly stopping: () => boolean,
    private readonly log: Logger,
  ) {}

  handle = async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> => {
    const receivedAt = Date.now();
    try {
      await this.serve(req, res, url, receivedAt);
    } catch (err) {
      const error = RackError.from(err);
      if (error.code === 'unauthorized') this.log.warn({ path: url.pathname, address: clientAddress(req) }, 'webhook refused: bad signature');
      // The rest of a refused upload is not read: the connection must not be reused mid-body.
      answerError(res, error, { Connection: 'close' });
    }
  };

  private async serve(req: IncomingMessage, res: ServerResponse, url: URL, receivedAt: number): Promise<void> {
    if (req.method !== 'POST') throw new RackError('method_not_allowed', 'webhooks are POSTed');
    const app = assertAppName(url.pathname.slice(HOOKS_PREFIX.length));
    // One answer for no app and no link: the URL tells a stranger nothing about which apps exist.
    const link = await this.store.repos.get(app);
    if (!link) throw new RackError('not_found', `no repository is connected at ${url.pathname}`);
    if (this.stopping()) throw new RackError('restarting', 'rack is restarting; redeliver in a moment');
    const body = await readRaw(req);
    const delivery = verifyDelivery(req.headers, body, link.secret);
    const at = new Date().toISOString();
    if (!(await this.store.repos.noteDelivery(app, delivery.id))) {
      return answerJson(res, 200, { status: 'duplicate delivery, ignored', delivery: delivery.id });
    }
    const pr = delivery.pullRequest;
    if (pr) {
      let why: string | undefined;
      if (pr.action !== 'close' && !link.reviewApps) why = 'review apps are off (reviewapps:enable)';
      try {
        reviewAppName(app, pr.number);
      } catch (err) {
        why = RackError.from(err).message;
      }
      if (why !== undefined) {
        await this.store.repos.setOutcome(app, { id: delivery.id, host: delivery.host, event: delivery.event, at, commit: pr.commit, result: `ignored: ${why}` });
        return answerJson(res, 200, { status: `ignored: ${why}`, delivery: delivery.id });
      }
      await this.store.repos.setOutcome(app, { id: delivery.id, host: delivery.host, event: delivery.event, at, commit: pr.commit, result: 'queued' });
      this.log.info({ app, host: delivery.host, delivery: delivery.id, pullRequest: pr.number, action: pr.action }, 'webhook pull request accepted');
      this.deploys.take(app, { ...delivery, pullRequest: pr }, clientAddress(req), receivedAt);
      return answerJson(res, 202, { status: `accepted: review app ${pr.action === 'close' ? 'destroyed' : 'deploying'}`, delivery: delivery.id, commit: pr.commit });
    }
    const push = delivery.push;
    if (!push || push.branch !== link.branch) {
      const why = push ? `a push to ${push.branch}, not ${link.branch}` : `${delivery.event} is not a push of a branch`;
      await this.store.repos.setOutcome(app, { id: delivery.id, host: delivery.host, event: delivery.event, at, result: `ignored: ${why}` });
      return answerJson(res, 200, { status: `ignored: ${why}`, delivery: delivery.id });
    }
    await this.store.repos.setOutcome(app, { id: delivery.id, host: delivery.host, event: delivery.event, at, commit: push.commit, result: 'queued' });
    this.log.info({ app, host: delivery.host, delivery: delivery.id, commit: push.commit }, 'webhook push accepted');
    this.deploys.take(app, { ...delivery, push }, clientAddress(req), receivedAt);
    answerJson(res, 202, { status: 'accepted: deploying', delivery: delivery.id, commit: push.commit });
  }
}

/** The body as the bytes that were signed, up to MAX_DELIVERY_BYTES. */
async function readRaw(req: IncomingMessage): Promise<Buffer> {
  const length = Number(req.headers['content-length'] ?? 0);
  const tooLarge = new RackError('payload_too_large', `a webhook delivery over ${MAX_DELIVERY_BYTES / 1024 / 1024} MB is refused`);
  if (length > MAX_DELIVERY_BYTES) throw tooLarge;
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_DELIVERY_BYTES) throw tooLarge;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}
